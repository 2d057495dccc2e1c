//! The monitor's UNIX sockets: binds them (mode and group from the config), accepts many
//! concurrent clients (a bounded number; more are refused with a JSON error), splits each
//! connection's bytes into JSON requests (newline-separated or one per connection, no
//! newline needed), enforces the size limit, and streams subscriptions. A slow client
//! only ever slows itself: the sampler never waits for a socket.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, broadcast};

use faasload_protocol::monitor::{ErrorAnswer, ErrorCode, RequestError, StreamItem};

use super::protocol::{self, After, Answer, Socket};
use super::state::Monitor;

/// How long an idle connection is kept.
const IDLE: Duration = Duration::from_secs(120);

/// A bound socket that removes its file when dropped.
pub(crate) struct Bound {
    pub listener: UnixListener,
    path: PathBuf,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` (creating its directory, replacing a stale socket file).
pub(crate) fn bind(path: &Path, mode: u32, group: Option<&str>) -> Result<Bound> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("{} is in use by another running monitor", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    let bound = Bound {
        listener,
        path: path.to_path_buf(),
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))?;
    if let Some(g) = group {
        let gid = resolve_group(g).with_context(|| format!("socket group {g:?}"))?;
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(bound)
}

fn resolve_group(g: &str) -> Result<u32> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    let text = std::fs::read_to_string("/etc/group")?;
    text.lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(g))
                .then(|| f.nth(1)?.parse().ok())
                .flatten()
        })
        .ok_or_else(|| anyhow::anyhow!("no such group"))
}

/// Accepts clients forever.
pub(crate) async fn serve(m: Arc<Monitor>, listener: &UnixListener, sock: Socket) {
    let slots = Arc::new(Semaphore::new(m.cfg.max_clients));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            m.stats.refused_clients.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let a = Answer::error(
                    ErrorAnswer::new(ErrorCode::Busy, "too many clients, try again"),
                    After::Close,
                );
                if write_answer(&mut stream, &a).await.is_ok() {
                    close_gracefully(stream).await;
                }
            });
            continue;
        };
        let m = m.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(&m, stream, sock).await {
                tracing::debug!("client: {e}");
            }
            drop(permit);
        });
    }
}

async fn write_answer(stream: &mut UnixStream, a: &Answer) -> std::io::Result<()> {
    if let Some(b) = &a.body {
        let mut buf = Vec::with_capacity(b.len() + 1);
        buf.extend_from_slice(b.as_bytes());
        buf.push(b'\n');
        tokio::time::timeout(IDLE, stream.write_all(&buf))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "client does not read")
            })??;
    }
    Ok(())
}

/// Closes a connection without resetting it: stops writing, then discards what the
/// client still sends (bounded), so it reads our answer instead of ECONNRESET.
async fn close_gracefully(mut stream: UnixStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 16 * 1024];
    let mut left: usize = 16 * 1024 * 1024;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while left > 0 {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

/// What the framing found at the front of the buffer.
enum Frame {
    /// A complete value and the bytes it used.
    Value(Value, usize),
    /// More bytes are needed.
    Incomplete,
    /// Not JSON.
    Invalid(String),
}

fn next_frame(buf: &[u8]) -> Frame {
    let start = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len());
    if start == buf.len() {
        return Frame::Incomplete;
    }
    let mut it = serde_json::Deserializer::from_slice(&buf[start..]).into_iter::<Value>();
    match it.next() {
        Some(Ok(v)) => Frame::Value(v, start + it.byte_offset()),
        Some(Err(e)) if e.is_eof() => Frame::Incomplete,
        Some(Err(e)) => Frame::Invalid(e.to_string()),
        None => Frame::Incomplete,
    }
}

async fn connection(m: &Arc<Monitor>, stream: UnixStream, sock: Socket) -> Result<()> {
    let mut stream = stream;
    let closing = requests(m, &mut stream, sock).await?;
    if let Some((samples, rx)) = closing {
        return subscription(m, stream, samples, rx).await;
    }
    close_gracefully(stream).await;
    Ok(())
}

/// A subscription's receiver and whether it streams samples.
type Subscribed = (bool, broadcast::Receiver<StreamItem>);

/// Answers requests until the connection is done; Some to switch to a subscription.
async fn requests(
    m: &Arc<Monitor>,
    stream: &mut UnixStream,
    sock: Socket,
) -> Result<Option<Subscribed>> {
    let max = m.cfg.max_request_bytes;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Answer every complete request already buffered.
        loop {
            match next_frame(&buf) {
                Frame::Value(v, used) => {
                    buf.drain(..used);
                    let a = protocol::handle(m, sock, v).await;
                    // A subscriber receives every event from its `subscribed` answer
                    // on: it joins the stream before the answer is written.
                    let rx =
                        matches!(a.after, After::Subscribe { .. }).then(|| m.stream.subscribe());
                    write_answer(stream, &a).await?;
                    match (a.after, rx) {
                        (After::Subscribe { samples }, Some(rx)) => return Ok(Some((samples, rx))),
                        (After::Close, _) => return Ok(None),
                        _ => {}
                    }
                }
                Frame::Incomplete => break,
                Frame::Invalid(e) => {
                    let a = protocol::bad(m, &RequestError::InvalidJson(e));
                    write_answer(stream, &a).await?;
                    return Ok(None);
                }
            }
        }
        if buf.len() > max {
            let a = protocol::bad(m, &RequestError::TooLarge(max));
            write_answer(stream, &a).await?;
            return Ok(None);
        }
        let n = match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(r) => r?,
            Err(_) => return Ok(None),
        };
        if n == 0 {
            if buf.iter().any(|b| !b.is_ascii_whitespace()) {
                let a = protocol::bad(m, &RequestError::Truncated);
                let _ = write_answer(stream, &a).await;
            }
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Streams container events (and samples if asked) until the client goes away.
async fn subscription(
    m: &Arc<Monitor>,
    mut stream: UnixStream,
    samples: bool,
    mut rx: broadcast::Receiver<StreamItem>,
) -> Result<()> {
    let (mut rd, mut wr) = stream.split();
    let mut scratch = [0u8; 256];
    loop {
        tokio::select! {
            r = rd.read(&mut scratch) => {
                if matches!(r, Ok(0) | Err(_)) {
                    return Ok(());
                }
            }
            msg = rx.recv() => {
                let item = match msg {
                    Ok(StreamItem::Sample { .. }) if !samples => continue,
                    Ok(item) => item,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        m.stats.stream_lagged.fetch_add(n, Ordering::Relaxed);
                        StreamItem::Lagged { missed: n }
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                };
                let line = serde_json::to_string(&item)?;
                let mut b = line.into_bytes();
                b.push(b'\n');
                match tokio::time::timeout(IDLE, wr.write_all(&b)).await {
                    Ok(Ok(())) => {}
                    _ => return Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_splits_values_and_waits_for_more() {
        let b = br#" {"a":1}{"b":2}"#;
        let Frame::Value(v, used) = next_frame(b) else {
            panic!()
        };
        assert_eq!(v["a"], 1);
        assert_eq!(&b[used..], br#"{"b":2}"#);
        assert!(matches!(next_frame(br#"{"a":"#), Frame::Incomplete));
        assert!(matches!(next_frame(b"   \n"), Frame::Incomplete));
        assert!(matches!(next_frame(b"}garbage"), Frame::Invalid(_)));
    }
}
