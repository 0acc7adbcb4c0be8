//! The model of a service trait, built from syn.

use proc_macro2::{Ident, Span};
use syn::spanned::Spanned;

/// A service: the annotated trait.
pub struct Service {
    /// The trait as written.
    pub item: syn::ItemTrait,
    /// The methods, in order.
    pub methods: Vec<Method>,
}

/// One method of the service.
pub struct Method {
    /// The method's name.
    pub ident: Ident,
    /// Its attributes but `#[gproc(...)]` (doc comments are kept on the generated client
    /// method).
    pub attrs: Vec<syn::Attribute>,
    /// What `#[gproc(...)]` on the method asked for.
    pub options: MethodOptions,
    /// The receiver, if any: `&self` is the only one accepted.
    pub receiver: Option<syn::Receiver>,
    /// The `async` token, if any.
    pub asyncness: Option<syn::Token![async]>,
    /// The arguments after the receiver.
    pub args: Vec<Arg>,
    /// The return type; `()` when none is written.
    pub output: syn::Type,
    /// The whole signature, for errors and the signature text.
    pub sig: syn::Signature,
    /// Whether the method has a default body.
    pub default: Option<syn::Block>,
}

/// The options of `#[gproc(...)]` on a method.
#[derive(Default)]
pub struct MethodOptions {
    /// `oneway`, where it is written: the call returns once the request is queued.
    pub oneway: Option<Span>,
    /// Options that could not be parsed, for the checker.
    pub errors: Vec<syn::Error>,
}

impl MethodOptions {
    /// Parses the `#[gproc(...)]` attributes among `attrs`.
    // Input:  #[doc = "..."] #[gproc(oneway)]
    // Output: MethodOptions { oneway: Some(span of `oneway`), errors: [] }
    fn from_attrs(attrs: &[syn::Attribute]) -> MethodOptions {
        let mut options = MethodOptions::default();
        for attr in attrs.iter().filter(|a| is_gproc_attr(a)) {
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("oneway") {
                    if options.oneway.replace(meta.path.span()).is_some() {
                        return Err(meta.error("duplicate `oneway` option"));
                    }
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown option of #[gproc(...)] on a method; the only option is `oneway`",
                    ))
                }
            });
            if let Err(e) = parsed {
                options.errors.push(e);
            }
        }
        options
    }
}

/// Whether `attr` is `#[gproc(...)]`, the macro's own attribute on a method.
pub fn is_gproc_attr(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("gproc")
}

/// One argument.
pub struct Arg {
    /// The pattern as written; only a plain identifier is accepted.
    pub pat: syn::Pat,
    /// The type.
    pub ty: syn::Type,
}

/// Other items in the trait (types, consts, macros), which services do not support.
pub struct Unsupported(pub Span);

impl Service {
    /// Builds the model. Items that are not methods are returned for the checker.
    // Input:  trait Calculator { async fn add(&self, a: i64) -> i64; type X; }
    // Output: Service { methods: [add], .. }, [Unsupported(type X)]
    pub fn from_syn(item: syn::ItemTrait) -> (Service, Vec<Unsupported>) {
        let mut methods = Vec::new();
        let mut unsupported = Vec::new();
        for trait_item in &item.items {
            match trait_item {
                syn::TraitItem::Fn(f) => methods.push(Method::from_syn(f)),
                other => unsupported.push(Unsupported(other.span())),
            }
        }
        (Service { item, methods }, unsupported)
    }

    /// The trait's name.
    pub fn ident(&self) -> &Ident {
        &self.item.ident
    }
}

impl Method {
    fn from_syn(f: &syn::TraitItemFn) -> Method {
        let sig = &f.sig;
        let mut receiver = None;
        let mut args = Vec::new();
        for input in &sig.inputs {
            match input {
                syn::FnArg::Receiver(r) => receiver = Some(r.clone()),
                syn::FnArg::Typed(t) => args.push(Arg {
                    pat: (*t.pat).clone(),
                    ty: (*t.ty).clone(),
                }),
            }
        }
        let output = match &sig.output {
            syn::ReturnType::Default => syn::parse_quote!(()),
            syn::ReturnType::Type(_, ty) => (**ty).clone(),
        };
        Method {
            ident: sig.ident.clone(),
            attrs: f
                .attrs
                .iter()
                .filter(|a| !is_gproc_attr(a))
                .cloned()
                .collect(),
            options: MethodOptions::from_attrs(&f.attrs),
            receiver,
            asyncness: sig.asyncness,
            args,
            output,
            sig: sig.clone(),
            default: f.default.clone(),
        }
    }

    /// Whether the call returns once the request is queued (`#[gproc(oneway)]`).
    pub fn is_oneway(&self) -> bool {
        self.options.oneway.is_some()
    }

    /// The argument's name; `None` for an argument that is not a plain identifier.
    pub fn arg_ident(arg: &Arg) -> Option<&Ident> {
        plain_ident(&arg.pat)
    }

    /// The request variant's name: the method's name in UpperCamelCase.
    pub fn variant(&self) -> Ident {
        let name = self.ident.to_string();
        let name = name.strip_prefix("r#").unwrap_or(&name);
        let camel: String = name
            .split('_')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                    .unwrap_or_default()
            })
            .collect();
        // `_1` or `_` would make no identifier: name those after their position instead.
        let camel = match camel.chars().next() {
            Some(c) if c.is_alphabetic() => camel,
            _ => format!("Method{camel}"),
        };
        Ident::new(&camel, self.ident.span())
    }
}

/// The identifier a pattern binds, if it is only that: not `mut a`, `ref a`, `(a, b)`.
pub fn plain_ident(pat: &syn::Pat) -> Option<&Ident> {
    match pat {
        syn::Pat::Ident(p)
            if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() =>
        {
            Some(&p.ident)
        }
        _ => None,
    }
}

/// The item type of `gproc::Stream<T>` (or `Stream<T>`, as after `use gproc::Stream`):
/// `T`, if `ty` names a stream that way. A type of the user's own named `Stream` is not
/// one when written with a path of its own (`crate::x::Stream<T>`).
// Input:  gproc::Stream<Progress>     Output: Some(Progress)
// Input:  crate::my::Stream<u8>       Output: None
pub fn stream_item(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let segments: Vec<_> = p.path.segments.iter().collect();
    let last = segments.last()?;
    let named_so = match segments.len() {
        1 => p.path.leading_colon.is_none(),
        n => segments[n - 2].ident == "gproc",
    };
    if last.ident != "Stream" || !named_so {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(item)] => Some(item),
        _ => None,
    }
}
