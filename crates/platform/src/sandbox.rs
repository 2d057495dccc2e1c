//! Confinement of action code. Each container's process is started by [`spawn`]: it is
//! placed in its cgroup before it runs anything, gets its stdio and result pipe, and —
//! when namespaces are on — becomes PID 1 of a new PID namespace with its own mount
//! namespace where `/proc` shows only its processes, the whole file system is read-only
//! except its private working directory, and the other containers' directories are
//! hidden. It then drops to the unprivileged action user (no supplementary groups,
//! `no_new_privs`, at most 1024 open files like OpenWhisk's containers) with a clean
//! environment. The action user is created at start-up
//! (`useradd --system`) when missing.
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::net::unix::pipe;

/// Errors of the sandbox set-up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("action user {user:?}: {msg}")]
    User { user: String, msg: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// The unprivileged identity of action code.
#[derive(Clone, Copy, Debug)]
pub struct ActionUser {
    pub uid: u32,
    pub gid: u32,
}

/// Looks `user` up in /etc/passwd, creating it with `useradd --system` when missing and
/// `create` is set. Refuses uid 0.
pub(crate) fn ensure_user(user: &str, create: bool) -> Result<ActionUser, SandboxError> {
    let err = |msg: String| SandboxError::User {
        user: user.to_string(),
        msg,
    };
    if let Some(u) = lookup_user(user) {
        return check_user(u).map_err(err);
    }
    if !create {
        return Err(err("does not exist and sandbox.create_user is false".into()));
    }
    let out = std::process::Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ])
        .output()
        .map_err(|e| err(format!("cannot run useradd: {e}")))?;
    if !out.status.success() && lookup_user(user).is_none() {
        return Err(err(format!(
            "useradd failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let u = lookup_user(user).ok_or_else(|| err("not found after useradd".into()))?;
    check_user(u).map_err(err)
}

fn check_user(u: ActionUser) -> Result<ActionUser, String> {
    if u.uid == 0 || u.gid == 0 {
        return Err("must not be root or in group root".into());
    }
    Ok(u)
}

fn lookup_user(user: &str) -> Option<ActionUser> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == user).then(|| {
            Some(ActionUser {
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })?
    })
}

/// What to start and how to confine it.
pub(crate) struct SpawnSpec<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    /// The container's private directory (`<containers root>/<name>`).
    pub dir: &'a Path,
    /// Directory holding every container's directory (hidden from the action).
    pub containers_root: &'a Path,
    /// `cgroup.procs` files of the container's cgroup (one per hierarchy).
    pub cgroup_procs: Vec<PathBuf>,
    pub user: ActionUser,
    pub namespaces: bool,
    /// Directories left writable in the read-only file system (bind-mounted on themselves).
    pub writable: &'a [PathBuf],
}

/// A started container process and the platform's ends of its pipes.
pub(crate) struct Spawned {
    /// The process the platform started (with namespaces: the parent of the PID 1).
    pub child: tokio::process::Child,
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
    pub results: pipe::Receiver,
    /// Platform-side writers into the action's stdout and stderr (for sentinels).
    pub stdout_tap: pipe::Sender,
    pub stderr_tap: pipe::Sender,
}

fn pipe2() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: valid array of two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A second, non-blocking open file description of a pipe end: the platform writes
/// through it without making the action's own end non-blocking.
fn reopen_nonblocking(fd: &OwnedFd) -> std::io::Result<OwnedFd> {
    let p =
        CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(std::io::Error::other)?;
    // SAFETY: valid C string.
    let r = unsafe {
        libc::open(
            p.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: freshly opened fd.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

fn cstr(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const DIR_FD: RawFd = 9;

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Starts a container process as described (see the module documentation).
pub(crate) fn spawn(spec: &SpawnSpec<'_>) -> Result<Spawned, SandboxError> {
    let (stdin_r, stdin_w) = pipe2().map_err(io("pipe"))?;
    let (stdout_r, stdout_w) = pipe2().map_err(io("pipe"))?;
    let (stderr_r, stderr_w) = pipe2().map_err(io("pipe"))?;
    let (res_r, res_w) = pipe2().map_err(io("pipe"))?;
    let stdout_tap = reopen_nonblocking(&stdout_w).map_err(io("reopen stdout pipe"))?;
    let stderr_tap = reopen_nonblocking(&stderr_w).map_err(io("reopen stderr pipe"))?;
    let mut procs = Vec::new();
    for p in &spec.cgroup_procs {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .map_err(io(p.display().to_string()))?;
        procs.push(OwnedFd::from(f));
    }
    let procs_raw: Vec<RawFd> = procs.iter().map(|f| f.as_raw_fd()).collect();
    let fds = [
        stdin_r.as_raw_fd(),
        stdout_w.as_raw_fd(),
        stderr_w.as_raw_fd(),
        res_w.as_raw_fd(),
    ];
    let dir = cstr(spec.dir).map_err(io("dir"))?;
    let root = cstr(spec.containers_root).map_err(io("root"))?;
    let dirfd_path =
        CString::new(format!("/proc/self/fd/{DIR_FD}")).map_err(|e| SandboxError::Io {
            what: "path".into(),
            source: std::io::Error::other(e),
        })?;
    let slash = c"/";
    let proc_ = c"proc";
    let proc_dir = c"/proc";
    let tmpfs = c"tmpfs";
    let tmpfs_opts = c"size=16k,mode=755";
    let dot = c".";
    let writable: Vec<CString> = spec
        .writable
        .iter()
        .map(|p| cstr(p))
        .collect::<std::io::Result<_>>()
        .map_err(io("writable dir"))?;
    let ns = spec.namespaces;
    let ActionUser { uid, gid } = spec.user;

    let mut cmd = tokio::process::Command::new(spec.program);
    cmd.args(spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(false);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls on values prepared before the fork (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || {
            // The action gets the host's THP setting, not the loader's (faasload_os::memory).
            faasload_os::memory::restore_thp_in_child();
            for &fd in &procs_raw {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (target, &fd) in fds.iter().enumerate() {
                let target = target as RawFd;
                if fd == target {
                    check(libc::fcntl(fd, libc::F_SETFD, 0))?;
                } else {
                    check(libc::dup2(fd, target))?;
                }
            }
            libc::setsid();
            if ns {
                check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID))?;
                let pid = libc::fork();
                if pid < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if pid > 0 {
                    // The platform's child: holds nothing, waits for the namespace's init.
                    libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
                    let mut st = 0;
                    loop {
                        let r = libc::waitpid(pid, &mut st, 0);
                        if r == pid {
                            break;
                        }
                        if r < 0 && *libc::__errno_location() != libc::EINTR {
                            libc::_exit(1);
                        }
                    }
                    if libc::WIFEXITED(st) {
                        libc::_exit(libc::WEXITSTATUS(st));
                    }
                    libc::_exit(128 + libc::WTERMSIG(st));
                }
                // PID 1 of the new namespace.
                check(libc::mount(
                    std::ptr::null(),
                    slash.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                check(libc::mount(
                    proc_.as_ptr(),
                    proc_dir.as_ptr(),
                    proc_.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ))?;
                let d = libc::open(
                    dir.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                );
                if d < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                check(libc::dup2(d, DIR_FD))?;
                libc::close(d);
                check(libc::mount(
                    tmpfs.as_ptr(),
                    root.as_ptr(),
                    tmpfs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    tmpfs_opts.as_ptr().cast(),
                ))?;
                check(libc::mkdir(dir.as_ptr(), 0o755))?;
                check(libc::mount(
                    dirfd_path.as_ptr(),
                    dir.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ))?;
                libc::close(DIR_FD);
                check(libc::chdir(dir.as_ptr()))?;
                for w in &writable {
                    check(libc::mount(
                        w.as_ptr(),
                        w.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ))?;
                }
                let ro = MountAttr {
                    attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: 0,
                };
                check(libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    slash.as_ptr(),
                    AT_RECURSIVE,
                    &ro as *const MountAttr,
                    std::mem::size_of::<MountAttr>(),
                ) as libc::c_int)?;
                let rw = MountAttr {
                    attr_set: 0,
                    attr_clr: MOUNT_ATTR_RDONLY,
                    propagation: 0,
                    userns_fd: 0,
                };
                check(libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    dot.as_ptr(),
                    0u32,
                    &rw as *const MountAttr,
                    std::mem::size_of::<MountAttr>(),
                ) as libc::c_int)?;
                for w in &writable {
                    check(libc::syscall(
                        libc::SYS_mount_setattr,
                        libc::AT_FDCWD,
                        w.as_ptr(),
                        0u32,
                        &rw as *const MountAttr,
                        std::mem::size_of::<MountAttr>(),
                    ) as libc::c_int)?;
                }
            } else {
                check(libc::chdir(dir.as_ptr()))?;
            }
            // OpenWhisk's `--ulimit nofile=1024:1024`.
            let nofile = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            check(libc::setrlimit(libc::RLIMIT_NOFILE, &nofile))?;
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(gid))?;
            check(libc::setuid(uid))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            if ns {
                check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(io(format!("start {}", spec.program.display())))?;
    drop((stdin_r, stdout_w, stderr_w, res_w, procs));
    let conv = |what: &str| io(format!("pipe {what}"));
    Ok(Spawned {
        child,
        stdin: pipe::Sender::from_owned_fd(stdin_w).map_err(conv("stdin"))?,
        stdout: pipe::Receiver::from_owned_fd(stdout_r).map_err(conv("stdout"))?,
        stderr: pipe::Receiver::from_owned_fd(stderr_r).map_err(conv("stderr"))?,
        results: pipe::Receiver::from_owned_fd(res_r).map_err(conv("results"))?,
        stdout_tap: pipe::Sender::from_owned_fd(stdout_tap).map_err(conv("stdout tap"))?,
        stderr_tap: pipe::Sender::from_owned_fd(stderr_tap).map_err(conv("stderr tap"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_refused() {
        assert!(check_user(ActionUser { uid: 0, gid: 5 }).is_err());
        assert!(check_user(ActionUser { uid: 999, gid: 999 }).is_ok());
        let root = lookup_user("root").unwrap();
        assert_eq!(root.uid, 0);
    }
}
