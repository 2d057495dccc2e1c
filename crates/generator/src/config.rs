//! `generator.yaml`: functions with parameter specs and inputs, memory limits to sweep,
//! repetitions, pacing, warm/cold policy and seed; every defect is reported as
//! `file:line:col` before anything runs.
use serde_json::Value;

use faasload_trace::DEFAULT_SEED;
use faasload_trace::TraceError;
use faasload_trace::{InputSpec, ParamSpec};
use faasload_trace::{YPath, locate};

/// How runs are spaced.
#[derive(Clone, Debug, PartialEq)]
pub enum Pacing {
    /// One run every this many milliseconds.
    IntervalMs(u64),
    /// At most this many runs in flight.
    MaxConcurrent(u32),
}

/// Whether each run must start cold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColdPolicy {
    /// Let containers be reused.
    Warm,
    /// Redeploy the variant before every run so that it starts cold.
    Cold,
}

/// One function of the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct GenFunction {
    pub action: String,
    pub params: Vec<(String, ParamSpec)>,
    /// `None`: the function takes no input object.
    pub inputs: Option<InputSpec>,
    pub memory_mb: Vec<u64>,
}

/// A whole generator configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct GenConfig {
    pub seed: u64,
    pub repetitions: u64,
    pub pacing: Pacing,
    pub cold: ColdPolicy,
    pub functions: Vec<GenFunction>,
}

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<TraceError>,
}

impl Ctx<'_> {
    fn err(&mut self, p: &YPath, msg: impl Into<String>) {
        let (l, c) = locate(self.text, p);
        self.errors.push(TraceError::at(
            self.file,
            l,
            c,
            format!("{p}: {}", msg.into()),
        ));
    }
}

fn mems(cx: &mut Ctx, v: &Value, p: &YPath) -> Vec<u64> {
    let Value::Array(a) = v else {
        cx.err(p, "memory_mb must be a list of megabytes");
        return vec![];
    };
    if a.is_empty() {
        cx.err(p, "memory_mb is empty");
    }
    let mut out = vec![];
    for (i, m) in a.iter().enumerate() {
        match m.as_u64() {
            Some(m) if m >= 1 => out.push(m),
            _ => cx.err(&p.i(i), "a memory limit must be a positive integer (MB)"),
        }
    }
    out
}

/// Parses and validates `text` (named `file` in errors). `known_actions`, when given, is
/// the set of deployable actions: any other function name is an error.
pub fn parse_config(
    text: &str,
    file: &str,
    known_actions: Option<&[String]>,
) -> Result<GenConfig, TraceError> {
    let root: Value = yaml_serde::from_str(text).map_err(|e| match e.location() {
        Some(l) => TraceError::at(file, l.line(), l.column(), e.to_string()),
        None => TraceError::file(file, e.to_string()),
    })?;
    let mut cx = Ctx {
        text,
        file,
        errors: vec![],
    };
    let r = YPath::root();
    let Value::Object(m) = &root else {
        return Err(TraceError::at(
            file,
            1,
            1,
            "a generator config is a mapping",
        ));
    };
    for k in m.keys() {
        if ![
            "seed",
            "repetitions",
            "memory_mb",
            "pacing",
            "cold",
            "functions",
        ]
        .contains(&k.as_str())
        {
            cx.err(&r.k(k), format!("unknown field '{k}'"));
        }
    }
    let seed = match m.get("seed") {
        None => DEFAULT_SEED,
        Some(v) => v.as_u64().unwrap_or_else(|| {
            cx.err(&r.k("seed"), "seed must be a non-negative integer");
            0
        }),
    };
    let repetitions = match m.get("repetitions") {
        None => 1,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => n,
            _ => {
                cx.err(
                    &r.k("repetitions"),
                    "repetitions must be a positive integer",
                );
                1
            }
        },
    };
    let default_mem = m
        .get("memory_mb")
        .map(|v| mems(&mut cx, v, &r.k("memory_mb")));
    let pacing = match m.get("pacing") {
        None => Pacing::MaxConcurrent(1),
        Some(Value::Object(p)) if p.len() == 1 => {
            let (k, v) = p.iter().next().expect("one entry");
            match (k.as_str(), v.as_u64()) {
                ("interval_ms", Some(n)) => Pacing::IntervalMs(n),
                ("max_concurrent", Some(n)) if n >= 1 && n <= u32::MAX as u64 => {
                    Pacing::MaxConcurrent(n as u32)
                }
                _ => {
                    cx.err(
                        &r.k("pacing").k(k),
                        "pacing is {interval_ms: N} or {max_concurrent: K>=1}",
                    );
                    Pacing::MaxConcurrent(1)
                }
            }
        }
        Some(_) => {
            cx.err(
                &r.k("pacing"),
                "pacing is {interval_ms: N} or {max_concurrent: K>=1}",
            );
            Pacing::MaxConcurrent(1)
        }
    };
    let cold = match m.get("cold").map(|v| v.as_str()) {
        None | Some(Some("warm")) => ColdPolicy::Warm,
        Some(Some("cold")) => ColdPolicy::Cold,
        _ => {
            cx.err(
                &r.k("cold"),
                "cold is 'warm' (let containers be reused) or 'cold' (redeploy before each run)",
            );
            ColdPolicy::Warm
        }
    };
    let mut functions = vec![];
    match m.get("functions") {
        Some(Value::Array(fs)) if !fs.is_empty() => {
            for (i, f) in fs.iter().enumerate() {
                let p = r.k("functions").i(i);
                let Value::Object(f) = f else {
                    cx.err(&p, "a function is a mapping with an 'action'");
                    continue;
                };
                for k in f.keys() {
                    if !["action", "parameters", "inputs", "memory_mb"].contains(&k.as_str()) {
                        cx.err(&p.k(k), format!("unknown field '{k}'"));
                    }
                }
                let action = match f.get("action").and_then(|a| a.as_str()) {
                    Some(a) => a.to_string(),
                    None => {
                        cx.err(&p, "a function needs an 'action' name");
                        continue;
                    }
                };
                if let Some(known) = known_actions
                    && !known.contains(&action)
                {
                    cx.err(&p.k("action"), format!("unknown function '{action}'"));
                }
                let mut params = vec![];
                match f.get("parameters") {
                    None => {}
                    Some(Value::Object(ps)) => {
                        for (k, v) in ps {
                            match ParamSpec::from_value(v) {
                                Ok(s) => params.push((k.clone(), s)),
                                Err(e) => {
                                    let mut q = p.k("parameters").k(k);
                                    for s in &e.path {
                                        q = q.k(s);
                                    }
                                    cx.err(&q, e.message);
                                }
                            }
                        }
                    }
                    Some(_) => cx.err(&p.k("parameters"), "parameters is a mapping name -> spec"),
                }
                let inputs = match f.get("inputs") {
                    None => None,
                    Some(Value::Object(inp)) => {
                        let kind = inp.get("kind").and_then(|k| k.as_str());
                        let count = inp.get("count").and_then(|c| c.as_u64());
                        match (kind, count) {
                            (Some(kind), Some(count)) if count >= 1 => {
                                match faasload_inputs::Kind::parse(kind) {
                                    Some(k) => Some(InputSpec::Numbered {
                                        kind: kind.to_string(),
                                        ext: k.extensions()[0].to_string(),
                                        count,
                                    }),
                                    None => {
                                        let known: Vec<&str> = faasload_inputs::Kind::ALL
                                            .iter()
                                            .map(|k| k.name())
                                            .collect();
                                        cx.err(
                                            &p.k("inputs").k("kind"),
                                            format!(
                                                "unknown input kind '{kind}' (`faasload inputs` makes {})",
                                                known.join(", ")
                                            ),
                                        );
                                        None
                                    }
                                }
                            }
                            _ => {
                                cx.err(&p.k("inputs"), "inputs is {kind, count >= 1}");
                                None
                            }
                        }
                    }
                    Some(_) => {
                        cx.err(&p.k("inputs"), "inputs is {kind, count >= 1}");
                        None
                    }
                };
                let memory_mb = match f.get("memory_mb") {
                    Some(v) => mems(&mut cx, v, &p.k("memory_mb")),
                    None => match &default_mem {
                        Some(d) => d.clone(),
                        None => {
                            cx.err(&p, "no memory_mb here nor at the top level");
                            vec![]
                        }
                    },
                };
                functions.push(GenFunction {
                    action,
                    params,
                    inputs,
                    memory_mb,
                });
            }
        }
        _ => cx.err(&r.k("functions"), "functions must be a non-empty list"),
    }
    if !cx.errors.is_empty() {
        return Err(if cx.errors.len() == 1 {
            cx.errors.pop().expect("one")
        } else {
            TraceError::Many(cx.errors)
        });
    }
    Ok(GenConfig {
        seed,
        repetitions,
        pacing,
        cold,
        functions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "seed: 7
repetitions: 2
memory_mb: [128, 256]
pacing: {max_concurrent: 2}
cold: cold
functions:
  - action: burn
    parameters:
      ms: {range_int: {min: 1, max: 5}}
  - action: wand_blur
    inputs: {kind: image, count: 3}
    memory_mb: [512]
    parameters:
      sigma: {range_float: {min: 0.5, max: 2.0}}
      mode: {ensemble: {values: [a, b]}}
";

    #[test]
    fn parses_a_full_config() {
        let c = parse_config(OK, "g.yaml", None).unwrap();
        assert_eq!(c.seed, 7);
        assert_eq!(c.repetitions, 2);
        assert_eq!(c.pacing, Pacing::MaxConcurrent(2));
        assert_eq!(c.cold, ColdPolicy::Cold);
        assert_eq!(c.functions[0].memory_mb, vec![128, 256]);
        assert_eq!(c.functions[1].memory_mb, vec![512]);
        assert_eq!(c.functions[1].params.len(), 2);
    }

    fn err_of(text: &str, known: Option<&[String]>) -> String {
        parse_config(text, "g.yaml", known).unwrap_err().to_string()
    }

    #[test]
    fn bad_specs_fail_with_file_line_col() {
        let t = "memory_mb: [128]\nfunctions:\n  - action: burn\n    parameters:\n      ms: {range_int: {min: 9, max: 1}}\n";
        let e = err_of(t, None);
        assert!(e.starts_with("g.yaml:5:"), "{e}");
        assert!(e.contains("min 9 > max 1"), "{e}");
        let t = "memory_mb: [128]\nfunctions:\n  - action: burn\n    parameters:\n      m: {ensemble: {values: []}}\n";
        let e = err_of(t, None);
        assert!(e.starts_with("g.yaml:5:") && e.contains("no values"), "{e}");
        let t = "memory_mb: [128]\nfunctions:\n  - action: burn\n    inputs: {kind: hologram, count: 2}\n";
        let e = err_of(t, None);
        assert!(
            e.starts_with("g.yaml:4:") && e.contains("unknown input kind"),
            "{e}"
        );
        let known = vec!["burn".to_string()];
        let t = "memory_mb: [128]\nfunctions:\n  - action: burn\n  - action: nope\n";
        let e = err_of(t, Some(&known));
        assert!(
            e.starts_with("g.yaml:4:") && e.contains("unknown function 'nope'"),
            "{e}"
        );
        let t = "functions:\n  - action: burn\n";
        assert!(err_of(t, None).contains("no memory_mb"));
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_example_config_parses() {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/generator.yaml");
        let text = std::fs::read_to_string(p).unwrap();
        let c = super::parse_config(&text, p, None).unwrap();
        assert_eq!(c.functions.len(), 6);
        assert_eq!(crate::plan(&c).len(), 6 * 3 * 3 * 10);
    }
}
