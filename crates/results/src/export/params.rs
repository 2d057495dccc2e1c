//! Parameter columns: every parameter name seen in a load becomes a `param_<name>`
//! column whose type is inferred over all its values (the store keeps them as text:
//! strings as they are, other JSON values as JSON): `bool` if every value is `true` or
//! `false`, `int64` if every value is a JSON integer that fits, `float64` if every value
//! is a JSON number, `string` otherwise. A run without the parameter gets a null.
use std::collections::{BTreeMap, HashMap};

use super::table::{Cell, ColType};

/// Prefix of the parameter columns' names.
pub(super) const PREFIX: &str = "param_";

/// The value `s` as a cell of type `ty`, if it is one (the same test serves inference
/// and writing, so a column never meets a value it cannot hold).
pub(super) fn parse(ty: ColType, s: &str) -> Option<Cell<'_>> {
    match ty {
        ColType::Bool => match s {
            "true" => Some(Cell::Bool(true)),
            "false" => Some(Cell::Bool(false)),
            _ => None,
        },
        ColType::Int64 => json_number(s)?.as_i64().map(Cell::Int),
        ColType::Float64 => json_number(s)?.as_f64().map(Cell::Float),
        ColType::Utf8 => Some(Cell::Str(s)),
        ColType::TimestampMs | ColType::TimestampNs => None,
    }
}

/// `s` if it is exactly a JSON number (no surrounding space, no `+`, no `NaN`).
fn json_number(s: &str) -> Option<serde_json::Number> {
    if s.trim() != s || s.is_empty() {
        return None;
    }
    serde_json::from_str::<serde_json::Number>(s).ok()
}

/// Infers the parameter columns' types from the values seen, one at a time (a load's
/// parameters are streamed from the store, never all held).
#[derive(Debug, Default)]
pub(super) struct Inference {
    /// Per parameter name, the types still holding every value seen.
    candidates: BTreeMap<String, Vec<ColType>>,
}

impl Inference {
    /// Takes a value of parameter `name` into account (a NULL value fits any type).
    pub(super) fn add(&mut self, name: &str, value: Option<&str>) {
        if !self.candidates.contains_key(name) {
            self.candidates.insert(
                name.to_string(),
                vec![ColType::Bool, ColType::Int64, ColType::Float64],
            );
        }
        if let (Some(c), Some(v)) = (self.candidates.get_mut(name), value) {
            c.retain(|&t| parse(t, v).is_some());
        }
    }

    /// (name, type) of every parameter seen, sorted by name: the narrowest type left,
    /// `Utf8` if none.
    pub(super) fn columns(self) -> Vec<(String, ColType)> {
        self.candidates
            .into_iter()
            .map(|(name, c)| (name, c.first().copied().unwrap_or(ColType::Utf8)))
            .collect()
    }
}

/// The narrowest type holding every value of `values`.
#[cfg(test)]
fn infer<'v>(values: impl IntoIterator<Item = &'v str>) -> ColType {
    let mut inf = Inference::default();
    for v in values {
        inf.add("", Some(v));
    }
    inf.columns().pop().map_or(ColType::Utf8, |(_, t)| t)
}

/// The parameter columns of `rows` (each row's parameters as (name, value) pairs):
/// (name, inferred type), sorted by name.
#[cfg(test)]
pub(super) fn columns<'r, I, P>(rows: I) -> Vec<(String, ColType)>
where
    I: IntoIterator<Item = P>,
    P: IntoIterator<Item = &'r (String, String)>,
{
    let mut inf = Inference::default();
    for params in rows {
        for (name, value) in params {
            inf.add(name, Some(value));
        }
    }
    inf.columns()
}

/// Checks that the parameters of a run fit the columns inferred (`types`, by name): a
/// load still being written may get runs after the inference pass, whose parameters would
/// otherwise be lost. An empty value in a non-text column is a NULL of the store.
pub(super) fn check(
    types: &HashMap<&str, ColType>,
    params: &[(String, String)],
) -> Result<(), String> {
    for (name, value) in params {
        match types.get(name.as_str()) {
            None => return Err(format!("parameter {name:?} has no column")),
            Some(&ty) => {
                if parse(ty, value).is_none() && !(value.is_empty() && ty != ColType::Utf8) {
                    return Err(format!(
                        "parameter {name:?} = {value:?} does not fit its {ty:?} column"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The value of parameter `name` in `params` (the first, should a run repeat it).
pub(super) fn value<'r>(params: &'r [(String, String)], name: &str) -> Option<&'r str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_the_narrowest_type() {
        assert_eq!(infer(["1", "-3", "0"]), ColType::Int64);
        assert_eq!(infer(["1", "2.5", "1e3"]), ColType::Float64);
        assert_eq!(infer(["true", "false"]), ColType::Bool);
        assert_eq!(infer(["webp", "png"]), ColType::Utf8);
        // Mixed kinds fall back to text.
        assert_eq!(infer(["1", "true"]), ColType::Utf8);
        assert_eq!(infer(["1.5", "x"]), ColType::Utf8);
        // Not JSON numbers: text.
        for odd in ["+1", " 1", "NaN", "inf", "0x10", "", "[1]", "1_000"] {
            assert_eq!(infer(["1", odd]), ColType::Utf8, "{odd:?}");
        }
        // Beyond i64: a float.
        assert_eq!(infer(["18446744073709551615"]), ColType::Float64);
        assert_eq!(infer(["True"]), ColType::Utf8);
    }

    #[test]
    fn columns_are_sorted_and_typed_over_all_rows() {
        let p = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let rows = [
            p(&[("sigma", "1"), ("format", "webp")]),
            p(&[]),
            p(&[("sigma", "0.5"), ("flag", "true")]),
        ];
        assert_eq!(
            columns(rows.iter()),
            vec![
                ("flag".to_string(), ColType::Bool),
                ("format".to_string(), ColType::Utf8),
                ("sigma".to_string(), ColType::Float64),
            ]
        );
        assert_eq!(value(&rows[0], "sigma"), Some("1"));
        assert_eq!(value(&rows[1], "sigma"), None);
        // An int column read as float where the column is float.
        assert_eq!(parse(ColType::Float64, "1"), Some(Cell::Float(1.0)));
        assert_eq!(parse(ColType::Int64, "1.0"), None);
    }

    #[test]
    fn late_parameters_are_caught() {
        let types: HashMap<&str, ColType> =
            [("sigma", ColType::Int64), ("mode", ColType::Utf8)].into();
        let p = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert!(check(&types, &p("sigma", "3")).is_ok());
        assert!(check(&types, &p("mode", "")).is_ok());
        // A NULL of the store reads as "": null in a numeric column.
        assert!(check(&types, &p("sigma", "")).is_ok());
        let e = check(&types, &p("sigma", "2.5")).unwrap_err();
        assert!(e.contains("sigma") && e.contains("Int64"), "{e}");
        assert!(
            check(&types, &p("new", "1"))
                .unwrap_err()
                .contains("no column")
        );
    }

    #[test]
    fn null_values_fit_any_type() {
        let mut inf = Inference::default();
        inf.add("a", None);
        inf.add("a", Some("2"));
        inf.add("b", None);
        assert_eq!(
            inf.columns(),
            vec![
                ("a".to_string(), ColType::Int64),
                ("b".to_string(), ColType::Bool)
            ]
        );
    }
}
