//! End-to-end tests of `faasload trace`: the real binary converts the sample files in the
//! public column formats (config/traces/), synthesises traces, checks and summarises
//! them; the results are read back through the library's trace loader.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faasload_results::store::LoadStatus;
use faasload_trace::{Invocation, Trace, load};
use faasload_tests::{bin, last_load, require_root};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("trace")
        .args(args)
        .output()
        .expect("run faasload")
}

fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "faasload trace {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

const AZ: &str = "config/traces/azure2019/invocations_per_function_md.anon.d01.csv";

/// The source counts of the sample: (owner, function hash) -> counts per minute.
fn source_counts(path: &Path) -> Vec<(String, Vec<u64>)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[2].to_string(),
                f[4..].iter().map(|c| c.parse().unwrap()).collect(),
            )
        })
        .collect()
}

/// Converts the Azure 2019 sample (from the repository's root) with `extra` options.
fn convert_sample(out: &Path, extra: &[&str]) -> Trace {
    let o = Command::new(bin())
        .current_dir(repo(""))
        .args(["trace", "convert", "azure2019", AZ])
        .args(extra)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    load(out).unwrap()
}

fn convert_az(dir: &Path, law: &str, seed: &str, extra: &[&str]) -> Vec<Invocation> {
    let out = dir.join(format!("az-{law}-{seed}.yaml"));
    let mut args = vec!["--law", law, "--seed", seed];
    args.extend_from_slice(extra);
    convert_sample(&out, &args).invocations().collect()
}

#[test]
fn azure2019_every_law_keeps_each_minute_count_and_arrivals_inside_their_minute() {
    let dir = tempfile::tempdir().unwrap();
    let src = source_counts(&repo(AZ));
    for law in ["equidistant", "poisson", "exponential"] {
        let t = convert_sample(&dir.path().join(format!("{law}.yaml")), &["--law", law]);
        // Functions appear in the file's order; each name starts with its hash prefix.
        let mut got: Vec<Vec<u64>> = vec![vec![0; 1440]; t.functions.len()];
        let mut n = 0u64;
        for inv in t.invocations() {
            let m = (inv.at_ns / 60_000_000_000) as usize;
            assert!(
                m < 1440,
                "{law}: arrival at {} ns is past the day",
                inv.at_ns
            );
            got[inv.function as usize][m] += 1;
            n += 1;
        }
        assert_eq!(t.functions.len(), src.len());
        for (i, (hash, counts)) in src.iter().enumerate() {
            assert!(
                t.functions[i].name.contains(&hash[..8]),
                "{law}: order of functions"
            );
            assert_eq!(&got[i], counts, "{law}: per-minute counts of {hash}");
        }
        assert_eq!(n, src.iter().flat_map(|(_, c)| c).sum::<u64>());
    }
}

#[test]
fn azure2019_phases_differ_between_functions() {
    let dir = tempfile::tempdir().unwrap();
    let v = convert_az(dir.path(), "equidistant", "7", &[]);
    // Offset of each function's first arrival inside its minute.
    let mut first: HashMap<u32, u64> = HashMap::new();
    for i in &v {
        first.entry(i.function).or_insert(i.at_ns % 60_000_000_000);
    }
    let mut offs: Vec<u64> = first.values().copied().collect();
    assert!(offs.len() >= 4);
    assert!(
        offs.iter().all(|&o| o > 0),
        "an arrival at the start of a minute: {offs:?}"
    );
    offs.sort_unstable();
    offs.dedup();
    assert_eq!(offs.len(), first.len(), "two functions share a phase");
}

#[test]
fn azure2019_same_seed_same_trace_other_seed_other_trace() {
    let dir = tempfile::tempdir().unwrap();
    let a = convert_az(dir.path(), "poisson", "11", &[]);
    let b = convert_az(dir.path(), "poisson", "11", &[]);
    let c = convert_az(dir.path(), "poisson", "12", &[]);
    assert_eq!(a, b);
    assert_eq!(a.len(), c.len());
    assert_ne!(a, c);
}

#[test]
fn azure2019_top_window_scale_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("top.yaml");
    let t = convert_sample(
        &out,
        &[
            "--top",
            "2",
            "--from-minute",
            "60",
            "--to-minute",
            "120",
            "--scale",
            "0.5",
            "--memory",
            "config/traces/azure2019/app_memory_percentiles.anon.d01.csv",
            "--durations",
            "config/traces/azure2019/function_durations_percentiles.anon.d01.csv",
        ],
    );
    assert_eq!(t.functions.len(), 2);
    let src = source_counts(&repo(AZ));
    let mut window: Vec<(u64, &str)> = src
        .iter()
        .map(|(h, c)| (c[60..120].iter().sum::<u64>(), h.as_str()))
        .collect();
    window.sort_by(|a, b| b.0.cmp(&a.0));
    let want: u64 = window[..2]
        .iter()
        .map(|w| (w.0 as f64 * 0.5).round() as u64)
        .sum();
    let v: Vec<Invocation> = t.invocations().collect();
    assert_eq!(v.len() as u64, want);
    assert!(v.iter().all(|i| i.at_ns < 3_600_000_000_000));
    // The fourth function (300 MB, alone in its app) is the busiest of the window.
    let f = t
        .functions
        .iter()
        .find(|f| f.name.contains(&src[3].0[..10]))
        .unwrap();
    assert_eq!(f.memory_mb, 300);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn malformed_rows_fail_with_file_line_or_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let header = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\n";
    let f = write(
        dir.path(),
        "bad.csv",
        &format!(
            "{header}o1,a1,f1,http,1,2,3\no1,a1,f2,http,1,2\no1,a1,f3,http,1,-2,3\no1,a1,f4,http,1,x,3\no1,a1,f5,http,0,0,4\n"
        ),
    );
    let out = dir.path().join("t.yaml");
    let o = run(&[
        "convert",
        "azure2019",
        f.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.csv:3"), "{err}");
    let o = ok(&[
        "convert",
        "azure2019",
        f.to_str().unwrap(),
        "--on-bad-row",
        "skip",
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    for (line, what) in [(3, "columns"), (4, "negative"), (5, "'x'")] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("bad.csv:{line}:")) && l.contains(what)),
            "line {line} ({what}) not reported: {err}"
        );
    }
    assert!(err.contains("3 skipped"), "{err}");
    let t = load(&out).unwrap();
    assert_eq!(t.invocations().count(), 6 + 4);
}

#[test]
fn tsv_to_yaml_to_tsv_is_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let src = repo("config/traces/faasload-sample");
    let y = dir.path().join("s.yaml");
    let back = dir.path().join("back");
    ok(&[
        "convert",
        "tsv-to-yaml",
        src.to_str().unwrap(),
        "-o",
        y.to_str().unwrap(),
    ]);
    ok(&[
        "convert",
        "yaml-to-tsv",
        y.to_str().unwrap(),
        "-o",
        back.to_str().unwrap(),
    ]);
    let mut n = 0;
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "README.md" || name == "catalog.yaml" {
            continue;
        }
        let a = std::fs::read(e.path()).unwrap();
        let b =
            std::fs::read(back.join(&name)).unwrap_or_else(|_| panic!("{name:?} not written back"));
        assert_eq!(a, b, "{name:?} differs");
        n += 1;
    }
    assert!(n >= 2);
    assert_eq!(std::fs::read_dir(&back).unwrap().count(), n);
}

#[test]
fn azure2021_and_huawei_convert_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let a21 = dir.path().join("a21.yaml");
    let o = Command::new(bin())
        .current_dir(repo(""))
        .args(["trace", "convert", "azure2021"])
        .arg("config/traces/azure2021/AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt")
        .arg("-o")
        .arg(&a21)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(load(&a21).unwrap().invocations().count(), 300);

    let hw = dir.path().join("hw.yaml");
    let o = Command::new(bin())
        .current_dir(repo(""))
        .args([
            "trace",
            "convert",
            "huawei",
            "config/traces/huawei/requests_per_second_day_00.csv",
        ])
        .arg("-o")
        .arg(&hw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(repo("config/traces/huawei/requests_per_second_day_00.csv"))
        .unwrap();
    let mut want: HashMap<(String, u64), u64> = HashMap::new();
    for (s, l) in text.lines().skip(1).enumerate() {
        for (id, c) in l.split(',').skip(2).enumerate() {
            let c: u64 = if c.is_empty() { 0 } else { c.parse().unwrap() };
            if c > 0 {
                *want.entry((format!("fn{id}"), s as u64)).or_insert(0) += c;
            }
        }
    }
    let t = load(&hw).unwrap();
    let mut got: HashMap<(String, u64), u64> = HashMap::new();
    for i in t.invocations() {
        let f = t.functions[i.function as usize].name.clone();
        *got.entry((f, i.at_ns / 1_000_000_000)).or_insert(0) += 1;
    }
    assert_eq!(got, want);
}

#[test]
fn synth_laws_seeds_tsv_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    ok(&[
        "synth",
        "-o",
        &p("c.yaml"),
        "--law",
        "conditional",
        "--tenants",
        "3",
        "--functions",
        "2",
        "--mean-iat",
        "2",
        "--span",
        "100",
    ]);
    let t = load(p("c.yaml")).unwrap();
    let v: Vec<Invocation> = t.invocations().collect();
    assert_eq!(v.len(), 3 * 2 * 50, "conditional keeps the exact count");
    assert!(v.iter().all(|i| i.at_ns < 100_000_000_000));

    ok(&[
        "synth",
        "-o",
        &p("p.yaml"),
        "--tsv",
        &p("ptsv"),
        "--mean-iat",
        "5",
        "--span",
        "60",
        "--seed",
        "3",
        "--param",
        "n={range_int: {min: 1, max: 9}}",
    ]);
    ok(&[
        "synth",
        "-o",
        &p("p2.yaml"),
        "--mean-iat",
        "5",
        "--span",
        "60",
        "--seed",
        "3",
        "--param",
        "n={range_int: {min: 1, max: 9}}",
    ]);
    let a: Vec<Invocation> = load(p("p.yaml")).unwrap().invocations().collect();
    let b: Vec<Invocation> = load(p("p2.yaml")).unwrap().invocations().collect();
    assert_eq!(a, b, "same seed, same trace");
    assert!(
        a.iter()
            .all(|i| (1..=9).contains(&i.params["n"].as_i64().unwrap()))
    );
    let firsts: Vec<u64> = (0..4)
        .map(|k| {
            a.iter()
                .find(|i| i.user * 2 + i.function == k)
                .unwrap()
                .at_ns
        })
        .collect();
    let mut d = firsts.clone();
    d.dedup();
    assert_eq!(d.len(), 4, "periodic phases differ: {firsts:?}");
    assert_eq!(std::fs::read_dir(p("ptsv")).unwrap().count(), 4);

    let o = ok(&["stats", &p("c.yaml"), "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["invocations"], 300);
    assert_eq!(s["per_user"][0][1], 100);
    let o = ok(&["check", &p("c.yaml")]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok"));
}

#[test]
fn check_reports_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.yaml",
        "users:\n  - name: u\nfunctions:\n  - {name: f, kind: \"python:3\", code: nope.py, memory: 128}\n",
    );
    let o = run(&["check", f.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.yaml:4:"), "{err}");
}

#[test]
fn azure2019_names_have_one_kind_letter_and_the_hash_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let t = convert_sample(&dir.path().join("names.yaml"), &[]);
    let text = std::fs::read_to_string(repo(AZ)).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    // Owners in order of first appearance become users `o-` + 10 hash characters.
    let mut owners: Vec<&str> = Vec::new();
    for r in &rows {
        if !owners.contains(&r[0]) {
            owners.push(r[0]);
        }
    }
    let users: Vec<&str> = t.users.iter().map(|u| u.name.as_str()).collect();
    let want: Vec<String> = owners.iter().map(|h| format!("o-{}", &h[..10])).collect();
    assert_eq!(users, want);
    let functions: Vec<&str> = t.functions.iter().map(|f| f.name.as_str()).collect();
    let want: Vec<String> = rows.iter().map(|r| format!("f-{}", &r[2][..10])).collect();
    assert_eq!(functions, want);
    let mut unique = functions.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), functions.len());
}

#[test]
fn synth_conditional_keeps_its_parameter_specs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let synth = |out: &str| {
        ok(&[
            "synth",
            "-o",
            &p(out),
            "--law",
            "conditional",
            "--tenants",
            "2",
            "--functions",
            "2",
            "--mean-iat",
            "1",
            "--span",
            "60",
            "--param",
            "n={range_int: {min: 1, max: 9}}",
            "--param",
            "mode=fast",
        ])
    };
    synth("c.yaml");
    synth("c2.yaml");
    let a: Vec<Invocation> = load(p("c.yaml")).unwrap().invocations().collect();
    assert_eq!(a.len(), 2 * 2 * 60, "conditional keeps the exact count");
    let mut seen = std::collections::BTreeSet::new();
    for i in &a {
        let n = i.params.get("n").and_then(|v| v.as_i64());
        assert!(n.is_some_and(|n| (1..=9).contains(&n)), "{i:?}");
        seen.insert(n.unwrap());
        assert_eq!(
            i.params.get("mode"),
            Some(&serde_json::json!("fast")),
            "{i:?}"
        );
    }
    assert!(seen.len() > 5, "n is drawn, not fixed: {seen:?}");
    let b: Vec<Invocation> = load(p("c2.yaml")).unwrap().invocations().collect();
    assert_eq!(a, b, "same seed, same draws");
}

/// Counts of the sample per function (file order) and minute, for minutes `[from, to)`.
fn window_counts(from: usize, to: usize) -> Vec<Vec<u64>> {
    source_counts(&repo(AZ))
        .into_iter()
        .map(|(_, c)| c[from..to].to_vec())
        .collect()
}

#[test]
fn load_dry_run_walks_a_converted_window_with_its_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.yaml");
    let t = convert_sample(&out, &["--from-minute", "600", "--to-minute", "660"]);
    let o = Command::new(bin())
        .args(["load", "--dry-run"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let want = window_counts(600, 660);
    let total: u64 = want.iter().flatten().sum();
    let header = text.lines().next().unwrap();
    assert!(
        header.contains(&format!(": {total} invocations from ")) && header.contains("nothing sent"),
        "{header}"
    );
    let lines: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(lines.len(), t.functions.len(), "{text}");
    for (i, l) in lines.iter().enumerate() {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f[1], t.functions[i].name, "{l}");
        assert_eq!(
            f[2].parse::<u64>().unwrap(),
            want[i].iter().sum::<u64>(),
            "{l}"
        );
    }
    // A trace with a defect is refused before anything is walked.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "users: [{name: u}]\nfunctions: []\nstreams: [{user: u, function: nope, rate: 1, duration: 1}]\n",
    );
    let o = Command::new(bin())
        .args(["load", "--dry-run"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.yaml:3:"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A converted two-minute window of the sample is replayed on the embedded platform: every
/// scheduled invocation is sent once, succeeds, and the invocations per function per
/// minute equal the sample's counts.
#[test]
fn converted_azure2019_window_replays_with_its_per_minute_counts() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    // Every function becomes the no-op action: the test is about the schedule.
    let mapping = write(
        dir.path(),
        "noop.yaml",
        "rules:\n  - {kind: \"python:3\", code: python/noop.py}\n",
    );
    let out = dir.path().join("w.yaml");
    let (from, to) = (60, 62);
    let t = convert_sample(
        &out,
        &[
            "--law",
            "poisson",
            "--from-minute",
            &from.to_string(),
            "--to-minute",
            &to.to_string(),
            "--mapping",
            mapping.to_str().unwrap(),
        ],
    );
    let schedule: Vec<Invocation> = t.invocations().collect();
    let want = window_counts(from, to);
    assert_eq!(
        schedule.len() as u64,
        want.iter().flatten().sum::<u64>(),
        "converted counts"
    );
    assert!(schedule.len() >= 20, "a window with some load");

    let db = dir.path().join("r.db");
    let o = Command::new(bin())
        .arg("load")
        .arg(&out)
        .args(["--embedded", "--quiet", "--store"])
        .arg(format!("sqlite://{}", db.display()))
        .env("FAASLOAD_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let (status, rows) = last_load(&db);
    assert_eq!(status, LoadStatus::Completed);
    assert_eq!(
        rows.len(),
        schedule.len(),
        "one row per scheduled invocation"
    );
    // The run's start, from any row: intended instant minus its schedule offset.
    let start = rows[0].intended_epoch_ns - schedule[rows[0].seq as usize].at_ns as i64;
    let mut got = vec![vec![0u64; to - from]; t.functions.len()];
    let mut seqs: Vec<i64> = Vec::new();
    for r in &rows {
        assert_eq!(r.class, "success", "{r:?}");
        let inv = &schedule[r.seq as usize];
        let f = &t.functions[inv.function as usize];
        assert_eq!(r.function, f.name, "{r:?}");
        assert_eq!(r.user, t.users[inv.user as usize].name, "{r:?}");
        // Sent at (or after) its intended instant, which is the schedule's.
        assert!(
            (r.intended_epoch_ns - start - inv.at_ns as i64).abs() <= 1_000_000,
            "{r:?} vs {inv:?}"
        );
        let sent = r.sent_epoch_ns.expect("sent");
        assert!(sent >= r.intended_epoch_ns, "{r:?}");
        let minute = ((r.intended_epoch_ns - start) / 60_000_000_000) as usize;
        got[inv.function as usize][minute] += 1;
        seqs.push(r.seq);
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..schedule.len() as i64).collect::<Vec<_>>(),
        "each sent once"
    );
    assert_eq!(got, want, "invocations per function per minute");
}
