//! The JSON call path: a method called by its name with its arguments as a JSON array,
//! answered in JSON. What tools such as the `gproc` command use, knowing a service only
//! from [`introspect`](crate::introspect); Rust clients take the binary path.
//!
//! The request's body is the postcard encoding of `(method, arguments)`, both text; the
//! reply's is `(is_err, value)`, the value as JSON text. Fingerprints, deadlines,
//! cancellation and `ServiceNotServed` are those of the binary path: only the body's
//! encoding differs.

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use super::client::raw_call;
use super::codec::{encode_reply, Kind, Status};
use super::contract::{MethodInfo, RpcError, ServiceDescription, ServiceInfo};
use super::local;
use super::trace::Traced;
use crate::groups::REQUEST_PREFIX;

/// Calls `method` of `service` on `pid` with `args`, a JSON array holding one value per
/// argument in order, and returns its reply as JSON.
///
/// `service` is what [`introspect`](crate::introspect) reported: its fingerprint goes with
/// the request, so a process serving another version answers
/// [`RpcError::SchemaMismatch`], as on the binary path. A method returning a `Result`
/// gives `Ok(Err(e))` for its `Err(e)`; every other reply is `Ok(Ok(value))`. A one-way
/// method is called like any other: the reply (`null`) comes once its handler has run.
///
/// ```no_run
/// # async fn example(pid: u32) -> Result<(), gproc::RpcError> {
/// use std::time::Duration;
///
/// let services = gproc::introspect(pid).await?;
/// let calc = services.iter().find(|s| s.name == "Calculator").expect("served");
/// let args = serde_json::json!([1, 2]);
/// let sum = gproc::call_json(pid, calc, "add", &args, Duration::from_secs(2)).await?;
/// assert_eq!(sum, Ok(serde_json::json!(3)));
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As a typed call ([`RpcError::Transport`], [`RpcError::DeadlineExceeded`],
/// [`RpcError::ServiceNotServed`], [`RpcError::SchemaMismatch`],
/// [`RpcError::HandlerPanicked`]), and [`RpcError::NoSuchMethod`],
/// [`RpcError::BadArguments`] (`args` is not an array, has too many or too few values, or
/// one of the wrong type), [`RpcError::NotJson`] (the reply has no JSON form).
pub async fn call_json(
    pid: u32,
    service: &ServiceDescription,
    method: &str,
    args: &Value,
    timeout: Duration,
) -> Result<Result<Value, Value>, RpcError> {
    let Some(described) = service.method(method) else {
        return Err(RpcError::NoSuchMethod {
            service: service.name.clone(),
            method: method.to_owned(),
        });
    };
    if !args.is_array() {
        return Err(RpcError::BadArguments {
            method: described.signature.clone(),
            why: format!("the arguments are a JSON array, not {}", kind_of(args)),
        });
    }
    let group = format!("{REQUEST_PREFIX}{}", service.name).into();
    let body = (method, args.to_string());
    let mut traced = Traced::call(&service.name, method);
    traced.pid(pid);
    let span = traced.span().clone();
    let key = (service.name.as_str(), service.fingerprint);
    let result = async {
        let (reply, _, _) = raw_call(pid, &group, Kind::Json, key, &body, timeout).await?;
        let (is_err, text) =
            postcard::from_bytes::<(bool, String)>(&reply).map_err(|_| RpcError::Decode)?;
        let value = serde_json::from_str(&text).map_err(|_| RpcError::Decode)?;
        Ok(if is_err { Err(value) } else { Ok(value) })
    }
    .instrument(span)
    .await;
    traced.end_with(&result);
    result
}

/// A JSON value's kind, for an error.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON request that cannot be served: the status to answer and its body.
pub(super) enum Refused {
    NoSuchMethod(String),
    BadArguments(String, String),
}

impl Refused {
    /// The reply that tells the caller.
    pub(super) fn reply(&self, id: u64) -> Bytes {
        match self {
            Refused::NoSuchMethod(method) => encode_reply(id, Status::NoSuchMethod, method),
            Refused::BadArguments(method, why) => {
                encode_reply(id, Status::BadArguments, &(method, why))
            }
        }
    }
}

/// Reads a JSON request's body into the service's request enum: the method by its name,
/// its arguments from the array, as the macro's `#[serde(rename)]` of each variant lets
/// serde_json read `{"method": [args]}`.
pub(super) fn decode_request<Req: DeserializeOwned>(
    info: &'static ServiceInfo,
    body: &[u8],
) -> Result<(Req, &'static MethodInfo), Refused> {
    let bad = |method: &str, why: String| Refused::BadArguments(method.to_owned(), why);
    let (method, args) = postcard::from_bytes::<(&str, &str)>(body)
        .map_err(|_| bad("?", "the request's body is not (method, arguments)".into()))?;
    let Some(m) = info.methods.iter().find(|m| m.name == method) else {
        return Err(Refused::NoSuchMethod(method.to_owned()));
    };
    let args: Value =
        serde_json::from_str(args).map_err(|e| bad(m.signature, format!("not JSON: {e}")))?;
    let Value::Array(values) = args else {
        return Err(bad(
            m.signature,
            format!("the arguments are a JSON array, not {}", kind_of(&args)),
        ));
    };
    if values.len() != m.args.len() {
        let expected: Vec<String> = m.args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        return Err(bad(
            m.signature,
            format!(
                "{} takes {} argument{} [{}], the call gave {}",
                m.name,
                m.args.len(),
                if m.args.len() == 1 { "" } else { "s" },
                expected.join(", "),
                values.len()
            ),
        ));
    }
    // From text: serde_json reads a struct variant from an array only there.
    let request = format!(
        "{{{}:{}}}",
        Value::String(m.name.to_owned()),
        Value::Array(values)
    );
    let req = serde_json::from_str(&request).map_err(|e| {
        // A descriptor refuses to come from JSON; its note is not needed here.
        local::take_refusal();
        // The position is in the text made here, not in the caller's.
        let why = e.to_string();
        let why = match why.rsplit_once(" at line ") {
            Some((why, _)) if e.line() > 0 => why.to_owned(),
            _ => why,
        };
        bad(m.signature, why)
    })?;
    Ok((req, m))
}

/// The reply to a JSON call of `method`: `resp`'s value as JSON, an `Err` of a method
/// returning a `Result` marked as such.
pub(super) fn encode_response<Resp: Serialize>(id: u64, method: &MethodInfo, resp: &Resp) -> Bytes {
    let value = match serde_json::to_value(resp) {
        Ok(value) => value,
        Err(e) => {
            local::take_refusal();
            return encode_reply(id, Status::NotJson, &e.to_string());
        }
    };
    // The response enum is `{"method": value}`.
    let value = match value {
        Value::Object(map) if map.len() == 1 => map.into_iter().next().map(|(_, v)| v),
        _ => None,
    }
    .unwrap_or(Value::Null);
    let (is_err, value) = match value {
        Value::Object(mut map) if method.fallible && map.len() == 1 => {
            match (map.remove("Ok"), map.remove("Err")) {
                (Some(ok), None) => (false, ok),
                (None, Some(err)) => (true, err),
                _ => (false, Value::Object(map)),
            }
        }
        value => (false, value),
    };
    encode_reply(id, Status::Ok, &(is_err, value.to_string()))
}
