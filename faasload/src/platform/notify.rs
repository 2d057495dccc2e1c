//! Notifications to the monitor, as a patched OpenWhisk invoker sends them: one JSON line
//! per message over a UNIX stream connection to the monitor's socket. Sending never
//! blocks an activation: messages go through a bounded channel to one sender task that
//! keeps a connection open, reconnects on failure and counts what it had to drop.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// One message to the monitor.
#[derive(Debug, Serialize)]
pub struct Message {
    pub action: &'static str,
    pub container: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
}

/// Handle to the sender task (cheap to clone).
#[derive(Clone, Debug)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Message>>,
    dropped: Arc<AtomicU64>,
}

const QUEUE: usize = 4096;

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts the sender task for socket `path` (messages are dropped while it is absent).
    pub fn start(path: PathBuf) -> Notifier {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(sender(path, rx, dropped.clone()));
        Notifier {
            tx: Some(tx),
            dropped,
        }
    }

    /// Messages dropped so far (queue full, or no monitor listening).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A container event: `run`, `rm`, `pause` or `resume`.
    pub fn container(&self, action: &'static str, container: &str) {
        self.send(Message {
            action,
            container: container.to_string(),
            activation_id: None,
            time: None,
        });
    }

    /// An activation boundary: `activation_start` or `activation_end`.
    pub fn activation(&self, action: &'static str, container: &str, activation_id: &str) {
        self.send(Message {
            action,
            container: container.to_string(),
            activation_id: Some(activation_id.to_string()),
            time: Some(crate::util::clock::epoch_ns() as f64 / 1e9),
        });
    }

    fn send(&self, m: Message) {
        if let Some(tx) = &self.tx
            && tx.try_send(m).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn sender(path: PathBuf, mut rx: mpsc::Receiver<Message>, dropped: Arc<AtomicU64>) {
    let mut conn: Option<tokio::net::UnixStream> = None;
    let mut buf = Vec::with_capacity(256);
    while let Some(m) = rx.recv().await {
        buf.clear();
        if serde_json::to_writer(&mut buf, &m).is_err() {
            dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        buf.push(b'\n');
        let mut sent = false;
        for _ in 0..2 {
            if conn.is_none() {
                if !path.exists() {
                    break;
                }
                match tokio::time::timeout(
                    Duration::from_millis(200),
                    tokio::net::UnixStream::connect(&path),
                )
                .await
                {
                    Ok(Ok(s)) => conn = Some(s),
                    _ => break,
                }
            }
            if let Some(s) = conn.as_mut() {
                if s.write_all(&buf).await.is_ok() {
                    sent = true;
                    break;
                }
                conn = None;
            }
        }
        if !sent {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    #[tokio::test]
    async fn lines_reach_a_listener_and_missing_socket_counts_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.sock");
        let n = Notifier::start(path.clone());
        n.container("run", "c0");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(n.dropped(), 1);
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        n.activation("activation_start", "c0", "0123");
        let (s, _) = l.accept().await.unwrap();
        let mut lines = tokio::io::BufReader::new(s).lines();
        let line = lines.next_line().await.unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["action"], "activation_start");
        assert_eq!(v["container"], "c0");
        assert_eq!(v["activation_id"], "0123");
        assert!(v["time"].as_f64().unwrap() > 1.6e9);
        n.container("rm", "c0");
        let line = lines.next_line().await.unwrap().unwrap();
        assert_eq!(line, r#"{"action":"rm","container":"c0"}"#);
    }
}
