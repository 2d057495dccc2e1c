//! The kernel's list of loaded BPF programs (ids, names and run counters, through the
//! `bpf(2)` syscall), so that a monitor suite can tell whether programs other than those
//! of the monitor it measures (another session's monitor, say) ran on the same hooks
//! during a measurement, and whether the kernel's BPF run-time statistics were on (their
//! counters move only then): both land in every configuration and widen the spread.

use anyhow::{Result, bail};

const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// The first fields of the kernel's `struct bpf_prog_info`, up to and including
/// `run_cnt` (the fields between `name` and `run_time_ns` are not read).
#[repr(C)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
    between: [u8; 112],
    run_time_ns: u64,
    run_cnt: u64,
}

impl Default for ProgInfo {
    fn default() -> ProgInfo {
        // SAFETY: plain integers and byte arrays: all zero is a valid value.
        unsafe { std::mem::zeroed() }
    }
}

/// `union bpf_attr` as the three commands used here read it (zero-padded to the size
/// the kernel checks).
#[repr(C)]
#[derive(Default)]
struct Attr {
    /// `start_id` / `prog_id` / `bpf_fd`.
    a: u32,
    /// `next_id` / `info_len`.
    b: u32,
    /// `open_flags`, or the low half of `info`.
    c: u64,
    pad: [u64; 6],
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> libc::c_long {
    // SAFETY: `attr` is a valid, writable, zero-padded `bpf_attr` of the size passed.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    }
}

/// One loaded program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Prog {
    pub id: u32,
    /// The (at most 15-byte) name the kernel keeps.
    pub name: String,
    /// Run time and runs so far (they only move while BPF statistics are on).
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// Every BPF program loaded on the machine (programs unloaded during the walk are
/// skipped). Needs CAP_SYS_ADMIN.
pub(super) fn loaded() -> Result<Vec<Prog>> {
    let mut out = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = Attr {
            a: id,
            ..Attr::default()
        };
        if bpf(BPF_PROG_GET_NEXT_ID, &mut attr) != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(out);
            }
            bail!("bpf(BPF_PROG_GET_NEXT_ID): {e}");
        }
        id = attr.b;
        let mut attr = Attr {
            a: id,
            ..Attr::default()
        };
        let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr);
        if fd < 0 {
            // Unloaded since: skip it.
            continue;
        }
        let fd = fd as libc::c_int;
        let mut info = ProgInfo::default();
        let mut attr = Attr {
            a: fd as u32,
            b: std::mem::size_of::<ProgInfo>() as u32,
            c: &mut info as *mut ProgInfo as u64,
            ..Attr::default()
        };
        let r = bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr);
        let e = std::io::Error::last_os_error();
        // SAFETY: closing the descriptor we just got.
        unsafe { libc::close(fd) };
        if r != 0 {
            bail!("bpf(BPF_OBJ_GET_INFO_BY_FD) on program {id}: {e}");
        }
        let len = info.name.iter().position(|&b| b == 0).unwrap_or(16);
        out.push(Prog {
            id: info.id,
            name: String::from_utf8_lossy(&info.name[..len]).into_owned(),
            run_time_ns: info.run_time_ns,
            run_cnt: info.run_cnt,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout the kernel expects (`linux/bpf.h`): `name` at offset 64 of
    /// `bpf_prog_info`, `run_time_ns` at 192, `run_cnt` at 200; the three commands' fields
    /// at 0, 4 and 8 of `bpf_attr`.
    #[test]
    fn layouts_match_the_kernel_uapi() {
        assert_eq!(std::mem::offset_of!(ProgInfo, name), 64);
        assert_eq!(std::mem::offset_of!(ProgInfo, run_time_ns), 192);
        assert_eq!(std::mem::offset_of!(ProgInfo, run_cnt), 200);
        assert_eq!(std::mem::offset_of!(Attr, b), 4);
        assert_eq!(std::mem::offset_of!(Attr, c), 8);
    }
}
