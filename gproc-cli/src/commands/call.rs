//! `gproc call`: a typed call with JSON arguments, the reply printed as JSON.

use std::process::ExitCode;

use serde_json::Value;

use crate::cli::Options;
use crate::failure::{Failure, METHOD_ERR};
use crate::output;
use crate::target::Target;

pub async fn run(
    options: &Options,
    target: &Target,
    method: &str,
    args: Option<&str>,
) -> Result<ExitCode, Failure> {
    let Some((service_name, method_name)) = method.rsplit_once('.') else {
        return Err(Failure::new(format!(
            "name the method as Service.method, not {method:?} (`gproc inspect {target}` lists them)"
        )));
    };
    let args: Value = serde_json::from_str(args.unwrap_or("[]")).map_err(|e| {
        Failure::new(format!(
            "the arguments are not JSON ({e}); give them as a JSON array, such as '[1, \"two\"]'"
        ))
    })?;
    if !args.is_array() {
        return Err(Failure::new(
            "the arguments are a JSON array, one value per argument, such as '[1, \"two\"]'",
        ));
    }
    let pid = target.resolve().await?;
    let what = format!("cannot call {service_name}.{method_name} on {target}");
    let services = super::services(pid, options.timeout)
        .await
        .map_err(|e| Failure::rpc(&what, &e, options.timeout))?;
    let Some(service) = services.iter().find(|s| s.name == service_name) else {
        let served: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        let serves = if served.is_empty() {
            "it serves nothing".to_owned()
        } else {
            format!("it serves {}", served.join(", "))
        };
        return Err(Failure::new(format!(
            "{what}: {pid} does not serve {service_name}; {serves}"
        )));
    };
    if service.method(method_name).is_none() {
        let methods: Vec<&str> = service.methods.iter().map(|m| m.name.as_str()).collect();
        return Err(Failure::new(format!(
            "{what}: {service_name} has no method {method_name}; its methods are {}",
            methods.join(", ")
        )));
    }
    let reply = gproc::call_json(pid, service, method_name, &args, options.timeout)
        .await
        .map_err(|e| Failure::rpc(&what, &e, options.timeout))?;
    match reply {
        Ok(value) => {
            output::json(&value)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(value) => {
            output::json(&value)?;
            eprintln!("gproc: {service_name}.{method_name} returned Err (printed above)");
            Ok(ExitCode::from(METHOD_ERR))
        }
    }
}
