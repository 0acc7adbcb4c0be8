//! The dispatcher: serves the service's methods to other processes.

use proc_macro2::TokenStream;
use quote::quote;

use super::Generator;
use crate::ast::Method;

impl Generator<'_> {
    // Input:  trait Calculator { async fn add(&self, a: i64) -> i64; }
    // Output: struct CalculatorServer<T> { inner: Arc<T> }
    //         impl Serve for CalculatorServer<T> { match req { Add { a } => Add(T::add(&inner, a).await) } }
    pub(super) fn expand_server(&self) -> TokenStream {
        let (private, server) = (&self.private, &self.server);
        let (request, response, t) = (&self.request, &self.response, &self.impl_param);
        let serde = quote!(#private::serde);
        let vis = &self.service.item.vis;
        let trait_name = self.service.ident();
        let doc = format!(
            " Serves [`{trait_name}`] to other processes: `{server}::new(service).serve().await`."
        );
        let arms = self.methods().iter().map(|m| {
            let (name, variant) = (&m.ident, m.variant());
            let names: Vec<_> = m.args.iter().map(Method::arg_ident).collect();
            quote! {
                #request::#variant { #(#names),* } => #response::#variant(
                    <#t as #trait_name>::#name(&*__gproc_inner, #(#names),*).await
                ),
            }
        });
        quote! {
            #[doc = #doc]
            #vis struct #server<T> {
                inner: ::std::sync::Arc<T>,
            }

            #[automatically_derived]
            impl<#t> ::core::clone::Clone for #server<#t> {
                fn clone(&self) -> Self {
                    #server { inner: ::core::clone::Clone::clone(&self.inner) }
                }
            }

            #[automatically_derived]
            impl<#t> #server<#t> {
                /// Wraps the implementation to serve.
                pub fn new(service: #t) -> Self {
                    #server { inner: ::std::sync::Arc::new(service) }
                }
            }

            #[automatically_derived]
            impl<#t> #server<#t>
            where
                #t: #trait_name + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                /// Serves the service until this runtime shuts down. Each call runs in its
                /// own task; a second `serve()` of the same service is an error.
                // The bounds hold unless a type is not serde, which the check reports at
                // the type's span; `for<'__gproc>` keeps them from a second error here.
                pub fn serve(
                    self,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<(), #private::RpcError>,
                > + ::core::marker::Send
                where
                    for<'__gproc> #request: #serde::de::DeserializeOwned,
                    for<'__gproc> #response: #serde::Serialize,
                {
                    #private::serve(self)
                }
            }

            #[automatically_derived]
            impl<#t> #private::Serve for #server<#t>
            where
                #t: #trait_name + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                type Req = #request;
                type Resp = #response;

                fn info(&self) -> &'static #private::ServiceInfo {
                    <#request as #private::ServiceRequest>::info()
                }

                fn serve(
                    &self,
                    req: #request,
                ) -> impl ::core::future::Future<Output = #response> + ::core::marker::Send {
                    let __gproc_inner = ::core::clone::Clone::clone(&self.inner);
                    async move {
                        match req {
                            #(#arms)*
                        }
                    }
                }
            }
        }
    }
}
