//! Kernel structure offsets read from the kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! Rust eBPF programs get no CO-RE relocations, so the kernel programs cannot follow
//! `task->cgroups->subsys[id]->cgroup->kn->id` on their own: user space reads the byte
//! offsets of those fields and the controller ids from the running kernel's BTF at
//! start-up and hands them to the programs as load-time globals. This is a small,
//! bounds-checked BTF reader that understands just enough of the format for that
//! (every kind is sized so the type section can be walked; structs, unions, enums and
//! the typedef/const/volatile chains between them are interpreted).

use std::path::{Path, PathBuf};

/// Where the running kernel exposes its own BTF.
pub(crate) const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const BTF_MAGIC: u16 = 0xeb9f;
const BTF_VERSION: u8 = 1;
/// Size of the fixed part of `struct btf_header` (the kernel may append fields).
const HEADER_MIN_LEN: usize = 24;
/// Size of `struct btf_type`.
const TYPE_LEN: usize = 12;
/// Deepest typedef/const/volatile chain or anonymous-member nesting we follow.
const MAX_DEPTH: usize = 32;

const KIND_INT: u8 = 1;
const KIND_PTR: u8 = 2;
const KIND_ARRAY: u8 = 3;
const KIND_STRUCT: u8 = 4;
const KIND_UNION: u8 = 5;
const KIND_ENUM: u8 = 6;
const KIND_FWD: u8 = 7;
const KIND_TYPEDEF: u8 = 8;
const KIND_VOLATILE: u8 = 9;
const KIND_CONST: u8 = 10;
const KIND_RESTRICT: u8 = 11;
const KIND_FUNC: u8 = 12;
const KIND_FUNC_PROTO: u8 = 13;
const KIND_VAR: u8 = 14;
const KIND_DATASEC: u8 = 15;
const KIND_FLOAT: u8 = 16;
const KIND_DECL_TAG: u8 = 17;
const KIND_TYPE_TAG: u8 = 18;
const KIND_ENUM64: u8 = 19;

/// Why the BTF could not be read or did not hold what the monitor needs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BtfError {
    #[error("cannot read kernel BTF {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("BTF truncated: {what} needs bytes {start}..{end} but only {len} are available")]
    Truncated {
        what: &'static str,
        start: usize,
        end: usize,
        len: usize,
    },
    #[error("not BTF: magic {found:#06x}, expected {BTF_MAGIC:#06x} (little-endian)")]
    BadMagic { found: u16 },
    #[error("unsupported BTF version {0} (only version {BTF_VERSION} is understood)")]
    BadVersion(u8),
    #[error("BTF header length {0} is shorter than the {HEADER_MIN_LEN}-byte minimum")]
    BadHeaderLen(u32),
    #[error("BTF type #{id} at type-section offset {offset} has unknown kind {kind}")]
    UnknownKind { id: u32, offset: usize, kind: u8 },
    #[error("BTF string at offset {offset} is out of bounds or not NUL-terminated")]
    BadString { offset: u32 },
    #[error("BTF type #{id} referenced from {from} does not exist ({count} types)")]
    BadTypeId {
        id: u32,
        from: &'static str,
        count: usize,
    },
    #[error("BTF has no {kind} named `{name}`")]
    TypeNotFound { kind: &'static str, name: String },
    #[error("BTF struct/union `{ty}` has no member `{member}`")]
    MemberNotFound { ty: String, member: String },
    #[error(
        "BTF member `{ty}.{member}` is not byte-aligned (bit offset {bits}, bitfield size {bitfield_size})"
    )]
    NotByteAligned {
        ty: String,
        member: String,
        bits: u64,
        bitfield_size: u32,
    },
    #[error("BTF enum `{ty}` has no enumerator `{name}`")]
    EnumeratorNotFound { ty: String, name: String },
    #[error("BTF type nesting deeper than {MAX_DEPTH} while looking for `{what}`")]
    TooDeep { what: String },
}

/// Byte offsets and controller ids the kernel programs need to find a task's cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KernelOffsets {
    /// `task_struct.cgroups` (a `struct css_set *`).
    pub task_cgroups: u64,
    /// `css_set.subsys` (array of `struct cgroup_subsys_state *`).
    pub css_set_subsys: u64,
    /// `css_set.dfl_cgrp` (the task's cgroup2 cgroup).
    pub css_set_dfl_cgrp: u64,
    /// `cgroup_subsys_state.cgroup`.
    pub css_cgroup: u64,
    /// `cgroup.kn` (its `kernfs_node`, whose id is the directory inode).
    pub cgroup_kn: u64,
    /// `cgroup.root` (the hierarchy the cgroup belongs to).
    pub cgroup_root: u64,
    /// `cgroup_root.hierarchy_id`.
    pub root_hierarchy_id: u64,
    /// `kernfs_node.id`.
    pub kn_id: u64,
    /// Value of `cpu_cgrp_id` in `enum cgroup_subsys_id`.
    pub cpu_cgrp_id: u64,
    /// Value of `memory_cgrp_id` in `enum cgroup_subsys_id`.
    pub memory_cgrp_id: u64,
    /// `task_struct.se` (its `struct sched_entity`).
    pub task_se: u64,
    /// `sched_entity.sum_exec_runtime` (the kernel's own CPU time of the task, ns).
    pub se_sum_exec_runtime: u64,
    /// `sched_entity.prev_sum_exec_runtime` (the sum when the task was last picked).
    pub se_prev_sum_exec_runtime: u64,
    /// `task_struct.tgid` (the process id).
    pub task_tgid: u64,
    /// `task_struct.policy` (scheduling policy).
    pub task_policy: u64,
    /// `task_struct.prio` (effective priority).
    pub task_prio: u64,
    /// `task_struct.on_cpu` and the offset of the CPU it is on (`thread_info.cpu` within
    /// `task_struct`, or `task_struct.cpu`), if the kernel has them.
    pub task_on_cpu: Option<(u64, u64)>,
    /// `mem_cgroup.css` (the memory controller's `cgroup_subsys_state`).
    pub memcg_css: u64,
    /// `mem_cgroup.memory` (its page counter).
    pub memcg_memory: u64,
    /// `page_counter.usage` (pages charged).
    pub page_counter_usage: u64,
    /// Fair group scheduling's offsets, if the kernel has it (`CONFIG_FAIR_GROUP_SCHED`).
    pub fair_group: Option<FairGroupOffsets>,
}

/// Where a task's `cpu` cgroup is reachable from its scheduling entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FairGroupOffsets {
    /// `sched_entity.cfs_rq` (the run queue of the task's task group on its CPU).
    pub se_cfs_rq: u64,
    /// `cfs_rq.tg` (that task group).
    pub cfs_rq_tg: u64,
    /// `task_group.css` (its css in the `cpu` controller).
    pub tg_css: u64,
    /// `cfs_rq.rq` (the CPU's run queue).
    pub cfs_rq_rq: u64,
    /// `rq.clock` (its clock, updated at every switch).
    pub rq_clock: u64,
}

impl KernelOffsets {
    /// Reads the running kernel's BTF from [`VMLINUX_BTF`].
    pub(crate) fn from_sys() -> Result<Self, BtfError> {
        Self::from_path(Path::new(VMLINUX_BTF))
    }

    /// Reads BTF from a file (a kernel's `vmlinux` BTF dump).
    pub(crate) fn from_path(path: &Path) -> Result<Self, BtfError> {
        let bytes = std::fs::read(path).map_err(|source| BtfError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Parses raw BTF bytes and looks up every offset and id.
    pub(crate) fn from_bytes(b: &[u8]) -> Result<Self, BtfError> {
        let btf = Btf::parse(b)?;
        Ok(KernelOffsets {
            task_cgroups: btf.member_offset("task_struct", "cgroups")?,
            css_set_subsys: btf.member_offset("css_set", "subsys")?,
            css_set_dfl_cgrp: btf.member_offset("css_set", "dfl_cgrp")?,
            css_cgroup: btf.member_offset("cgroup_subsys_state", "cgroup")?,
            cgroup_kn: btf.member_offset("cgroup", "kn")?,
            cgroup_root: btf.member_offset("cgroup", "root")?,
            root_hierarchy_id: btf.member_offset("cgroup_root", "hierarchy_id")?,
            kn_id: btf.member_offset("kernfs_node", "id")?,
            cpu_cgrp_id: btf.enum_value("cgroup_subsys_id", "cpu_cgrp_id")? as u64,
            memory_cgrp_id: btf.enum_value("cgroup_subsys_id", "memory_cgrp_id")? as u64,
            task_se: btf.member_offset("task_struct", "se")?,
            se_sum_exec_runtime: btf.member_offset("sched_entity", "sum_exec_runtime")?,
            se_prev_sum_exec_runtime: btf.member_offset("sched_entity", "prev_sum_exec_runtime")?,
            task_tgid: btf.member_offset("task_struct", "tgid")?,
            task_policy: btf.member_offset("task_struct", "policy")?,
            task_prio: btf.member_offset("task_struct", "prio")?,
            task_on_cpu: btf
                .member_offset("task_struct", "on_cpu")
                .ok()
                .and_then(|on| {
                    let cpu = match (
                        btf.member_offset("task_struct", "thread_info"),
                        btf.member_offset("thread_info", "cpu"),
                    ) {
                        (Ok(ti), Ok(c)) => Some(ti + c),
                        _ => btf.member_offset("task_struct", "cpu").ok(),
                    }?;
                    Some((on, cpu))
                }),
            memcg_css: btf.member_offset("mem_cgroup", "css")?,
            memcg_memory: btf.member_offset("mem_cgroup", "memory")?,
            page_counter_usage: btf.member_offset("page_counter", "usage")?,
            fair_group: match (
                btf.member_offset("sched_entity", "cfs_rq"),
                btf.member_offset("cfs_rq", "tg"),
                btf.member_offset("task_group", "css"),
                btf.member_offset("cfs_rq", "rq"),
                btf.member_offset("rq", "clock"),
            ) {
                (Ok(se_cfs_rq), Ok(cfs_rq_tg), Ok(tg_css), Ok(cfs_rq_rq), Ok(rq_clock)) => {
                    Some(FairGroupOffsets {
                        se_cfs_rq,
                        cfs_rq_tg,
                        tg_css,
                        cfs_rq_rq,
                        rq_clock,
                    })
                }
                _ => None,
            },
        })
    }

    /// Offset from a memory controller's `cgroup_subsys_state *` to its page counter's
    /// usage (`mem_cgroup.memory.usage - mem_cgroup.css`; the css is embedded, usually
    /// first).
    pub(crate) fn css_memcg_usage(&self) -> u64 {
        (self.memcg_memory + self.page_counter_usage).wrapping_sub(self.memcg_css)
    }
}

/// One entry of the type section, with its kind-specific trailing data located.
#[derive(Debug, Clone, Copy)]
struct TypeEntry {
    name_off: u32,
    kind: u8,
    kind_flag: bool,
    vlen: u16,
    /// `size` or `type`, depending on the kind.
    size_or_type: u32,
    /// Byte offset, within the type section, of the data that follows `struct btf_type`.
    extra: usize,
}

/// A parsed BTF blob: its type table and string section.
pub(crate) struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Index `i` holds type id `i + 1` (id 0 is `void`).
    entries: Vec<TypeEntry>,
}

fn slice<'a>(
    b: &'a [u8],
    start: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], BtfError> {
    let end = start.checked_add(len).ok_or(BtfError::Truncated {
        what,
        start,
        end: usize::MAX,
        len: b.len(),
    })?;
    b.get(start..end).ok_or(BtfError::Truncated {
        what,
        start,
        end,
        len: b.len(),
    })
}

fn u32_at(b: &[u8], at: usize, what: &'static str) -> Result<u32, BtfError> {
    let s = slice(b, at, 4, what)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Bytes of kind-specific data following a `struct btf_type` of this kind.
fn extra_len(kind: u8, vlen: u16) -> Option<usize> {
    let vlen = usize::from(vlen);
    Some(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        _ => return None,
    })
}

impl<'a> Btf<'a> {
    /// Validates the header and indexes every type. Never panics on malformed input.
    pub(crate) fn parse(b: &'a [u8]) -> Result<Self, BtfError> {
        let hdr = slice(b, 0, HEADER_MIN_LEN, "header")?;
        let magic = u16::from_le_bytes([hdr[0], hdr[1]]);
        if magic != BTF_MAGIC {
            return Err(BtfError::BadMagic { found: magic });
        }
        if hdr[2] != BTF_VERSION {
            return Err(BtfError::BadVersion(hdr[2]));
        }
        let hdr_len = u32_at(b, 4, "header")?;
        if (hdr_len as usize) < HEADER_MIN_LEN {
            return Err(BtfError::BadHeaderLen(hdr_len));
        }
        let body = slice(b, 0, hdr_len as usize, "header")?;
        let body = &b[body.len()..];
        let type_off = u32_at(b, 8, "header")? as usize;
        let type_len = u32_at(b, 12, "header")? as usize;
        let str_off = u32_at(b, 16, "header")? as usize;
        let str_len = u32_at(b, 20, "header")? as usize;
        let types = slice(body, type_off, type_len, "type section")?;
        let strings = slice(body, str_off, str_len, "string section")?;

        let mut entries = Vec::new();
        let mut at = 0usize;
        while at < types.len() {
            let id = u32::try_from(entries.len() + 1).unwrap_or(u32::MAX);
            let name_off = u32_at(types, at, "type entry")?;
            let info = u32_at(types, at + 4, "type entry")?;
            let size_or_type = u32_at(types, at + 8, "type entry")?;
            let kind = ((info >> 24) & 0x1f) as u8;
            let vlen = (info & 0xffff) as u16;
            let extra = at + TYPE_LEN;
            let len = extra_len(kind, vlen).ok_or(BtfError::UnknownKind {
                id,
                offset: at,
                kind,
            })?;
            slice(types, extra, len, "type data")?;
            entries.push(TypeEntry {
                name_off,
                kind,
                kind_flag: info >> 31 == 1,
                vlen,
                size_or_type,
                extra,
            });
            at = extra + len;
        }
        Ok(Btf {
            types,
            strings,
            entries,
        })
    }

    /// Number of types (not counting `void`).
    #[cfg(test)]
    pub(crate) fn type_count(&self) -> usize {
        self.entries.len()
    }

    fn name(&self, off: u32) -> Result<&'a [u8], BtfError> {
        let rest = self
            .strings
            .get(off as usize..)
            .ok_or(BtfError::BadString { offset: off })?;
        let nul = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or(BtfError::BadString { offset: off })?;
        Ok(&rest[..nul])
    }

    fn entry(&self, id: u32, from: &'static str) -> Result<&TypeEntry, BtfError> {
        id.checked_sub(1)
            .and_then(|i| self.entries.get(i as usize))
            .ok_or(BtfError::BadTypeId {
                id,
                from,
                count: self.entries.len(),
            })
    }

    /// First type of one of `kinds` named `name` that has members (skips empty
    /// declarations such as an opaque struct with `vlen == 0` when a full one exists).
    fn find(&self, kinds: &[u8], kind_name: &'static str, name: &str) -> Result<u32, BtfError> {
        let mut empty = None;
        for (i, e) in self.entries.iter().enumerate() {
            if kinds.contains(&e.kind) && self.name(e.name_off)? == name.as_bytes() {
                let id = (i + 1) as u32;
                if e.vlen > 0 {
                    return Ok(id);
                }
                empty.get_or_insert(id);
            }
        }
        empty.ok_or_else(|| BtfError::TypeNotFound {
            kind: kind_name,
            name: name.to_owned(),
        })
    }

    /// Follows typedef/const/volatile/restrict/type-tag chains to the underlying type.
    fn resolve(&self, mut id: u32, what: &str) -> Result<u32, BtfError> {
        for _ in 0..MAX_DEPTH {
            if id == 0 {
                return Ok(0);
            }
            let e = self.entry(id, "type chain")?;
            match e.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = e.size_or_type
                }
                _ => return Ok(id),
            }
        }
        Err(BtfError::TooDeep {
            what: what.to_owned(),
        })
    }

    /// Byte offset of `member` in the struct or union named `ty`, looking through
    /// anonymous struct/union members (their offsets add up).
    pub(crate) fn member_offset(&self, ty: &str, member: &str) -> Result<u64, BtfError> {
        let id = self.find(&[KIND_STRUCT, KIND_UNION], "struct or union", ty)?;
        match self.member_bits(id, member, 0)? {
            Some((bits, 0)) if bits % 8 == 0 => Ok(bits / 8),
            Some((bits, bitfield_size)) => Err(BtfError::NotByteAligned {
                ty: ty.to_owned(),
                member: member.to_owned(),
                bits,
                bitfield_size,
            }),
            None => Err(BtfError::MemberNotFound {
                ty: ty.to_owned(),
                member: member.to_owned(),
            }),
        }
    }

    /// Bit offset and bitfield size (0 when not a bitfield) of `member` in struct or
    /// union `id`, searched depth-first through anonymous members.
    fn member_bits(
        &self,
        id: u32,
        member: &str,
        depth: usize,
    ) -> Result<Option<(u64, u32)>, BtfError> {
        if depth >= MAX_DEPTH {
            return Err(BtfError::TooDeep {
                what: member.to_owned(),
            });
        }
        let e = *self.entry(id, "member search")?;
        if e.kind != KIND_STRUCT && e.kind != KIND_UNION {
            return Ok(None);
        }
        for i in 0..usize::from(e.vlen) {
            let at = e.extra + 12 * i;
            let name_off = u32_at(self.types, at, "struct member")?;
            let mtype = u32_at(self.types, at + 4, "struct member")?;
            let raw = u32_at(self.types, at + 8, "struct member")?;
            let (bits, bitfield_size) = if e.kind_flag {
                (u64::from(raw & 0x00ff_ffff), raw >> 24)
            } else {
                (u64::from(raw), 0)
            };
            if name_off == 0 {
                let inner = self.resolve(mtype, member)?;
                if inner != 0
                    && let Some((b, s)) = self.member_bits(inner, member, depth + 1)?
                {
                    return Ok(Some((bits + b, s)));
                }
            } else if self.name(name_off)? == member.as_bytes() {
                return Ok(Some((bits, bitfield_size)));
            }
        }
        Ok(None)
    }

    /// Value of enumerator `name` in the enum (32- or 64-bit) named `ty`.
    pub(crate) fn enum_value(&self, ty: &str, name: &str) -> Result<i64, BtfError> {
        let id = self.find(&[KIND_ENUM, KIND_ENUM64], "enum", ty)?;
        let e = *self.entry(id, "enum")?;
        let signed = e.kind_flag;
        let stride = if e.kind == KIND_ENUM { 8 } else { 12 };
        for i in 0..usize::from(e.vlen) {
            let at = e.extra + stride * i;
            let name_off = u32_at(self.types, at, "enumerator")?;
            if self.name(name_off)? != name.as_bytes() {
                continue;
            }
            let lo = u32_at(self.types, at + 4, "enumerator")?;
            return Ok(if e.kind == KIND_ENUM {
                if signed {
                    i64::from(lo as i32)
                } else {
                    i64::from(lo)
                }
            } else {
                let hi = u32_at(self.types, at + 8, "enumerator")?;
                ((u64::from(hi) << 32) | u64::from(lo)) as i64
            });
        }
        Err(BtfError::EnumeratorNotFound {
            ty: ty.to_owned(),
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF blobs by hand, the way the kernel lays them out.
    #[derive(Default)]
    struct Builder {
        types: Vec<u8>,
        strings: Vec<u8>,
        next_id: u32,
    }

    impl Builder {
        fn new() -> Self {
            Builder {
                types: Vec::new(),
                strings: vec![0],
                next_id: 1,
            }
        }

        fn str(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }

        fn push(
            &mut self,
            name: &str,
            kind: u8,
            kind_flag: bool,
            vlen: u16,
            size_or_type: u32,
        ) -> u32 {
            let name_off = self.str(name);
            let info = (u32::from(kind_flag) << 31) | (u32::from(kind) << 24) | u32::from(vlen);
            for w in [name_off, info, size_or_type] {
                self.types.extend_from_slice(&w.to_le_bytes());
            }
            self.next_id += 1;
            self.next_id - 1
        }

        fn words(&mut self, words: &[u32]) {
            for w in words {
                self.types.extend_from_slice(&w.to_le_bytes());
            }
        }

        fn int(&mut self, name: &str, bytes: u32) -> u32 {
            let id = self.push(name, KIND_INT, false, 0, bytes);
            self.words(&[bytes * 8]);
            id
        }

        /// Members are `(name, type, bit offset, bitfield size)`; a non-zero bitfield
        /// size switches the struct to the kind_flag encoding.
        fn composite(
            &mut self,
            kind: u8,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32, u32)],
        ) -> u32 {
            let kind_flag = members.iter().any(|m| m.3 != 0);
            let id = self.push(name, kind, kind_flag, members.len() as u16, size);
            for &(m, ty, bits, bf) in members {
                let off = self.str(m);
                let raw = if kind_flag { (bf << 24) | bits } else { bits };
                self.words(&[off, ty, raw]);
            }
            id
        }

        fn enumeration(&mut self, name: &str, values: &[(&str, i32)]) -> u32 {
            let id = self.push(name, KIND_ENUM, false, values.len() as u16, 4);
            for &(n, v) in values {
                let off = self.str(n);
                self.words(&[off, v as u32]);
            }
            id
        }

        fn finish(&self) -> Vec<u8> {
            let mut b = Vec::new();
            b.extend_from_slice(&BTF_MAGIC.to_le_bytes());
            b.extend_from_slice(&[BTF_VERSION, 0]);
            for w in [
                HEADER_MIN_LEN as u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ] {
                b.extend_from_slice(&w.to_le_bytes());
            }
            b.extend_from_slice(&self.types);
            b.extend_from_slice(&self.strings);
            b
        }
    }

    /// struct outer { int a; union { int b; struct { char c; long d; }; }; u32 e:3, f:5; }
    /// plus a typedef'd anonymous struct member and `enum colours`.
    fn tiny() -> Vec<u8> {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let chr = b.int("char", 1);
        let long = b.int("long", 8);
        let inner = b.composite(KIND_STRUCT, "", 16, &[("c", chr, 0, 0), ("d", long, 64, 0)]);
        let uni = b.composite(KIND_UNION, "", 16, &[("b", int, 0, 0), ("", inner, 0, 0)]);
        let tail = b.composite(KIND_STRUCT, "", 8, &[("g", long, 0, 0)]);
        let tail_td = b.push("tail_t", KIND_TYPEDEF, false, 0, tail);
        let tail_const = b.push("", KIND_CONST, false, 0, tail_td);
        b.composite(
            KIND_STRUCT,
            "outer",
            40,
            &[
                ("a", int, 0, 0),
                ("", uni, 64, 0),
                ("e", int, 192, 3),
                ("f", int, 195, 5),
                ("", tail_const, 256, 0),
            ],
        );
        // An opaque declaration with the same name must not shadow the full one.
        b.push("outer", KIND_FWD, false, 0, 0);
        b.enumeration("colours", &[("red", 0), ("green", 7), ("blue", -2)]);
        b.finish()
    }

    #[test]
    fn finds_members_through_anonymous_unions_and_structs() {
        let blob = tiny();
        let btf = Btf::parse(&blob).unwrap();
        assert_eq!(btf.type_count(), 11);
        assert_eq!(btf.member_offset("outer", "a").unwrap(), 0);
        assert_eq!(btf.member_offset("outer", "b").unwrap(), 8);
        assert_eq!(btf.member_offset("outer", "c").unwrap(), 8);
        assert_eq!(btf.member_offset("outer", "d").unwrap(), 16);
        assert_eq!(
            btf.member_offset("outer", "g").unwrap(),
            32,
            "through const -> typedef"
        );
        assert!(matches!(
            btf.member_offset("outer", "zz"),
            Err(BtfError::MemberNotFound { .. })
        ));
        assert!(matches!(
            btf.member_offset("nope", "a"),
            Err(BtfError::TypeNotFound { .. })
        ));
    }

    #[test]
    fn bitfields_use_kind_flag_encoding() {
        let blob = tiny();
        let btf = Btf::parse(&blob).unwrap();
        // The kind_flag encoding must not leak the bitfield size into the offset.
        assert_eq!(btf.member_offset("outer", "a").unwrap(), 0);
        match btf.member_offset("outer", "f") {
            Err(BtfError::NotByteAligned {
                bits,
                bitfield_size,
                ..
            }) => {
                assert_eq!((bits, bitfield_size), (195, 5));
            }
            other => panic!("expected NotByteAligned, got {other:?}"),
        }
        assert!(matches!(
            btf.member_offset("outer", "e"),
            Err(BtfError::NotByteAligned {
                bits: 192,
                bitfield_size: 3,
                ..
            })
        ));
    }

    #[test]
    fn reads_enum_values() {
        let blob = tiny();
        let btf = Btf::parse(&blob).unwrap();
        assert_eq!(btf.enum_value("colours", "red").unwrap(), 0);
        assert_eq!(btf.enum_value("colours", "green").unwrap(), 7);
        // Unsigned unless kind_flag says signed (libbpf's convention).
        assert_eq!(
            btf.enum_value("colours", "blue").unwrap(),
            i64::from(u32::MAX - 1)
        );
        assert!(matches!(
            btf.enum_value("colours", "mauve"),
            Err(BtfError::EnumeratorNotFound { .. })
        ));
    }

    #[test]
    fn kernel_offsets_from_a_hand_built_kernel() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let ptr = b.push("", KIND_PTR, false, 0, 0);
        b.composite(
            KIND_STRUCT,
            "kernfs_node",
            128,
            &[("count", int, 0, 0), ("id", int, 96 * 8, 0)],
        );
        b.composite(
            KIND_STRUCT,
            "cgroup_root",
            64,
            &[("kf_root", ptr, 0, 0), ("hierarchy_id", int, 64, 0)],
        );
        b.composite(
            KIND_STRUCT,
            "cgroup",
            512,
            &[
                ("self", int, 0, 0),
                ("kn", ptr, 256 * 8, 0),
                ("root", ptr, 300 * 8, 0),
            ],
        );
        b.composite(
            KIND_STRUCT,
            "cgroup_subsys_state",
            200,
            &[("cgroup", ptr, 0, 0)],
        );
        b.composite(
            KIND_STRUCT,
            "css_set",
            200,
            &[("subsys", ptr, 0, 0), ("dfl_cgrp", ptr, 136 * 8, 0)],
        );
        let anon = b.composite(
            KIND_STRUCT,
            "",
            3000,
            &[
                ("pid", int, 0, 0),
                ("tgid", int, 4 * 8, 0),
                ("prio", int, 8 * 8, 0),
                ("policy", int, 20 * 8, 0),
                ("cgroups", ptr, 2000 * 8, 0),
            ],
        );
        let se = b.composite(
            KIND_STRUCT,
            "sched_entity",
            256,
            &[
                ("exec_start", int, 64 * 8, 0),
                ("sum_exec_runtime", int, 72 * 8, 0),
                ("prev_sum_exec_runtime", int, 88 * 8, 0),
            ],
        );
        b.composite(
            KIND_STRUCT,
            "task_struct",
            4000,
            &[
                ("thread_info", int, 0, 0),
                ("se", se, 128 * 8, 0),
                ("", anon, 376 * 8, 0),
            ],
        );
        let pc = b.composite(
            KIND_STRUCT,
            "page_counter",
            192,
            &[("usage", int, 0, 0), ("max", int, 64 * 8, 0)],
        );
        b.composite(
            KIND_STRUCT,
            "mem_cgroup",
            4096,
            &[
                ("css", int, 0, 0),
                ("id", int, 200 * 8, 0),
                ("memory", pc, 256 * 8, 0),
            ],
        );
        b.enumeration(
            "cgroup_subsys_id",
            &[
                ("cpuset_cgrp_id", 0),
                ("cpu_cgrp_id", 1),
                ("memory_cgrp_id", 4),
            ],
        );
        let k = KernelOffsets::from_bytes(&b.finish()).unwrap();
        assert_eq!(
            k,
            KernelOffsets {
                task_cgroups: 2376,
                css_set_subsys: 0,
                css_set_dfl_cgrp: 136,
                css_cgroup: 0,
                cgroup_kn: 256,
                cgroup_root: 300,
                root_hierarchy_id: 8,
                kn_id: 96,
                cpu_cgrp_id: 1,
                memory_cgrp_id: 4,
                task_se: 128,
                se_sum_exec_runtime: 72,
                se_prev_sum_exec_runtime: 88,
                task_tgid: 380,
                task_policy: 396,
                task_prio: 384,
                task_on_cpu: None,
                memcg_css: 0,
                memcg_memory: 256,
                page_counter_usage: 0,
                fair_group: None,
            }
        );
        assert_eq!(k.css_memcg_usage(), 256);
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let blob = tiny();
        // Every truncation fails cleanly (the header's lengths no longer fit).
        for len in 0..blob.len() {
            assert!(
                Btf::parse(&blob[..len]).is_err(),
                "prefix of {len} bytes parsed"
            );
        }
        let mut bad = blob.clone();
        // Big-endian BTF (0xeb9f stored high byte first) is refused.
        bad[0] = 0xeb;
        bad[1] = 0x9f;
        assert!(matches!(
            Btf::parse(&bad),
            Err(BtfError::BadMagic { found: 0x9feb })
        ));
        let mut bad = blob.clone();
        bad[2] = 2;
        assert!(matches!(Btf::parse(&bad), Err(BtfError::BadVersion(2))));
        // Flip every byte of the body in turn: parsing and lookups may fail, not panic.
        for i in HEADER_MIN_LEN..blob.len() {
            for v in [0x00, 0xff, 0x1f, 0x80] {
                let mut m = blob.clone();
                m[i] = v;
                if let Ok(btf) = Btf::parse(&m) {
                    let _ = btf.member_offset("outer", "d");
                    let _ = btf.member_offset("outer", "g");
                    let _ = btf.enum_value("colours", "green");
                }
            }
        }
        // A self-referencing typedef ends in an error, not a loop.
        let mut b = Builder::new();
        let td = b.push("loop_t", KIND_TYPEDEF, false, 0, 2);
        b.composite(KIND_STRUCT, "s", 8, &[("", td, 0, 0)]);
        let blob = b.finish();
        let btf = Btf::parse(&blob).unwrap();
        assert!(matches!(
            btf.member_offset("s", "x"),
            Err(BtfError::TooDeep { .. })
        ));
    }

    #[test]
    fn reads_the_running_kernel() {
        let k = match KernelOffsets::from_sys() {
            Ok(k) => k,
            Err(BtfError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound
                    && std::env::var_os("CI").is_none() =>
            {
                eprintln!("skipping: {VMLINUX_BTF} absent (kernel without CONFIG_DEBUG_INFO_BTF)");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        eprintln!("{k:?}");
        // Pointers in these structs are 8-byte aligned on 64-bit kernels.
        for (name, off) in [
            ("task_struct.cgroups", k.task_cgroups),
            ("css_set.subsys", k.css_set_subsys),
            ("css_set.dfl_cgrp", k.css_set_dfl_cgrp),
            ("cgroup_subsys_state.cgroup", k.css_cgroup),
            ("cgroup.kn", k.cgroup_kn),
            ("cgroup.root", k.cgroup_root),
            ("kernfs_node.id", k.kn_id),
        ] {
            assert_eq!(off % 8, 0, "{name} at {off} is not 8-aligned");
            assert!(off < 16384, "{name} at {off} is implausibly large");
        }
        assert_eq!(k.root_hierarchy_id % 4, 0);
        assert_eq!(k.task_tgid % 4, 0);
        let (on_cpu, cpu) = k.task_on_cpu.expect("task_struct.on_cpu and its CPU");
        assert!(on_cpu % 4 == 0 && cpu % 4 == 0 && on_cpu != cpu);
        assert_eq!(
            k.page_counter_usage % 8,
            0,
            "page_counter.usage is an atomic long"
        );
        // Every kernel with the cpu controller's shares has fair group scheduling.
        let f = k.fair_group.expect("CONFIG_FAIR_GROUP_SCHED");
        assert!(
            f.se_cfs_rq % 8 == 0
                && f.cfs_rq_tg % 8 == 0
                && f.tg_css % 8 == 0
                && f.cfs_rq_rq % 8 == 0
                && f.rq_clock % 8 == 0,
            "{f:?}"
        );
        assert!(
            k.css_memcg_usage() > 0 && k.css_memcg_usage() < 16384,
            "mem_cgroup.memory.usage at {} from its css",
            k.css_memcg_usage()
        );
        assert!(
            k.task_cgroups > 0,
            "task_struct.cgroups cannot be the first field"
        );
        assert!(k.cgroup_kn > 0 && k.cgroup_root > 0 && k.css_set_dfl_cgrp > 0);
        assert_ne!(k.cgroup_kn, k.cgroup_root);
        assert_ne!(k.cpu_cgrp_id, k.memory_cgrp_id);
        assert!(k.cpu_cgrp_id < 16 && k.memory_cgrp_id < 16);
        // Cross-check against the controller list the kernel prints for cgroup v1:
        // /proc/cgroups is in cgroup_subsys_id order, one line per controller built in.
        let cgroups = std::fs::read_to_string("/proc/cgroups").unwrap();
        let names: Vec<&str> = cgroups
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let pos = |n: &str| names.iter().position(|&x| x == n).map(|p| p as u64);
        assert_eq!(pos("cpu"), Some(k.cpu_cgrp_id), "/proc/cgroups: {names:?}");
        assert_eq!(
            pos("memory"),
            Some(k.memory_cgrp_id),
            "/proc/cgroups: {names:?}"
        );
    }
}
