//! `gproc inspect`: the services of a process, with their methods' signatures, their
//! fingerprints, and a call line for each method.

use std::process::ExitCode;

use gproc::{MethodDescription, ServiceDescription};
use serde_json::{json, Value};

use crate::cli::Options;
use crate::failure::Failure;
use crate::output::{self, DIM, NAME, PID, SERVICE};
use crate::target::Target;

pub async fn run(options: &Options, target: &Target) -> Result<ExitCode, Failure> {
    let pid = target.resolve().await?;
    let services = super::services(pid, options.timeout)
        .await
        .map_err(|e| Failure::rpc(&format!("cannot inspect {target}"), &e, options.timeout))?;
    let names = super::names_by_pid()
        .await?
        .remove(&pid)
        .unwrap_or_default();
    if options.json {
        let list: Vec<Value> = services.iter().map(|s| to_json(target, s)).collect();
        output::json(&json!({"pid": pid, "names": names, "services": list}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let held = if names.is_empty() {
        String::new()
    } else {
        format!(" ({})", output::styled(NAME, names.join(", ")))
    };
    let count = match services.len() {
        0 => "serves nothing".to_owned(),
        1 => "serves 1 service".to_owned(),
        n => format!("serves {n} services"),
    };
    output::line(format!("{}{held} {count}", output::styled(PID, pid)))?;
    for service in &services {
        output::line("")?;
        output::line(format!(
            "{}  {}",
            output::styled(SERVICE, &service.name),
            output::styled(
                DIM,
                format!("fingerprint {}", output::fingerprint(service.fingerprint))
            )
        ))?;
        for method in &service.methods {
            output::line(format!("  {}", method.signature))?;
            output::line(output::styled(
                DIM,
                format!("      {}", call_line(target, service, method)),
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(target: &Target, service: &ServiceDescription) -> Value {
    let methods: Vec<Value> = service
        .methods
        .iter()
        .map(|m| {
            let args: Vec<Value> = m
                .args
                .iter()
                .map(|(name, ty)| json!({"name": name, "type": ty}))
                .collect();
            json!({
                "name": m.name,
                "signature": m.signature,
                "args": args,
                "output": m.output,
                "fallible": m.fallible,
                "oneway": m.oneway,
                "call": call_line(target, service, m),
            })
        })
        .collect();
    json!({
        "name": service.name,
        "fingerprint": output::fingerprint(service.fingerprint),
        "methods": methods,
    })
}

/// A `gproc call` line for `method`, with an example value of each argument's type.
fn call_line(target: &Target, service: &ServiceDescription, method: &MethodDescription) -> String {
    let args: Vec<String> = method.args.iter().map(|(_, ty)| example(ty)).collect();
    let line = format!("gproc call {target} {}.{}", service.name, method.name);
    if args.is_empty() {
        line
    } else {
        format!("{line} '[{}]'", args.join(", "))
    }
}

/// A JSON value of the Rust type written as `ty`: zeros, empty texts and collections,
/// `{}` for the user's own types (whose fields `inspect` cannot see).
fn example(ty: &str) -> String {
    let ty = ty.trim();
    let base = ty
        .split('<')
        .next()
        .unwrap_or(ty)
        .rsplit("::")
        .next()
        .unwrap_or(ty);
    match base {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => "0".into(),
        "f32" | "f64" => "0.0".into(),
        "bool" => "false".into(),
        "String" | "str" | "&str" | "char" | "PathBuf" | "Cow" => "\"\"".into(),
        "Option" | "()" => "null".into(),
        "Vec" | "VecDeque" | "HashSet" | "BTreeSet" | "Bytes" => "[]".into(),
        "HashMap" | "BTreeMap" => "{}".into(),
        _ if ty.starts_with('[') => "[]".into(),
        _ if ty.starts_with('(') => {
            let inner = &ty[1..ty.len().saturating_sub(1).max(1)];
            let parts: Vec<String> = split_top(inner).into_iter().map(example).collect();
            format!("[{}]", parts.join(", "))
        }
        _ => "{}".into(),
    }
}

/// `text` split at its commas outside `<>`, `()` and `[]`.
fn split_top(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0i32, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::example;

    #[test]
    fn examples_are_json_of_the_type() {
        for (ty, json) in [
            ("i64", "0"),
            ("f64", "0.0"),
            ("String", "\"\""),
            ("Option<u8>", "null"),
            ("Vec<String>", "[]"),
            ("std::collections::HashMap<String, u8>", "{}"),
            ("(u32, String)", "[0, \"\"]"),
            ("(Vec<(u8, u8)>, bool)", "[[], false]"),
            ("Order", "{}"),
            ("[u8; 4]", "[]"),
        ] {
            assert_eq!(example(ty), json, "{ty}");
            serde_json::from_str::<serde_json::Value>(json).expect("valid JSON");
        }
    }
}
