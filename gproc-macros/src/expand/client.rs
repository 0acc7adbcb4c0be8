//! The client stub: calls the service's methods on a process by PID.

use proc_macro2::TokenStream;
use quote::quote;

use super::Generator;
use crate::ast::Method;

impl Generator<'_> {
    // Input:  trait Calculator { async fn add(&self, a: i64) -> i64; }
    // Output: struct CalculatorClient<S = PidStub<..>> { stub: S }
    //         impl<S: Stub<..>> CalculatorClient<S> { fn add(&self, a: i64) -> impl Future<..> }
    pub(super) fn expand_client(&self) -> TokenStream {
        let (private, client) = (&self.private, &self.client);
        let (request, response, s) = (&self.request, &self.response, &self.stub_param);
        let vis = &self.service.item.vis;
        let trait_name = self.service.ident();
        let doc = format!(
            " Calls [`{trait_name}`] on a process by PID, `{client}::new(pid)`, or by name, `{client}::by_name(name)`. Cheap to clone."
        );
        let methods = self.methods().iter().map(|m| self.client_method(m));
        quote! {
            #[doc = #doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #vis struct #client<S = #private::PidStub<#request, #response>> {
                stub: S,
            }

            #[automatically_derived]
            impl #client {
                /// A client for the process `pid`, with the default deadline of 10 seconds.
                pub fn new(pid: ::core::primitive::u32) -> Self {
                    #client { stub: #private::PidStub::new(pid, <#request as #private::ServiceRequest>::info()) }
                }

                /// A client for whoever holds `name` (see `gproc::register`), with the
                /// default deadline: looked up at the first call, and again whenever the
                /// holder found last has exited, so it follows a restarted holder. A name
                /// nobody holds fails the call with `gproc::Error::NoSuchName`.
                pub fn by_name(name: impl ::core::convert::Into<::std::string::String>) -> Self {
                    #client { stub: #private::PidStub::by_name(name, <#request as #private::ServiceRequest>::info()) }
                }

                /// Waits until the process serves this version of the service.
                pub fn wait_served(
                    &self,
                    timeout: ::core::time::Duration,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<(), #private::RpcError>,
                > + ::core::marker::Send + '_ {
                    #private::PidStub::wait_served(&self.stub, timeout)
                }

                /// The PID this client calls; by name, the holder found last (0 before
                /// the first call).
                pub fn pid(&self) -> ::core::primitive::u32 {
                    #private::PidStub::pid(&self.stub)
                }
            }

            #[automatically_derived]
            impl<#s> #client<#s>
            where
                #s: #private::Stub<Req = #request, Resp = #response>,
            {
                /// A client calling through `stub`; a server is a stub too, for tests
                /// without processes.
                pub fn from_stub(stub: #s) -> Self {
                    #client { stub }
                }

                /// The same client with another deadline for each call.
                pub fn with_timeout(self, timeout: ::core::time::Duration) -> Self
                where
                    #s: #private::WithTimeout,
                {
                    #client { stub: #private::WithTimeout::with_timeout(self.stub, timeout) }
                }

                #(#methods)*
            }
        }
    }

    fn client_method(&self, m: &Method) -> TokenStream {
        let (private, request, response) = (&self.private, &self.request, &self.response);
        let (attrs, name, output, variant) = (&m.attrs, &m.ident, &m.output, m.variant());
        let docs = attrs.iter().filter(|a| a.path().is_ident("doc"));
        let names: Vec<_> = m.args.iter().map(Method::arg_ident).collect();
        let types = m.args.iter().map(|a| &a.ty);
        if m.is_oneway() {
            return quote! {
                #(#docs)*
                ///
                /// One-way: returns once the server has queued the request, without waiting
                /// for the handler.
                pub fn #name(
                    &self,
                    #(#names: #types),*
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<(), #private::RpcError>,
                > + ::core::marker::Send + '_ {
                    #private::Stub::call_oneway(&self.stub, #request::#variant { #(#names),* })
                }
            };
        }
        quote! {
            #(#docs)*
            pub fn #name(
                &self,
                #(#names: #types),*
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<#output, #private::RpcError>,
            > + ::core::marker::Send + '_ {
                let __gproc_call = #private::Stub::call(&self.stub, #request::#variant { #(#names),* });
                async move {
                    #[allow(unreachable_patterns)]
                    match __gproc_call.await? {
                        #response::#variant(__gproc_value) => ::core::result::Result::Ok(__gproc_value),
                        _ => ::core::result::Result::Err(#private::RpcError::Decode),
                    }
                }
            }
        }
    }
}
