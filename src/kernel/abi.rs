//! The generated skeletons and the record types shared with `bpf/ownwatch.h`.

#![allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]

pub mod main_skel {
    include!(concat!(env!("OUT_DIR"), "/ownwatch.skel.rs"));
}
pub mod probe_skel {
    include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
}

pub use main_skel::types::{ow_event, ow_outcome, ow_parent, ow_walkend};

use super::plan::Backend;

// SAFETY: plain C structs of fixed-width integers, any bit pattern is valid.
unsafe impl plain::Plain for ow_event {}
unsafe impl plain::Plain for ow_walkend {}
unsafe impl plain::Plain for ow_parent {}
unsafe impl plain::Plain for ow_outcome {}

// Must match bpf/ownwatch.h; drift here breaks decoding silently, so check it at compile time.
const _: () = assert!(std::mem::size_of::<ow_event>() == 104);
const _: () = assert!(std::mem::size_of::<ow_walkend>() == 16);
// Told apart from events by size.
const _: () = assert!(std::mem::size_of::<ow_outcome>() == 24);
const _: () = assert!(std::mem::size_of::<ow_outcome>() < std::mem::size_of::<ow_event>());

/// Program names user space switches on and attaches by (kernel/load.rs). A contract with the
/// macros that name the programs in bpf/hooks/*.h: they must match.
pub mod prog {
    /// lsm backend: `SEC("lsm/...")` hooks
    pub const LSM: &str = "lsm_";
    /// fentry backend: fentry on the security_* hooks
    pub const FENTRY: &str = "fentry_";
    /// lsm and fentry: fexit on the functions that do the ops (their outcome)
    pub const FEXIT_DONE: &str = "fx_done_";
    /// kprobe backend: kprobes on the security_* hooks
    pub const KPROBE: &str = "kp_";
    /// kprobe backend: kretprobes on the functions that do the ops
    pub const KRETPROBE_DONE: &str = "kr_done_";
    /// tracepoint backend: `tp_enter_<syscall>`, one per syscall
    pub const TP_ENTER: &str = "tp_enter_";
    /// tracepoint backend: the one exit program, attached to every syscall's exit
    pub const TP_SYS_EXIT: &str = "tp_sys_exit";
    /// io_uring submissions: the 6.4+ tracepoint, and the older one
    pub const TP_URING_REQ: &str = "tp_uring_req";
    pub const TP_URING_SQE: &str = "tp_uring_sqe";
    /// ctime tracepoints (6.13+)
    pub const TP_CTIME_SET: &str = "tp_ctime_set";
    pub const TP_CTIME_XCHG: &str = "tp_ctime_xchg";
    pub const TP_CTIME_SKIP: &str = "tp_ctime_skip";
}

/// `enum ow_backend` (generated) for a backend: the id records carry.
pub fn backend_id(b: Backend) -> u32 {
    use main_skel::types::ow_backend as B;
    match b {
        Backend::Lsm => B::OW_BACKEND_LSM.0,
        Backend::Fentry => B::OW_BACKEND_FENTRY.0,
        Backend::Kprobe => B::OW_BACKEND_KPROBE.0,
        Backend::Tracepoint => B::OW_BACKEND_TRACEPOINT.0,
    }
}

pub const NO_TREE: u32 = 0xffff_ffff;
pub const UNSET: u32 = 0xffff_ffff;

/// Op numbers, from `enum ow_op` in bpf/ownwatch.h (generated).
pub mod op {
    use super::main_skel::types::ow_op as O;
    pub const CREATE: u32 = O::OW_OP_CREATE.0;
    pub const MKDIR: u32 = O::OW_OP_MKDIR.0;
    pub const MKNOD: u32 = O::OW_OP_MKNOD.0;
    pub const SYMLINK: u32 = O::OW_OP_SYMLINK.0;
    pub const LINK: u32 = O::OW_OP_LINK.0;
    pub const RENAME: u32 = O::OW_OP_RENAME.0;
    pub const UNLINK: u32 = O::OW_OP_UNLINK.0;
    pub const RMDIR: u32 = O::OW_OP_RMDIR.0;
    pub const CHMOD: u32 = O::OW_OP_CHMOD.0;
    pub const CHOWN: u32 = O::OW_OP_CHOWN.0;
    pub const TRUNCATE: u32 = O::OW_OP_TRUNCATE.0;
    pub const SETXATTR: u32 = O::OW_OP_SETXATTR.0;
    pub const REMOVEXATTR: u32 = O::OW_OP_REMOVEXATTR.0;
    pub const WRITE: u32 = O::OW_OP_WRITE.0;
    pub const COUNT: u32 = O::OW_OP_COUNT.0;
}

/// Names in the order of `enum ow_op`.
pub const OP_NAMES: [&str; op::COUNT as usize] = [
    "create",
    "mkdir",
    "mknod",
    "symlink",
    "link",
    "rename",
    "unlink",
    "rmdir",
    "chmod",
    "chown",
    "truncate",
    "setxattr",
    "removexattr",
    "write",
];

pub mod flag {
    use super::main_skel::types::ow_flags as F;
    pub const TRUNCATED: u32 = F::OW_F_TRUNCATED.0;
    pub const EXCHANGE: u32 = F::OW_F_EXCHANGE.0;
    pub const NOFOLLOW: u32 = F::OW_F_NOFOLLOW.0;
    pub const ABSOLUTE: u32 = F::OW_F_ABSOLUTE.0;
    pub const TMPFILE: u32 = F::OW_F_TMPFILE.0;
    pub const EMPTY_PATH: u32 = F::OW_F_EMPTY_PATH.0;
    pub const NO_RET: u32 = F::OW_F_NO_RET.0;
    pub const PENDING: u32 = F::OW_F_PENDING.0;
    pub const PROC_FD: u32 = F::OW_F_PROC_FD.0;
}

pub mod slot {
    use super::main_skel::types::ow_slot as S;
    pub const PATH: u8 = S::OW_SLOT_PATH.0 as u8;
    pub const NEW: u8 = S::OW_SLOT_NEW.0 as u8;
    pub const TARGET: u8 = S::OW_SLOT_TARGET.0 as u8;
    pub const XATTR: u8 = S::OW_SLOT_XATTR.0 as u8;
    pub const CWD: u8 = S::OW_SLOT_CWD.0 as u8;
    /// Repeatable: goes to `Record::seen`, not to `slots`.
    pub const SEEN: u8 = S::OW_SLOT_SEEN.0 as u8;
    pub const EXE: u8 = S::OW_SLOT_EXE.0 as u8;
    pub const ARGV: u8 = S::OW_SLOT_ARGV.0 as u8;
    pub const TTY: u8 = S::OW_SLOT_TTY.0 as u8;
    pub const CGROUP: u8 = S::OW_SLOT_CGROUP.0 as u8;
    pub const PARENTS: u8 = S::OW_SLOT_PARENTS.0 as u8;
    pub const COUNT: usize = PARENTS as usize + 1;
}

pub mod item {
    use super::main_skel::types::ow_item as I;
    pub const SLOT: u8 = I::OW_ITEM_SLOT.0 as u8;
    pub const SEG: u8 = I::OW_ITEM_SEG.0 as u8;
    pub const NAME: u8 = I::OW_ITEM_NAME.0 as u8;
    pub const MNTROOT: u8 = I::OW_ITEM_MNTROOT.0 as u8;
    pub const WALKEND: u8 = I::OW_ITEM_WALKEND.0 as u8;
    pub const STR: u8 = I::OW_ITEM_STR.0 as u8;
    pub const SAMEAS: u8 = I::OW_ITEM_SAMEAS.0 as u8;
    pub const PARENT: u8 = I::OW_ITEM_PARENT.0 as u8;
}
