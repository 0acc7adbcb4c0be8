// Keywords as method and argument names, written raw.
#![deny(warnings)]

#[gproc::service]
trait Parser {
    async fn r#type(&self, r#match: String, r#in: u8) -> String;
    async fn r#loop(&self, r#fn: Vec<u8>);
}

struct Impl;

impl Parser for Impl {
    async fn r#type(&self, r#match: String, _in: u8) -> String {
        r#match
    }
    async fn r#loop(&self, _fn: Vec<u8>) {}
}

fn main() {
    let _request = ParserRequest::Type {
        r#match: String::new(),
        r#in: 0,
    };
    let _loop = ParserRequest::Loop { r#fn: Vec::new() };
    let client = ParserClient::from_stub(ParserServer::new(Impl));
    let _call = client.r#type(String::new(), 1);
    let info = <ParserRequest as gproc::__private::ServiceRequest>::info();
    assert_eq!(info.methods[0].name, "type");
    assert_eq!(
        info.methods[0].signature,
        "async fn r#type(&self, r#match: String, r#in: u8) -> String"
    );
}
