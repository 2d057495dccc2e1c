//! End-to-end tests of `faasload generate` (root): a sweep of 2 functions x 2 memory
//! limits x several inputs on the embedded platform with the monitor, every row checked
//! against the plan; SIGKILL at random points with `--resume` each time, compared with
//! an uninterrupted run of the same seed; SIGTERM's checkpoint and clean exit; corrupt
//! and stale checkpoints refused; bad configs failing before anything runs.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use faasload_generator::checkpoint;
use faasload_generator::{PlannedRun, parse_config, plan};
use faasload_platform::config::GUEST_AUTH;
use faasload_results::store::{LoadStatus, Store, StoredRow};
use faasload_tests::loader::{rt, text};
use faasload_tests::platform::{TestPlatform, functions, require_root};
use faasload_tests::suite::{start_platform, store_with_inputs};
use rand::{RngExt, SeedableRng};

fn repo() -> PathBuf {
    functions().join("..")
}

/// 2 functions x 2 memory limits x 4 inputs x `reps`, at most 2 in flight.
fn config(dir: &Path, seed: u64, reps: u64) -> PathBuf {
    let p = dir.join("sweep.yaml");
    std::fs::write(
        &p,
        format!(
            "seed: {seed}
repetitions: {reps}
memory_mb: [128, 256]
pacing: {{max_concurrent: 2}}
functions:
  - action: py_json
    inputs: {{kind: json, count: 4}}
    parameters:
      indent: {{ensemble: {{values: [0, 2, 4]}}}}
  - action: py_compress
    inputs: {{kind: text, count: 4}}
    parameters:
      level: {{range_int: {{min: 1, max: 9}}}}
"
        ),
    )
    .unwrap();
    p
}

fn planned(cfg: &Path) -> Vec<PlannedRun> {
    let text = std::fs::read_to_string(cfg).unwrap();
    plan(&parse_config(&text, "sweep.yaml", None).unwrap())
}

/// `faasload generate` against `platform` (None: --embedded with the monitor).
fn command(
    cfg: &Path,
    db: &Path,
    state: &Path,
    platform: Option<&TestPlatform>,
    store_dir: &Path,
    extra: &[&str],
) -> Command {
    let mut c = Command::new(faasload_tests::bin());
    c.arg("generate")
        .arg(cfg)
        .arg("--store")
        .arg(format!("sqlite://{}", db.display()))
        .arg("--state")
        .arg(state)
        .args(["--quiet"])
        .args(extra)
        .env("FAASLOAD_STORE_DIR", store_dir)
        .env("FAASLOAD_LOG", "warn")
        .env_remove("__OW_API_HOST")
        .env_remove("__OW_API_KEY")
        .env("WSK_CONFIG_FILE", "/nonexistent")
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match platform {
        Some(p) => {
            c.args(["--no-monitor", "--api-host"])
                .arg(format!("http://{}", p.addr))
                .args(["--auth", GUEST_AUTH]);
        }
        None => {
            c.arg("--embedded");
        }
    }
    c
}

/// The status and rows of the only load of `db`.
fn stored(db: &Path) -> (LoadStatus, Vec<StoredRow>) {
    rt().block_on(async {
        let s = Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let loads = s.loads().await.unwrap();
        assert_eq!(loads.len(), 1, "{loads:?}");
        let rows = s.rows(loads[0].id).await.unwrap();
        let st = loads[0].status;
        s.close().await;
        (st, rows)
    })
}

/// What must be identical between two generations of one seed: the sequence of
/// (seq, function, variant, input, parameters).
type RunIdentity = (i64, String, String, Option<String>, Vec<(String, String)>);

fn identity(rows: &[StoredRow]) -> Vec<RunIdentity> {
    rows.iter()
        .map(|r| {
            let mut p = r.params.clone();
            p.sort();
            (
                r.seq,
                r.function.clone(),
                r.action.clone(),
                r.input.clone(),
                p,
            )
        })
        .collect()
}

fn plan_identity(p: &[PlannedRun]) -> Vec<RunIdentity> {
    p.iter()
        .map(|r| {
            let mut ps: Vec<(String, String)> = r
                .params
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        match v {
                            serde_json::Value::String(s) => s.clone(),
                            o => o.to_string(),
                        },
                    )
                })
                .collect();
            ps.sort();
            (
                r.seq as i64,
                r.action.clone(),
                r.variant.clone(),
                r.input.clone(),
                ps,
            )
        })
        .collect()
}

/// Every row of a Parquet file, by column name.
fn parquet_rows(path: &Path) -> Vec<std::collections::HashMap<String, parquet::record::Field>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    r.get_row_iter(None)
        .unwrap()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(n, f)| (n.clone(), f.clone()))
                .collect()
        })
        .collect()
}

fn newest(state: &Path) -> checkpoint::Checkpoint {
    checkpoint::newest(state).unwrap().expect("a checkpoint").1
}

#[test]
fn a_sweep_on_the_embedded_platform_has_every_row_measured() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 5, 1);
    let db = dir.path().join("d.db");
    let state = dir.path().join("state");
    let store = dir.path().join("unused-store");
    let o = command(&cfg, &db, &state, None, &store, &[])
        .env_remove("FAASLOAD_STORE_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let plan = planned(&cfg);
    assert_eq!(plan.len(), 16);
    let (status, rows) = stored(&db);
    assert_eq!(status, LoadStatus::Completed);
    assert_eq!(
        identity(&rows),
        plan_identity(&plan),
        "rows follow the plan"
    );
    for r in &rows {
        let ctx = format!("{r:?}");
        assert_eq!(r.class, "success", "{ctx}");
        assert!(!r.failed, "{ctx}");
        let mem: i64 = r.action.rsplit('_').next().unwrap().parse().unwrap();
        assert_eq!(r.memory_mb, Some(mem), "the variant's memory limit: {ctx}");
        assert!(r.input_bytes.is_some_and(|b| b > 0), "input size: {ctx}");
        assert!(r.duration_ms.is_some() && r.cold.is_some(), "{ctx}");
        assert_eq!(r.monitor_missing, None, "the monitor answered: {ctx}");
        assert!(r.cpu_ns.is_some_and(|c| c > 0), "CPU measured: {ctx}");
        assert!(
            r.mem_peak_bytes.is_some_and(|m| m > 0),
            "memory measured: {ctx}"
        );
        assert!(r.outputsize.is_some_and(|s| s > 0), "{ctx}");
    }
    // Each variant started cold once at least; the same input has the same size.
    for v in [
        "py_json_128",
        "py_json_256",
        "py_compress_128",
        "py_compress_256",
    ] {
        assert!(
            rows.iter().any(|r| r.action == v && r.cold == Some(true)),
            "{v} never cold"
        );
    }
    // The dataset exports with one typed column per parameter, one row per run.
    let out = dir.path().join("d.parquet");
    let o = Command::new(faasload_tests::bin())
        .arg("export")
        .arg(format!("sqlite://{}", db.display()))
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let exported = parquet_rows(&out);
    assert_eq!(exported.len(), 16);
    for (e, r) in exported.iter().zip(&rows) {
        use parquet::record::Field;
        assert_eq!(e["seq"], Field::Long(r.seq), "{e:?}");
        assert_eq!(e["function"], Field::Str(r.function.clone()), "{e:?}");
        assert_eq!(e["memory_mb"], Field::Long(r.memory_mb.unwrap()), "{e:?}");
        assert_eq!(
            e["input_bytes"],
            Field::Long(r.input_bytes.unwrap()),
            "{e:?}"
        );
        assert_eq!(e["kind"], Field::Str("python:3".into()), "{e:?}");
        let (name, value) = &r.params[0];
        let want = Field::Long(value.parse().unwrap());
        assert_eq!(e[&format!("param_{name}")], want, "{e:?}");
        let other = if name == "indent" {
            "param_level"
        } else {
            "param_indent"
        };
        assert_eq!(e[other], Field::Null, "{e:?}");
    }
    let c = newest(&state);
    assert_eq!((c.next_seq, c.total, c.reason.as_str()), (16, 16, "end"));
    // A finished generation is not started again by accident.
    let o = command(&cfg, &db, &state, None, &store, &[])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--resume to go on with it"),
        "{}",
        text(&o)
    );
}

/// Waits for `c` at most `t`; kills it after.
fn wait(mut c: Child, t: Duration) -> Output {
    let end = Instant::now() + t;
    while c.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = c.kill();
            let o = c.wait_with_output().unwrap();
            panic!("generator still running after {t:?}: {}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    c.wait_with_output().unwrap()
}

#[test]
fn sigkill_at_random_points_then_resume_gives_the_uninterrupted_dataset() {
    require_root();
    let inputs = store_with_inputs("json:4,text:4");
    let platform = start_platform(inputs.path());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 77, 2);
    let n = planned(&cfg).len();
    assert_eq!(n, 32);

    // Uninterrupted.
    let (db_a, state_a) = (dir.path().join("a.db"), dir.path().join("a.state"));
    let o = command(&cfg, &db_a, &state_a, Some(&platform), inputs.path(), &[])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (status_a, rows_a) = stored(&db_a);
    assert_eq!(status_a, LoadStatus::Completed);

    // Killed at random instants, resumed each time.
    let (db_b, state_b) = (dir.path().join("b.db"), dir.path().join("b.state"));
    let mut rng = rand_pcg::Pcg64::seed_from_u64(20261128);
    let mut mid_run_kills = 0;
    let mut first = true;
    for _ in 0..5 {
        let extra: &[&str] = if first {
            &["--checkpoint-runs", "3"]
        } else {
            &["--checkpoint-runs", "3", "--resume"]
        };
        let child = command(&cfg, &db_b, &state_b, Some(&platform), inputs.path(), extra)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1500)));
        // SAFETY: our own child, by PID.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let o = wait(child, Duration::from_secs(30));
        if o.status.success() {
            break; // finished before the kill
        }
        first = false;
        let (_, rows) = stored(&db_b);
        if !rows.is_empty() && rows.len() < n {
            mid_run_kills += 1;
        }
    }
    assert!(
        mid_run_kills >= 2,
        "the kills must land mid-generation to test anything ({mid_run_kills})"
    );
    let o = command(
        &cfg,
        &db_b,
        &state_b,
        Some(&platform),
        inputs.path(),
        &["--resume"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (status_b, rows_b) = stored(&db_b);
    assert_eq!(status_b, LoadStatus::Completed);
    let seqs: Vec<i64> = rows_b.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (0..n as i64).collect::<Vec<_>>(),
        "no run missing or twice"
    );
    assert_eq!(
        identity(&rows_b),
        identity(&rows_a),
        "same dataset as uninterrupted"
    );
    assert!(rows_b.iter().all(|r| r.class == "success"), "{rows_b:?}");
}

#[test]
fn sigterm_checkpoints_and_bad_checkpoints_are_refused() {
    require_root();
    let inputs = store_with_inputs("json:4,text:4");
    let platform = start_platform(inputs.path());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 9, 3);
    let n = planned(&cfg).len();
    let (db, state) = (dir.path().join("d.db"), dir.path().join("state"));
    let child = command(
        &cfg,
        &db,
        &state,
        Some(&platform),
        inputs.path(),
        &["--checkpoint-runs", "1000", "--checkpoint-secs", "1000"],
    )
    .spawn()
    .unwrap();
    // Once a few runs are committed, SIGTERM.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if db.exists() {
            let (_, rows) = stored(&db);
            if rows.len() >= 3 {
                break;
            }
        }
        assert!(Instant::now() < end, "no run committed in 60 s");
    }
    // SAFETY: our own child, by PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = wait(child, Duration::from_secs(60));
    assert!(o.status.success(), "SIGTERM exits cleanly: {}", text(&o));
    assert!(text(&o).contains("INTERRUPTED"), "{}", text(&o));
    let c = newest(&state);
    assert_eq!(c.reason, "signal");
    let (status, rows) = stored(&db);
    assert_eq!(status, LoadStatus::Interrupted);
    assert!(rows.len() < n, "stopped early: {} of {n}", rows.len());
    assert_eq!(
        c.next_seq,
        rows.len() as u64,
        "the runs in flight finished and are in the checkpoint"
    );

    let run = |cfg: &Path, db: &Path, extra: &[&str]| {
        command(cfg, db, &state, Some(&platform), inputs.path(), extra)
            .output()
            .unwrap()
    };
    // Without --resume: refused, the generation is named.
    let o = run(&cfg, &db, &[]);
    assert!(
        !o.status.success() && text(&o).contains("--resume"),
        "{}",
        text(&o)
    );
    // Another seed: stale.
    let o = run(&cfg, &db, &["--resume", "--seed", "10"]);
    assert!(
        !o.status.success() && text(&o).contains("stale") && text(&o).contains("configuration"),
        "{}",
        text(&o)
    );
    // Another store: stale.
    let other = dir.path().join("other.db");
    let o = run(&cfg, &other, &["--resume"]);
    assert!(
        !o.status.success() && text(&o).contains("stale") && text(&o).contains("not in"),
        "{}",
        text(&o)
    );
    // A corrupt newest checkpoint: refused, never skipped.
    let (_, path) = checkpoint::list(&state).unwrap().pop().unwrap();
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    let i = bad.iter().position(|b| *b == b'"').unwrap() + 3;
    bad[i] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let o = run(&cfg, &db, &["--resume"]);
    assert!(
        !o.status.success() && text(&o).contains("corrupt") && text(&o).contains("checksum"),
        "{}",
        text(&o)
    );
    let (_, rows_now) = stored(&db);
    assert_eq!(
        rows_now.len(),
        rows.len(),
        "nothing ran on a refused resume"
    );
    std::fs::write(&path, &good).unwrap();
    // Runs recorded after the checkpoint (as a crash between commit and checkpoint
    // leaves them): beyond the safety bound, refused; else deleted and run again.
    add_rows_after(&db, c.next_seq, 2);
    let o = run(&cfg, &db, &["--resume", "--max-lost", "1"]);
    assert!(
        !o.status.success() && text(&o).contains("safety bound 1"),
        "{}",
        text(&o)
    );
    // A checkpoint writer killed before its rename left its temporary file: resuming
    // removes it.
    let orphan = state.join(format!(".checkpoint-{:012}.json.tmp", c.next_seq + 1));
    std::fs::write(&orphan, "{\"torn").unwrap();
    // Resumed: completes with every run once, and the same sequence as the plan.
    let o = run(&cfg, &db, &["--resume"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!orphan.exists(), "{} left behind", orphan.display());
    assert!(text(&o).contains("deleted 2 lost runs"), "{}", text(&o));
    let (status, rows) = stored(&db);
    assert_eq!(status, LoadStatus::Completed);
    assert_eq!(identity(&rows), plan_identity(&planned(&cfg)));
}

/// Writes `n` bogus runs with seqs from `from` into the only load of `db`.
fn add_rows_after(db: &Path, from: u64, n: u64) {
    use faasload_protocol::record::OutcomeClass;
    use faasload_results::store::{MonitorReading, RunRow};
    rt().block_on(async {
        let s = Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let id = s.loads().await.unwrap()[0].id;
        let rows: Vec<RunRow> = (from..from + n)
            .map(|seq| RunRow {
                seq,
                user: "generator".into(),
                namespace: "_".into(),
                function: "py_json".into(),
                action: "py_json_128".into(),
                input: Some("bogus".into()),
                input_bytes: None,
                params: serde_json::Map::new(),
                intended_ns: 0,
                sent_ns: None,
                answered_ns: None,
                queue_ns: 0,
                run_start_epoch_ms: 0,
                class: OutcomeClass::ServerError,
                http_status: None,
                error: Some("bogus".into()),
                polls: 0,
                retries: 0,
                record: None,
                monitor: MonitorReading::default(),
            })
            .collect();
        s.write_now(id, &mut Default::default(), &rows)
            .await
            .unwrap();
        s.close().await;
    });
}

#[test]
fn interval_pacing_and_the_cold_policy() {
    require_root();
    let inputs = store_with_inputs("json:3");
    let platform = start_platform(inputs.path());
    let dir = tempfile::tempdir().unwrap();
    for (pacing, cold) in [
        ("{interval_ms: 400}", "warm"),
        ("{max_concurrent: 1}", "cold"),
    ] {
        let cfg = dir.path().join(format!("{cold}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "seed: 3\nrepetitions: 2\nmemory_mb: [192]\npacing: {pacing}\ncold: {cold}\n\
                 functions:\n  - action: py_json\n    inputs: {{kind: json, count: 3}}\n"
            ),
        )
        .unwrap();
        let db = dir.path().join(format!("{cold}.db"));
        let state = dir.path().join(format!("{cold}.state"));
        let o = command(&cfg, &db, &state, Some(&platform), inputs.path(), &[])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let (_, rows) = stored(&db);
        assert_eq!(rows.len(), 6);
        assert!(rows.iter().all(|r| r.class == "success"), "{rows:?}");
        if cold == "cold" {
            // A new revision before every run: every run starts a container.
            assert!(rows.iter().all(|r| r.cold == Some(true)), "{rows:?}");
        } else {
            // One run every 400 ms of the intended clock, exactly; containers reused (runs
            // overlap when a cold start is slower than 400 ms, so not every one is warm).
            for w in rows.windows(2) {
                assert_eq!(w[1].intended_epoch_ns - w[0].intended_epoch_ns, 400_000_000);
            }
            assert!(rows.iter().any(|r| r.cold == Some(false)), "{rows:?}");
        }
    }
}

#[test]
fn bad_configs_fail_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "memory_mb: [128]\nfunctions:\n  - action: py_sort\n    parameters:\n      n: {range_int: {min: 9, max: 1}}\n",
            "sweep.yaml:5:",
            "min 9 > max 1",
        ),
        (
            "memory_mb: [128]\nfunctions:\n  - action: py_sort\n    parameters:\n      n: {ensemble: {values: []}}\n",
            "sweep.yaml:5:",
            "no values",
        ),
        (
            "memory_mb: [128]\nfunctions:\n  - action: py_sort\n    inputs: {kind: hologram, count: 2}\n",
            "sweep.yaml:4:",
            "unknown input kind 'hologram'",
        ),
        (
            "memory_mb: [128]\nfunctions:\n  - action: py_sort\n  - action: no_such_function\n",
            "sweep.yaml:4:",
            "unknown function 'no_such_function'",
        ),
        (
            "memory_mb: [128, -5]\nfunctions:\n  - action: py_sort\n",
            "sweep.yaml:1:",
            "memory limit",
        ),
    ];
    for (yaml, at, what) in cases {
        let cfg = dir.path().join("sweep.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        let db = dir.path().join("never.db");
        let state = dir.path().join("never.state");
        let o = Command::new(faasload_tests::bin())
            .arg("generate")
            .arg("sweep.yaml")
            .arg("--store")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--state")
            .arg(&state)
            .args(["--api-host", "http://127.0.0.1:9", "--auth", GUEST_AUTH])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        assert!(t.contains(at) && t.contains(what), "want {at} {what}: {t}");
        assert!(!db.exists() && !state.exists(), "nothing may start: {t}");
    }
}

/// Cgroup directories (any hierarchy) of containers in namespace `ns`.
fn cgroups_of(ns: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
        return out;
    };
    for r in roots.flatten() {
        for sub in ["faasload/platform", "unified/faasload/platform"] {
            let d = r.path().join(sub);
            let d = if d.exists() { d } else { continue };
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().contains(ns) {
                    out.push(e.path());
                }
            }
        }
    }
    out
}

#[test]
fn an_embedded_generation_killed_mid_run_resumes_and_leaves_nothing_behind() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 21, 2);
    let n = planned(&cfg).len();
    let (db, state) = (dir.path().join("d.db"), dir.path().join("state"));
    let ns = format!("gencrash{}", std::process::id());
    let unused = dir.path().join("unused");
    let run = |extra: &[&str]| {
        let mut c = command(&cfg, &db, &state, None, &unused, extra);
        c.env_remove("FAASLOAD_STORE_DIR")
            .args(["--namespace", &ns]);
        c
    };
    let child = run(&["--checkpoint-runs", "2"]).spawn().unwrap();
    // Killed once a checkpoint past the start exists: containers are up (some paused).
    let end = Instant::now() + Duration::from_secs(120);
    while checkpoint::newest(&state)
        .ok()
        .flatten()
        .is_none_or(|(_, c)| c.next_seq < 4)
    {
        assert!(Instant::now() < end, "no progress in 120 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: our own child, by PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let o = wait(child, Duration::from_secs(30));
    assert!(!o.status.success());
    let (_, rows) = stored(&db);
    assert!(rows.len() < n, "killed mid-run: {} of {n}", rows.len());
    let o = run(&["--resume"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (status, rows) = stored(&db);
    assert_eq!(status, LoadStatus::Completed);
    assert_eq!(identity(&rows), plan_identity(&planned(&cfg)));
    assert!(rows.iter().all(|r| r.monitor_missing.is_none()), "{rows:?}");
    // The killed run's containers (paused ones included) and cgroups are gone.
    let left = cgroups_of(&ns);
    assert!(left.is_empty(), "left behind: {left:?}");
}
