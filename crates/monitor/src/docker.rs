//! Names of Docker containers from dockerd's HTTP API on its UNIX socket (bollard): the
//! container's name, image and labels, looked up by the 64-hex id the cgroup path gives.
//! Optional: with no socket or no answering dockerd, containers keep their cgroup name.
use std::collections::BTreeMap;
use std::path::Path;

use bollard::Docker;

use super::attribution::Meta;
use faasload_protocol::monitor::NameSource;

/// A client of dockerd.
pub(crate) struct DockerNames {
    client: Docker,
    socket: String,
}

impl DockerNames {
    /// A client of the socket at `path` (connects lazily; None if it cannot be made).
    pub(crate) fn new(path: &Path) -> Option<DockerNames> {
        let s = path.display().to_string();
        match Docker::connect_with_unix(&s, 5, bollard::API_DEFAULT_VERSION) {
            Ok(client) => Some(DockerNames { client, socket: s }),
            Err(e) => {
                tracing::info!("no Docker naming ({s}: {e}); containers keep their cgroup names");
                None
            }
        }
    }

    /// Agrees on the API version with dockerd (older engines refuse newer clients).
    pub(crate) async fn negotiate(self) -> DockerNames {
        match self.client.clone().negotiate_version().await {
            Ok(client) => DockerNames {
                client,
                socket: self.socket,
            },
            Err(e) => {
                tracing::info!(socket = %self.socket, "dockerd does not answer ({e}); retried at each lookup");
                self
            }
        }
    }

    /// The name, image and labels of container `id`, if dockerd knows it.
    pub(crate) async fn lookup(&self, id: &str) -> Option<Meta> {
        let r = self
            .client
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(id, "docker inspect: {e}");
                return None;
            }
        };
        let name = r.name?.trim_start_matches('/').to_string();
        let cfg = r.config.unwrap_or_default();
        let labels: BTreeMap<String, String> = cfg.labels.unwrap_or_default().into_iter().collect();
        Some(Meta::new(name, cfg.image, labels, NameSource::Docker))
    }
}
