//! faasload's kernel programs: per-cgroup on-CPU time, scheduler counters and memory
//! samples (O(1) per context switch, into arrays user space maps, no event per switch),
//! slices split when a running task moves to another cgroup, and rare events (cgroup
//! life-cycle, process exec/exit in watched cgroups, OOM victims) through a ring buffer.
//! Kernel structure offsets come from user space at load time (read from the kernel's
//! BTF), since Rust has no CO-RE relocations.
#![no_std]
#![no_main]

mod cgroup;
mod lifecycle;
mod maps;
mod moves;
mod sched;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
