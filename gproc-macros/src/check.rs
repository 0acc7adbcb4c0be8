//! The rules a service trait must follow. Every violation is reported, each on the
//! offending tokens, in one build.

use std::collections::HashMap;

use syn::spanned::Spanned;

use crate::ast::{Method, Service, Unsupported};

/// Names the generated client already uses: a method with one of them would clash.
const RESERVED_METHODS: &[&str] = &[
    "new",
    "by_name",
    "with_timeout",
    "wait_served",
    "from_stub",
    "pid",
];

/// Joins errors into one, or `Ok` when there are none.
pub fn combine(errors: Vec<syn::Error>) -> syn::Result<()> {
    let mut errors = errors.into_iter();
    let Some(mut first) = errors.next() else {
        return Ok(());
    };
    first.extend(errors);
    Err(first)
}

/// Checks the whole service.
pub fn validate(service: &Service, unsupported: &[Unsupported]) -> syn::Result<()> {
    let mut errors = Vec::new();
    check_trait(service, &mut errors);
    for item in unsupported {
        errors.push(syn::Error::new(
            item.0,
            "a service trait holds only `async fn` methods; move types and consts elsewhere",
        ));
    }
    let mut variants = HashMap::new();
    for method in &service.methods {
        check_method(method, &mut errors);
        let variant = method.variant().to_string();
        if let Some(previous) = variants.insert(variant.clone(), method.ident.to_string()) {
            errors.push(syn::Error::new(
                method.ident.span(),
                format!(
                    "`{}` and `{previous}` both become the request variant `{variant}`; rename one",
                    method.ident
                ),
            ));
        }
    }
    combine(errors)
}

fn check_trait(service: &Service, errors: &mut Vec<syn::Error>) {
    let item = &service.item;
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "a service trait cannot be generic: both processes must agree on concrete types",
        ));
    }
    if let Some(unsafety) = &item.unsafety {
        errors.push(syn::Error::new(
            unsafety.span(),
            "a service trait cannot be `unsafe`",
        ));
    }
    if let Some(auto) = &item.auto_token {
        errors.push(syn::Error::new(
            auto.span(),
            "a service trait cannot be an auto trait",
        ));
    }
}

fn check_method(method: &Method, errors: &mut Vec<syn::Error>) {
    let sig = &method.sig;
    if method.asyncness.is_none() {
        let (fn_token, ident) = (&sig.fn_token, &sig.ident);
        errors.push(syn::Error::new_spanned(
            quote::quote!(#fn_token #ident),
            "service methods must be `async fn`: every call crosses a process boundary",
        ));
    }
    check_receiver(method, errors);
    errors.extend(method.options.errors.iter().cloned());
    if let Some(span) = method.options.oneway {
        if !is_unit(&method.output) {
            errors.push(syn::Error::new(
                span,
                "a `oneway` method returns `()`: its call returns once the server has queued \
                 the request, before the handler runs, so no value can come back; remove \
                 `oneway`, or the return type",
            ));
        }
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "service methods cannot be generic: the request type must be concrete",
        ));
    }
    if let Some(token) = sig.constness.as_ref() {
        errors.push(syn::Error::new(
            token.span(),
            "service methods cannot be `const`",
        ));
    }
    if let Some(token) = sig.unsafety.as_ref() {
        errors.push(syn::Error::new(
            token.span(),
            "service methods cannot be `unsafe`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "service methods cannot be variadic",
        ));
    }
    for arg in &method.args {
        if Method::arg_ident(arg).is_none() {
            errors.push(syn::Error::new_spanned(
                &arg.pat,
                "use a plain argument name here; patterns cannot name the request's fields",
            ));
        }
        check_type(&arg.ty, "arguments", errors);
        if crate::ast::stream_item(&arg.ty).is_some() {
            errors.push(syn::Error::new_spanned(
                &arg.ty,
                "a stream goes from server to client only: return a `gproc::Stream`, or take \
                 a `Vec` of the items; a type of your own named `Stream` needs its path here \
                 (`crate::path::Stream`)",
            ));
        }
    }
    check_type(&method.output, "return types", errors);
    if let Some(body) = &method.default {
        errors.push(syn::Error::new_spanned(
            body,
            "service methods cannot have a default body; implement them in the server's impl",
        ));
    }
    let name = method.ident.to_string();
    if RESERVED_METHODS.contains(&name.as_str()) {
        errors.push(syn::Error::new(
            method.ident.span(),
            format!("`{name}` clashes with a method of the generated client; rename it"),
        ));
    }
}

fn check_receiver(method: &Method, errors: &mut Vec<syn::Error>) {
    let Some(receiver) = &method.receiver else {
        errors.push(syn::Error::new(
            method.sig.paren_token.span.join(),
            "service methods take `&self` first: the server is shared by concurrent calls",
        ));
        return;
    };
    let shared_ref = receiver.reference.is_some()
        && receiver.mutability.is_none()
        && receiver.colon_token.is_none();
    if !shared_ref {
        let what = if receiver.mutability.is_some() && receiver.reference.is_some() {
            "`&mut self` is not allowed: calls run concurrently, so take `&self` and use interior mutability"
        } else {
            "take `&self`: the server is shared by concurrent calls and is never consumed"
        };
        errors.push(syn::Error::new_spanned(receiver, what));
    }
}

/// Whether `ty` is `()`.
fn is_unit(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Tuple(t) => t.elems.is_empty(),
        syn::Type::Paren(p) => is_unit(&p.elem),
        _ => false,
    }
}

/// Rejects the argument and return types that cannot travel: `impl Trait` and references.
fn check_type(ty: &syn::Type, what: &str, errors: &mut Vec<syn::Error>) {
    let message = match ty {
        syn::Type::ImplTrait(_) => {
            format!("`impl Trait` {what} are not supported: use a concrete serde type")
        }
        syn::Type::Reference(_) => format!(
            "references cannot cross a process boundary: {what} are decoded into owned values, \
             so use an owned type such as `String` or `Vec<T>`"
        ),
        _ => return,
    };
    errors.push(syn::Error::new_spanned(ty, message));
}
