//! Positions in a YAML document: `yaml_serde` keeps no spans, but it stamps an error
//! raised while deserializing a node with that node's line and column. To find where a
//! path (`streams[2].rate`) is, the text is walked again with a seed that follows the
//! path and raises an error at its end; the error's location is the node's.
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a path: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document's root to a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YPath(pub Vec<Seg>);

impl YPath {
    pub fn root() -> YPath {
        YPath(Vec::new())
    }
    /// This path followed by key `k`.
    pub fn k(&self, k: &str) -> YPath {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        YPath(v)
    }
    /// This path followed by index `i`.
    pub fn i(&self, i: usize) -> YPath {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        YPath(v)
    }
}

impl fmt::Display for YPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

const HERE: &str = "faasload-yaml-probe";

struct Probe<'p>(&'p [Seg]);

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(HERE)
    }

    // Scalars: at the end of the path, the default `invalid_type` error marks the node;
    // before it, the path does not exist.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.0.split_first() else {
            return self.leaf();
        };
        while let Some(key) = map.next_key::<yaml_serde::Value>()? {
            let matches = match &key {
                yaml_serde::Value::String(s) => s == want,
                yaml_serde::Value::Number(n) => n.to_string() == *want,
                yaml_serde::Value::Bool(b) => b.to_string() == *want,
                _ => false,
            };
            if matches {
                return map.next_value_seed(Probe(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.0.split_first() else {
            return self.leaf();
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Probe(rest)).map(|_| ())
    }
}

impl Probe<'_> {
    fn leaf<E: de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(HERE))
        } else {
            Ok(())
        }
    }
}

/// The 1-based (line, column) of the node at `path` in `text`; for a path that does not
/// exist, of its deepest existing ancestor; (1, 1) when nothing better is known.
pub fn locate(text: &str, path: &YPath) -> (usize, usize) {
    for len in (0..=path.0.len()).rev() {
        let d = yaml_serde::Deserializer::from_str(text);
        match d.deserialize_any(Probe(&path.0[..len])) {
            Err(e) if e.to_string().contains(HERE) => {
                if let Some(l) = e.location() {
                    return (l.line(), l.column());
                }
                return (1, 1);
            }
            _ => continue,
        }
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "a: 1\nlist:\n  - x: [10, 20]\n    y: {z: true}\n  - name: n\n";

    #[test]
    fn finds_nodes() {
        let p = YPath::root();
        assert_eq!(locate(DOC, &p.k("a")), (1, 4));
        assert_eq!(locate(DOC, &p.k("list")), (3, 3));
        assert_eq!(locate(DOC, &p.k("list").i(0)), (3, 5));
        assert_eq!(locate(DOC, &p.k("list").i(0).k("x").i(1)), (3, 13));
        assert_eq!(locate(DOC, &p.k("list").i(0).k("y").k("z")), (4, 12));
        assert_eq!(locate(DOC, &p.k("list").i(1).k("name")), (5, 11));
        // Missing: the deepest existing ancestor.
        assert_eq!(locate(DOC, &p.k("list").i(1).k("nope")), (5, 5));
        assert_eq!(p.k("list").i(1).k("name").to_string(), "list[1].name");
    }
}
