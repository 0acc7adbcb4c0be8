//! The request and response enums: one variant per method.

use proc_macro2::TokenStream;
use quote::quote;

use super::Generator;
use crate::ast::Method;

impl Generator<'_> {
    // Input:  async fn add(&self, a: i64, b: i64) -> i64;
    // Output: enum CalculatorRequest { Add { a: i64, b: i64 } }
    //         enum CalculatorResponse { Add(i64) }
    pub(super) fn expand_messages(&self) -> TokenStream {
        let (private, serde_crate) = (&self.private, &self.serde_crate);
        let (request, response) = (&self.request, &self.response);
        let vis = &self.service.item.vis;
        let trait_name = self.service.ident();
        let requests = self.methods().iter().map(|m| {
            let variant = m.variant();
            let fields = m.args.iter().map(|a| {
                let (name, ty) = (Method::arg_ident(a), &a.ty);
                quote!(#name: #ty)
            });
            quote!(#variant { #(#fields),* })
        });
        let responses = self.methods().iter().map(|m| {
            let (variant, output) = (m.variant(), &m.output);
            quote!(#variant(#output))
        });
        let request_doc = format!("The requests of [`{trait_name}`], one variant per method.");
        let response_doc = format!("The responses of [`{trait_name}`], one variant per method.");
        quote! {
            #[doc = #request_doc]
            #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
            #[serde(crate = #serde_crate)]
            #vis enum #request {
                #(#requests),*
            }

            #[doc = #response_doc]
            #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
            #[serde(crate = #serde_crate)]
            #vis enum #response {
                #(#responses),*
            }
        }
    }
}
