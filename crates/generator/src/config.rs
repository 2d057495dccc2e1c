//! `generator.yaml`: functions with parameter specs and inputs, memory limits to sweep,
//! repetitions, pacing, warm/cold policy and seed; every defect is reported as
//! `file:line:col` before anything runs.
//!
//! The file is deserialized into `deny_unknown_fields` structs (as the trace format is),
//! so an unknown key or a value of the wrong type is reported by the YAML reader at its
//! position; the checks serde cannot make (ranges, specs, input kinds, known actions) are
//! collected by path and located in the text afterwards.
use serde::Deserialize;
use serde_json::{Map, Value};

use faasload_trace::{DEFAULT_SEED, InputSpec, ParamSpec, TraceError, YPath, locate, syntax_error};

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

/// The file as written. Counts are signed so that a negative one gets this module's
/// message (e.g. "a memory limit must be a positive integer") rather than serde's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a generator config (a mapping)")]
struct RawConfig {
    seed: Option<u64>,
    repetitions: Option<i64>,
    memory_mb: Option<Vec<i64>>,
    pacing: Option<RawPacing>,
    cold: Option<RawCold>,
    #[serde(default)]
    functions: Vec<RawFunction>,
}

/// `{interval_ms: N}` or `{max_concurrent: K}` (exactly one).
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "pacing: {interval_ms: N} or {max_concurrent: K>=1}"
)]
struct RawPacing {
    interval_ms: Option<u64>,
    max_concurrent: Option<i64>,
}

#[derive(Deserialize)]
#[serde(
    rename_all = "lowercase",
    expecting = "'warm' (let containers be reused) or 'cold' (redeploy before each run)"
)]
enum RawCold {
    Warm,
    Cold,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a function (a mapping with an 'action')"
)]
struct RawFunction {
    action: String,
    /// Name -> spec (a fixed value, `range_int`, `range_float` or `ensemble`), in order.
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Option<RawInputs>,
    memory_mb: Option<Vec<i64>>,
}

/// `{kind, count}`: numbered input objects `<kind>/<N>.<ext>`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "inputs: {kind, count >= 1}")]
struct RawInputs {
    kind: String,
    count: i64,
}

const PACING: &str = "pacing is {interval_ms: N} or {max_concurrent: K>=1}";

/// Defects found after deserializing, by path; located in the text at the end.
struct Defects<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<TraceError>,
}

impl Defects<'_> {
    fn add(&mut self, p: &YPath, msg: impl Into<String>) {
        let (l, c) = locate(self.text, p);
        self.errors.push(TraceError::at(
            self.file,
            l,
            c,
            format!("{p}: {}", msg.into()),
        ));
    }

    /// `v` as a count >= 1 (None, reported as `msg` at `p`, otherwise).
    fn positive(&mut self, v: i64, p: &YPath, msg: &str) -> Option<u64> {
        match u64::try_from(v) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.add(p, msg);
                None
            }
        }
    }

    /// A list of memory limits, each >= 1 MB.
    fn memories(&mut self, v: &[i64], p: &YPath) -> Vec<u64> {
        if v.is_empty() {
            self.add(p, "memory_mb is empty");
        }
        v.iter()
            .enumerate()
            .filter_map(|(i, m)| {
                self.positive(
                    *m,
                    &p.i(i),
                    "a memory limit must be a positive integer (MB)",
                )
            })
            .collect()
    }

    fn pacing(&mut self, raw: Option<RawPacing>, p: &YPath) -> Pacing {
        match raw {
            None => Pacing::MaxConcurrent(1),
            Some(RawPacing {
                interval_ms: Some(n),
                max_concurrent: None,
            }) => Pacing::IntervalMs(n),
            Some(RawPacing {
                interval_ms: None,
                max_concurrent: Some(k),
            }) => match u32::try_from(k) {
                Ok(k) if k >= 1 => Pacing::MaxConcurrent(k),
                _ => {
                    self.add(&p.k("max_concurrent"), PACING);
                    Pacing::MaxConcurrent(1)
                }
            },
            Some(_) => {
                self.add(p, PACING);
                Pacing::MaxConcurrent(1)
            }
        }
    }

    fn params(&mut self, raw: Map<String, Value>, p: &YPath) -> Vec<(String, ParamSpec)> {
        let mut params = vec![];
        for (k, v) in raw {
            match ParamSpec::from_value(&v) {
                Ok(s) => params.push((k, s)),
                Err(e) => {
                    let q = e.path.iter().fold(p.k(&k), |q, s| q.k(s));
                    self.add(&q, e.message);
                }
            }
        }
        params
    }

    fn inputs(&mut self, raw: RawInputs, p: &YPath) -> Option<InputSpec> {
        let Ok(count @ 1..) = u64::try_from(raw.count) else {
            self.add(p, "inputs is {kind, count >= 1}");
            return None;
        };
        let Some(kind) = faasload_inputs::Kind::parse(&raw.kind) else {
            let known: Vec<&str> = faasload_inputs::Kind::ALL
                .iter()
                .map(|k| k.name())
                .collect();
            self.add(
                &p.k("kind"),
                format!(
                    "unknown input kind '{}' (`faasload inputs` makes {})",
                    raw.kind,
                    known.join(", ")
                ),
            );
            return None;
        };
        Some(InputSpec::Numbered {
            ext: kind.extensions()[0].to_string(),
            kind: raw.kind,
            count,
        })
    }
}

/// Parses and validates `text` (named `file` in errors). `known_actions`, when given, is
/// the set of deployable actions: any other function name is an error.
pub fn parse_config(
    text: &str,
    file: &str,
    known_actions: Option<&[String]>,
) -> Result<GenConfig, TraceError> {
    let raw: RawConfig = yaml_serde::from_str(text).map_err(|e| syntax_error(file, &e))?;
    let mut d = Defects {
        text,
        file,
        errors: vec![],
    };
    let r = YPath::root();
    let repetitions = match raw.repetitions {
        None => 1,
        Some(n) => d
            .positive(
                n,
                &r.k("repetitions"),
                "repetitions must be a positive integer",
            )
            .unwrap_or(1),
    };
    let default_mem = raw
        .memory_mb
        .as_deref()
        .map(|v| d.memories(v, &r.k("memory_mb")));
    let pacing = d.pacing(raw.pacing, &r.k("pacing"));
    let cold = match raw.cold {
        None | Some(RawCold::Warm) => ColdPolicy::Warm,
        Some(RawCold::Cold) => ColdPolicy::Cold,
    };
    if raw.functions.is_empty() {
        d.add(&r.k("functions"), "functions must be a non-empty list");
    }
    let mut functions = vec![];
    for (i, f) in raw.functions.into_iter().enumerate() {
        let p = r.k("functions").i(i);
        if let Some(known) = known_actions
            && !known.contains(&f.action)
        {
            d.add(&p.k("action"), format!("unknown function '{}'", f.action));
        }
        let params = d.params(f.parameters, &p.k("parameters"));
        let inputs = f.inputs.and_then(|x| d.inputs(x, &p.k("inputs")));
        let memory_mb = match (&f.memory_mb, &default_mem) {
            (Some(v), _) => d.memories(v, &p.k("memory_mb")),
            (None, Some(v)) => v.clone(),
            (None, None) => {
                d.add(&p, "no memory_mb here nor at the top level");
                vec![]
            }
        };
        functions.push(GenFunction {
            action: f.action,
            params,
            inputs,
            memory_mb,
        });
    }
    let mut errors = d.errors;
    if !errors.is_empty() {
        return Err(if errors.len() == 1 {
            errors.remove(0)
        } else {
            TraceError::Many(errors)
        });
    }
    Ok(GenConfig {
        seed: raw.seed.unwrap_or(DEFAULT_SEED),
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

    #[test]
    fn unknown_keys_fail_with_file_line_col() {
        let e = err_of(
            "memory_mb: [128]\ncolour: red\nfunctions:\n  - action: burn\n",
            None,
        );
        assert!(e.starts_with("g.yaml:2:1: unknown field `colour`"), "{e}");
        let e = err_of(
            "memory_mb: [128]\nfunctions:\n  - action: burn\n    colour: red\n",
            None,
        );
        assert!(
            e.starts_with("g.yaml:4:5: functions[0]: unknown field `colour`"),
            "{e}"
        );
        let e = err_of(
            "memory_mb: [128]\nfunctions:\n  - action: burn\n    inputs: {kind: image, count: 2, ext: png}\n",
            None,
        );
        assert!(
            e.starts_with("g.yaml:4:37: functions[0].inputs: unknown field `ext`"),
            "{e}"
        );
        let e = err_of(
            "memory_mb: [128]\npacing: {every_ms: 5}\nfunctions:\n  - action: burn\n",
            None,
        );
        assert!(
            e.starts_with("g.yaml:2:10: pacing: unknown field `every_ms`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_types_fail_with_file_line_col() {
        let e = err_of(
            "memory_mb: [128]\nrepetitions: many\nfunctions:\n  - action: burn\n",
            None,
        );
        assert!(
            e.starts_with("g.yaml:2:14: repetitions: invalid type: string \"many\""),
            "{e}"
        );
        let e = err_of("memory_mb: 128\nfunctions:\n  - action: burn\n", None);
        assert!(
            e.starts_with("g.yaml:1:12: memory_mb: invalid type: integer"),
            "{e}"
        );
        let e = err_of("memory_mb: [128]\nfunctions:\n  - burn\n", None);
        assert!(
            e.starts_with("g.yaml:3:5: functions[0]: invalid type: string"),
            "{e}"
        );
        let e = err_of(
            "memory_mb: [128]\ncold: hot\nfunctions:\n  - action: burn\n",
            None,
        );
        assert!(
            e.starts_with("g.yaml:2:7: cold: unknown variant `hot`"),
            "{e}"
        );
        let e = err_of("- a\n", None);
        assert!(e.starts_with("g.yaml:1:1: invalid type: sequence"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_all_reported_where_they_are() {
        let t =
            "memory_mb: [128, -5, 0]\nrepetitions: 0\npacing: {max_concurrent: 0}\nfunctions: []\n";
        let e = err_of(t, None);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "g.yaml:2:14: repetitions: repetitions must be a positive integer",
                "g.yaml:1:18: memory_mb[1]: a memory limit must be a positive integer (MB)",
                "g.yaml:1:22: memory_mb[2]: a memory limit must be a positive integer (MB)",
                "g.yaml:3:26: pacing.max_concurrent: pacing is {interval_ms: N} or {max_concurrent: K>=1}",
                "g.yaml:4:12: functions: functions must be a non-empty list",
            ],
            "{e}"
        );
        let t = "memory_mb: [128]\npacing: {interval_ms: 5, max_concurrent: 2}\nfunctions:\n  - action: burn\n    inputs: {kind: image, count: 0}\n";
        let e = err_of(t, None);
        assert!(e.contains("g.yaml:2:9: pacing: pacing is"), "{e}");
        assert!(
            e.contains("g.yaml:5:13: functions[0].inputs: inputs is {kind, count >= 1}"),
            "{e}"
        );
    }

    #[test]
    fn defaults_and_interval_pacing() {
        let c = parse_config("memory_mb: [64]\npacing: {interval_ms: 0}\nfunctions:\n  - action: burn\n    parameters: {b: 1, a: {ensemble: [x]}}\n", "g.yaml", None).unwrap();
        assert_eq!(
            (c.seed, c.repetitions, c.pacing, c.cold),
            (DEFAULT_SEED, 1, Pacing::IntervalMs(0), ColdPolicy::Warm)
        );
        assert_eq!(c.functions[0].inputs, None);
        let names: Vec<&str> = c.functions[0]
            .params
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(names.len(), 2);
        let c = parse_config(
            "memory_mb: [64]\nfunctions:\n  - action: burn\n",
            "g.yaml",
            None,
        )
        .unwrap();
        assert_eq!(c.pacing, Pacing::MaxConcurrent(1));
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
