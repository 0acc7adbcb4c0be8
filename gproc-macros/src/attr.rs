//! The options of `#[gproc::service(...)]`.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::spanned::Spanned;

/// The options given to the attribute.
pub struct Options {
    /// The path to the `gproc` crate, `::gproc` unless `crate = "..."` says otherwise.
    pub krate: syn::Path,
}

/// An option that may be given once.
struct Once<T> {
    name: &'static str,
    value: Option<T>,
}

impl<T> Once<T> {
    fn new(name: &'static str) -> Self {
        Once { name, value: None }
    }

    /// Sets the value, or reports a duplicate at `span`.
    fn set(&mut self, span: proc_macro2::Span, value: T, errors: &mut Vec<syn::Error>) {
        if self.value.replace(value).is_some() {
            errors.push(syn::Error::new(
                span,
                format!("duplicate `{}` option", self.name),
            ));
        }
    }
}

/// Parses the attribute's arguments.
// Input:  crate = "renamed_gproc"
// Output: Options { krate: ::renamed_gproc }
pub fn from_tokens(args: TokenStream) -> syn::Result<Options> {
    let mut krate = Once::new("crate");
    let mut errors = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            let lit: syn::LitStr = meta.value()?.parse()?;
            let path = lit.parse_with(syn::Path::parse_mod_style)?;
            krate.set(meta.path.span(), path, &mut errors);
            Ok(())
        } else {
            Err(meta.error(
                "unknown option of #[gproc::service]; the only option is `crate = \"path\"`",
            ))
        }
    });
    parser.parse2(args)?;
    crate::check::combine(errors)?;
    Ok(Options {
        krate: krate.value.unwrap_or_else(|| syn::parse_quote!(::gproc)),
    })
}
