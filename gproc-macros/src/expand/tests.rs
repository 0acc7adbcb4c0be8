//! Unit tests of the generators: the expansion snapshot, variant names, the fingerprint
//! and the signature text.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Service;

/// Expands `item` with `attr` and formats the result as a file.
fn expand_pretty(attr: TokenStream, item: TokenStream) -> String {
    let tokens = super::service(attr, item);
    let file = syn::parse2::<syn::File>(tokens).expect("the expansion parses as a file");
    prettyplease::unparse(&file)
}

/// Builds the model of a trait, without validating it.
fn model(item: TokenStream) -> Service {
    let item = syn::parse2::<syn::ItemTrait>(item).expect("a trait");
    Service::from_syn(item).0
}

fn fingerprint_of(item: TokenStream) -> u64 {
    super::fingerprint(&model(item))
}

/// The expansion of a representative service, checked in so that a change in generated
/// code is seen in review. `GPROC_BLESS=1 cargo test -p gproc-macros` rewrites it.
#[test]
fn calculator_expansion_matches_snapshot() {
    let actual = expand_pretty(
        quote!(),
        quote! {
            /// A calculator in another process.
            pub trait Calculator {
                /// Adds two numbers.
                async fn add(&self, a: i64, b: i64) -> i64;
                async fn div(&self, a: f64, b: f64) -> Result<f64, String>;
                async fn log(&self, line: String);
                /// Notes a line, without waiting for the handler.
                #[gproc(oneway)]
                async fn note(&self, line: String);
                /// The partial sums of `0..n`, as they are computed.
                async fn sums(&self, n: u64) -> gproc::Stream<u64>;
            }
        },
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/calculator.expanded.rs");
    if std::env::var_os("GPROC_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &actual).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "the expansion differs from {}; if the change is intended, rerun with GPROC_BLESS=1 \
         and review the diff.\n--- actual ---\n{actual}",
        path.display()
    );
}

#[test]
fn variants_are_upper_camel_case() {
    let service = model(quote! {
        trait T {
            async fn get_value(&self);
            async fn r#type(&self);
            async fn add(&self);
            async fn __double__under(&self);
            async fn http2_get(&self);
            async fn _1(&self);
        }
    });
    let variants: Vec<String> = service
        .methods
        .iter()
        .map(|m| m.variant().to_string())
        .collect();
    assert_eq!(
        variants,
        [
            "GetValue",
            "Type",
            "Add",
            "DoubleUnder",
            "Http2Get",
            "Method1"
        ]
    );
}

#[test]
fn fingerprint_counts_names_types_and_order() {
    let base = fingerprint_of(quote! {
        trait Calc {
            async fn add(&self, a: i64, b: i64) -> i64;
            async fn log(&self, line: String);
        }
    });
    let changes = [
        // another argument type
        quote! { trait Calc { async fn add(&self, a: i32, b: i64) -> i64; async fn log(&self, line: String); } },
        // another return type
        quote! { trait Calc { async fn add(&self, a: i64, b: i64) -> u64; async fn log(&self, line: String); } },
        // another method name
        quote! { trait Calc { async fn plus(&self, a: i64, b: i64) -> i64; async fn log(&self, line: String); } },
        // another service name
        quote! { trait Calc2 { async fn add(&self, a: i64, b: i64) -> i64; async fn log(&self, line: String); } },
        // methods reordered
        quote! { trait Calc { async fn log(&self, line: String); async fn add(&self, a: i64, b: i64) -> i64; } },
        // an argument more
        quote! { trait Calc { async fn add(&self, a: i64, b: i64, c: i64) -> i64; async fn log(&self, line: String); } },
        // a method more
        quote! { trait Calc { async fn add(&self, a: i64, b: i64) -> i64; async fn log(&self, line: String); async fn x(&self); } },
    ];
    for changed in changes {
        let text = changed.to_string();
        assert_ne!(fingerprint_of(changed), base, "{text}");
    }
}

#[test]
fn fingerprint_ignores_docs_and_argument_names() {
    let base = fingerprint_of(quote! {
        trait Calc {
            async fn add(&self, a: i64, b: i64) -> i64;
            async fn log(&self, line: String);
        }
    });
    let same = [
        quote! {
            /// Docs on the trait.
            trait Calc {
                /// Docs on a method.
                async fn add(&self, a: i64, b: i64) -> i64;
                async fn log(&self, line: String);
            }
        },
        quote! { trait Calc { async fn add(&self, x: i64, y: i64) -> i64; async fn log(&self, text: String); } },
        quote! { trait Calc { async fn add(&self, a: i64, b: i64) -> i64; async fn log(&self, line: String) -> (); } },
    ];
    for unchanged in same {
        let text = unchanged.to_string();
        assert_eq!(fingerprint_of(unchanged), base, "{text}");
    }
}

#[test]
fn signature_text_reads_as_written() {
    let service = model(quote! {
        trait Calc {
            async fn add(&self, a: i64, b: i64) -> i64;
            async fn div(&self, a: f64, b: f64) -> Result<f64, String>;
            async fn log(&self, line: String);
            async fn r#type(&self, r#match: &'static str, v: Vec<(u8, [u8; 4])>) -> Option<std::time::Duration>;
        }
    });
    let signatures: Vec<String> = service.methods.iter().map(super::signature).collect();
    assert_eq!(
        signatures,
        [
            "async fn add(&self, a: i64, b: i64) -> i64",
            "async fn div(&self, a: f64, b: f64) -> Result<f64, String>",
            "async fn log(&self, line: String)",
            "async fn r#type(&self, r#match: &'static str, v: Vec<(u8, [u8; 4])>) -> Option<std::time::Duration>",
        ]
    );
}

/// A one-way method is answered before its handler runs: a client and a server that
/// disagree on it must not talk.
#[test]
fn fingerprint_counts_oneway() {
    let plain = fingerprint_of(quote!(
        trait T {
            async fn note(&self, line: String);
        }
    ));
    let oneway = fingerprint_of(quote!(
        trait T {
            #[gproc(oneway)]
            async fn note(&self, line: String);
        }
    ));
    assert_ne!(plain, oneway);
}
