//! The function catalog: what an original FaaSLoad trace's action names (`wand_blur`)
//! stand for here (kind and code). Read from a small YAML file; the default one,
//! `config/traces/catalog.yaml`, maps the original suite's names onto the function
//! suite in `functions/` (functions/README.md).
//!
//! ```yaml
//! functions:
//!   wand_blur: {kind: "python:3", code: python/burn.py, input_kind: image}
//!   sharp_resize: {kind: "nodejs:20", code: nodejs/hello.js, main: main, timeout: 60000}
//! ```
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{Errors, TraceError};
use super::resolve::{repo_file, resolve_code};
use super::yaml_pos::{YPath, locate};

/// Where the default catalog is, relative to the repository.
pub(crate) const DEFAULT_CATALOG: &str = "config/traces/catalog.yaml";
/// The catalog file a trace directory may carry to override the default.
pub(crate) const DIR_CATALOG: &str = "catalog.yaml";

const DEFAULT_TIMEOUT_MS: u32 = 60_000;

/// What one action name stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogEntry {
    pub kind: String,
    /// Resolved, readable code file.
    pub code: PathBuf,
    pub main: Option<String>,
    pub timeout_ms: u32,
    pub input_kind: Option<String>,
    /// Default parameters of the action.
    pub parameters: Map<String, Value>,
}

/// Action names -> kind and code.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionCatalog {
    /// The file it was read from (empty for an empty catalog).
    pub origin: String,
    pub entries: BTreeMap<String, CatalogEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    functions: BTreeMap<String, RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    kind: String,
    code: String,
    main: Option<String>,
    timeout: Option<u32>,
    input_kind: Option<String>,
    #[serde(default)]
    parameters: Map<String, Value>,
}

impl FunctionCatalog {
    /// Reads a catalog file (code paths relative to it, else under `functions/`).
    pub fn load(path: impl AsRef<Path>) -> Result<FunctionCatalog, TraceError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| TraceError::file(&file, format!("cannot read: {e}")))?;
        let raw: RawCatalog = yaml_serde::from_str(&text).map_err(|e| {
            let msg = e.to_string();
            let msg = msg
                .rfind(" at line ")
                .map_or(msg.clone(), |i| msg[..i].to_string());
            match e.location() {
                Some(l) => TraceError::at(&file, l.line(), l.column(), msg),
                None => TraceError::file(&file, msg),
            }
        })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut errors = Errors::default();
        let mut entries = BTreeMap::new();
        for (name, e) in raw.functions {
            let at = YPath::root().k("functions").k(&name);
            let mut fail = |p: YPath, m: String| {
                let (line, col) = locate(&text, &p);
                errors.push(TraceError::at(&file, line, col, m));
            };
            if e.kind.is_empty() {
                fail(at.k("kind"), "empty kind".into());
            }
            let timeout_ms = e.timeout.unwrap_or(DEFAULT_TIMEOUT_MS);
            if timeout_ms == 0 {
                fail(at.k("timeout"), "timeout (ms) must be > 0".into());
            }
            match resolve_code(&e.code, base) {
                Ok(code) => {
                    entries.insert(
                        name,
                        CatalogEntry {
                            kind: e.kind,
                            code,
                            main: e.main,
                            timeout_ms,
                            input_kind: e.input_kind,
                            parameters: e.parameters,
                        },
                    );
                }
                Err(m) => fail(at.k("code"), m),
            }
        }
        errors.into_result()?;
        Ok(FunctionCatalog {
            origin: file,
            entries,
        })
    }

    /// The catalog for a trace directory: its own `catalog.yaml`, else the repository's
    /// default, else an empty catalog (every action is then reported unknown).
    pub fn for_dir(dir: impl AsRef<Path>) -> Result<FunctionCatalog, TraceError> {
        let dir = dir.as_ref();
        let own = dir.join(DIR_CATALOG);
        if own.is_file() {
            return FunctionCatalog::load(own);
        }
        match repo_file(dir, DEFAULT_CATALOG) {
            Some(p) => FunctionCatalog::load(p),
            None => Ok(FunctionCatalog::default()),
        }
    }

    pub fn get(&self, action: &str) -> Option<&CatalogEntry> {
        self.entries.get(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalog_maps_the_original_names() {
        let c = FunctionCatalog::for_dir(std::env::temp_dir()).unwrap();
        assert!(c.origin.ends_with(DEFAULT_CATALOG), "{}", c.origin);
        let e = c.get("wand_blur").expect("wand_blur is mapped");
        assert!(e.code.is_file());
        assert_eq!(e.input_kind.as_deref(), Some("image"));
        assert!(c.get("sharp_resize").is_some());
    }

    #[test]
    fn catalog_defects_have_positions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(
            &p,
            "functions:\n  a: {kind: k, code: nope.py}\n  b: {kind: '', code: python/hello.py, timeout: 0}\n",
        )
        .unwrap();
        let e = FunctionCatalog::load(&p).unwrap_err();
        let got: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
        let f = p.display().to_string();
        assert!(
            got[0].starts_with(&format!("{f}:2:22: code file 'nope.py' not found")),
            "{got:?}"
        );
        assert_eq!(got[1], format!("{f}:3:13: empty kind"));
        assert_eq!(got[2], format!("{f}:3:49: timeout (ms) must be > 0"));
    }
}
