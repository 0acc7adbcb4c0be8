//! Code generation: the trait with `Send` futures, the messages, the client and the server.

mod client;
mod messages;
mod server;

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, ToTokens};

use crate::ast::{Method, Service};
use crate::attr::Options;

/// The whole expansion. On error, the trait is still emitted beside the errors, so that
/// its impls do not cascade into "cannot find trait".
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = match syn::parse2::<syn::Item>(input.clone()) {
        Ok(syn::Item::Trait(item)) => item,
        Ok(other) => {
            let err = syn::Error::new_spanned(
                item_head(&other),
                "#[gproc::service] goes on a trait: `#[gproc::service] trait Name { async fn method(&self, ...) -> T; }`",
            );
            return with_errors(input, err);
        }
        Err(err) => return with_errors(input, err),
    };
    let options = crate::attr::from_tokens(args);
    let (service, unsupported) = Service::from_syn(item);
    let checked = crate::check::validate(&service, &unsupported);
    match (options, checked) {
        (Ok(options), Ok(())) => Generator::new(&service, &options).into_token_stream(),
        (Err(mut e), Err(more)) => {
            e.combine(more);
            with_errors(fallback_trait(service.item), e)
        }
        (Err(e), _) | (_, Err(e)) => with_errors(fallback_trait(service.item), e),
    }
}

/// The trait as written, for the build that reports errors about it: its impls still
/// resolve, and the compiler adds no second error to ours (argument patterns become `_`).
// Input:  pub trait Calc { async fn add(&self, (a, b): (i64, i64)) -> i64; }
// Output: #[allow(async_fn_in_trait)] pub trait Calc { async fn add(&self, _: (i64, i64)) -> i64; }
// (and `#[gproc(oneway)]` removed from its methods)
fn fallback_trait(mut item: syn::ItemTrait) -> TokenStream {
    // `#[gproc(...)]` is the macro's; left on a method, it would be an unknown attribute.
    for trait_item in &mut item.items {
        if let syn::TraitItem::Fn(f) = trait_item {
            f.attrs.retain(|a| !crate::ast::is_gproc_attr(a));
        }
    }
    let inputs = item
        .items
        .iter_mut()
        .flat_map(|trait_item| match trait_item {
            syn::TraitItem::Fn(f) => Some(f.sig.inputs.iter_mut()),
            _ => None,
        });
    for input in inputs.flatten() {
        if let syn::FnArg::Typed(arg) = input {
            if crate::ast::plain_ident(&arg.pat).is_none() {
                let underscore = syn::Token![_](syn::spanned::Spanned::span(&arg.pat));
                *arg.pat = syn::Pat::Wild(syn::PatWild {
                    attrs: Vec::new(),
                    underscore_token: underscore,
                });
            }
        }
    }
    item.attrs
        .push(syn::parse_quote!(#[allow(async_fn_in_trait)]));
    item.into_token_stream()
}

fn with_errors(item: TokenStream, err: syn::Error) -> TokenStream {
    let errors = err.to_compile_error();
    quote!(#item #errors)
}

/// The tokens that name an item, where an error about the item belongs.
fn item_head(item: &syn::Item) -> TokenStream {
    match item {
        syn::Item::Struct(s) => {
            let (token, ident) = (&s.struct_token, &s.ident);
            quote!(#token #ident)
        }
        syn::Item::Enum(e) => {
            let (token, ident) = (&e.enum_token, &e.ident);
            quote!(#token #ident)
        }
        syn::Item::Fn(f) => {
            let (token, ident) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#token #ident)
        }
        syn::Item::Impl(i) => i.impl_token.into_token_stream(),
        other => other.into_token_stream(),
    }
}

/// Everything the generators share: the model, and the names of the emitted items.
pub struct Generator<'a> {
    service: &'a Service,
    /// `<crate>::__private`, the only way generated code reaches gproc and its dependencies.
    private: TokenStream,
    serde_crate: String,
    request: Ident,
    response: Ident,
    client: Ident,
    server: Ident,
    /// The client's type parameter in impls: `S`, unless the trait names something `S`.
    stub_param: Ident,
    /// The server's type parameter in impls: `T`, unless the trait names something `T`.
    impl_param: Ident,
}

impl<'a> Generator<'a> {
    fn new(service: &'a Service, options: &Options) -> Self {
        let krate = &options.krate;
        let name = service.ident();
        let private = quote!(#krate::__private);
        Generator {
            service,
            serde_crate: format!("{}::serde", private).replace(' ', ""),
            private,
            request: format_ident!("{}Request", name),
            response: format_ident!("{}Response", name),
            client: format_ident!("{}Client", name),
            server: format_ident!("{}Server", name),
            stub_param: free_param(service, "S", "__GprocStub"),
            impl_param: free_param(service, "T", "__GprocImpl"),
        }
    }

    fn methods(&self) -> &'a [Method] {
        &self.service.methods
    }

    /// The trait, each `async fn` turned into a method returning a `Send` future, so that
    /// handlers can run in tasks of their own (as `trait-variant` does).
    // Input:  async fn add(&self, a: i64) -> i64;
    // Output: fn add(&self, a: i64) -> impl Future<Output = i64> + Send;
    fn expand_trait(&self) -> TokenStream {
        let item = &self.service.item;
        let (attrs, vis, ident) = (&item.attrs, &item.vis, &item.ident);
        let supertraits = (!item.supertraits.is_empty()).then(|| {
            let bounds = &item.supertraits;
            quote!(: #bounds)
        });
        let methods = self.methods().iter().map(|m| {
            let (attrs, name, output) = (&m.attrs, &m.ident, &m.output);
            let args = m.args.iter().map(|a| {
                let (pat, ty) = (&a.pat, &a.ty);
                quote!(#pat: #ty)
            });
            quote! {
                #(#attrs)*
                fn #name(&self, #(#args),*)
                    -> impl ::core::future::Future<Output = #output> + ::core::marker::Send;
            }
        });
        quote! {
            #(#attrs)*
            #vis trait #ident #supertraits {
                #(#methods)*
            }
        }
    }

    /// Checks at the user's spans that every argument and return type is serde.
    // Input:  async fn add(&self, a: i64) -> i64;
    // Output: const _: () = { fn check() { (&&SerdeCheck::<i64>::NEW).check(); .. } };
    fn expand_serde_checks(&self) -> TokenStream {
        let private = &self.private;
        let types = self.methods().iter().flat_map(|m| {
            m.args
                .iter()
                .map(|a| &a.ty)
                .chain(std::iter::once(&m.output))
        });
        // A stream's item is checked at its own span: the error names the item type.
        let types = types.map(|ty| crate::ast::stream_item(ty).unwrap_or(ty));
        let checks = types.map(|ty| {
            quote::quote_spanned! {syn::spanned::Spanned::span(ty)=>
                {
                    #[allow(unused_imports)]
                    use #private::{IsSerde as _, NotSerde as _};
                    (&&#private::SerdeCheck::<#ty>::NEW).check();
                }
            }
        });
        quote! {
            const _: () = {
                #[allow(dead_code)]
                fn __gproc_assert_serde() {
                    #(#checks)*
                }
            };
        }
    }

    /// The service's name, fingerprint and method signatures.
    fn expand_info(&self) -> TokenStream {
        let (private, request) = (&self.private, &self.request);
        let name = unraw(self.service.ident());
        let fingerprint = fingerprint(self.service);
        let methods = self.methods().iter().map(|m| {
            let (name, signature) = (unraw(&m.ident), signature(m));
            let args = m.args.iter().map(|a| {
                let name = Method::arg_ident(a).map(unraw).unwrap_or_default();
                let ty = type_text(&a.ty);
                quote!((#name, #ty))
            });
            let (output, fallible, oneway) =
                (type_text(&m.output), is_result(&m.output), m.is_oneway());
            quote! {
                #private::MethodInfo {
                    name: #name,
                    signature: #signature,
                    args: &[#(#args),*],
                    output: #output,
                    fallible: #fallible,
                    oneway: #oneway,
                }
            }
        });
        let names = self.methods().iter().map(|m| {
            let (variant, name) = (m.variant(), unraw(&m.ident));
            quote!(#request::#variant { .. } => #name,)
        });
        quote! {
            #[automatically_derived]
            impl #private::ServiceRequest for #request {
                fn info() -> &'static #private::ServiceInfo {
                    static __GPROC_INFO: #private::ServiceInfo = #private::ServiceInfo {
                        name: #name,
                        fingerprint: #fingerprint,
                        methods: &[#(#methods),*],
                    };
                    &__GPROC_INFO
                }

                fn method(&self) -> &'static ::core::primitive::str {
                    match *self {
                        #(#names)*
                    }
                }
            }
        }
    }
}

impl ToTokens for Generator<'_> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend([
            self.expand_trait(),
            self.expand_messages(),
            self.expand_info(),
            self.expand_client(),
            self.expand_server(),
            self.expand_serde_checks(),
        ]);
    }
}

/// A name for a generated type parameter that no token of the trait shadows: in
/// `impl<S> CalculatorClient<S>`, a user type `S` in a method's signature would otherwise
/// resolve to the parameter.
fn free_param(service: &Service, preferred: &str, fallback: &str) -> Ident {
    let taken = mentions(service.item.to_token_stream(), preferred);
    Ident::new(if taken { fallback } else { preferred }, Span::call_site())
}

/// Whether `tokens` hold the identifier `name`, at any depth.
fn mentions(tokens: TokenStream, name: &str) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == name,
        TokenTree::Group(group) => mentions(group.stream(), name),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

/// An identifier without its `r#`.
fn unraw(ident: &Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

/// Tokens as readable text: `Result<f64, String>` rather than `Result < f64 , String >`.
fn type_text(tokens: &impl ToTokens) -> String {
    let raw = tokens.to_token_stream().to_string();
    let mut out = String::with_capacity(raw.len());
    for (i, part) in raw.split(' ').enumerate() {
        let glue = matches!(part, "<" | ">" | "," | "::" | ")" | "]" | ";")
            || out.ends_with(['<', '&', '(', '['])
            || out.ends_with("::");
        if i > 0 && !glue {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// Whether a return type is a `Result` (by its last path segment, as `io::Result` is):
/// a JSON call then reports its `Err` as the method's error.
fn is_result(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        syn::Type::Paren(p) => is_result(&p.elem),
        syn::Type::Group(g) => is_result(&g.elem),
        _ => false,
    }
}

/// The method's signature as introspection shows it.
fn signature(m: &Method) -> String {
    let args: Vec<String> = m
        .args
        .iter()
        .map(|a| format!("{}: {}", type_text(&a.pat), type_text(&a.ty)))
        .collect();
    let oneway = if m.is_oneway() {
        "#[gproc(oneway)] "
    } else {
        ""
    };
    let mut text = format!("{oneway}async fn {}(&self", m.ident);
    for arg in &args {
        text.push_str(", ");
        text.push_str(arg);
    }
    text.push(')');
    let output = type_text(&m.output);
    if output != "()" {
        text.push_str(" -> ");
        text.push_str(&output);
    }
    text
}

/// FNV-1a over the service name and every method's name, argument types, return type and
/// `oneway`, in order. Doc comments and argument names do not count.
fn fingerprint(service: &Service) -> u64 {
    let mut text = unraw(service.ident());
    for m in &service.methods {
        let types: Vec<String> = m.args.iter().map(|a| type_text(&a.ty)).collect();
        text.push_str(&format!(
            ";{}({})->{}",
            unraw(&m.ident),
            types.join(","),
            type_text(&m.output)
        ));
        // A one-way method is answered before its handler runs: another protocol.
        if m.is_oneway() {
            text.push_str(" oneway");
        }
    }
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
