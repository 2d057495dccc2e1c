//! Kubernetes pods on a node: what the kubepods cgroup path tells (QoS class, pod UID,
//! container id; cgroupfs and systemd cgroup drivers), and names from the kubelet's
//! read-only pod list (`GET /pods`) when one is configured and answers. OpenWhisk's
//! action pods carry the label `user-action-pod=true`.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use super::attribution::Meta;
use faasload_protocol::monitor::NameSource;

/// What a kubepods cgroup path says about a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PodPath {
    /// `guaranteed`, `burstable` or `besteffort`.
    pub qos: &'static str,
    /// Pod UID with dashes (the systemd driver writes underscores).
    pub pod_uid: String,
    /// Container id (runtime prefix and `.scope` removed).
    pub container_id: String,
    /// `cgroupfs` or `systemd`.
    pub driver: &'static str,
}

/// Parses a cgroup path (relative) of a container in a kubepods tree.
pub(crate) fn parse_path(rel: &str) -> Option<PodPath> {
    let segs: Vec<&str> = rel.trim_matches('/').split('/').collect();
    let start = segs.iter().position(|s| s.starts_with("kubepods"))?;
    let segs = &segs[start..];
    let last = *segs.last()?;
    let systemd = segs[0].ends_with(".slice");
    let mut qos = "guaranteed";
    let mut pod = None;
    for s in &segs[..segs.len() - 1] {
        let s = s.trim_end_matches(".slice");
        for q in ["burstable", "besteffort"] {
            if s == q || s == format!("kubepods-{q}") {
                qos = q;
            }
        }
        // cgroupfs: `pod<uid>`; systemd: `kubepods[-<qos>]-pod<uid with _>`.
        let uid = s
            .strip_prefix("pod")
            .or_else(|| s.rsplit_once("-pod").map(|(_, u)| u));
        if let Some(uid) = uid.filter(|u| !u.is_empty()) {
            pod = Some(uid.replace('_', "-"));
        }
    }
    let mut cid = last.trim_end_matches(".scope");
    for p in ["cri-containerd-", "crio-", "docker-"] {
        cid = cid.strip_prefix(p).unwrap_or(cid);
    }
    Some(PodPath {
        qos,
        pod_uid: pod?,
        container_id: cid.to_string(),
        driver: if systemd { "systemd" } else { "cgroupfs" },
    })
}

/// A pod's container as the kubelet lists it.
#[derive(Clone, Debug)]
struct PodContainer {
    pod_uid: String,
    pod: String,
    namespace: String,
    container: String,
    container_id: String,
    image: Option<String>,
    labels: BTreeMap<String, String>,
}

/// A client of the kubelet's pod list, cached (refreshed at most once a second).
pub(crate) struct Kubelet {
    url: String,
    http: reqwest::Client,
    token: Option<String>,
    cache: Mutex<(Option<Instant>, Vec<PodContainer>)>,
}

impl Kubelet {
    /// A client of `url` (e.g. `http://127.0.0.1:10255/pods` or
    /// `https://127.0.0.1:10250/pods` with a service-account token).
    pub(crate) fn new(
        url: &str,
        token_file: Option<&std::path::Path>,
        insecure_tls: bool,
    ) -> anyhow::Result<Kubelet> {
        let token = match token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("kubelet token {}: {e}", p.display()))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .danger_accept_invalid_certs(insecure_tls)
            .build()?;
        Ok(Kubelet {
            url: url.to_string(),
            http,
            token,
            cache: Mutex::new((None, Vec::new())),
        })
    }

    async fn fetch(&self) -> anyhow::Result<Vec<PodContainer>> {
        let mut req = self.http.get(&self.url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let v: Value = req.send().await?.error_for_status()?.json().await?;
        Ok(pods_of(&v))
    }

    /// Name, image and labels of the container the cgroup path `p` names.
    pub(crate) async fn lookup(&self, p: &PodPath) -> Option<Meta> {
        let mut c = self.cache.lock().await;
        let find = |list: &[PodContainer]| {
            list.iter()
                .find(|x| x.pod_uid == p.pod_uid && x.container_id == p.container_id)
                .cloned()
        };
        let mut hit = find(&c.1);
        if hit.is_none() && c.0.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
            match self.fetch().await {
                Ok(list) => c.1 = list,
                Err(e) => tracing::debug!(url = %self.url, "kubelet: {e}"),
            }
            c.0 = Some(Instant::now());
            hit = find(&c.1);
        }
        let h = hit?;
        let mut labels = h.labels;
        labels.insert("io.kubernetes.pod.namespace".into(), h.namespace);
        labels.insert("io.kubernetes.container.name".into(), h.container);
        labels.insert("io.kubernetes.pod.uid".into(), h.pod_uid);
        Some(Meta::new(h.pod, h.image, labels, NameSource::Kubelet))
    }
}

/// The containers of a kubelet `PodList`.
fn pods_of(v: &Value) -> Vec<PodContainer> {
    let mut out = Vec::new();
    for pod in v["items"].as_array().into_iter().flatten() {
        let md = &pod["metadata"];
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let labels: BTreeMap<String, String> = md["labels"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        for cs in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let cid = s(&cs["containerID"]);
            let cid = cid
                .split_once("://")
                .map(|(_, i)| i.to_string())
                .unwrap_or(cid);
            out.push(PodContainer {
                pod_uid: s(&md["uid"]),
                pod: s(&md["name"]),
                namespace: s(&md["namespace"]),
                container: s(&cs["name"]),
                container_id: cid,
                image: cs["image"].as_str().map(str::to_string),
                labels: labels.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_drivers_and_all_qos_classes() {
        let id = "c".repeat(64);
        let uid = "3f2a9c1e-1111-2222-3333-444455556666";
        let us = uid.replace('-', "_");
        let cases = [
            (
                format!("kubepods/burstable/pod{uid}/{id}"),
                "burstable",
                "cgroupfs",
            ),
            (
                format!("kubepods/besteffort/pod{uid}/{id}"),
                "besteffort",
                "cgroupfs",
            ),
            (format!("kubepods/pod{uid}/{id}"), "guaranteed", "cgroupfs"),
            (
                format!(
                    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{us}.slice/cri-containerd-{id}.scope"
                ),
                "burstable",
                "systemd",
            ),
            (
                format!("kubepods.slice/kubepods-pod{us}.slice/crio-{id}.scope"),
                "guaranteed",
                "systemd",
            ),
            (
                format!("faasload/t1/kubepods/besteffort/pod{uid}/docker-{id}.scope"),
                "besteffort",
                "cgroupfs",
            ),
        ];
        for (path, qos, driver) in cases {
            let p = parse_path(&path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(p.qos, qos, "{path}");
            assert_eq!(p.driver, driver, "{path}");
            assert_eq!(p.pod_uid, uid, "{path}");
            assert_eq!(p.container_id, id, "{path}");
        }
        assert!(parse_path(&format!("kubepods/burstable/{id}")).is_none());
        assert!(parse_path("docker/abc").is_none());
    }

    #[test]
    fn kubelet_pod_list() {
        let v: Value = serde_json::from_str(
            r#"{"kind":"PodList","items":[{"metadata":{"name":"wskinvoker0-12-guest-hello","namespace":"openwhisk","uid":"u1","labels":{"user-action-pod":"true"}},
               "status":{"containerStatuses":[{"name":"user-action","containerID":"containerd://abc","image":"openwhisk/action-python-v3.11"}]}}]}"#,
        )
        .unwrap();
        let p = pods_of(&v);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].container_id, "abc");
        assert_eq!(p[0].pod, "wskinvoker0-12-guest-hello");
        assert_eq!(p[0].labels["user-action-pod"], "true");
    }
}
