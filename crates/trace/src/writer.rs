//! Writes a trace's parts as faasload's YAML format (what `trace synth` and `trace
//! convert` produce): users, functions, explicit streams with exact instants (`at`, to
//! the ns), arrival-process streams with their specs, and the `counts:` reference of
//! per-bin streams (whose rows the converters write to the counts file themselves).
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use super::counts::CountLaw;
use super::error::TraceError;
use super::model::Function;
use super::schedule::{Parts, StreamKind};
use super::spec::{InputSpec, ParamSpec};

/// The `counts:` section of a trace.
#[derive(Clone, Debug, Serialize)]
pub struct CountsRef {
    pub file: String,
    pub bin: f64,
    #[serde(serialize_with = "law_str")]
    pub law: CountLaw,
    pub start: f64,
}

fn law_str<S: serde::Serializer>(l: &CountLaw, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&l.to_string())
}

#[derive(Serialize)]
struct OutTrace<'a> {
    seed: u64,
    users: Vec<OutUser<'a>>,
    functions: Vec<OutFunction<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    streams: Vec<OutStream<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<OutCounts<'a>>,
}

/// The `counts:` section with the parameter specs every per-bin stream draws.
#[derive(Serialize)]
struct OutCounts<'a> {
    #[serde(flatten)]
    reference: &'a CountsRef,
    #[serde(skip_serializing_if = "Map::is_empty")]
    parameters: Map<String, Value>,
}

#[derive(Serialize)]
struct OutUser<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_host: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    create: bool,
}

#[derive(Serialize)]
struct OutFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
    kind: &'a str,
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    main: Option<&'a str>,
    memory: u32,
    timeout: u32,
    #[serde(skip_serializing_if = "Map::is_empty")]
    parameters: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_kind: Option<&'a str>,
}

#[derive(Serialize)]
struct OutStream<'a> {
    user: &'a str,
    function: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tsv_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    distribution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<f64>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    parameters: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invocations: Option<Vec<OutInvocation<'a>>>,
}

#[derive(Serialize)]
struct OutInvocation<'a> {
    at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a str>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    parameters: &'a Map<String, Value>,
}

/// A code path as a trace names it: relative to the repository's `functions/` when it
/// is there (portable), else as resolved.
pub(crate) fn code_name(f: &Function) -> String {
    let s = f.code.display().to_string();
    match s.rfind("/functions/") {
        Some(i) => s[i + "/functions/".len()..].to_string(),
        None => s,
    }
}

/// A spec as the YAML format writes it.
pub(crate) fn spec_value(p: &ParamSpec) -> Value {
    match p {
        ParamSpec::Fixed(v) => v.clone(),
        ParamSpec::RangeInt { min, max } => {
            serde_json::json!({"range_int": {"min": min, "max": max}})
        }
        ParamSpec::RangeFloat { min, max } => {
            serde_json::json!({"range_float": {"min": min, "max": max}})
        }
        ParamSpec::Ensemble(v) => serde_json::json!({"ensemble": {"values": v}}),
    }
}

fn inputs_value(i: &InputSpec) -> Value {
    match i {
        InputSpec::List(v) => serde_json::json!(v),
        InputSpec::Numbered { kind, ext, count } => {
            serde_json::json!({"kind": kind, "ext": ext, "count": count})
        }
    }
}

/// The YAML text of `parts` (per-bin streams are referenced through `counts`).
pub(crate) fn to_yaml(parts: &Parts, counts: Option<&CountsRef>) -> Result<String, TraceError> {
    let mut streams = Vec::new();
    // Per-bin streams share one `counts:` section, so they must share their parameters.
    let mut counts_params: Option<&Vec<(String, ParamSpec)>> = None;
    for s in &parts.streams {
        let user = &parts.users[s.user as usize].name;
        let function = &parts.functions[s.function as usize].name;
        let mut out = OutStream {
            user,
            function,
            tsv_name: s.label.as_deref(),
            seed: (s.seed != parts.seed).then_some(s.seed),
            rate: None,
            distribution: None,
            duration: None,
            start: None,
            parameters: s
                .params
                .iter()
                .map(|(k, v)| (k.clone(), spec_value(v)))
                .collect(),
            inputs: s.inputs.as_ref().map(inputs_value),
            invocations: None,
        };
        match &s.kind {
            StreamKind::Explicit(v) => {
                out.invocations = Some(
                    v.iter()
                        .map(|e| OutInvocation {
                            at: e.at_ns as f64 / 1e9,
                            input: e.input.as_deref(),
                            parameters: &e.params,
                        })
                        .collect(),
                );
            }
            StreamKind::Arrival(a) => {
                out.rate = Some(a.rate);
                out.distribution = Some(a.law.to_string());
                out.duration = Some(a.duration_s);
                out.start = (a.start_s != 0.0).then_some(a.start_s);
            }
            StreamKind::Counts(_) => {
                if counts.is_none() {
                    return Err(TraceError::file(
                        &parts.origin,
                        "per-bin streams need a counts file to be written",
                    ));
                }
                match counts_params {
                    Some(p) if *p != s.params => {
                        return Err(TraceError::file(
                            &parts.origin,
                            "per-bin streams with different parameters cannot share a counts file",
                        ));
                    }
                    _ => counts_params = Some(&s.params),
                }
                continue;
            }
        }
        streams.push(out);
    }
    let doc = OutTrace {
        seed: parts.seed,
        users: parts
            .users
            .iter()
            .map(|u| OutUser {
                name: &u.name,
                namespace: (u.namespace != u.name).then_some(u.namespace.as_str()),
                auth: u.auth.as_deref(),
                api_host: u.api_host.as_deref(),
                create: u.create,
            })
            .collect(),
        functions: parts.functions.iter().map(out_function).collect(),
        streams,
        counts: counts.map(|reference| OutCounts {
            reference,
            parameters: counts_params
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), spec_value(v)))
                .collect(),
        }),
    };
    yaml_serde::to_string(&doc).map_err(|e| TraceError::file(&parts.origin, e.to_string()))
}

fn out_function(f: &Function) -> OutFunction<'_> {
    OutFunction {
        name: &f.name,
        action: (f.action != f.name).then_some(f.action.as_str()),
        kind: &f.kind,
        code: code_name(f),
        main: f.main.as_deref(),
        memory: f.memory_mb,
        timeout: f.timeout_ms,
        parameters: &f.parameters,
        input_kind: f.input_kind.as_deref(),
    }
}

/// Writes `parts` as a YAML trace file, with a header comment.
pub fn write_yaml(
    parts: &Parts,
    counts: Option<&CountsRef>,
    path: &Path,
    header: &str,
) -> Result<(), TraceError> {
    let text = to_yaml(parts, counts)?;
    let io = |e: std::io::Error| TraceError::file(path.display().to_string(), e.to_string());
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for l in header.lines() {
        writeln!(f, "# {l}").map_err(io)?;
    }
    f.write_all(text.as_bytes()).map_err(io)?;
    f.flush().map_err(io)
}
