// Generated code names nothing the prelude provides: a service compiles in a module
// without it. The user's own code there must use full paths too.
#![deny(warnings)]

#[allow(dead_code)]
mod no_prelude {
    #![no_implicit_prelude]

    #[derive(::serde::Serialize, ::serde::Deserialize)]
    pub struct Point {
        pub x: ::core::primitive::i64,
        pub y: ::core::primitive::i64,
    }

    #[::gproc::service]
    pub trait Plotter {
        async fn plot(&self, at: Point, label: ::std::string::String) -> ::core::primitive::bool;
        async fn clear(&self);
        async fn points(&self) -> ::std::vec::Vec<Point>;
    }

    pub struct Paper;

    impl Plotter for Paper {
        async fn plot(&self, _at: Point, _label: ::std::string::String) -> ::core::primitive::bool {
            true
        }
        async fn clear(&self) {}
        async fn points(&self) -> ::std::vec::Vec<Point> {
            ::std::vec::Vec::new()
        }
    }

    pub fn use_both() {
        let _client = PlotterClient::new(1).with_timeout(::core::time::Duration::from_secs(1));
        let _local = PlotterClient::from_stub(PlotterServer::new(Paper));
        let _serve = PlotterServer::new(Paper).serve();
    }
}

fn main() {
    no_prelude::use_both();
}
