/// A calculator in another process.
pub trait Calculator {
    /// Adds two numbers.
    fn add(
        &self,
        a: i64,
        b: i64,
    ) -> impl ::core::future::Future<Output = i64> + ::core::marker::Send;
    fn div(
        &self,
        a: f64,
        b: f64,
    ) -> impl ::core::future::Future<
        Output = Result<f64, String>,
    > + ::core::marker::Send;
    fn log(
        &self,
        line: String,
    ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send;
    /// Notes a line, without waiting for the handler.
    fn note(
        &self,
        line: String,
    ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send;
    /// The partial sums of `0..n`, as they are computed.
    fn sums(
        &self,
        n: u64,
    ) -> impl ::core::future::Future<Output = gproc::Stream<u64>> + ::core::marker::Send;
}
/// The requests of [`Calculator`], one variant per method.
#[derive(::gproc::__private::serde::Serialize, ::gproc::__private::serde::Deserialize)]
#[serde(
    crate = "::gproc::__private::serde",
    bound(
        serialize = "for<'__gproc> i64: ::gproc::__private::serde::Serialize, for<'__gproc> f64: ::gproc::__private::serde::Serialize, for<'__gproc> String: ::gproc::__private::serde::Serialize, for<'__gproc> u64: ::gproc::__private::serde::Serialize, ",
        deserialize = "i64: ::gproc::__private::serde::Deserialize<'de>, f64: ::gproc::__private::serde::Deserialize<'de>, String: ::gproc::__private::serde::Deserialize<'de>, u64: ::gproc::__private::serde::Deserialize<'de>, "
    )
)]
pub enum CalculatorRequest {
    #[serde(rename = "add")]
    Add { a: i64, b: i64 },
    #[serde(rename = "div")]
    Div { a: f64, b: f64 },
    #[serde(rename = "log")]
    Log { line: String },
    #[serde(rename = "note")]
    Note { line: String },
    #[serde(rename = "sums")]
    Sums { n: u64 },
}
/// The responses of [`Calculator`], one variant per method.
#[derive(::gproc::__private::serde::Serialize, ::gproc::__private::serde::Deserialize)]
#[serde(
    crate = "::gproc::__private::serde",
    bound(
        serialize = "for<'__gproc> i64: ::gproc::__private::serde::Serialize, for<'__gproc> Result<f64, String>: ::gproc::__private::serde::Serialize, for<'__gproc> (): ::gproc::__private::serde::Serialize, for<'__gproc> gproc::Stream<u64>: ::gproc::__private::serde::Serialize, ",
        deserialize = "i64: ::gproc::__private::serde::Deserialize<'de>, Result<f64, String>: ::gproc::__private::serde::Deserialize<'de>, (): ::gproc::__private::serde::Deserialize<'de>, gproc::Stream<u64>: ::gproc::__private::serde::Deserialize<'de>, "
    )
)]
pub enum CalculatorResponse {
    #[serde(rename = "add")]
    Add(i64),
    #[serde(rename = "div")]
    Div(Result<f64, String>),
    #[serde(rename = "log")]
    Log(()),
    #[serde(rename = "note")]
    Note(()),
    #[serde(rename = "sums")]
    Sums(gproc::Stream<u64>),
}
#[automatically_derived]
impl ::gproc::__private::ServiceRequest for CalculatorRequest {
    fn info() -> &'static ::gproc::__private::ServiceInfo {
        static __GPROC_INFO: ::gproc::__private::ServiceInfo = ::gproc::__private::ServiceInfo {
            name: "Calculator",
            fingerprint: 5541493604984778533u64,
            methods: &[
                ::gproc::__private::MethodInfo {
                    name: "add",
                    signature: "async fn add(&self, a: i64, b: i64) -> i64",
                    args: &[("a", "i64"), ("b", "i64")],
                    output: "i64",
                    fallible: false,
                    oneway: false,
                },
                ::gproc::__private::MethodInfo {
                    name: "div",
                    signature: "async fn div(&self, a: f64, b: f64) -> Result<f64, String>",
                    args: &[("a", "f64"), ("b", "f64")],
                    output: "Result<f64, String>",
                    fallible: true,
                    oneway: false,
                },
                ::gproc::__private::MethodInfo {
                    name: "log",
                    signature: "async fn log(&self, line: String)",
                    args: &[("line", "String")],
                    output: "()",
                    fallible: false,
                    oneway: false,
                },
                ::gproc::__private::MethodInfo {
                    name: "note",
                    signature: "#[gproc(oneway)] async fn note(&self, line: String)",
                    args: &[("line", "String")],
                    output: "()",
                    fallible: false,
                    oneway: true,
                },
                ::gproc::__private::MethodInfo {
                    name: "sums",
                    signature: "async fn sums(&self, n: u64) -> gproc::Stream<u64>",
                    args: &[("n", "u64")],
                    output: "gproc::Stream<u64>",
                    fallible: false,
                    oneway: false,
                },
            ],
        };
        &__GPROC_INFO
    }
    fn method(&self) -> &'static ::core::primitive::str {
        match *self {
            CalculatorRequest::Add { .. } => "add",
            CalculatorRequest::Div { .. } => "div",
            CalculatorRequest::Log { .. } => "log",
            CalculatorRequest::Note { .. } => "note",
            CalculatorRequest::Sums { .. } => "sums",
        }
    }
}
/// Calls [`Calculator`] on a process by PID, `CalculatorClient::new(pid)`, or by name, `CalculatorClient::by_name(name)`. Cheap to clone.
#[derive(::core::clone::Clone, ::core::fmt::Debug)]
pub struct CalculatorClient<
    S = ::gproc::__private::PidStub<CalculatorRequest, CalculatorResponse>,
> {
    stub: S,
}
#[automatically_derived]
impl CalculatorClient {
    /// A client for the process `pid`, with the default deadline of 10 seconds.
    pub fn new(pid: ::core::primitive::u32) -> Self {
        CalculatorClient {
            stub: ::gproc::__private::PidStub::new(
                pid,
                <CalculatorRequest as ::gproc::__private::ServiceRequest>::info(),
            ),
        }
    }
    /// A client for whoever holds `name` (see `gproc::register`), with the
    /// default deadline: looked up at the first call, and again whenever the
    /// holder found last has exited, so it follows a restarted holder. A name
    /// nobody holds fails the call with `gproc::Error::NoSuchName`.
    pub fn by_name(name: impl ::core::convert::Into<::std::string::String>) -> Self {
        CalculatorClient {
            stub: ::gproc::__private::PidStub::by_name(
                name,
                <CalculatorRequest as ::gproc::__private::ServiceRequest>::info(),
            ),
        }
    }
    /// Waits until the process serves this version of the service.
    pub fn wait_served(
        &self,
        timeout: ::core::time::Duration,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<(), ::gproc::__private::RpcError>,
    > + ::core::marker::Send + '_ {
        ::gproc::__private::PidStub::wait_served(&self.stub, timeout)
    }
    /// The PID this client calls; by name, the holder found last (0 before
    /// the first call).
    pub fn pid(&self) -> ::core::primitive::u32 {
        ::gproc::__private::PidStub::pid(&self.stub)
    }
}
#[automatically_derived]
impl<S> CalculatorClient<S>
where
    S: ::gproc::__private::Stub<Req = CalculatorRequest, Resp = CalculatorResponse>,
{
    /// A client calling through `stub`; a server is a stub too, for tests
    /// without processes.
    pub fn from_stub(stub: S) -> Self {
        CalculatorClient { stub }
    }
    /// The same client with another deadline for each call.
    pub fn with_timeout(self, timeout: ::core::time::Duration) -> Self
    where
        S: ::gproc::__private::WithTimeout,
    {
        CalculatorClient {
            stub: ::gproc::__private::WithTimeout::with_timeout(self.stub, timeout),
        }
    }
    /// Adds two numbers.
    pub fn add(
        &self,
        a: i64,
        b: i64,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<i64, ::gproc::__private::RpcError>,
    > + ::core::marker::Send + '_ {
        let __gproc_call = ::gproc::__private::Stub::call(
            &self.stub,
            CalculatorRequest::Add { a, b },
        );
        async move {
            #[allow(unreachable_patterns)]
            match __gproc_call.await? {
                CalculatorResponse::Add(__gproc_value) => {
                    ::core::result::Result::Ok(__gproc_value)
                }
                _ => ::core::result::Result::Err(::gproc::__private::RpcError::Decode),
            }
        }
    }
    pub fn div(
        &self,
        a: f64,
        b: f64,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<
            Result<f64, String>,
            ::gproc::__private::RpcError,
        >,
    > + ::core::marker::Send + '_ {
        let __gproc_call = ::gproc::__private::Stub::call(
            &self.stub,
            CalculatorRequest::Div { a, b },
        );
        async move {
            #[allow(unreachable_patterns)]
            match __gproc_call.await? {
                CalculatorResponse::Div(__gproc_value) => {
                    ::core::result::Result::Ok(__gproc_value)
                }
                _ => ::core::result::Result::Err(::gproc::__private::RpcError::Decode),
            }
        }
    }
    pub fn log(
        &self,
        line: String,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<(), ::gproc::__private::RpcError>,
    > + ::core::marker::Send + '_ {
        let __gproc_call = ::gproc::__private::Stub::call(
            &self.stub,
            CalculatorRequest::Log { line },
        );
        async move {
            #[allow(unreachable_patterns)]
            match __gproc_call.await? {
                CalculatorResponse::Log(__gproc_value) => {
                    ::core::result::Result::Ok(__gproc_value)
                }
                _ => ::core::result::Result::Err(::gproc::__private::RpcError::Decode),
            }
        }
    }
    /// Notes a line, without waiting for the handler.
    ///
    /// One-way: returns once the server has queued the request, without waiting
    /// for the handler.
    pub fn note(
        &self,
        line: String,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<(), ::gproc::__private::RpcError>,
    > + ::core::marker::Send + '_ {
        ::gproc::__private::Stub::call_oneway(
            &self.stub,
            CalculatorRequest::Note { line },
        )
    }
    /// The partial sums of `0..n`, as they are computed.
    pub fn sums(
        &self,
        n: u64,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<gproc::Stream<u64>, ::gproc::__private::RpcError>,
    > + ::core::marker::Send + '_ {
        let __gproc_call = ::gproc::__private::Stub::call(
            &self.stub,
            CalculatorRequest::Sums { n },
        );
        async move {
            #[allow(unreachable_patterns)]
            match __gproc_call.await? {
                CalculatorResponse::Sums(__gproc_value) => {
                    ::core::result::Result::Ok(__gproc_value)
                }
                _ => ::core::result::Result::Err(::gproc::__private::RpcError::Decode),
            }
        }
    }
}
/// Serves [`Calculator`] to other processes: `CalculatorServer::new(service).serve().await`.
pub struct CalculatorServer<T> {
    inner: ::std::sync::Arc<T>,
}
#[automatically_derived]
impl<T> ::core::clone::Clone for CalculatorServer<T> {
    fn clone(&self) -> Self {
        CalculatorServer {
            inner: ::core::clone::Clone::clone(&self.inner),
        }
    }
}
#[automatically_derived]
impl<T> CalculatorServer<T> {
    /// Wraps the implementation to serve.
    pub fn new(service: T) -> Self {
        CalculatorServer {
            inner: ::std::sync::Arc::new(service),
        }
    }
}
#[automatically_derived]
impl<T> CalculatorServer<T>
where
    T: Calculator + ::core::marker::Send + ::core::marker::Sync + 'static,
{
    /// Serves the service until this runtime shuts down. Each call runs in its
    /// own task; a second `serve()` of the same service is an error.
    pub fn serve(
        self,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<(), ::gproc::__private::RpcError>,
    > + ::core::marker::Send
    where
        for<'__gproc> CalculatorRequest: ::gproc::__private::serde::de::DeserializeOwned,
        for<'__gproc> CalculatorResponse: ::gproc::__private::serde::Serialize,
    {
        ::gproc::__private::serve(self)
    }
}
#[automatically_derived]
impl<T> ::gproc::__private::Serve for CalculatorServer<T>
where
    T: Calculator + ::core::marker::Send + ::core::marker::Sync + 'static,
{
    type Req = CalculatorRequest;
    type Resp = CalculatorResponse;
    fn info(&self) -> &'static ::gproc::__private::ServiceInfo {
        <CalculatorRequest as ::gproc::__private::ServiceRequest>::info()
    }
    fn serve(
        &self,
        req: CalculatorRequest,
    ) -> impl ::core::future::Future<
        Output = CalculatorResponse,
    > + ::core::marker::Send {
        let __gproc_inner = ::core::clone::Clone::clone(&self.inner);
        async move {
            match req {
                CalculatorRequest::Add { a, b } => {
                    CalculatorResponse::Add(
                        <T as Calculator>::add(&*__gproc_inner, a, b).await,
                    )
                }
                CalculatorRequest::Div { a, b } => {
                    CalculatorResponse::Div(
                        <T as Calculator>::div(&*__gproc_inner, a, b).await,
                    )
                }
                CalculatorRequest::Log { line } => {
                    CalculatorResponse::Log(
                        <T as Calculator>::log(&*__gproc_inner, line).await,
                    )
                }
                CalculatorRequest::Note { line } => {
                    CalculatorResponse::Note(
                        <T as Calculator>::note(&*__gproc_inner, line).await,
                    )
                }
                CalculatorRequest::Sums { n } => {
                    CalculatorResponse::Sums(
                        <T as Calculator>::sums(&*__gproc_inner, n).await,
                    )
                }
            }
        }
    }
}
const _: () = {
    #[allow(dead_code)]
    fn __gproc_assert_serde() {
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<i64>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<i64>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<i64>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<f64>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<f64>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<Result<f64, String>>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<String>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<()>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<String>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<()>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<u64>::NEW).check();
        }
        {
            #[allow(unused_imports)]
            use ::gproc::__private::{IsSerde as _, NotSerde as _};
            (&&::gproc::__private::SerdeCheck::<u64>::NEW).check();
        }
    }
};
