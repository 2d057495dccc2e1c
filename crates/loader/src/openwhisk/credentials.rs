//! Where a user's requests go and with which key, resolved like `wsk` does: each of
//! API host, key and namespace comes from the first of (1) the trace or configuration,
//! (2) the environment (`__OW_API_HOST`, `__OW_API_KEY`, `__OW_NAMESPACE`), (3) the
//! `wsk` properties file (`$WSK_CONFIG_FILE`, else `~/.wskprops`: `APIHOST`, `AUTH`,
//! `NAMESPACE`). Under systemd, the properties file may come as the service credential
//! `wskprops` (`LoadCredential=wskprops:/etc/faasload/wskprops`): when
//! `$CREDENTIALS_DIRECTORY/wskprops` exists it is read instead of `~/.wskprops` (a unit
//! with `DynamicUser=yes` has no home).
//!
//! API hosts: a URL with `http://` or `https://` is kept as is (a trailing `/` or
//! `/api/v1` is dropped); a bare host (`host`, `host:port`) means `https://`, like `wsk`,
//! except loopback hosts (`localhost`, `127.x.x.x`, `::1`), which mean `http://`: that is
//! what OpenWhisk standalone and the embedded platform serve. Keys are never printed,
//! not even in errors.
use std::path::{Path, PathBuf};

use super::Endpoint;

/// Why credentials could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no API host for namespace '{namespace}': give one in the trace (api_host), set __OW_API_HOST, or set APIHOST in {wskprops}"
    )]
    NoApiHost { namespace: String, wskprops: String },
    #[error(
        "no key for namespace '{namespace}': give one in the trace (auth), set __OW_API_KEY, or set AUTH in {wskprops}"
    )]
    NoAuth { namespace: String, wskprops: String },
    #[error("API host '{value}' (from {origin}): {why}")]
    BadApiHost {
        value: String,
        origin: String,
        why: String,
    },
    #[error("the key from {origin} is not of the form uuid:key")]
    BadAuth { origin: String },
    #[error("{path}:{line}: {why}")]
    BadWskprops {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("reading {path}: {source}")]
    ReadWskprops {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The settings of a `wsk` properties file that the loader uses.
#[derive(Clone, Default, PartialEq)]
pub(crate) struct Wskprops {
    /// Where they were read from.
    pub path: PathBuf,
    pub api_host: Option<String>,
    pub auth: Option<String>,
    pub namespace: Option<String>,
}

impl std::fmt::Debug for Wskprops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wskprops")
            .field("path", &self.path)
            .field("api_host", &self.api_host)
            .field("namespace", &self.namespace)
            .field("auth", &self.auth.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// Parses the text of a `wsk` properties file: `KEY=VALUE` lines, `#` comments, blank
/// lines; values may be quoted; unknown keys are ignored (as `wsk` does).
pub(super) fn parse_wskprops(text: &str, path: &Path) -> Result<Wskprops, CredentialsError> {
    let mut p = Wskprops {
        path: path.to_path_buf(),
        ..Default::default()
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(CredentialsError::BadWskprops {
                path: path.to_path_buf(),
                line: i + 1,
                why: "expected KEY=VALUE".into(),
            });
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        let v = (!v.is_empty()).then(|| v.to_string());
        match k.trim() {
            "APIHOST" => p.api_host = v,
            "AUTH" => p.auth = v,
            "NAMESPACE" => p.namespace = v,
            _ => {}
        }
    }
    Ok(p)
}

/// The name of the systemd credential holding a `wsk` properties file.
pub const SYSTEMD_CREDENTIAL: &str = "wskprops";

/// The path read: `$WSK_CONFIG_FILE`, else the systemd credential
/// `$CREDENTIALS_DIRECTORY/wskprops` when it exists, else `$HOME/.wskprops` (as `wsk`).
pub(super) fn wskprops_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WSK_CONFIG_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
        let p = PathBuf::from(d).join(SYSTEMD_CREDENTIAL);
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".wskprops"))
}

/// Reads a properties file; a missing file is `None`, an unreadable one an error.
pub(super) fn load_wskprops(path: &Path) -> Result<Option<Wskprops>, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_wskprops(&text, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CredentialsError::ReadWskprops {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// What the environment and the properties file say (levels 2 and 3).
#[derive(Clone, Default)]
pub(crate) struct CredentialSources {
    pub env_api_host: Option<String>,
    pub env_api_key: Option<String>,
    pub env_namespace: Option<String>,
    pub wskprops: Option<Wskprops>,
    /// Where the properties file was looked for (for messages).
    pub wskprops_path: Option<PathBuf>,
}

impl std::fmt::Debug for CredentialSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSources")
            .field("env_api_host", &self.env_api_host)
            .field(
                "env_api_key",
                &self.env_api_key.as_ref().map(|_| "<hidden>"),
            )
            .field("env_namespace", &self.env_namespace)
            .field("wskprops", &self.wskprops)
            .finish()
    }
}

impl CredentialSources {
    /// Reads this process's environment and its properties file.
    pub(crate) fn from_environment() -> Result<CredentialSources, CredentialsError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let path = wskprops_path();
        let wskprops = match &path {
            Some(p) => load_wskprops(p)?,
            None => None,
        };
        Ok(CredentialSources {
            env_api_host: env("__OW_API_HOST"),
            env_api_key: env("__OW_API_KEY"),
            env_namespace: env("__OW_NAMESPACE"),
            wskprops,
            wskprops_path: path,
        })
    }

    fn wskprops_name(&self) -> String {
        self.wskprops_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.wskprops".into())
    }
}

/// Resolves an endpoint from the explicit values (trace or configuration) and this
/// process's environment and `~/.wskprops`. `namespace` None: from the environment or
/// the properties file, else `_` (the key's own namespace).
pub fn resolve_endpoint(
    api_host: Option<&str>,
    auth: Option<&str>,
    namespace: Option<&str>,
) -> Result<Endpoint, CredentialsError> {
    resolve_endpoint_from(
        api_host,
        auth,
        namespace,
        &CredentialSources::from_environment()?,
    )
}

/// [`resolve_endpoint`] with given levels 2 and 3 (for tests and for resolving many
/// users with one read of the environment).
pub(super) fn resolve_endpoint_from(
    api_host: Option<&str>,
    auth: Option<&str>,
    namespace: Option<&str>,
    src: &CredentialSources,
) -> Result<Endpoint, CredentialsError> {
    let file = src.wskprops.as_ref();
    let file_name = src.wskprops_name();
    let pick = |explicit: Option<&str>, env: &Option<String>, prop: Option<&String>| {
        if let Some(v) = explicit.filter(|v| !v.trim().is_empty()) {
            Some((v.trim().to_string(), "the trace".to_string()))
        } else if let Some(v) = env {
            Some((v.trim().to_string(), "the environment".to_string()))
        } else {
            prop.map(|v| (v.trim().to_string(), file_name.clone()))
        }
    };
    let namespace = pick(
        namespace,
        &src.env_namespace,
        file.and_then(|f| f.namespace.as_ref()),
    )
    .map(|(v, _)| v)
    .unwrap_or_else(|| "_".into());
    let (host, host_origin) = pick(
        api_host,
        &src.env_api_host,
        file.and_then(|f| f.api_host.as_ref()),
    )
    .ok_or_else(|| CredentialsError::NoApiHost {
        namespace: namespace.clone(),
        wskprops: file_name.clone(),
    })?;
    let (key, key_origin) = pick(auth, &src.env_api_key, file.and_then(|f| f.auth.as_ref()))
        .ok_or_else(|| CredentialsError::NoAuth {
            namespace: namespace.clone(),
            wskprops: file_name.clone(),
        })?;
    check_auth(&key, &key_origin)?;
    Ok(Endpoint {
        api_host: normalize_api_host(&host, &host_origin)?,
        auth: key,
        namespace,
    })
}

/// Checks the `uuid:key` form (without ever printing the key).
fn check_auth(key: &str, origin: &str) -> Result<(), CredentialsError> {
    match key.split_once(':') {
        Some((u, k)) if !u.is_empty() && !k.is_empty() && !key.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(CredentialsError::BadAuth {
            origin: origin.into(),
        }),
    }
}

/// The base URL of an API host (see the module doc for the rules).
pub(super) fn normalize_api_host(value: &str, origin: &str) -> Result<String, CredentialsError> {
    let bad = |why: &str| CredentialsError::BadApiHost {
        value: value.into(),
        origin: origin.into(),
        why: why.into(),
    };
    let v = value.trim();
    let with_scheme = if v.contains("://") {
        v.to_string()
    } else {
        let host = v.split(['/', '?']).next().unwrap_or("");
        let name = host_name(host);
        let scheme = if is_loopback(name) { "http" } else { "https" };
        format!("{scheme}://{v}")
    };
    let mut url = reqwest::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("an API host has no query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("put the key in AUTH / __OW_API_KEY, not in the URL"));
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/api/v1").unwrap_or(path).to_string();
    url.set_path(&path);
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// The host part of `host`, `host:port`, `[v6]:port`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

    #[test]
    fn wskprops_are_read_like_wsk() {
        let text = format!(
            "# written by wsk\nAPIHOST=openwhisk.example.org\n\nAUTH={KEY}\nNAMESPACE=\"guest\"\nAPIGW_ACCESS_TOKEN=x\n"
        );
        let p = parse_wskprops(&text, Path::new("/h/.wskprops")).unwrap();
        assert_eq!(p.api_host.as_deref(), Some("openwhisk.example.org"));
        assert_eq!(p.auth.as_deref(), Some(KEY));
        assert_eq!(p.namespace.as_deref(), Some("guest"));
        // The key is never in Debug output.
        assert!(!format!("{p:?}").contains("123zO3x"));
        let e = parse_wskprops("APIHOST=x\nnonsense\n", Path::new("/h/.wskprops")).unwrap_err();
        assert_eq!(e.to_string(), "/h/.wskprops:2: expected KEY=VALUE");
    }

    #[test]
    fn a_missing_file_is_no_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_wskprops(&dir.path().join("none")).unwrap().is_none());
        let f = dir.path().join("props");
        std::fs::write(&f, "APIHOST=127.0.0.1:3233\n").unwrap();
        let p = load_wskprops(&f).unwrap().unwrap();
        assert_eq!(p.api_host.as_deref(), Some("127.0.0.1:3233"));
        // A directory is unreadable, not missing.
        assert!(load_wskprops(dir.path()).is_err());
    }

    #[test]
    fn api_hosts_get_a_scheme_and_lose_the_api_path() {
        for (given, want) in [
            ("openwhisk.example.org", "https://openwhisk.example.org"),
            (
                "openwhisk.example.org:8443",
                "https://openwhisk.example.org:8443",
            ),
            ("localhost:3233", "http://localhost:3233"),
            ("127.0.0.1:3233", "http://127.0.0.1:3233"),
            ("[::1]:3233", "http://[::1]:3233"),
            ("10.0.0.5", "https://10.0.0.5"),
            ("https://localhost:3233", "https://localhost:3233"),
            ("http://ow.example.org/", "http://ow.example.org"),
            ("https://ow.example.org/api/v1/", "https://ow.example.org"),
            (
                "https://ow.example.org/prefix",
                "https://ow.example.org/prefix",
            ),
        ] {
            assert_eq!(normalize_api_host(given, "t").unwrap(), want, "{given}");
        }
        for bad in ["ftp://x", "http://", "https://u:p@x", "http://x/?a=1", ""] {
            assert!(normalize_api_host(bad, "t").is_err(), "{bad}");
        }
    }

    fn sources() -> CredentialSources {
        CredentialSources {
            env_api_host: Some("env.example.org".into()),
            env_api_key: None,
            env_namespace: None,
            wskprops: Some(Wskprops {
                path: "/h/.wskprops".into(),
                api_host: Some("file.example.org".into()),
                auth: Some("file-uuid:file-key".into()),
                namespace: Some("filens".into()),
            }),
            wskprops_path: Some("/h/.wskprops".into()),
        }
    }

    #[test]
    fn explicit_beats_environment_beats_wskprops() {
        let src = sources();
        let e = resolve_endpoint_from(Some("http://127.0.0.1:1"), Some(KEY), Some("alice"), &src)
            .unwrap();
        assert_eq!(e.api_host, "http://127.0.0.1:1");
        assert_eq!(e.auth, KEY);
        assert_eq!(e.namespace, "alice");
        let e = resolve_endpoint_from(None, None, None, &src).unwrap();
        assert_eq!(e.api_host, "https://env.example.org");
        assert_eq!(e.auth, "file-uuid:file-key");
        assert_eq!(e.namespace, "filens");
        let none = CredentialSources::default();
        let e = resolve_endpoint_from(Some("localhost:3233"), Some(KEY), None, &none).unwrap();
        assert_eq!(e.namespace, "_");
    }

    #[test]
    fn missing_or_bad_credentials_say_where_to_put_them() {
        let none = CredentialSources {
            wskprops_path: Some("/h/.wskprops".into()),
            ..Default::default()
        };
        let e = resolve_endpoint_from(None, Some(KEY), Some("bob"), &none).unwrap_err();
        assert!(matches!(e, CredentialsError::NoApiHost { .. }));
        assert!(e.to_string().contains("__OW_API_HOST"), "{e}");
        assert!(e.to_string().contains("/h/.wskprops"), "{e}");
        let e = resolve_endpoint_from(Some("x.org"), None, Some("bob"), &none).unwrap_err();
        assert!(e.to_string().contains("namespace 'bob'"), "{e}");
        let e =
            resolve_endpoint_from(Some("x.org"), Some("no-colon-secret"), None, &none).unwrap_err();
        assert!(matches!(e, CredentialsError::BadAuth { .. }));
        assert!(!e.to_string().contains("no-colon-secret"), "{e}");
    }
}
