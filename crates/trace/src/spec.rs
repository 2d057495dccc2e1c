//! Parameter and input specifications, as in the original FaaSLoad's generator:
//! `range_int {min, max}` (inclusive), `range_float {min, max}` (uniform),
//! `ensemble {values}` (choice), or a fixed value; inputs as a list or as
//! `{kind, count}` numbered objects `<kind>/<N>.<ext>`.
use rand::RngExt;
use rand_pcg::Pcg64;
use serde_json::{Map, Value};

/// How one parameter's value is chosen for each invocation.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamSpec {
    /// Always this value.
    Fixed(Value),
    /// An integer drawn uniformly in `min..=max`.
    RangeInt { min: i64, max: i64 },
    /// A float drawn uniformly in `[min, max)` (`min` when they are equal).
    RangeFloat { min: f64, max: f64 },
    /// One of the values, uniformly.
    Ensemble(Vec<Value>),
}

/// A defect in a spec: `path` is relative to the spec's node (e.g. `["range_int"]`).
#[derive(Debug, PartialEq)]
pub struct SpecError {
    pub path: Vec<String>,
    pub message: String,
}

fn err(path: &[&str], message: impl Into<String>) -> SpecError {
    SpecError {
        path: path.iter().map(|s| s.to_string()).collect(),
        message: message.into(),
    }
}

fn bounds<'a>(name: &str, v: &'a Value) -> Result<(&'a Value, &'a Value), SpecError> {
    let Value::Object(m) = v else {
        return Err(err(&[name], format!("{name} takes {{min, max}}")));
    };
    if let Some(k) = m.keys().find(|k| *k != "min" && *k != "max") {
        return Err(err(
            &[name, k],
            format!("unknown field '{k}' (expected min, max)"),
        ));
    }
    match (m.get("min"), m.get("max")) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(err(&[name], format!("{name} needs both min and max"))),
    }
}

impl ParamSpec {
    /// Reads a spec: a one-key map `range_int`/`range_float`/`ensemble`, else a fixed value.
    pub fn from_value(v: &Value) -> Result<ParamSpec, SpecError> {
        let Value::Object(m) = v else {
            return Ok(ParamSpec::Fixed(v.clone()));
        };
        if m.len() != 1 {
            return Ok(ParamSpec::Fixed(v.clone()));
        }
        let (k, inner) = m.iter().next().expect("one entry");
        match k.as_str() {
            "range_int" => {
                let (a, b) = bounds(k, inner)?;
                let min = a
                    .as_i64()
                    .ok_or_else(|| err(&[k, "min"], "min of range_int must be an integer"))?;
                let max = b
                    .as_i64()
                    .ok_or_else(|| err(&[k, "max"], "max of range_int must be an integer"))?;
                if min > max {
                    return Err(err(&[k], format!("range_int has min {min} > max {max}")));
                }
                Ok(ParamSpec::RangeInt { min, max })
            }
            "range_float" => {
                let (a, b) = bounds(k, inner)?;
                let min = a
                    .as_f64()
                    .ok_or_else(|| err(&[k, "min"], "min of range_float must be a number"))?;
                let max = b
                    .as_f64()
                    .ok_or_else(|| err(&[k, "max"], "max of range_float must be a number"))?;
                if min > max {
                    return Err(err(&[k], format!("range_float has min {min} > max {max}")));
                }
                Ok(ParamSpec::RangeFloat { min, max })
            }
            "ensemble" => {
                let values = match inner {
                    Value::Object(e) => {
                        if let Some(x) = e.keys().find(|x| *x != "values") {
                            return Err(err(
                                &[k, x],
                                format!("unknown field '{x}' (expected values)"),
                            ));
                        }
                        match e.get("values") {
                            Some(Value::Array(a)) => a,
                            Some(_) => {
                                return Err(err(&[k, "values"], "ensemble values must be a list"));
                            }
                            None => return Err(err(&[k], "ensemble needs values")),
                        }
                    }
                    // `ensemble: [a, b]` is accepted as a shorthand.
                    Value::Array(a) => a,
                    _ => return Err(err(&[k], "ensemble takes {values: [...]}")),
                };
                if values.is_empty() {
                    let p: &[&str] = if inner.is_object() {
                        &[k, "values"]
                    } else {
                        &[k]
                    };
                    return Err(err(p, "ensemble has no values"));
                }
                Ok(ParamSpec::Ensemble(values.clone()))
            }
            _ => Ok(ParamSpec::Fixed(v.clone())),
        }
    }

    /// Draws a value (a fixed value draws nothing, so it does not move the stream).
    pub fn draw(&self, rng: &mut Pcg64) -> Value {
        match self {
            ParamSpec::Fixed(v) => v.clone(),
            ParamSpec::RangeInt { min, max } => Value::from(rng.random_range(*min..=*max)),
            ParamSpec::RangeFloat { min, max } => {
                let x = min + (max - min) * rng.random::<f64>();
                // Stays finite: min and max are finite numbers from JSON.
                Value::from(if x < *max { x } else { *min })
            }
            ParamSpec::Ensemble(vs) if vs.is_empty() => Value::Null,
            ParamSpec::Ensemble(vs) => vs[rng.random_range(0..vs.len())].clone(),
        }
    }
}

/// Draws every parameter of `specs`, in order, into a map.
pub fn draw_params(specs: &[(String, ParamSpec)], rng: &mut Pcg64) -> Map<String, Value> {
    specs
        .iter()
        .map(|(k, s)| (k.clone(), s.draw(rng)))
        .collect()
}

/// Which input object each invocation of a stream takes (cycling through them).
#[derive(Clone, Debug, PartialEq)]
pub enum InputSpec {
    /// These objects, in order, over and over.
    List(Vec<String>),
    /// `<kind>/<N>.<ext>` for N in 1..=count, in order, over and over.
    Numbered {
        kind: String,
        ext: String,
        count: u64,
    },
}

/// The usual file extension of an input kind (as in the original's dataset generator).
pub(crate) fn default_ext(kind: &str) -> Option<&'static str> {
    match kind {
        "image" => Some("jpg"),
        "audio" => Some("wav"),
        "video" => Some("avi"),
        _ => None,
    }
}

impl InputSpec {
    /// The input of the `i`-th invocation of the stream (None for an empty list).
    pub fn name(&self, i: u64) -> Option<String> {
        match self {
            InputSpec::List(v) if v.is_empty() => None,
            InputSpec::List(v) => Some(v[(i % v.len() as u64) as usize].clone()),
            InputSpec::Numbered { count: 0, .. } => None,
            InputSpec::Numbered { kind, ext, count } => {
                Some(format!("{kind}/{}.{ext}", i % count + 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use serde_json::json;

    use super::*;

    #[test]
    fn specs_parse_and_draw_within_bounds() {
        let mut rng = Pcg64::seed_from_u64(3);
        let s = ParamSpec::from_value(&json!({"range_int": {"min": 2, "max": 4}})).unwrap();
        let mut seen = [false; 3];
        for _ in 0..200 {
            let v = s.draw(&mut rng).as_i64().unwrap();
            assert!((2..=4).contains(&v));
            seen[(v - 2) as usize] = true;
        }
        assert_eq!(seen, [true; 3], "both ends are inclusive");
        let s = ParamSpec::from_value(&json!({"range_float": {"min": 0.3, "max": 100}})).unwrap();
        for _ in 0..200 {
            let v = s.draw(&mut rng).as_f64().unwrap();
            assert!((0.3..100.0).contains(&v));
        }
        let s = ParamSpec::from_value(&json!({"ensemble": {"values": [90, 180, 270]}})).unwrap();
        for _ in 0..50 {
            assert!([90, 180, 270].contains(&s.draw(&mut rng).as_i64().unwrap()));
        }
        assert_eq!(
            ParamSpec::from_value(&json!(5)).unwrap(),
            ParamSpec::Fixed(json!(5))
        );
        assert_eq!(
            ParamSpec::from_value(&json!({"a": 1, "b": 2})).unwrap(),
            ParamSpec::Fixed(json!({"a": 1, "b": 2}))
        );
    }

    #[test]
    fn spec_defects_say_where() {
        let e = ParamSpec::from_value(&json!({"range_int": {"min": 5, "max": 4}})).unwrap_err();
        assert_eq!(e.path, ["range_int"]);
        assert!(e.message.contains("min 5 > max 4"), "{}", e.message);
        let e = ParamSpec::from_value(&json!({"ensemble": {"values": []}})).unwrap_err();
        assert_eq!(e.path, ["ensemble", "values"]);
        let e = ParamSpec::from_value(&json!({"range_float": {"min": "a", "max": 1}})).unwrap_err();
        assert_eq!(e.path, ["range_float", "min"]);
        let e = ParamSpec::from_value(&json!({"range_int": {"min": 1}})).unwrap_err();
        assert_eq!(e.path, ["range_int"]);
    }

    #[test]
    fn inputs_cycle() {
        let s = InputSpec::Numbered {
            kind: "image".into(),
            ext: "jpg".into(),
            count: 2,
        };
        let names: Vec<_> = (0..3).map(|i| s.name(i).unwrap()).collect();
        assert_eq!(names, ["image/1.jpg", "image/2.jpg", "image/1.jpg"]);
        let l = InputSpec::List(vec!["a".into(), "b".into()]);
        assert_eq!(l.name(3).unwrap(), "b");
    }
}
