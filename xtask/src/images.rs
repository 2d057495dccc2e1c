//! `cargo xtask images`: builds the Docker runtime images of the Docker backend
//! (`faasload/action-python:latest`, `faasload/action-nodejs:latest`) from Debian
//! packages: `debootstrap --variant=minbase` of the packages a runtime needs into a
//! folder, our action proxy (images/proxy.py, images/proxy.js) and the ActionLoop
//! launcher of the embedded platform copied in, then `docker import`. Each image carries
//! the hash of its inputs (label `faasload.inputs`); an image whose label matches is
//! reused, so only changed inputs rebuild.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::workspace::Workspace;

/// Debian suite of the images (the host's own when it is Debian, else bookworm).
const DEFAULT_SUITE: &str = "bookworm";
/// Where root file systems are assembled and .deb files cached (all rebuildable).
const WORK: &str = "/var/lib/faasload-test/images";
/// Bump to force a rebuild when this builder changes how images are made.
const BUILDER_VERSION: &str = "1";

/// One runtime image.
struct Image {
    tag: &'static str,
    packages: &'static [&'static str],
    /// (source relative to the workspace, destination in the image).
    files: &'static [(&'static str, &'static str)],
    cmd: &'static str,
}

const IMAGES: &[Image] = &[
    Image {
        tag: "faasload/action-python:latest",
        packages: &["python3"],
        files: &[
            ("images/proxy.py", "proxy/proxy.py"),
            (
                "crates/platform/src/runtimes/launcher.py",
                "proxy/launcher.py",
            ),
        ],
        cmd: r#"["/usr/bin/python3", "-u", "-B", "/proxy/proxy.py"]"#,
    },
    Image {
        tag: "faasload/action-nodejs:latest",
        packages: &["nodejs"],
        files: &[
            ("images/proxy.js", "proxy/proxy.js"),
            (
                "crates/platform/src/runtimes/launcher.js",
                "proxy/launcher.js",
            ),
        ],
        cmd: r#"["/usr/bin/node", "/proxy/proxy.js"]"#,
    },
];

/// The Debian mirror apt uses on this host (first `URIs:`/`deb` line naming `/debian`).
fn mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        v.sort();
        files.extend(v);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            let uri = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.contains("://"))
            } else {
                None
            };
            if let Some(u) = uri
                && u.trim_end_matches('/').ends_with("/debian")
            {
                return u.to_string();
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

fn suite() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            let id = t.lines().any(|l| l == "ID=debian");
            let code = t
                .lines()
                .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
                .map(|s| s.trim_matches('"').to_string());
            if id {
                code.filter(|c| !c.is_empty())
            } else {
                None
            }
        })
        .unwrap_or_else(|| DEFAULT_SUITE.to_string())
}

/// FNV-1a 64 of the inputs: a stable content key (not a security hash).
fn fnv(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for &b in p.iter().chain(&[0u8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

fn docker(host: &str) -> Command {
    let mut c = Command::new("docker");
    c.args(["-H", host]);
    c
}

/// Builds every image missing or out of date on the daemon at `host`.
pub(crate) fn build(ws: &Workspace, host: &str) -> Result<()> {
    let mirror = mirror();
    let suite = suite();
    if !Path::new("/usr/sbin/debootstrap").is_file() {
        crate::test::apt_install(&["debootstrap"])?;
    }
    for img in IMAGES {
        let mut parts: Vec<Vec<u8>> = vec![
            BUILDER_VERSION.into(),
            mirror.clone().into(),
            suite.clone().into(),
            img.packages.join(",").into(),
            img.cmd.into(),
        ];
        for (src, dst) in img.files {
            let p = ws.root.join(src);
            parts.push(dst.as_bytes().to_vec());
            parts.push(std::fs::read(&p).with_context(|| format!("read {}", p.display()))?);
        }
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        let hash = fnv(&refs);
        let have = cmd::output(docker(host).args([
            "image",
            "inspect",
            "--format",
            "{{ index .Config.Labels \"faasload.inputs\" }}",
            img.tag,
        ]))
        .unwrap_or_default();
        if have == hash {
            println!("    {}: up to date (inputs {hash})", img.tag);
            continue;
        }
        println!(
            "    {}: building (inputs {hash}, suite {suite}, mirror {mirror})",
            img.tag
        );
        let old =
            cmd::output(docker(host).args(["image", "inspect", "--format", "{{.Id}}", img.tag]))
                .ok();
        build_one(ws, host, img, &hash, &mirror, &suite)
            .with_context(|| format!("building {}", img.tag))?;
        // The previous build, now untagged, would only take space (best effort: a
        // container may still use it).
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let _ = cmd::output(docker(host).args(["image", "rm", &old]));
        }
    }
    Ok(())
}

fn build_one(
    ws: &Workspace,
    host: &str,
    img: &Image,
    hash: &str,
    mirror: &str,
    suite: &str,
) -> Result<()> {
    let short = img
        .tag
        .split(['/', ':'])
        .nth(1)
        .context("image tag without a name")?;
    let dir = Path::new(WORK).join(short);
    let root = dir.join("rootfs");
    let cache = Path::new(WORK).join("debs");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("remove {}", root.display()))?;
    }
    std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
    std::fs::create_dir_all(&cache).with_context(|| format!("create {}", cache.display()))?;
    let t = Instant::now();
    println!(
        "    [1/3] debootstrap --variant=minbase {suite} + {}",
        img.packages.join(" ")
    );
    cmd::run(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", img.packages.join(",")))
            .arg(format!("--cache-dir={}", cache.display()))
            .arg(suite)
            .arg(&root)
            .arg(mirror),
    )?;
    println!("          {:.0} s", t.elapsed().as_secs_f64());
    println!("    [2/3] proxy, launcher, trimming docs and caches");
    for (src, dst) in img.files {
        let to = root.join(dst);
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::copy(ws.root.join(src), &to)
            .with_context(|| format!("copy {src} to {}", to.display()))?;
    }
    for junk in [
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "var/cache/apt",
        "var/lib/apt/lists",
        "var/log",
    ] {
        let p = root.join(junk);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("remove {}", p.display()))?;
            std::fs::create_dir_all(&p)?;
        }
    }
    std::fs::create_dir_all(root.join("action"))?;
    let t = Instant::now();
    println!("    [3/3] docker import -> {}", img.tag);
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("start tar")?;
    let status = docker(host)
        .args(["import"])
        .args(["--change", &format!("CMD {}", img.cmd)])
        .args(["--change", "EXPOSE 8080"])
        .args(["--change", "WORKDIR /action"])
        .args(["--change", "ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1"])
        .args(["--change", &format!("LABEL faasload.inputs={hash}")])
        .args(["-", img.tag])
        .stdin(tar.stdout.take().context("tar stdout")?)
        .stdout(Stdio::null())
        .status()
        .context("start docker import")?;
    let tar_status = tar.wait().context("wait for tar")?;
    if !status.success() || !tar_status.success() {
        bail!("docker import failed ({status}, tar {tar_status})");
    }
    println!("          {:.0} s", t.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&root).with_context(|| format!("remove {}", root.display()))?;
    Ok(())
}
