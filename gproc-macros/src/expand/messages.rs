//! The request and response enums: one variant per method.

use proc_macro2::TokenStream;
use quote::quote;

use super::Generator;
use crate::ast::Method;

impl Generator<'_> {
    // Input:  async fn add(&self, a: i64, b: i64) -> i64;
    // Output: enum CalculatorRequest { #[serde(rename = "add")] Add { a: i64, b: i64 } }
    //         enum CalculatorResponse { #[serde(rename = "add")] Add(i64) }
    pub(super) fn expand_messages(&self) -> TokenStream {
        let private = &self.private;
        let arg_types = self
            .methods()
            .iter()
            .flat_map(|m| m.args.iter().map(|a| &a.ty));
        let request_serde = self.serde_attr(arg_types);
        let response_serde = self.serde_attr(self.methods().iter().map(|m| &m.output));
        let (request, response) = (&self.request, &self.response);
        let vis = &self.service.item.vis;
        let trait_name = self.service.ident();
        // Each variant goes by the method's name in serde: the JSON call path reads
        // `{"add": [1, 2]}`. postcard encodes variants by index, so the binary path does
        // not see names.
        let requests = self.methods().iter().map(|m| {
            let (variant, name) = (m.variant(), super::unraw(&m.ident));
            let fields = m.args.iter().map(|a| {
                let (name, ty) = (Method::arg_ident(a), &a.ty);
                quote!(#name: #ty)
            });
            quote!(#[serde(rename = #name)] #variant { #(#fields),* })
        });
        let responses = self.methods().iter().map(|m| {
            let (variant, output, name) = (m.variant(), &m.output, super::unraw(&m.ident));
            quote!(#[serde(rename = #name)] #variant(#output))
        });
        let request_doc = format!(" The requests of [`{trait_name}`], one variant per method.");
        let response_doc = format!(" The responses of [`{trait_name}`], one variant per method.");
        quote! {
            #[doc = #request_doc]
            #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
            #request_serde
            #vis enum #request {
                #(#requests),*
            }

            #[doc = #response_doc]
            #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
            #response_serde
            #vis enum #response {
                #(#responses),*
            }
        }
    }

    /// `#[serde(...)]` for an enum holding `types`, with one bound per type.
    ///
    /// A type that is not serde is reported at its span by the serde check. Without these
    /// bounds the derived impls would report it again, several times and partly on the
    /// attribute. `for<'__gproc>` (and `'de`) keep the compiler from checking a bound at
    /// the impl, where it is not generic; inside the impl it still holds.
    // Input:  [i64, Point]
    // Output: #[serde(crate = "::gproc::__private::serde", bound(
    //             serialize = "for<'__gproc> i64: ::gproc::__private::serde::Serialize, ...",
    //             deserialize = "i64: ::gproc::__private::serde::Deserialize<'de>, ..."))]
    fn serde_attr<'t>(&self, types: impl Iterator<Item = &'t syn::Type>) -> TokenStream {
        let serde = &self.serde_crate;
        let mut seen = Vec::new();
        let (mut serialize, mut deserialize) = (String::new(), String::new());
        for ty in types.map(super::type_text) {
            if !seen.contains(&ty) {
                serialize.push_str(&format!("for<'__gproc> {ty}: {serde}::Serialize, "));
                deserialize.push_str(&format!("{ty}: {serde}::Deserialize<'de>, "));
                seen.push(ty);
            }
        }
        quote! {
            #[serde(crate = #serde, bound(serialize = #serialize, deserialize = #deserialize))]
        }
    }
}
