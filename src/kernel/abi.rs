//! The generated skeletons and the record types shared with `bpf/ownwatch.h`.

#![allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]

pub mod main_skel {
    include!(concat!(env!("OUT_DIR"), "/ownwatch.skel.rs"));
}
pub mod probe_skel {
    include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
}

pub use main_skel::types::{
    ow_event, ow_ident, ow_outcome, ow_parent, ow_rootkeep, ow_rootref, ow_walkend, ow_walkkeep,
    ow_walkref, ow_walkrel, ow_walkup,
};

use super::plan::Backend;

// SAFETY: plain C structs of fixed-width integers, any bit pattern is valid.
unsafe impl plain::Plain for ow_event {}
unsafe impl plain::Plain for ow_walkend {}
unsafe impl plain::Plain for ow_walkrel {}
unsafe impl plain::Plain for ow_walkkeep {}
unsafe impl plain::Plain for ow_walkref {}
unsafe impl plain::Plain for ow_walkup {}
unsafe impl plain::Plain for ow_rootref {}
unsafe impl plain::Plain for ow_rootkeep {}
unsafe impl plain::Plain for ow_parent {}
unsafe impl plain::Plain for ow_outcome {}
unsafe impl plain::Plain for ow_ident {}

// Must match bpf/ownwatch.h; drift here breaks decoding silently, so check it at compile time.
const _: () = assert!(std::mem::size_of::<ow_event>() == 104);
const _: () = assert!(std::mem::size_of::<ow_walkend>() == 16);
const _: () = assert!(std::mem::size_of::<ow_walkrel>() == 16);
const _: () = assert!(std::mem::size_of::<ow_walkkeep>() == 12);
const _: () = assert!(std::mem::size_of::<ow_walkref>() == 12);
const _: () = assert!(std::mem::size_of::<ow_walkup>() == 12);
const _: () = assert!(std::mem::size_of::<ow_rootref>() == 8);
const _: () = assert!(std::mem::size_of::<ow_rootkeep>() == 12);
const _: () = assert!(std::mem::size_of::<ow_ident>() == 56);
// Told apart from events by size.
const _: () = assert!(std::mem::size_of::<ow_outcome>() == 24);
const _: () = assert!(std::mem::size_of::<ow_outcome>() < std::mem::size_of::<ow_event>());

/// Program names user space switches on and attaches by (kernel/load.rs). A contract with the
/// names in bpf/lib/prog_names.h, which the program-defining macros use: they must match.
pub mod prog {
    use crate::kernel::plan::Backend;

    /// A VFS backend's hook programs and the programs that catch the ops' outcomes: lsm
    /// (BPF LSM hooks), fentry (on the security_* hooks), both with fexit on the functions
    /// that do the ops; kprobe (kprobes on the hooks, kretprobes on the functions).
    pub fn vfs_prefixes(b: Backend) -> (&'static str, &'static str) {
        match b {
            Backend::Lsm => ("lsm_", "fx_done_"),
            Backend::Fentry => ("fentry_", "fx_done_"),
            _ => ("kp_", "kr_done_"),
        }
    }

    /// lsm and fentry before 6.1: chown seen at chown_common (`lsm_chown_common`,
    /// `fentry_chown_common`, and the verdict at its exit, `lsm_v_chown_common`, ...) instead
    /// of the security hook (`..._chown`, `fentry_v_chown`).
    pub const CHOWN_COMMON: &str = "_chown_common";
    /// lsm before 5.19: rename seen at security_path_rename (`lsm_rename_noflags`, its verdict
    /// `lsm_v_rename_noflags`), the LSM hook having no flags (`lsm_rename`).
    pub const RENAME_NOFLAGS: &str = "_rename_noflags";
    /// rmdir's outcome from do_rmdir (`fx_done_do_rmdir`, `kr_done_do_rmdir`) where the
    /// kernel has it, else from vfs_rmdir (`fx_done_vfs_rmdir`, `kp_arm_vfs_rmdir`,
    /// `kr_done_vfs_rmdir`).
    pub const DO_RMDIR: &str = "do_rmdir";
    pub const VFS_RMDIR: &str = "_vfs_rmdir";

    /// kprobe on 6.10+: one kprobe.session program on the completing functions
    /// (`args::session_functions`), instead of their `kp_arm_` + `kr_done_` pairs and
    /// `kr_done_do_rmdir`, which stay loaded for kernels where it cannot be attached.
    pub const KP_DONE: &str = "kp_done";
    /// kprobe, with `kp_done`: security_file_open as a kprobe session, whose return is a
    /// write open's outcome (the other LSMs' verdict), in place of `kp_open`.
    pub const KP_OPEN_SESSION: &str = "kp_open_session";
    pub const KP_OPEN: &str = "kp_open";
    /// lsm, fentry and kprobe: a thread's end drops its wait for an outcome.
    pub const VFS_WAIT_EXIT: &str = "vfs_wait_exit";
    /// The pair programs of a completing function.
    pub const KP_ARM: &str = "kp_arm_";
    pub const KR_DONE: &str = "kr_done_";

    // tracepoint backend: `tp_enter_<syscall>` and `tp_exit_<syscall>` per syscall, the exit
    // program they go on in by a tail call (`exit_body`; attached nowhere), io_uring
    // submissions (the 6.4+ tracepoint and the older one).
    pub const TP_ENTER: &str = "tp_enter_";
    pub const TP_EXIT: &str = "tp_exit_";
    pub const TP_SYS_EXIT: &str = "tp_sys_exit";
    pub const TP_URING_REQ: &str = "tp_uring_req";
    pub const TP_URING_SQE: &str = "tp_uring_sqe";
    /// With the ctime programs: `tp_mnt_enter_<syscall>` and `tp_mnt_exit_<syscall>` on the
    /// calls that put mounts somewhere (mount, move_mount, pivot_root; bpf/hooks/ctime.h).
    pub const TP_MNT_ENTER: &str = "tp_mnt_enter_";
    pub const TP_MNT_EXIT: &str = "tp_mnt_exit_";
    /// With the ctime programs: a core dump's start (`signal_deliver`) and a thread's end,
    /// which ends a dump that made no file (bpf/hooks/coredump.h).
    pub const TP_CORE_BEGIN: &str = "tp_core_begin";
    pub const TP_CORE_END: &str = "tp_core_end";
    /// The ctime programs (bpf/hooks/ctime.h) and their tracepoints (6.13+).
    pub const CTIME: [(&str, &str); 3] = [
        ("tp_ctime_set", "inode_set_ctime_to_ts"),
        ("tp_ctime_xchg", "ctime_ns_xchg"),
        ("tp_ctime_skip", "ctime_xchg_skip"),
    ];
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

/// `pub const NAME: ty = Enum::VARIANT.0` for each pair: numbers of a generated C enum.
macro_rules! consts {
    ($ty:ty, $enum:ident: $($name:ident = $variant:ident),* $(,)?) => {
        $(pub const $name: $ty = $enum::$variant.0 as $ty;)*
    };
}

/// `OW_NO_TREE` (bpf/ownwatch.h): a walk found no watched root.
pub const NO_TREE: u32 = 0xffff_ffff;
/// `OW_UNSET` (bpf/ownwatch.h): a u32 field with no value.
pub const UNSET: u32 = 0xffff_ffff;

/// Op numbers, from `enum ow_op` in bpf/ownwatch.h (generated).
pub mod op {
    use super::main_skel::types::ow_op as O;
    consts!(u32, O:
        CREATE = OW_OP_CREATE, MKDIR = OW_OP_MKDIR, MKNOD = OW_OP_MKNOD,
        SYMLINK = OW_OP_SYMLINK, LINK = OW_OP_LINK, RENAME = OW_OP_RENAME,
        UNLINK = OW_OP_UNLINK, RMDIR = OW_OP_RMDIR, CHMOD = OW_OP_CHMOD, CHOWN = OW_OP_CHOWN,
        TRUNCATE = OW_OP_TRUNCATE, SETXATTR = OW_OP_SETXATTR, REMOVEXATTR = OW_OP_REMOVEXATTR,
        WRITE = OW_OP_WRITE, COUNT = OW_OP_COUNT,
    );
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
    consts!(u32, F:
        TRUNCATED = OW_F_TRUNCATED, EXCHANGE = OW_F_EXCHANGE, NOFOLLOW = OW_F_NOFOLLOW,
        ABSOLUTE = OW_F_ABSOLUTE, TMPFILE = OW_F_TMPFILE, EMPTY_PATH = OW_F_EMPTY_PATH,
        NO_RET = OW_F_NO_RET, PENDING = OW_F_PENDING, PROC_FD = OW_F_PROC_FD,
        SEEN_OBJECT = OW_F_SEEN_OBJECT, WALKKEEP = OW_F_WALKKEEP, WALKREF = OW_F_WALKREF,
        UNLINKED = OW_F_UNLINKED, ROOTKEEP = OW_F_ROOTKEEP,
    );
}

pub mod slot {
    use super::main_skel::types::ow_slot as S;
    consts!(u8, S:
        PATH = OW_SLOT_PATH, NEW = OW_SLOT_NEW, TARGET = OW_SLOT_TARGET, XATTR = OW_SLOT_XATTR,
        CWD = OW_SLOT_CWD, SEEN = OW_SLOT_SEEN, EXE = OW_SLOT_EXE, ARGV = OW_SLOT_ARGV,
        TTY = OW_SLOT_TTY, CGROUP = OW_SLOT_CGROUP, PARENTS = OW_SLOT_PARENTS,
    );
    // SEEN is repeatable: it goes to `Record::seen`, not to `slots`.
    pub const COUNT: usize = PARENTS as usize + 1;
}

pub mod item {
    use super::main_skel::types::ow_item as I;
    consts!(u8, I:
        SLOT = OW_ITEM_SLOT, SEG = OW_ITEM_SEG, NAME = OW_ITEM_NAME, MNTROOT = OW_ITEM_MNTROOT,
        WALKEND = OW_ITEM_WALKEND, STR = OW_ITEM_STR, SAMEAS = OW_ITEM_SAMEAS,
        PARENT = OW_ITEM_PARENT, IDGEN = OW_ITEM_IDGEN, IDREF = OW_ITEM_IDREF,
        WALKREL = OW_ITEM_WALKREL, WALKKEEP = OW_ITEM_WALKKEEP, WALKREF = OW_ITEM_WALKREF,
        ROOTREF = OW_ITEM_ROOTREF, ROOTKEEP = OW_ITEM_ROOTKEEP, WALKUP = OW_ITEM_WALKUP,
    );
}
