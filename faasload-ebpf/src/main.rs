//! faasload's kernel programs: per-cgroup on-CPU time and scheduler counters (O(1) per
//! context switch, read by user space from maps, no event per switch), and rare events
//! (cgroup life-cycle, process exec/exit in watched cgroups, OOM victims) through a ring
//! buffer. Kernel structure offsets come from user space at load time (read from the
//! kernel's BTF), since Rust has no CO-RE relocations.
#![no_std]
#![no_main]

mod cgroup;
mod lifecycle;
mod maps;
mod sched;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
