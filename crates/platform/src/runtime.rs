//! Language runtimes speaking the ActionLoop protocol: which program a container of a
//! kind runs, the launchers (Python, Node.js) written once into the work directory, and
//! the lines exchanged with them. A container's process reads one JSON line per message
//! on stdin and answers one JSON line on file descriptor 3; the first message initialises
//! it (`{"ok": true}` or `{"error": ...}` back), each following one is an activation.
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::config::RuntimesConfig;

/// Sentinel written after each activation to stdout and stderr.
pub(crate) const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

const PYTHON_LAUNCHER: &str = include_str!("runtimes/launcher.py");
const NODE_LAUNCHER: &str = include_str!("runtimes/launcher.js");

/// The runtime families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `python:3` / `python:3.11`, the machine's python3.
    #[default]
    Python,
    /// `nodejs:20`, the machine's node.
    Node,
    /// `native`: an executable (or `#!` script) that speaks ActionLoop itself.
    Native,
}

impl Kind {
    /// Kinds accepted in `exec.kind`.
    pub const NAMES: [&'static str; 7] = [
        "python:3",
        "python:3.11",
        "python:default",
        "nodejs:20",
        "nodejs:default",
        "native",
        "native:default",
    ];

    /// The family of an `exec.kind`.
    pub fn parse(kind: &str) -> Option<Kind> {
        match kind {
            "python:3" | "python:3.11" | "python:default" => Some(Kind::Python),
            "nodejs:20" | "nodejs:default" => Some(Kind::Node),
            "native" | "native:default" => Some(Kind::Native),
            _ => None,
        }
    }

    /// The stored kind (`:default` resolved).
    pub fn canonical(self, kind: &str) -> &str {
        match (self, kind) {
            (Kind::Python, "python:default") => "python:3.11",
            (Kind::Node, "nodejs:default") => "nodejs:20",
            (Kind::Native, "native:default") => "native",
            _ => kind,
        }
    }

    /// The kind as it appears in prewarm container names (`nodejs20`).
    pub fn short(self) -> &'static str {
        match self {
            Kind::Python => "python3",
            Kind::Node => "nodejs20",
            Kind::Native => "native",
        }
    }
}

/// Paths of the interpreters and launchers.
#[derive(Clone, Debug)]
pub struct Runtimes {
    python: PathBuf,
    node: PathBuf,
    dir: PathBuf,
}

impl Runtimes {
    /// Writes the launchers into `dir` (readable by the action user).
    pub fn install(cfg: &RuntimesConfig, dir: &Path) -> std::io::Result<Runtimes> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        for (name, text) in [
            ("launcher.py", PYTHON_LAUNCHER),
            ("launcher.js", NODE_LAUNCHER),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, text)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
        }
        Ok(Runtimes {
            python: cfg.python.clone(),
            node: cfg.node.clone(),
            dir: dir.to_path_buf(),
        })
    }

    /// The python interpreter (also used to unpack native zips inside the sandbox).
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// Program and arguments of a container's launcher (None for native kinds).
    pub fn launcher(&self, kind: Kind) -> Option<(PathBuf, Vec<String>)> {
        match kind {
            Kind::Python => Some((
                self.python.clone(),
                vec![
                    "-u".into(),
                    "-B".into(),
                    self.dir.join("launcher.py").display().to_string(),
                ],
            )),
            Kind::Node => Some((
                self.node.clone(),
                vec![self.dir.join("launcher.js").display().to_string()],
            )),
            Kind::Native => None,
        }
    }
}

/// File name of the code in the container's directory.
pub(crate) fn code_file(kind: Kind, binary: bool) -> &'static str {
    match (kind, binary) {
        (Kind::Python, false) => "action.py",
        (Kind::Python, true) => "action.zip",
        (Kind::Node, false) => "action.js",
        (Kind::Node, true) => "action.zip",
        (Kind::Native, _) => "exec",
    }
}

/// The init line for a launcher.
pub(crate) fn init_line(
    main: Option<&str>,
    binary: bool,
    file: &str,
    env: &Map<String, Value>,
) -> Vec<u8> {
    let v = serde_json::json!({
        "main": main.unwrap_or("main"),
        "binary": binary,
        "file": file,
        "env": env,
    });
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    b
}

/// The keys of a run message besides `value` (each becomes an `__OW_<KEY>` variable).
#[derive(serde::Serialize)]
pub(crate) struct RunMeta<'a> {
    pub namespace: &'a str,
    pub action_name: &'a str,
    pub activation_id: &'a str,
    pub transaction_id: &'a str,
    /// Epoch ms, as a string like OpenWhisk's.
    pub deadline: String,
    /// Only for actions annotated `provide-api-key: true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct RunMessage<'a> {
    value: &'a Map<String, Value>,
    #[serde(flatten)]
    meta: &'a RunMeta<'a>,
}

/// The run line: `value` plus the keys that become `__OW_*` variables.
pub(crate) fn run_line(value: &Map<String, Value>, meta: &RunMeta<'_>) -> Vec<u8> {
    let mut b = Vec::with_capacity(256);
    if serde_json::to_writer(&mut b, &RunMessage { value, meta }).is_err() {
        b.clear();
        b.extend_from_slice(b"{}");
    }
    b.push(b'\n');
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        for n in Kind::NAMES {
            assert!(Kind::parse(n).is_some(), "{n}");
        }
        assert_eq!(
            Kind::parse("nodejs:default")
                .unwrap()
                .canonical("nodejs:default"),
            "nodejs:20"
        );
        assert_eq!(Kind::parse("java:8"), None);
        let value = serde_json::json!({"a": 1}).as_object().unwrap().clone();
        let meta = RunMeta {
            namespace: "guest",
            action_name: "/guest/x",
            activation_id: "ab",
            transaction_id: "tx",
            deadline: "5".into(),
            api_key: None,
        };
        let l = run_line(&value, &meta);
        let v: Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["deadline"], "5");
        assert_eq!(v["value"]["a"], 1);
        assert!(v.get("api_key").is_none());
        assert_eq!(*l.last().unwrap(), b'\n');
    }
}
