//! Where this kernel's hooked functions keep the arguments the BPF side reads (`struct
//! ow_fn_args`, bpf/ownwatch.h), from its BTF: the signatures moved between the kernels we
//! run on (an idmap came first in 5.12; in 7.x vfs_create lost its dir and most vfs_*
//! functions gained a delegated_inode; vfs_mkdir returns a dentry since 6.15), and one binary
//! serves them all.

use anyhow::{bail, Result};
use libbpf_rs::btf::types::{Enum, Func, FuncProto, Struct};
use libbpf_rs::btf::{Btf, BtfKind, BtfType, ReferencesType};

use super::abi::main_skel::types::{ow_done, ow_fn_args, ow_xhook};

/// The functions that do the ops and the parameter each outcome is matched on, by `enum
/// ow_done`.
const DONE: [(ow_done, &str, &str); 13] = [
    (ow_done::OW_DONE_VFS_MKDIR, "vfs_mkdir", "dentry"),
    (ow_done::OW_DONE_VFS_MKNOD, "vfs_mknod", "dentry"),
    (ow_done::OW_DONE_VFS_CREATE, "vfs_create", "dentry"),
    (ow_done::OW_DONE_VFS_SYMLINK, "vfs_symlink", "dentry"),
    (ow_done::OW_DONE_VFS_LINK, "vfs_link", "old_dentry"),
    (ow_done::OW_DONE_VFS_UNLINK, "vfs_unlink", "dentry"),
    (ow_done::OW_DONE_VFS_RMDIR, "vfs_rmdir", "dentry"),
    (ow_done::OW_DONE_NOTIFY_CHANGE, "notify_change", "dentry"),
    (ow_done::OW_DONE_VFS_SETXATTR, "vfs_setxattr", "dentry"),
    (
        ow_done::OW_DONE_VFS_REMOVEXATTR,
        "vfs_removexattr",
        "dentry",
    ),
    (ow_done::OW_DONE_VFS_SET_ACL, "vfs_set_acl", "dentry"),
    (ow_done::OW_DONE_VFS_REMOVE_ACL, "vfs_remove_acl", "dentry"),
    (ow_done::OW_DONE_VFS_RENAME, "vfs_rename", "rd"),
];

/// The completing functions the kprobe.session program `kp_done` goes on, with the cookie
/// that tells each (its `enum ow_done`): all but the xattr and ACL ones, whose security hooks
/// run inside them, after their entry (bpf/hooks/vfs.h).
pub fn session_functions() -> impl Iterator<Item = (&'static str, u64)> {
    use ow_done as D;
    DONE.iter()
        .filter(|(d, ..)| {
            ![
                D::OW_DONE_VFS_SETXATTR,
                D::OW_DONE_VFS_REMOVEXATTR,
                D::OW_DONE_VFS_SET_ACL,
                D::OW_DONE_VFS_REMOVE_ACL,
            ]
            .contains(d)
        })
        .map(|(d, f, _)| (*f, u64::from(d.0)))
}

/// The xattr and ACL security hooks and their name parameter, by `enum ow_xhook`
/// (bpf_lsm_<hook> has the same parameters as security_<hook>).
const XHOOKS: [(ow_xhook, &str, &str); 4] = [
    (
        ow_xhook::OW_XHOOK_SETXATTR,
        "security_inode_setxattr",
        "name",
    ),
    (
        ow_xhook::OW_XHOOK_REMOVEXATTR,
        "security_inode_removexattr",
        "name",
    ),
    (
        ow_xhook::OW_XHOOK_SET_ACL,
        "security_inode_set_acl",
        "acl_name",
    ),
    (
        ow_xhook::OW_XHOOK_REMOVE_ACL,
        "security_inode_remove_acl",
        "acl_name",
    ),
];

/// The most arguments the BPF side can reach: a tracing program's seventh slot (the return
/// value after six arguments), a kprobe's fifth register.
const TRACING_SLOTS: usize = 7;
const KPROBE_REGS: usize = 5;

/// A function's parameters (name, whether it is a pointer) and whether it returns a pointer.
struct Proto {
    params: Vec<(String, bool)>,
    ret_ptr: bool,
}

fn is_ptr(t: Option<BtfType>) -> bool {
    t.is_some_and(|t| t.skip_mods_and_typedefs().kind() == BtfKind::Ptr)
}

fn proto(btf: &Btf, func: &str) -> Option<Proto> {
    let f = btf.type_by_name::<Func>(func)?;
    let p = btf.type_by_id::<FuncProto>(f.referenced_type_id())?;
    Some(Proto {
        params: p
            .iter()
            .map(|a| {
                let name = a.name.map(|n| n.to_string_lossy().into_owned());
                (name.unwrap_or_default(), is_ptr(btf.type_by_id(a.ty)))
            })
            .collect(),
        ret_ptr: is_ptr(btf.type_by_id(p.referenced_type_id())),
    })
}

/// Position of the parameter `name` of `func`.
fn position(p: &Proto, func: &str, name: &str, limit: usize) -> Result<u8> {
    match p.params.iter().position(|(n, ptr)| n == name && *ptr) {
        Some(i) if i < limit => Ok(i as u8),
        Some(i) => bail!(
            "{func}: argument {name} is number {} (at most {limit} readable)",
            i + 1
        ),
        None => bail!("{func} has no pointer argument {name} in this kernel's BTF"),
    }
}

/// Fills `args` from this kernel's BTF. A function the kernel lacks keeps its defaults (its
/// programs stay off); one whose arguments cannot be found refuses the backend.
pub fn fill(btf: &Btf, args: &mut ow_fn_args, kprobe: bool) -> Result<()> {
    let limit = if kprobe { KPROBE_REGS } else { TRACING_SLOTS };
    for (which, func, key) in DONE {
        let Some(p) = proto(btf, func) else { continue };
        let i = which.0 as usize;
        args.done_key[i] = position(&p, func, key, limit)?;
        if p.params.len() >= TRACING_SLOTS {
            bail!(
                "{func} has {} arguments: its return value is out of reach",
                p.params.len()
            );
        }
        args.done_nargs[i] = p.params.len() as u8;
        args.done_ret_ptr[i] = u8::from(p.ret_ptr);
    }
    for (which, hook, name) in XHOOKS {
        let Some(p) = proto(btf, hook) else { continue };
        let i = which.0 as usize;
        args.xattr_dentry[i] = position(&p, hook, "dentry", limit)?;
        args.xattr_name[i] = position(&p, hook, name, limit)?;
    }
    Ok(())
}

/// Whether io_uring requests hold path strings the tracepoint backend reads at submission:
/// the caller's pointer in `struct filename`, or from 7.2 the kernel's copy (`struct
/// delayed_filename`, bpf/hooks/uring.h). Before 5.11 io_uring has no path ops but open.
pub fn uring_paths_readable(btf: &Btf) -> bool {
    btf.type_by_name::<Struct>("io_rename").is_some()
}

/// Whether `enum bpf_func_id` has the helper `BPF_FUNC_<name>`.
pub fn has_helper(btf: &Btf, name: &str) -> bool {
    let want = format!("BPF_FUNC_{name}");
    btf.type_by_name::<Enum>("bpf_func_id")
        .is_some_and(|e| e.iter().any(|v| v.name.is_some_and(|n| n == want.as_str())))
}

/// Kprobe sessions (6.10+): a kprobe_multi program whose return runs only when its entry
/// asks (the bpf_session_is_return kfunc), on a kernel that can attach one (fprobe,
/// CONFIG_FPROBE: Debian's arm64 6.12 has the kfunc but not fprobe; its 7.3 has both).
pub fn has_kprobe_session(btf: &Btf) -> bool {
    btf.type_by_name::<Func>("bpf_session_is_return").is_some() && has_fprobe(btf)
}

/// fprobe (CONFIG_FPROBE, 5.18+), which kprobe_multi attachments need.
pub fn has_fprobe(btf: &Btf) -> bool {
    btf.type_by_name::<Func>("register_fprobe_ips").is_some()
}

/// Whether the kernel has the bpf_rdonly_cast kfunc (6.2+): our programs' direct loads of
/// kernel objects (bpf/lib/filter.h, `core_cast`).
pub fn has_rdonly_cast(btf: &Btf) -> bool {
    btf.type_by_name::<Func>("bpf_rdonly_cast").is_some()
}

/// Whether `func` is in the kernel's BTF with `n` parameters.
pub fn has_params(btf: &Btf, func: &str, n: usize) -> bool {
    proto(btf, func).is_some_and(|p| p.params.len() == n)
}

/// Whether io_uring's submission tracepoint `tp` passes the request (`struct io_kiocb *`, from
/// 5.19), which the tp_uring programs read; before, it passed the ring and the opcode only.
pub fn uring_tracepoint_passes_request(btf: &Btf, tp: &str) -> bool {
    let Some(t) = btf.type_by_name::<BtfType>(&format!("btf_trace_{tp}")) else {
        return false;
    };
    let Some(p) = t
        .skip_mods_and_typedefs()
        .next_type()
        .and_then(|f| FuncProto::try_from(f).ok())
    else {
        return false;
    };
    // (void *data, struct io_kiocb *req)
    let passes = p.iter().nth(1).is_some_and(|a| {
        btf.type_by_id::<BtfType>(a.ty)
            .and_then(|t| t.skip_mods_and_typedefs().next_type())
            .and_then(|t| t.name().map(|n| n == "io_kiocb"))
            .unwrap_or(false)
    });
    passes
}

/// Whether this kernel's trampolines (lsm, fentry) take structs by value, such as the kuid_t
/// and kgid_t of security_path_chown (6.1+: `struct btf_func_model` gained arg_flags then).
pub fn trampolines_take_structs(btf: &Btf) -> bool {
    btf.type_by_name::<Struct>("btf_func_model")
        .is_some_and(|s| s.iter().any(|m| m.name.is_some_and(|n| n == "arg_flags")))
}

/// Whether the syscall tracepoints' perf glue calls BPF preemptibly, through
/// trace_call_bpf_faultable (7.x).
pub fn faultable_syscall_tracepoints(btf: &Btf) -> bool {
    btf.type_by_name::<Func>("trace_call_bpf_faultable")
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's kernel: whatever it is, every function we hook is found, and the table
    /// says what its BTF says.
    #[test]
    fn this_kernels_functions_are_found() {
        let Ok(btf) = Btf::from_vmlinux() else {
            eprintln!("SKIPPED this_kernels_functions_are_found: no kernel BTF");
            return;
        };
        let mut a = ow_fn_args::default();
        fill(&btf, &mut a, false).unwrap();
        let mkdir = proto(&btf, "vfs_mkdir").unwrap();
        let i = ow_done::OW_DONE_VFS_MKDIR.0 as usize;
        assert_eq!(a.done_nargs[i] as usize, mkdir.params.len());
        assert_eq!(mkdir.params[a.done_key[i] as usize].0, "dentry");
        assert_eq!(a.done_ret_ptr[i] == 1, mkdir.ret_ptr);
        let r = ow_done::OW_DONE_VFS_RENAME.0 as usize;
        assert_eq!((a.done_key[r], a.done_nargs[r]), (0, 1));
    }
}
