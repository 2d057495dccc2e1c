//! Activation logs of a container, shared by both backends: the task that reads the
//! container's stdout/stderr pushes lines here (OpenWhisk's stored form, up to the
//! activation's byte limit, then a truncation note), counting the sentinels the runtime
//! writes after each activation; the run path waits for one sentinel per stream and takes
//! the lines.
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use crate::runtime::SENTINEL;

/// The longest log line kept (longer lines are cut, like Docker's 16 KiB log chunks).
pub(crate) const LOG_LINE_MAX: usize = 16 * 1024;

/// One log line as OpenWhisk stores it: time padded to 30, stream, message.
pub(crate) fn log_line(stream: &str, msg: &str) -> String {
    let t = crate::ids::rfc3339_nano(faasload_os::clock::epoch_ns());
    format!("{t:<30} {stream}: {}", msg.trim())
}

/// Log lines of the current activation.
#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    bytes: usize,
    limit: usize,
    truncated: bool,
    sentinels: [u64; 2],
}

/// The log of one container.
#[derive(Default)]
pub(crate) struct Logs {
    state: Mutex<LogState>,
    notify: Notify,
}

impl Logs {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before an init: drops what the container wrote so far (its start-up output) and
    /// sets the byte limit.
    pub(crate) fn reset(&self, limit: usize) {
        let mut s = self.lock();
        s.lines.clear();
        s.bytes = 0;
        s.truncated = false;
        s.limit = limit;
    }

    /// Starts an activation: sets its byte limit (when given) and returns the sentinel
    /// counts that mark its end, for [`Logs::take`].
    pub(crate) fn begin(&self, limit: Option<usize>) -> [u64; 2] {
        let mut s = self.lock();
        if let Some(l) = limit {
            s.limit = l;
        }
        [s.sentinels[0] + 1, s.sentinels[1] + 1]
    }

    /// One line of stream `idx` (0 stdout, 1 stderr) as read, newline included or not. The
    /// sentinel may follow an unterminated last line of the action's output.
    pub(crate) fn push(&self, idx: usize, raw: &[u8]) {
        let stream = if idx == 0 { "stdout" } else { "stderr" };
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches(['\n', '\r']);
        let (text, sentinel) = match text.strip_suffix(SENTINEL) {
            Some(prefix) => (prefix, true),
            None => (text, false),
        };
        let mut s = self.lock();
        if !sentinel || !text.is_empty() {
            let line = log_line(stream, text);
            if s.bytes + line.len() > s.limit {
                s.truncated = true;
            } else {
                s.bytes += line.len();
                s.lines.push(line);
            }
        }
        if sentinel {
            s.sentinels[idx] += 1;
            drop(s);
            self.notify.notify_waiters();
        }
    }

    /// The reader reached the end of the container's output: wakes waiters.
    pub(crate) fn closed(&self) {
        self.notify.notify_waiters();
    }

    /// Waits (at most `wait`) until both streams reached `target` sentinels, then takes
    /// the lines collected so far (with a truncation note if the limit was hit).
    pub(crate) async fn take(&self, target: [u64; 2], wait: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if (s.sentinels[0] >= target[0] && s.sentinels[1] >= target[1])
                    || tokio::time::Instant::now() >= deadline
                {
                    let mut lines = std::mem::take(&mut s.lines);
                    if s.truncated {
                        lines.push(log_line(
                            "stderr",
                            &format!(
                                "Logs were truncated because the total bytes size exceeds the limit of {} bytes.",
                                s.limit
                            ),
                        ));
                    }
                    s.sentinels = [s.sentinels[0].max(target[0]), s.sentinels[1].max(target[1])];
                    s.bytes = 0;
                    s.truncated = false;
                    return lines;
                }
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openwhisk_log_line() {
        let l = log_line("stdout", "  hi  ");
        assert_eq!(&l[30..], " stdout: hi");
        assert!(l.starts_with("20"));
    }

    #[tokio::test]
    async fn sentinel_lines_are_counted_not_kept() {
        let logs = Logs::default();
        let target = logs.begin(Some(1 << 20));
        logs.push(0, b"hello\n");
        logs.push(0, format!("tail{SENTINEL}\n").as_bytes());
        logs.push(1, format!("{SENTINEL}\n").as_bytes());
        let lines = logs.take(target, Duration::from_secs(5)).await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with("stdout: hello"));
        assert!(lines[1].ends_with("stdout: tail"));
        assert_eq!(logs.begin(None), [2, 2]);
    }

    #[tokio::test]
    async fn over_the_limit_is_cut_with_a_note() {
        let logs = Logs::default();
        let target = logs.begin(Some(100));
        logs.push(1, &[b'x'; 80]);
        logs.push(1, b"dropped\n");
        logs.push(0, SENTINEL.as_bytes());
        logs.push(1, SENTINEL.as_bytes());
        let lines = logs.take(target, Duration::from_secs(5)).await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[1].ends_with("exceeds the limit of 100 bytes."),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn take_gives_up_after_wait() {
        let logs = Logs::default();
        let target = logs.begin(Some(1000));
        logs.push(0, b"no sentinel\n");
        let lines = logs.take(target, Duration::from_millis(20)).await;
        assert_eq!(lines.len(), 1);
        assert_eq!(
            logs.begin(None),
            [2, 2],
            "the missing sentinels are skipped"
        );
    }
}
