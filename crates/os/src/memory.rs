//! Steady memory for the replays (`load`, `generate`): page faults must not stall a
//! sender at a release instant. On the VMs this was measured on, the allocator's
//! default behaviour cost send lags of 10-50 ms: freed memory was returned to the OS
//! after a second (mimalloc's purge) and faulted back in later, as transparent huge
//! pages whose 2 MiB zeroing (and the host's backing of them) took ~10 ms each, on
//! whichever thread touched them first. So a replay keeps the memory it has used
//! (purge off: the loader's footprint is bounded by its in-flight and pending limits)
//! and uses 4 KiB pages (THP off for this process; children get THP back, see
//! [`restore_thp_in_child`], so the functions a platform runs are not changed).
use std::sync::atomic::{AtomicBool, Ordering};

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, which
/// libmimalloc-sys does not export as a constant; checked by a test).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Whether this process turned THP off (and children should turn it back on).
static THP_TURNED_OFF: AtomicBool = AtomicBool::new(false);

/// Applies both settings to the current process; failures only cost steadiness, so
/// they are logged.
pub fn steady() {
    // SAFETY: sets an allocator option; mimalloc reads it on its next purge decision.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // SAFETY: prctl with integer arguments only.
    let already = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
    if already == 0 {
        // SAFETY: as above.
        if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } == 0 {
            THP_TURNED_OFF.store(true, Ordering::Relaxed);
        } else {
            tracing::debug!(
                "turning transparent huge pages off failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// For `pre_exec` hooks (between fork and exec: async-signal-safe, no allocation):
/// gives a child the THP setting the process had before [`steady`].
pub fn restore_thp_in_child() {
    if THP_TURNED_OFF.load(Ordering::Relaxed) {
        // SAFETY: prctl with integer arguments only; affects the child's own memory.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) };
    }
}

/// THP is off for the calling process.
#[cfg(test)]
fn thp_disabled() -> bool {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
}

/// mimalloc's current purge delay (ms; -1: never).
#[cfg(test)]
fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: reads an allocator option.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_index_is_mimallocs() {
        // mimalloc v3's documented default is 10 ms, this build's 1000 ms; any other
        // value means the index points at another option.
        let before = purge_delay_ms();
        assert!(
            before == -1 || before == 10 || before == 1000,
            "option 15 is not the purge delay: {before}"
        );
    }

    #[test]
    fn steady_turns_purging_and_thp_off_and_children_get_thp_back() {
        // In a child process of its own: the settings are process-wide.
        // SAFETY: fork in a test; the child only makes syscalls and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            steady();
            let ok = purge_delay_ms() == -1 && thp_disabled();
            // A grandchild, as a platform's action would be spawned.
            // SAFETY: as above, in the child.
            let g = unsafe { libc::fork() };
            if g == 0 {
                restore_thp_in_child();
                // SAFETY: ends the grandchild without running the test harness's code.
                unsafe { libc::_exit(if thp_disabled() { 1 } else { 0 }) };
            }
            let mut st = 0;
            // SAFETY: waits for our own child, `st` is a valid out-parameter.
            unsafe { libc::waitpid(g, &mut st, 0) };
            let child_ok = libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0;
            // SAFETY: ends the child without running the test harness's code.
            unsafe { libc::_exit(if ok && child_ok { 0 } else { 1 }) };
        }
        let mut st = 0;
        // SAFETY: waits for our own child, `st` is a valid out-parameter.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(
            libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
            "status {st}"
        );
    }
}
