//! Activations attributed to containers without any platform notification (an unpatched
//! OpenWhisk invoker), and the container names this needs.
//!
//! Names: each container gets a name, image and labels from dockerd (docker layouts),
//! the kubelet (kubepods layouts) or, failing those, its cgroup (the id). OpenWhisk
//! names its containers `wsk<invoker>_<n>_<namespace>_<action>` (pre-warmed ones
//! `..._prewarm_<kind>`, a name they keep after an action takes them); on Kubernetes the
//! pod name is that name lower-cased with `_` turned into `-`.
//!
//! Method (the `attribute` query): given what the loader knows from the activation
//! record — `namespace`, `name` (the action; `action` would make it a notification),
//! `start` and `end` — the candidates are the containers whose
//! name is for that namespace and action, plus pre-warmed containers (whose name does
//! not tell what they run), except containers whose cgroup appeared after `start` (the
//! platform's replacement pre-warmed container). A pre-warmed container once attributed
//! an activation is bound to that action (OpenWhisk never gives a container to another
//! action); unbound ones are candidates only for cold starts (`"cold": true`, the record's
//! `initTime`) or when `cold` is not given, and for warm starts of an action whose earlier
//! answer was `ambiguous` with the container among the busy (the action may have taken
//! it then). A candidate is *busy* when its CPU time (eBPF per-cgroup
//! on-CPU time, or cgroupfs usage, as sampled every `interval_ms`) grew by at least
//! `min_busy_us` between the last sample at or before `start` and the first sample at or
//! after `end`. Exactly one busy candidate: attributed to it, with the CPU and memory of
//! that window. Several: `ambiguous`, listing them (never a guess). None: `none`.
//!
//! Also watches the freezer (v1 `freezer.state`, v2 `cgroup.events`) so pause/resume of
//! unpatched platforms (`docker pause`) shows in the container table.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use faasload_protocol::monitor::{
    AttributeQuery, Attribution, AttributionMethod, AttributionOutcome, Candidate, NameSource,
    OpenWhiskName, ns_to_secs,
};

use super::docker::DockerNames;
use super::kubernetes::{Kubelet, parse_path};
use super::protocol::average;
use super::state::{Container, Life, Monitor, Sample};

/// A container's name and where it came from.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub name: String,
    pub image: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub source: NameSource,
    /// What the name says under OpenWhisk's naming scheme.
    pub openwhisk: Option<OpenWhiskName>,
}

impl Meta {
    /// A name with its OpenWhisk reading.
    pub(crate) fn new(
        name: String,
        image: Option<String>,
        labels: BTreeMap<String, String>,
        source: NameSource,
    ) -> Meta {
        Meta {
            openwhisk: openwhisk_name(&name),
            name,
            image,
            labels,
            source,
        }
    }
}

/// OpenWhisk's sanitizing of name parts: letters, digits and `_` only.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Reads an OpenWhisk container name: `wsk<inv>_<n>_<rest>` (Docker) or
/// `wsk<inv>-<n>-<rest>` (Kubernetes pods).
pub(crate) fn openwhisk_name(name: &str) -> Option<OpenWhiskName> {
    let name = name.trim_start_matches('/');
    if !name.starts_with("wsk") {
        return None;
    }
    let sep = if name.contains('_') { '_' } else { '-' };
    let mut it = name.splitn(3, sep);
    let invoker = it.next()?.to_string();
    let n = it.next()?.parse().ok()?;
    let rest = it.next()?.to_string();
    let prewarm_kind = rest
        .strip_prefix(&format!("prewarm{sep}"))
        .map(str::to_string);
    Some(OpenWhiskName {
        invoker,
        n,
        rest,
        prewarm_kind,
    })
}

/// Is `ow` a container of `namespace`'s `action`? (The action's last path segment:
/// a package action `pkg/a` runs in containers named for `a`.)
pub(crate) fn is_for(ow: &OpenWhiskName, namespace: &str, action: &str) -> bool {
    let ns = namespace.split('/').next().unwrap_or(namespace);
    let action = action.rsplit('/').next().unwrap_or(action);
    let want = format!("{}_{}", sanitize(ns), sanitize(action));
    ow.rest == want || ow.rest == want.to_lowercase().replace('_', "-")
}

/// Names of the monitor's containers, and the sources to find them.
pub(crate) struct Names {
    docker: tokio::sync::Mutex<Option<Arc<DockerNames>>>,
    docker_socket: Option<std::path::PathBuf>,
    kubelet: Option<Kubelet>,
    map: RwLock<HashMap<String, Arc<Meta>>>,
    /// Pre-warmed containers and the (namespace, action) an attribution bound them to.
    bound: RwLock<HashMap<String, (String, String)>>,
    /// Unbound pre-warmed containers that were busy candidates of an `ambiguous` answer,
    /// and the actions of those answers: one of them may have taken the container, so
    /// their warm starts keep it as a candidate.
    maybe: RwLock<HashMap<String, HashSet<(String, String)>>>,
    /// When an API last failed to name a container (asked again after [`RETRY`]).
    failed: std::sync::Mutex<HashMap<String, std::time::Instant>>,
}

/// How long a container no API could name waits before it is looked up again.
const RETRY: Duration = Duration::from_secs(5);

impl Names {
    /// Sources from the configuration (none reachable is fine: cgroup names then).
    pub(crate) fn new(docker_socket: Option<&Path>, kubelet: Option<Kubelet>) -> Names {
        Names {
            docker: tokio::sync::Mutex::new(None),
            docker_socket: docker_socket.map(Path::to_path_buf),
            kubelet,
            map: RwLock::new(HashMap::new()),
            bound: RwLock::new(HashMap::new()),
            maybe: RwLock::new(HashMap::new()),
            failed: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The name of container `id`, if resolved.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Meta>> {
        rd(&self.map).get(id).cloned()
    }

    /// The dockerd client (made again while the socket is missing).
    async fn docker(&self) -> Option<Arc<DockerNames>> {
        let p = self.docker_socket.as_ref()?;
        let mut d = self.docker.lock().await;
        if d.is_none() && p.exists() {
            *d = match DockerNames::new(p) {
                Some(c) => Some(Arc::new(c.negotiate().await)),
                None => None,
            };
        }
        d.clone()
    }

    /// Names every container that has no name from an API yet; returns how many changed.
    pub(crate) async fn resolve(&self, m: &Monitor) -> usize {
        let mut changed = 0;
        for c in m.containers() {
            if self
                .get(&c.id)
                .is_some_and(|n| n.source != NameSource::Cgroup)
            {
                continue;
            }
            let recent_failure = self
                .failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&c.id)
                .is_some_and(|t| t.elapsed() < RETRY);
            if recent_failure {
                continue;
            }
            let rel = c.rel.to_string_lossy().to_string();
            let mut meta = None;
            if c.kind == "kubernetes"
                && let (Some(k), Some(p)) = (&self.kubelet, parse_path(&rel))
            {
                meta = k.lookup(&p).await;
            }
            if meta.is_none()
                && (c.kind == "docker" || c.kind == "kubernetes")
                && let Some(d) = self.docker().await
            {
                let d: &DockerNames = &d;
                let id = parse_path(&rel)
                    .map(|p| p.container_id)
                    .unwrap_or(c.id.clone());
                meta = d.lookup(&id).await;
            }
            let asked = c.kind == "docker" || c.kind == "kubernetes";
            if asked && meta.is_none() {
                self.failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(c.id.clone(), std::time::Instant::now());
            }
            let meta = match meta {
                Some(m) => m,
                None if self.get(&c.id).is_some() => continue,
                None => cgroup_meta(&c.id, &rel, &c.kind),
            };
            tracing::info!(id = %c.id, name = %meta.name, source = ?meta.source, "container named");
            wr(&self.map).insert(c.id.clone(), Arc::new(meta));
            changed += 1;
        }
        let live: std::collections::HashSet<String> =
            m.containers().into_iter().map(|c| c.id.clone()).collect();
        wr(&self.map).retain(|k, _| live.contains(k));
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| live.contains(k));
        wr(&self.bound).retain(|k, _| live.contains(k));
        wr(&self.maybe).retain(|k, _| live.contains(k));
        changed
    }
}

/// A write lock (a poisoned lock is still usable: the maps stay consistent).
fn wr<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// A read lock (as [`wr`]).
fn rd<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

/// The name a cgroup path alone gives.
fn cgroup_meta(id: &str, rel: &str, kind: &str) -> Meta {
    let mut labels = BTreeMap::new();
    if kind == "kubernetes"
        && let Some(p) = parse_path(rel)
    {
        labels.insert("io.kubernetes.pod.uid".into(), p.pod_uid);
        labels.insert("qos".into(), p.qos.to_string());
        labels.insert("cgroup_driver".into(), p.driver.to_string());
    }
    Meta::new(id.to_string(), None, labels, NameSource::Cgroup)
}

/// Keeps names resolved and the freezer state observed, until cancelled. Names every
/// `rescan_ms`; the freezer is read every `freezer_ms`.
pub(crate) async fn run(m: Arc<Monitor>) -> anyhow::Result<()> {
    let names_every = Duration::from_millis(m.cfg.rescan_ms.max(10));
    let freezer_every = Duration::from_millis(m.cfg.freezer_ms.max(10));
    let mut last_names = tokio::time::Instant::now() - names_every;
    let mut t = tokio::time::interval(freezer_every);
    let mut seen = HashMap::new();
    loop {
        t.tick().await;
        if last_names.elapsed() >= names_every {
            m.names.resolve(&m).await;
            last_names = tokio::time::Instant::now();
        }
        let mm = m.clone();
        if let Ok(s) = tokio::task::spawn_blocking(move || watch_freezer(&mm, seen)).await {
            seen = s;
        } else {
            seen = HashMap::new();
        }
    }
}

/// Pause/resume from the freezer of each live container: acts on changes of the freezer
/// state it reads (`seen`: the last reading per container), so a platform that notifies
/// pauses without freezing is not contradicted.
fn watch_freezer(m: &Monitor, mut seen: HashMap<String, bool>) -> HashMap<String, bool> {
    let mut now = HashMap::new();
    for c in m.containers() {
        if m.view(&c).state == Life::Removed {
            continue;
        }
        let Some(frozen) = c.reader.frozen() else {
            continue;
        };
        let before = seen.remove(&c.id);
        if before.is_some_and(|b| b != frozen) || (before.is_none() && frozen) {
            m.set_paused(&c.id, frozen);
        }
        now.insert(c.id.clone(), frozen);
    }
    now
}

/// CPU time (ns) container `c` used between `start` and `end` (epoch ns) by its samples:
/// from the last sample at or before `start` (or its first) to the first at or after
/// `end` (or its last). Also the samples inside, for memory.
fn busy(m: &Monitor, c: &Container, start: u64, end: u64) -> (Option<u64>, Vec<Sample>) {
    let all = m.samples(c, 0, u64::MAX);
    let a = all
        .iter()
        .rev()
        .find(|s| s.t_ns <= start && s.cpu().is_some())
        .or_else(|| all.iter().find(|s| s.cpu().is_some()));
    let b = all
        .iter()
        .find(|s| s.t_ns >= end && s.cpu().is_some())
        .or_else(|| all.iter().rev().find(|s| s.cpu().is_some()));
    let cpu = a
        .zip(b)
        .and_then(|(a, b)| Some(b.cpu()?.saturating_sub(a.cpu()?)));
    let inside = all
        .into_iter()
        .filter(|s| s.t_ns >= start && s.t_ns <= end)
        .collect();
    (cpu, inside)
}

/// Answers an `attribute` query (see the module doc).
pub(crate) async fn attribute(m: &Arc<Monitor>, q: &AttributeQuery) -> Attribution {
    let (ns, action) = (q.namespace.as_str(), q.name.as_str());
    let (start, end) = q.range_ns();
    let kind = q.kind.as_deref().map(sanitize);
    let cold = q.cold;
    let key = (
        ns.split('/').next().unwrap_or(ns).to_string(),
        action.rsplit('/').next().unwrap_or(action).to_string(),
    );
    let min_busy = q.min_busy_us() * 1000;
    // Wait until the sampler has passed `end` (plus one interval), so the busy interval
    // is closed by a sample.
    let interval = (m.cfg.interval_ms * 1e6) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(q.wait_ms());
    while faasload_os::clock::epoch_ns() < end + 2 * interval
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    m.names.resolve(m).await;
    let mut cands = Vec::new();
    for c in m.containers() {
        let Some(meta) = m.names.get(&c.id) else {
            continue;
        };
        let Some(ow) = &meta.openwhisk else { continue };
        let bound = rd(&m.names.bound).get(&c.id).cloned();
        let prewarm = ow.prewarm_kind.as_ref().is_some_and(|k| {
            kind.as_ref()
                .is_none_or(|want| sanitize(k) == *want || k.eq_ignore_ascii_case(want))
        }) && match &bound {
            Some(b) => *b == key,
            None => {
                cold != Some(false)
                    || rd(&m.names.maybe)
                        .get(&c.id)
                        .is_some_and(|keys| keys.contains(&key))
            }
        };
        if !(is_for(ow, ns, action) || prewarm) {
            continue;
        }
        // A container whose cgroup appeared after the activation started did not run it
        // (a cold start's record starts at its /init, after the container exists); this
        // drops the replacement pre-warmed container started while the activation ran.
        if (m.view(&c).discovered * 1e9) as u64 > start {
            continue;
        }
        let (cpu, inside) = busy(m, &c, start, end);
        cands.push((c, meta.clone(), cpu, inside));
    }
    let is_busy = |cpu: &Option<u64>| cpu.is_some_and(|v| v >= min_busy);
    let candidates = cands
        .iter()
        .map(|(c, meta, cpu, _)| Candidate {
            container: c.id.clone(),
            name: meta.name.clone(),
            busy_ns: *cpu,
            busy: is_busy(cpu),
        })
        .collect();
    let busy: Vec<_> = cands.iter().filter(|(_, _, cpu, _)| is_busy(cpu)).collect();
    let is_prewarm = |meta: &Meta| {
        meta.openwhisk
            .as_ref()
            .is_some_and(|o| o.prewarm_kind.is_some())
    };
    // Once attributed, `name` is the container's name (as it always was on the wire).
    let mut name = action.to_string();
    let outcome = match busy.as_slice() {
        [(c, meta, Some(cpu), inside)] => {
            let mems: Vec<u64> = inside.iter().filter_map(Sample::mem).collect();
            if is_prewarm(meta) {
                wr(&m.names.bound).insert(c.id.clone(), key.clone());
                wr(&m.names.maybe).remove(&c.id);
            }
            name = meta.name.clone();
            AttributionOutcome::Attributed {
                container: c.id.clone(),
                cpu_ns: *cpu,
                mem_peak_bytes: mems.iter().max().copied(),
                mem_avg_bytes: average(&mems),
                samples: inside.len(),
            }
        }
        [] => AttributionOutcome::Unattributed,
        _ => {
            // Each busy unbound pre-warmed candidate may now run this action.
            let bound = rd(&m.names.bound);
            let mut maybe = wr(&m.names.maybe);
            for (c, meta, _, _) in &busy {
                if is_prewarm(meta) && !bound.contains_key(&c.id) {
                    maybe.entry(c.id.clone()).or_default().insert(key.clone());
                }
            }
            AttributionOutcome::Ambiguous
        }
    };
    Attribution {
        method: AttributionMethod::NameBusy,
        namespace: ns.to_string(),
        name,
        start: ns_to_secs(start),
        end: ns_to_secs(end),
        resolution_ms: m.cfg.interval_ms,
        min_busy_us: min_busy / 1000,
        candidates,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openwhisk_names() {
        let n = openwhisk_name("/wsk0_12_guest_hello_world").unwrap();
        assert_eq!(n.invoker, "wsk0");
        assert_eq!(n.n, 12);
        assert!(is_for(&n, "guest", "hello_world"));
        assert!(is_for(&n, "guest/pkg", "pkg/hello_world"));
        assert!(!is_for(&n, "guest", "hello"));
        assert!(openwhisk_name("wskinv10_3_my-ns_act").is_some());
        assert!(is_for(
            &openwhisk_name("wsk0_3_myns_act").unwrap(),
            "my-ns",
            "act"
        ));
        let p = openwhisk_name("wsk0_4_prewarm_python3").unwrap();
        assert_eq!(p.prewarm_kind.as_deref(), Some("python3"));
        let k = openwhisk_name("wskinvoker0-12-guest-hello").unwrap();
        assert_eq!(k.n, 12);
        assert!(is_for(&k, "guest", "hello"));
        assert!(!is_for(&k, "guest", "hell"));
        assert!(openwhisk_name("nginx").is_none());
        assert!(openwhisk_name("wsk0_x_guest_a").is_none());
    }
}
