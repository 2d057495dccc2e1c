//! faasload's YAML trace format: users, functions, and per (user, function) streams of
//! explicit invocations or arrival processes, validated as a whole before anything is
//! sent; every defect is reported as `file:line:col: message`.
//!
//! ```yaml
//! seed: 19940503                 # optional (default 19940503)
//! users:
//!   - {name: alice, create: true}                     # namespace defaults to the name
//!   - {name: bob, namespace: bob, auth: "uuid:key", api_host: "https://ow.example"}
//! functions:
//!   - name: hello                 # action defaults to the name
//!     kind: python:3
//!     code: python/hello.py       # beside the trace, else under the repository's functions/
//!     memory: 128                 # MB (default 256)
//!     timeout: 60000              # ms (default 60000)
//!     parameters: {name: world}   # default parameters of the action
//!     input_kind: image           # optional
//! streams:
//!   - user: alice
//!     function: hello
//!     invocations:                # explicit: `at` s from the start, or `wait` s since the previous
//!       - {at: 0, parameters: {name: x}}
//!       - {wait: 0.5, input: image/3.jpg}
//!   - user: bob
//!     function: hello
//!     rate: 2                     # per second, or mean_iat: 0.5 (seconds)
//!     distribution: periodic      # periodic | exponential (default) | uniform
//!     duration: 60                # seconds
//!     start: 5                    # offset (seconds, default 0; also shifts explicit streams)
//!     seed: 7                     # optional, replaces the trace's seed for this stream
//!     parameters:                 # per invocation: fixed values or specs
//!       sigma: {range_float: {min: 0.3, max: 100}}
//!       n: {range_int: {min: 1, max: 5}}
//!       angle: {ensemble: {values: [90, 180, 270]}}
//!     inputs: {kind: image, count: 20}   # image/1.jpg ... image/20.jpg, cycled; or a list
//! ```
use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::arrival::{Arrival, Law};
use super::counts::{BinCounts, CountLaw, Counts};
use super::counts_file::read_rows;
use super::error::{Errors, TraceError};
use super::model::{Function, Trace, User};
use super::resolve::resolve_code;
use super::schedule::{Explicit, Parts, Stream, StreamKind};
use super::seed::DEFAULT_SEED;
use super::spec::{InputSpec, ParamSpec, default_ext};
use super::yaml_pos::{YPath, locate};

/// The longest span a trace may cover (seconds from the start): about 115 days.
pub(crate) const MAX_SPAN_S: f64 = 1e7;

const DEFAULT_MEMORY_MB: u32 = 256;
const DEFAULT_TIMEOUT_MS: u32 = 60_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrace {
    seed: Option<u64>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    functions: Vec<RawFunction>,
    #[serde(default)]
    streams: Vec<RawStream>,
    counts: Option<RawCounts>,
}

/// `counts: {file, bin, law, start, parameters}`: streams from a counts file (see
/// `counts_file`); `parameters` are drawn per invocation for every one of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounts {
    file: String,
    bin: Option<f64>,
    law: Option<String>,
    start: Option<f64>,
    #[serde(default)]
    parameters: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    namespace: Option<String>,
    auth: Option<String>,
    api_host: Option<String>,
    #[serde(default)]
    create: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    name: String,
    action: Option<String>,
    kind: String,
    code: String,
    main: Option<String>,
    memory: Option<u32>,
    timeout: Option<u32>,
    #[serde(default)]
    parameters: Map<String, Value>,
    input_kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    user: String,
    function: String,
    /// The original FaaSLoad file name this stream came from (kept for a lossless
    /// write-back).
    tsv_name: Option<String>,
    invocations: Option<Vec<RawInvocation>>,
    rate: Option<f64>,
    mean_iat: Option<f64>,
    distribution: Option<String>,
    duration: Option<f64>,
    start: Option<f64>,
    seed: Option<u64>,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvocation {
    at: Option<f64>,
    wait: Option<f64>,
    input: Option<String>,
    #[serde(default)]
    parameters: Map<String, Value>,
}

/// Semantic defects, by path, located in the text at the end.
#[derive(Default)]
struct Defects(Vec<(YPath, String)>);

impl Defects {
    fn add(&mut self, p: YPath, msg: impl Into<String>) {
        if self.0.len() < super::error::MAX_ERRORS {
            self.0.push((p, msg.into()));
        }
    }

    /// Checks a time or rate: finite and >= 0 (> 0 when `positive`).
    fn number(&mut self, p: YPath, what: &str, v: f64, positive: bool) -> bool {
        if !v.is_finite() {
            self.add(p, format!("{what} must be a finite number, not {v}"));
            false
        } else if v < 0.0 || (positive && v == 0.0) {
            let need = if positive { "> 0" } else { ">= 0" };
            self.add(p, format!("{what} must be {need}, not {v}"));
            false
        } else {
            true
        }
    }
}

/// Reads and validates a YAML trace file.
pub fn load_yaml(path: impl AsRef<Path>) -> Result<Trace, TraceError> {
    Ok(load_yaml_parts(path)?.into_trace())
}

/// Parses and validates a YAML trace held in `text`; `file` names it in messages and
/// relative code paths are resolved from `base`.
#[cfg(test)]
pub(crate) fn parse_yaml(text: &str, file: &str, base: &Path) -> Result<Trace, TraceError> {
    Ok(parse_yaml_parts(text, file, base)?.into_trace())
}

/// Reads and validates a YAML trace file into its parts.
pub fn load_yaml_parts(path: impl AsRef<Path>) -> Result<Parts, TraceError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|e| TraceError::file(path.display().to_string(), format!("cannot read: {e}")))?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    parse_yaml_parts(&text, &path.display().to_string(), base)
}

/// Parses and validates a YAML trace into its parts.
pub(crate) fn parse_yaml_parts(text: &str, file: &str, base: &Path) -> Result<Parts, TraceError> {
    let raw: RawTrace = yaml_serde::from_str(text).map_err(|e| syntax_error(file, &e))?;
    let mut d = Defects::default();
    let root = YPath::root();
    let seed = raw.seed.unwrap_or(DEFAULT_SEED);

    let mut user_ix: HashMap<&str, u32> = HashMap::new();
    let mut users = Vec::new();
    for (i, u) in raw.users.iter().enumerate() {
        let p = root.k("users").i(i);
        if u.name.is_empty() {
            d.add(p.k("name"), "empty user name");
        } else if user_ix.insert(&u.name, i as u32).is_some() {
            d.add(p.k("name"), format!("duplicate user name '{}'", u.name));
        }
        if let Some(a) = &u.auth
            && !matches!(a.split_once(':'), Some((id, key)) if !id.is_empty() && !key.is_empty())
        {
            d.add(p.k("auth"), "auth must be 'uuid:key'");
        }
        if let Some(h) = &u.api_host
            && !(h.starts_with("http://") || h.starts_with("https://"))
        {
            d.add(
                p.k("api_host"),
                "api_host must be an http:// or https:// URL",
            );
        }
        users.push(User {
            name: u.name.clone(),
            namespace: u.namespace.clone().unwrap_or_else(|| u.name.clone()),
            auth: u.auth.clone(),
            api_host: u.api_host.clone(),
            create: u.create,
        });
    }

    let mut function_ix: HashMap<&str, u32> = HashMap::new();
    let mut functions = Vec::new();
    for (i, f) in raw.functions.iter().enumerate() {
        let p = root.k("functions").i(i);
        if f.name.is_empty() {
            d.add(p.k("name"), "empty function name");
        } else if function_ix.insert(&f.name, i as u32).is_some() {
            d.add(p.k("name"), format!("duplicate function name '{}'", f.name));
        }
        if f.kind.is_empty() {
            d.add(p.k("kind"), "empty kind");
        }
        let memory_mb = f.memory.unwrap_or(DEFAULT_MEMORY_MB);
        if memory_mb == 0 {
            d.add(p.k("memory"), "memory (MB) must be > 0");
        }
        let timeout_ms = f.timeout.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 {
            d.add(p.k("timeout"), "timeout (ms) must be > 0");
        }
        let code = match resolve_code(&f.code, base) {
            Ok(c) => c,
            Err(e) => {
                d.add(p.k("code"), e);
                Path::new(&f.code).to_path_buf()
            }
        };
        functions.push(Function {
            name: f.name.clone(),
            action: f.action.clone().unwrap_or_else(|| f.name.clone()),
            kind: f.kind.clone(),
            code,
            main: f.main.clone(),
            memory_mb,
            timeout_ms,
            parameters: f.parameters.clone(),
            input_kind: f.input_kind.clone(),
        });
    }

    let mut per_pair: HashMap<(u32, u32), u32> = HashMap::new();
    let mut streams = Vec::new();
    for (i, s) in raw.streams.iter().enumerate() {
        let p = root.k("streams").i(i);
        let user = user_ix.get(s.user.as_str()).copied();
        if user.is_none() {
            d.add(p.k("user"), format!("unknown user '{}'", s.user));
        }
        let function = function_ix.get(s.function.as_str()).copied();
        if function.is_none() {
            d.add(
                p.k("function"),
                format!("unknown function '{}'", s.function),
            );
        }
        let input_kind = function.and_then(|f| functions[f as usize].input_kind.clone());
        if let Some(built) = stream(&mut d, &p, s, seed, input_kind.as_deref())
            && let (Some(user), Some(function)) = (user, function)
        {
            let n = per_pair.entry((user, function)).or_insert(0);
            streams.push(Stream {
                user,
                function,
                pair_index: *n,
                label: s.tsv_name.clone(),
                ..built
            });
            *n += 1;
        }
    }

    let mut file_errors = Errors::default();
    if let Some(c) = &raw.counts {
        counts_streams(
            &mut d,
            &mut file_errors,
            c,
            base,
            seed,
            (&user_ix, &function_ix),
            &mut per_pair,
            &mut streams,
        );
    }

    if !d.0.is_empty() || !file_errors.0.is_empty() {
        let mut errors = Errors::default();
        for (path, msg) in d.0 {
            let (line, col) = locate(text, &path);
            errors.push(TraceError::at(file, line, col, msg));
        }
        for e in file_errors.0 {
            errors.push(e);
        }
        return Err(errors.into_error());
    }
    Ok(Parts {
        origin: file.to_string(),
        users,
        functions,
        seed,
        streams,
    })
}

/// The streams of a `counts:` file: one per row, naming a user and function of the trace.
#[expect(
    clippy::too_many_arguments,
    reason = "the parser's state, threaded through one step of it"
)]
fn counts_streams(
    d: &mut Defects,
    file_errors: &mut Errors,
    c: &RawCounts,
    base: &Path,
    seed: u64,
    (user_ix, function_ix): (&HashMap<&str, u32>, &HashMap<&str, u32>),
    per_pair: &mut HashMap<(u32, u32), u32>,
    streams: &mut Vec<Stream>,
) {
    let p = YPath::root().k("counts");
    let bin_s = c.bin.unwrap_or(60.0);
    let start_s = c.start.unwrap_or(0.0);
    let ok_bin = d.number(p.k("bin"), "bin", bin_s, true);
    let ok_start = d.number(p.k("start"), "start", start_s, false);
    let law = match c.law.as_deref().unwrap_or("poisson").parse::<CountLaw>() {
        Ok(l) => Some(l),
        Err(e) => {
            d.add(p.k("law"), e);
            None
        }
    };
    let params = param_specs(d, &p.k("parameters"), &c.parameters);
    let path = base.join(&c.file);
    let label = path.display().to_string();
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            d.add(p.k("file"), format!("cannot open counts file {label}: {e}"));
            return;
        }
    };
    let (Some(law), true, true) = (law, ok_bin, ok_start) else {
        return;
    };
    let bin_ns = (bin_s * 1e9).round() as u64;
    let start_ns = (start_s * 1e9).round() as u64;
    let mut errors = Errors::default();
    let read = read_rows(std::io::BufReader::new(f), &label, |row| {
        let user = user_ix.get(row.user.as_str()).copied();
        let function = function_ix.get(row.function.as_str()).copied();
        let (Some(user), Some(function)) = (user, function) else {
            let what = if user.is_none() {
                format!("unknown user '{}'", row.user)
            } else {
                format!("unknown function '{}'", row.function)
            };
            errors.push(TraceError::at(&label, row.line, 1, what));
            return;
        };
        let last = row.counts.last().map_or(0, |&(b, _)| u64::from(b) + 1);
        if (start_ns + last * bin_ns) as f64 / 1e9 > MAX_SPAN_S {
            errors.push(TraceError::at(
                &label,
                row.line,
                1,
                format!("bin {last} is past the longest trace span ({MAX_SPAN_S} s)"),
            ));
            return;
        }
        let n = per_pair.entry((user, function)).or_insert(0);
        streams.push(Stream {
            user,
            function,
            seed,
            pair_index: *n,
            label: None,
            kind: StreamKind::Counts(BinCounts {
                law,
                bin_ns,
                start_ns,
                counts: Counts::from_pairs(row.counts),
            }),
            params: params.clone(),
            inputs: None,
        });
        *n += 1;
    });
    if let Err(e) = read {
        for x in e.errors() {
            errors.push(clone_err(x));
        }
    }
    for e in errors.0 {
        file_errors.push(e);
    }
}

fn clone_err(e: &TraceError) -> TraceError {
    match e {
        TraceError::At {
            file,
            line,
            col,
            message,
        } => TraceError::at(file, *line, *col, message),
        other => TraceError::file("", other.to_string()),
    }
}

/// One stream's times, parameters and inputs (user and function filled by the caller).
fn stream(
    d: &mut Defects,
    p: &YPath,
    s: &RawStream,
    seed: u64,
    input_kind: Option<&str>,
) -> Option<Stream> {
    let before = d.0.len();
    let start_s = match s.start {
        Some(v) if d.number(p.k("start"), "start", v, false) => v,
        _ => 0.0,
    };
    let arrival = s.rate.is_some() || s.mean_iat.is_some();
    let kind = match (&s.invocations, arrival) {
        (Some(_), true) => {
            d.add(
                p.clone(),
                "a stream has either invocations or an arrival process (rate/mean_iat), not both",
            );
            None
        }
        (None, false) => {
            d.add(
                p.clone(),
                "a stream needs invocations or an arrival process (rate or mean_iat)",
            );
            None
        }
        (Some(list), false) => {
            for (key, present) in [
                ("distribution", s.distribution.is_some()),
                ("duration", s.duration.is_some()),
            ] {
                if present {
                    d.add(
                        p.k(key),
                        format!("{key} applies to arrival processes (rate or mean_iat) only"),
                    );
                }
            }
            explicit(d, &p.k("invocations"), list, start_s).map(StreamKind::Explicit)
        }
        (None, true) => arrival_process(d, p, s, start_s).map(StreamKind::Arrival),
    };
    let params = param_specs(d, &p.k("parameters"), &s.parameters);
    let inputs = match &s.inputs {
        None => None,
        Some(v) => inputs(d, &p.k("inputs"), v, input_kind),
    };
    if d.0.len() > before {
        return None;
    }
    Some(Stream {
        user: 0,
        function: 0,
        seed: s.seed.unwrap_or(seed),
        pair_index: 0,
        label: None,
        kind: kind?,
        params,
        inputs,
    })
}

/// The parameter specs of a `parameters:` map at `p` (defects located under it).
fn param_specs(d: &mut Defects, p: &YPath, raw: &Map<String, Value>) -> Vec<(String, ParamSpec)> {
    let mut params = Vec::new();
    for (name, v) in raw {
        match ParamSpec::from_value(v) {
            Ok(spec) => params.push((name.clone(), spec)),
            Err(e) => {
                let mut at = p.k(name);
                for seg in &e.path {
                    at = at.k(seg);
                }
                d.add(at, format!("parameter '{name}': {}", e.message));
            }
        }
    }
    params
}

fn explicit(
    d: &mut Defects,
    p: &YPath,
    list: &[RawInvocation],
    start_s: f64,
) -> Option<Vec<Explicit>> {
    let mut out = Vec::with_capacity(list.len());
    let mut prev = start_s;
    let mut ok = true;
    for (j, inv) in list.iter().enumerate() {
        let q = p.i(j);
        let t = match (inv.at, inv.wait) {
            (Some(_), Some(_)) => {
                d.add(q.k("wait"), "an invocation has either at or wait, not both");
                None
            }
            (None, None) => {
                d.add(
                    q.clone(),
                    "an invocation needs at (s from the start) or wait (s since the previous)",
                );
                None
            }
            (Some(at), None) => d.number(q.k("at"), "at", at, false).then_some(start_s + at),
            (None, Some(w)) => d.number(q.k("wait"), "wait", w, false).then_some(prev + w),
        };
        let Some(t) = t else {
            ok = false;
            continue;
        };
        if t > MAX_SPAN_S {
            let key = if inv.at.is_some() { "at" } else { "wait" };
            d.add(
                q.k(key),
                format!("invocation at {t} s is past the longest trace span ({MAX_SPAN_S} s)"),
            );
            ok = false;
            continue;
        }
        prev = t;
        out.push(Explicit {
            at_ns: (t * 1e9).round() as u64,
            input: inv.input.clone(),
            params: inv.parameters.clone(),
        });
    }
    ok.then_some(out)
}

fn arrival_process(d: &mut Defects, p: &YPath, s: &RawStream, start_s: f64) -> Option<Arrival> {
    let rate = match (s.rate, s.mean_iat) {
        (Some(_), Some(_)) => {
            d.add(p.k("mean_iat"), "give rate or mean_iat, not both");
            None
        }
        (Some(r), None) => d.number(p.k("rate"), "rate", r, true).then_some(r),
        (None, Some(m)) => d
            .number(p.k("mean_iat"), "mean_iat", m, true)
            .then_some(1.0 / m),
        (None, None) => None,
    };
    let duration = match s.duration {
        None => {
            d.add(p.clone(), "an arrival process needs a duration (seconds)");
            None
        }
        Some(v) => d.number(p.k("duration"), "duration", v, false).then_some(v),
    };
    let law = match s.distribution.as_deref() {
        None => Some(Law::Exponential),
        Some(name) => match name.parse::<Law>() {
            Ok(l) => Some(l),
            Err(e) => {
                d.add(p.k("distribution"), e);
                None
            }
        },
    };
    let (rate, duration_s, law) = (rate?, duration?, law?);
    if !rate.is_finite() {
        d.add(p.k("mean_iat"), "mean_iat is too small");
        return None;
    }
    if start_s + duration_s > MAX_SPAN_S {
        d.add(
            p.k("duration"),
            format!("start + duration is past the longest trace span ({MAX_SPAN_S} s)"),
        );
        return None;
    }
    Some(Arrival {
        law,
        rate,
        duration_s,
        start_s,
    })
}

fn inputs(d: &mut Defects, p: &YPath, v: &Value, function_kind: Option<&str>) -> Option<InputSpec> {
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                d.add(p.clone(), "empty inputs list");
                return None;
            }
            let mut names = Vec::with_capacity(items.len());
            for (j, x) in items.iter().enumerate() {
                match x {
                    Value::String(s) => names.push(s.clone()),
                    _ => d.add(p.i(j), "an input is an object name (a string)"),
                }
            }
            (names.len() == items.len()).then_some(InputSpec::List(names))
        }
        Value::Object(m) => {
            let before = d.0.len();
            for k in m.keys() {
                if !matches!(k.as_str(), "kind" | "count" | "ext") {
                    d.add(
                        p.k(k),
                        format!("unknown field '{k}' (expected kind, count, ext)"),
                    );
                }
            }
            let kind = match m.get("kind") {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(_) => {
                    d.add(p.k("kind"), "kind must be a non-empty string");
                    None
                }
                None => match function_kind {
                    Some(k) => Some(k.to_string()),
                    None => {
                        d.add(
                            p.clone(),
                            "inputs need a kind (here or the function's input_kind)",
                        );
                        None
                    }
                },
            };
            let count = match m.get("count").map(|c| c.as_u64()) {
                Some(Some(c)) if c > 0 => Some(c),
                Some(_) => {
                    d.add(p.k("count"), "count must be an integer > 0");
                    None
                }
                None => {
                    d.add(p.clone(), "inputs need a count");
                    None
                }
            };
            let ext = match (m.get("ext"), kind.as_deref().and_then(default_ext)) {
                (Some(Value::String(e)), _) if !e.is_empty() => Some(e.clone()),
                (Some(_), _) => {
                    d.add(p.k("ext"), "ext must be a non-empty string");
                    None
                }
                (None, Some(e)) => Some(e.to_string()),
                (None, None) => {
                    if let Some(k) = &kind {
                        d.add(
                            p.clone(),
                            format!("no default extension for input kind '{k}': give ext"),
                        );
                    }
                    None
                }
            };
            if d.0.len() > before {
                return None;
            }
            Some(InputSpec::Numbered {
                kind: kind?,
                ext: ext?,
                count: count?,
            })
        }
        _ => {
            d.add(
                p.clone(),
                "inputs is a list of object names or {kind, count}",
            );
            None
        }
    }
}

/// A YAML syntax or type error, as `file:line:col: message`.
pub fn syntax_error(file: &str, e: &yaml_serde::Error) -> TraceError {
    let msg = e.to_string();
    match e.location() {
        Some(l) => {
            let msg = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            TraceError::at(file, l.line(), l.column(), msg)
        }
        None => TraceError::file(file, msg),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Invocation;

    fn parse(text: &str) -> Result<Trace, TraceError> {
        parse_yaml(text, "t.yaml", Path::new("."))
    }

    const GOOD: &str = "\
seed: 42
users:
  - {name: alice, create: true}
  - {name: bob, namespace: ns-bob, auth: 'id:key', api_host: 'http://127.0.0.1:3233'}
functions:
  - {name: hello, kind: 'python:3', code: python/hello.py, memory: 128, parameters: {name: w}}
  - {name: burn, action: burn-act, kind: 'python:3', code: python/burn.py, timeout: 5000, input_kind: image}
streams:
  - user: alice
    function: hello
    start: 1
    invocations:
      - {at: 0, parameters: {name: x}}
      - {wait: 0.5, input: in/1}
      - {at: 0.25}
  - user: bob
    function: burn
    rate: 10
    distribution: periodic
    duration: 10
    parameters:
      ms: {range_int: {min: 10, max: 20}}
      mb: {ensemble: {values: [16, 32]}}
      fixed: 3
    inputs: {count: 4}
  - user: alice
    function: burn
    mean_iat: 0.5
    duration: 20
";

    #[test]
    fn a_good_trace_loads_with_its_defaults() {
        let t = parse(GOOD).unwrap();
        assert_eq!(t.seed, 42);
        assert_eq!(t.users[0].namespace, "alice");
        assert!(t.users[0].create);
        assert_eq!(t.users[1].namespace, "ns-bob");
        assert_eq!(t.users[1].auth.as_deref(), Some("id:key"));
        assert_eq!(t.functions[0].action, "hello");
        assert_eq!(t.functions[0].memory_mb, 128);
        assert_eq!(t.functions[0].timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(t.functions[0].parameters["name"], json!("w"));
        assert!(t.functions[0].code.ends_with("functions/python/hello.py"));
        assert_eq!(t.functions[1].action, "burn-act");
        assert_eq!(t.functions[1].memory_mb, DEFAULT_MEMORY_MB);
        assert_eq!(t.pairs, [(0, 0), (1, 1), (0, 1)]);
        let v: Vec<Invocation> = t.invocations().collect();
        assert_eq!(t.total, Some(v.len() as u64));
        let alice: Vec<&Invocation> = v
            .iter()
            .filter(|x| (x.user, x.function) == (0, 0))
            .collect();
        let at: Vec<u64> = alice.iter().map(|x| x.at_ns).collect();
        // start 1 s: at 0 -> 1 s, wait 0.5 -> 1.5 s, at 0.25 -> 1.25 s (sorted).
        assert_eq!(at, [1_000_000_000, 1_250_000_000, 1_500_000_000]);
        assert_eq!(alice[0].params["name"], json!("x"));
        assert_eq!(alice[2].input.as_deref(), Some("in/1"));
        let bob: Vec<&Invocation> = v.iter().filter(|x| x.user == 1).collect();
        assert_eq!(bob.len(), 100);
        assert_eq!(bob[0].input.as_deref(), Some("image/1.jpg"));
        assert_eq!(bob[5].input.as_deref(), Some("image/2.jpg"));
        for b in &bob {
            let ms = b.params["ms"].as_i64().unwrap();
            assert!((10..=20).contains(&ms));
            assert!(b.params["mb"] == json!(16) || b.params["mb"] == json!(32));
            assert_eq!(b.params["fixed"], json!(3));
        }
        // mean_iat 0.5 s over 20 s, exponential by default: about 40.
        let n = v.iter().filter(|x| (x.user, x.function) == (0, 1)).count();
        assert!((15..=70).contains(&n), "{n}");
    }

    #[test]
    fn same_seed_same_schedule_and_seeds_matter() {
        let a: Vec<Invocation> = parse(GOOD).unwrap().invocations().collect();
        let b: Vec<Invocation> = parse(GOOD).unwrap().invocations().collect();
        assert_eq!(a, b);
        let c: Vec<Invocation> = parse(&GOOD.replace("seed: 42", "seed: 43"))
            .unwrap()
            .invocations()
            .collect();
        assert_ne!(a, c);
        // A stream's own seed changes that stream only.
        let d: Vec<Invocation> =
            parse(&GOOD.replace("    duration: 20\n", "    duration: 20\n    seed: 9\n"))
                .unwrap()
                .invocations()
                .collect();
        let pick = |v: &[Invocation], pair: (u32, u32)| -> Vec<(u64, Map<String, Value>)> {
            v.iter()
                .filter(|x| (x.user, x.function) == pair)
                .map(|x| (x.at_ns, x.params.clone()))
                .collect()
        };
        assert_eq!(pick(&a, (1, 1)), pick(&d, (1, 1)));
        assert_ne!(pick(&a, (0, 1)), pick(&d, (0, 1)));
    }

    #[test]
    fn adding_a_user_leaves_other_streams_alone() {
        let more = GOOD
            .replace("users:\n", "users:\n  - {name: carol, create: true}\n")
            .replace(
                "streams:\n",
                "streams:\n  - {user: carol, function: burn, rate: 3, duration: 10}\n",
            );
        let a: Vec<Invocation> = parse(GOOD).unwrap().invocations().collect();
        let b = parse(&more).unwrap();
        let carol = 0;
        let b: Vec<(u64, Map<String, Value>, Option<String>)> = b
            .invocations()
            .filter(|x| x.user != carol)
            .map(|x| (x.at_ns, x.params, x.input))
            .collect();
        let a: Vec<(u64, Map<String, Value>, Option<String>)> = a
            .into_iter()
            .map(|x| (x.at_ns, x.params, x.input))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn every_defect_is_reported_with_its_position() {
        let bad = "\
seed: 1
users:
  - name: a
  - name: a
functions:
  - {name: f, kind: \"python:3\", code: python/hello.py}
  - {name: f, kind: \"python:3\", code: python/missing.py}
streams:
  - user: nobody
    function: g
    rate: 1
    duration: 1
  - user: a
    function: f
    invocations:
      - {at: .nan}
      - {wait: -1}
  - user: a
    function: f
    rate: .inf
    duration: -3
    distribution: gamma
    parameters:
      x: {range_int: {min: 5, max: 1}}
      y: {ensemble: {values: []}}
";
        let e = parse(bad).unwrap_err();
        let lines: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
        let want = [
            "t.yaml:4:11: duplicate user name 'a'",
            "t.yaml:7:12: duplicate function name 'f'",
            "t.yaml:7:39: code file 'python/missing.py' not found",
            "t.yaml:9:11: unknown user 'nobody'",
            "t.yaml:10:15: unknown function 'g'",
            "t.yaml:16:14: at must be a finite number, not NaN",
            "t.yaml:17:16: wait must be >= 0, not -1",
            "t.yaml:20:11: rate must be a finite number, not inf",
            "t.yaml:21:15: duration must be >= 0, not -3",
            "t.yaml:22:19: unknown distribution 'gamma' (expected periodic, exponential, uniform)",
            "t.yaml:24:22: parameter 'x': range_int has min 5 > max 1",
            "t.yaml:25:30: parameter 'y': ensemble has no values",
        ];
        assert_eq!(lines.len(), want.len(), "{lines:#?}");
        for (got, want) in lines.iter().zip(want) {
            assert!(got.starts_with(want), "got {got}\nwant {want}");
        }
        assert!(e.to_string().lines().count() == want.len());
    }

    #[test]
    fn a_billion_invocation_trace_starts_at_once() {
        let t = parse(
            "users: [{name: a}]\nfunctions: [{name: f, kind: k, code: python/hello.py}]\n\
             streams: [{user: a, function: f, rate: 1000, duration: 1000000, distribution: exponential}]\n",
        )
        .unwrap();
        assert!(t.total.unwrap().abs_diff(1_000_000_000) < 1_000_000);
        let start = std::time::Instant::now();
        let first: Vec<Invocation> = t.invocations().take(10).collect();
        assert_eq!(first.len(), 10);
        assert!(first.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
        assert!(start.elapsed() < std::time::Duration::from_millis(500));
    }

    #[test]
    fn user_defects() {
        let e = parse(
            "users:\n  - {name: a, auth: nokey}\n  - {name: b, api_host: 'localhost:3233'}\n",
        )
        .unwrap_err();
        let got: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            got,
            [
                "t.yaml:2:21: auth must be 'uuid:key'",
                "t.yaml:3:25: api_host must be an http:// or https:// URL",
            ]
        );
    }

    #[test]
    fn stream_shape_defects() {
        let head = "users: [{name: a}]\nfunctions: [{name: f, kind: k, code: python/hello.py}]\nstreams:\n";
        let cases = [
            (
                "  - {user: a, function: f}\n",
                "t.yaml:4:5: a stream needs invocations or an arrival process",
            ),
            (
                "  - {user: a, function: f, rate: 1, duration: 1, invocations: []}\n",
                "t.yaml:4:5: a stream has either invocations or an arrival process",
            ),
            (
                "  - {user: a, function: f, rate: 1}\n",
                "t.yaml:4:5: an arrival process needs a duration",
            ),
            (
                "  - {user: a, function: f, rate: 0, duration: 1}\n",
                "t.yaml:4:34: rate must be > 0, not 0",
            ),
            (
                "  - {user: a, function: f, invocations: [{at: 1, wait: 1}]}\n",
                "t.yaml:4:56: an invocation has either at or wait, not both",
            ),
            (
                "  - {user: a, function: f, invocations: [{input: x}]}\n",
                "t.yaml:4:42: an invocation needs at",
            ),
            (
                "  - {user: a, function: f, rate: 1, duration: 1, inputs: {count: 2}}\n",
                "t.yaml:4:58: inputs need a kind",
            ),
            (
                "  - {user: a, function: f, rate: 1, duration: 1, inputs: {kind: blob, count: 2}}\n",
                "t.yaml:4:58: no default extension for input kind 'blob'",
            ),
            (
                "  - {user: a, function: f, rate: 1, duration: 1e9}\n",
                "t.yaml:4:47: start + duration is past the longest trace span",
            ),
        ];
        for (stream, want) in cases {
            let e = parse(&format!("{head}{stream}")).unwrap_err().to_string();
            assert!(e.starts_with(want), "{stream}got {e}\nwant {want}");
        }
    }

    #[test]
    fn syntax_and_type_errors_have_positions() {
        let e = parse("users:\n  - name: a\n    colour: red\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.yaml:3:5: users[0]: unknown field `colour`"),
            "{e}"
        );
        let e = parse(
            "users: [{name: a}]\nfunctions: []\nstreams:\n  - {user: a, function: f, rate: fast}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("t.yaml:4:34: streams[0].rate: invalid type"),
            "{e}"
        );
        let e = parse("users: [\n").unwrap_err().to_string();
        assert!(e.starts_with("t.yaml:2:1: "), "{e}");
    }

    #[test]
    fn files_are_read_and_code_resolved_beside_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("act.py"), "def main(a): return a\n").unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(
            &path,
            "users: [{name: a}]\nfunctions: [{name: f, kind: k, code: act.py}]\nstreams:\n  - {user: a, function: f, invocations: [{at: 0}]}\n",
        )
        .unwrap();
        let t = load_yaml(&path).unwrap();
        assert_eq!(t.functions[0].code, dir.path().join("act.py"));
        assert_eq!(t.total, Some(1));
        let e = load_yaml(dir.path().join("none.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.yaml: cannot read"), "{e}");
    }
}
