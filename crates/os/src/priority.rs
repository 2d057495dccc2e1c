//! Scheduling priority of the calling thread (Linux applies nice values per thread):
//! the sender threads raise theirs so that a busy host does not take the CPU from them
//! at a release instant, the store writer lowers its own.
use std::io;

/// The calling thread's kernel id.
fn tid() -> libc::id_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::id_t }
}

/// Sets the calling thread's nice value (-20..=19). Going below the current value needs
/// CAP_SYS_NICE (or an RLIMIT_NICE that allows it).
pub fn set_thread_nice(nice: i32) -> io::Result<()> {
    // SAFETY: setpriority on our own thread id; no memory is passed.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid(), nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread's nice value.
pub fn thread_nice() -> io::Result<i32> {
    // getpriority may legitimately return -1: errno tells an error apart.
    // SAFETY: errno is thread-local; getpriority on our own thread id.
    unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, tid());
        if n == -1 && *libc::__errno_location() != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_sets_its_own_nice_and_not_its_siblings() {
        let before = thread_nice().unwrap();
        let inside = std::thread::spawn(|| {
            set_thread_nice(7).unwrap();
            thread_nice().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(inside, 7);
        assert_eq!(
            thread_nice().unwrap(),
            before,
            "the test thread was changed"
        );
    }

    #[test]
    fn raising_priority_works_with_cap_sys_nice() {
        // Root (as in CI) may go below 0; anyone else gets the kernel's refusal.
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let r = std::thread::spawn(|| set_thread_nice(-10).map(|()| thread_nice().unwrap()))
            .join()
            .unwrap();
        if root {
            assert_eq!(r.unwrap(), -10);
        } else {
            assert_eq!(r.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        }
    }
}
