//! Notifications to the monitor, as a patched OpenWhisk invoker sends them: one JSON line
//! per message over a UNIX stream connection to the monitor's socket. Messages go through
//! a bounded channel to one sender task that keeps a connection open, reconnects on
//! failure and counts what it had to drop. Every message asks for the monitor's `ack`
//! (so the stream stays in step); only an activation start waits for it, briefly, so the
//! monitor's start reading precedes the run and short activations are measured whole.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use faasload_protocol::monitor::{Ack, ContainerAction, Notification, NotificationKind, decode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

/// A message to the monitor (always with `ack`: the monitor answers each one with a
/// line), and who waits for its answer.
type Item = (Notification, Option<oneshot::Sender<()>>);

/// Handle to the sender task (cheap to clone).
#[derive(Clone, Debug)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Item>>,
    dropped: Arc<AtomicU64>,
    late_starts: Arc<AtomicU64>,
}

const QUEUE: usize = 4096;
/// How long an activation waits for the monitor to record its start. The monitor
/// answers in well under a millisecond; on a machine so loaded that it does not, running
/// the action before its start is recorded would under-count its CPU, so the run waits,
/// but never longer than this for a stuck monitor (counted and logged).
pub(crate) const START_WAIT: Duration = Duration::from_millis(250);
/// How long the sender waits for the monitor's answer to one message.
const ANSWER_WAIT: Duration = Duration::from_millis(500);

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
            late_starts: Arc::new(AtomicU64::new(0)),
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
            late_starts: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Messages dropped so far (queue full, or no monitor listening).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A container event: `run`, `rm`, `pause` or `resume`.
    pub fn container(&self, action: ContainerAction, container: &str) {
        self.send(Notification::container(action, container).with_ack(), None);
    }

    /// An activation message, stamped now.
    fn stamped(n: Notification) -> Notification {
        n.at(faasload_os::clock::epoch_ns() as f64 / 1e9).with_ack()
    }

    /// An activation starts (before a cold start's init, else before its run): returns
    /// once the monitor has recorded it, or after [`START_WAIT`] (or at once when no
    /// monitor listens).
    pub async fn activation_start(&self, container: &str, activation_id: &str) {
        self.boundary(Notification::activation_start(container, activation_id))
            .await;
    }

    /// A cold start's init ended, its run begins: returns once the monitor has recorded
    /// it (as [`Notifier::activation_start`]), so the run's CPU is after the boundary.
    pub async fn init_end(&self, container: &str, activation_id: &str) {
        self.boundary(Notification::init_end(container, activation_id))
            .await;
    }

    /// Sends a boundary and waits (bounded) for the monitor to have recorded it.
    async fn boundary(&self, n: Notification) {
        if self.tx.is_none() {
            return;
        }
        let (done, wait) = oneshot::channel();
        let m = Self::stamped(n);
        let what = format!("{} of activation {}", m.kind.action(), activation_of(&m));
        self.send(m, Some(done));
        if tokio::time::timeout(START_WAIT, wait).await.is_err() {
            let n = self.late_starts.fetch_add(1, Ordering::Relaxed);
            if n == 0 || n.is_power_of_two() {
                tracing::warn!(
                    "the monitor did not record the {what} within {START_WAIT:?} ({} such \
                     boundaries so far): its CPU may be misattributed",
                    n + 1
                );
            }
        }
    }

    /// Activation boundaries (starts, init ends) the monitor did not acknowledge within
    /// [`START_WAIT`].
    pub fn late_starts(&self) -> u64 {
        self.late_starts.load(Ordering::Relaxed)
    }

    /// An activation ended (fire and forget).
    pub fn activation_end(&self, container: &str, activation_id: &str) {
        let m = Self::stamped(Notification::activation_end(container, activation_id));
        self.send(m, None);
    }

    fn send(&self, m: Notification, done: Option<oneshot::Sender<()>>) {
        if let Some(tx) = &self.tx
            && tx.try_send((m, done)).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The activation a boundary notification names.
fn activation_of(n: &Notification) -> &str {
    match &n.kind {
        NotificationKind::ActivationStart { activation_id }
        | NotificationKind::InitEnd { activation_id }
        | NotificationKind::ActivationEnd { activation_id } => activation_id,
        NotificationKind::Container(_) => "",
    }
}

/// An open connection to the monitor.
struct Conn {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    /// False once the peer failed to answer in time (a listener without acks, like the
    /// original FaaSLoad's): messages are then only written.
    acks: bool,
}

async fn connect(path: &PathBuf) -> Option<Conn> {
    if !path.exists() {
        return None;
    }
    let s = tokio::time::timeout(
        Duration::from_millis(200),
        tokio::net::UnixStream::connect(path),
    )
    .await
    .ok()?
    .ok()?;
    let (rd, wr) = s.into_split();
    Some(Conn {
        rd: BufReader::new(rd),
        wr,
        acks: true,
    })
}

/// Writes one line and reads the monitor's one-line answer. False if the line could not
/// be delivered (the connection is then dropped and the line sent again once).
async fn exchange(c: &mut Conn, line: &[u8], answer: &mut String) -> bool {
    if c.wr.write_all(line).await.is_err() {
        return false;
    }
    answer.clear();
    if c.acks {
        match tokio::time::timeout(ANSWER_WAIT, c.rd.read_line(answer)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return false,
            Err(_) => {
                tracing::warn!(
                    "the monitor does not answer notifications; sending without waiting"
                );
                c.acks = false;
            }
        }
    }
    true
}

async fn sender(path: PathBuf, mut rx: mpsc::Receiver<Item>, dropped: Arc<AtomicU64>) {
    let mut conn: Option<Conn> = None;
    let mut buf = Vec::with_capacity(256);
    let mut answer = String::new();
    while let Some((m, done)) = rx.recv().await {
        buf.clear();
        if serde_json::to_writer(&mut buf, &m).is_err() {
            dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        buf.push(b'\n');
        let mut sent = false;
        for _ in 0..2 {
            if conn.is_none() {
                conn = connect(&path).await;
            }
            let Some(c) = conn.as_mut() else { break };
            if exchange(c, &buf, &mut answer).await {
                sent = true;
                if !answer.is_empty() && decode::<Ack>(&answer).map_or(true, |a| !a.ok) {
                    tracing::debug!("monitor answered {}: {}", m.kind.action(), answer.trim());
                }
                break;
            }
            conn = None;
        }
        if !sent {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(d) = done {
            let _ = d.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasload_protocol::monitor::{NotificationKind, Request, Socket};
    use tokio::io::AsyncBufReadExt;

    #[tokio::test]
    async fn lines_reach_a_listener_and_missing_socket_counts_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.sock");
        let n = Notifier::start(path.clone());
        n.container(ContainerAction::Run, "c0");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(n.dropped(), 1);
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (rd, mut wr) = s.into_split();
            let mut lines = tokio::io::BufReader::new(rd).lines();
            let mut got = Vec::new();
            for _ in 0..2 {
                let line = lines.next_line().await.unwrap().unwrap();
                wr.write_all(b"{\"ok\":true}\n").await.unwrap();
                got.push(line);
            }
            got
        });
        // The start waits for the monitor's answer (well under START_WAIT here).
        n.activation_start("c0", "0123").await;
        n.container(ContainerAction::Rm, "c0");
        let got = server.await.unwrap();
        let start = match Request::parse_str(&got[0], Socket::Notify) {
            Ok(Request::Notification(n)) => n,
            other => panic!("{}: {other:?}", got[0]),
        };
        assert_eq!(
            start.kind,
            NotificationKind::ActivationStart {
                activation_id: "0123".into()
            }
        );
        assert_eq!(start.container, "c0");
        assert!(start.ack);
        assert!(start.time.unwrap() > 1.6e9);
        // Wire bytes on purpose: the order the monitor's other clients see.
        assert!(
            got[0].starts_with(
                r#"{"action":"activation_start","container":"c0","activation_id":"0123","time":"#
            ) && got[0].ends_with(r#","ack":true}"#),
            "{}",
            got[0]
        );
        assert_eq!(got[1], r#"{"action":"rm","container":"c0","ack":true}"#);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(n.dropped(), 1);
    }
}
