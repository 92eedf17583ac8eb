/* SPDX-License-Identifier: GPL-2.0 */
/* Tracepoint backend, syscall entry: filter, and remember the arguments (struct pending in
 * inflight, keyed by thread) for the exit (hooks/syscall_exit.h). */
#ifndef OW_HOOKS_SYSCALLS_H
#define OW_HOOKS_SYSCALLS_H

/* struct pending's syscall: how the exit reads its args (io_uring requests reuse these). */
enum sc {
	SC_OPEN,
	SC_MKNOD,
	SC_MKDIR,
	SC_SYMLINK,
	SC_LINK,
	SC_RENAME,
	SC_UNLINK,
	SC_CHMOD,
	SC_FCHMOD,
	SC_CHOWN,
	SC_FCHOWN,
	SC_TRUNCATE,
	SC_FTRUNCATE,
	SC_SETXATTR,
	SC_FSETXATTR,
	SC_SETXATTRAT,
	SC_BIND,
	SC_ACCT,
	SC_COREDUMP, /* hooks/coredump.h: not a syscall, the kernel's core dump */
};

/* mknod(2) of a regular file (type 0 means one) is a create. */
static __always_inline __u32 mknod_op(__u32 mode)
{
	__u32 type = mode & S_IFMT;

	return (type == S_IFREG || type == 0) ? OW_OP_CREATE : OW_OP_MKNOD;
}

static __always_inline __u32 umasked(__u32 mode)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return mode & ~KREAD(struct fs_struct, KREAD(struct task_struct, task, fs), umask) & 07777;
}

#define S_ISGID 02000
#define CAP_FSETID 4
#define NGROUPS_SEARCH 17 /* a binary search of NGROUPS_MAX (65536) groups */

/* The mode a chmod to `mode` gives a file whose group is `gid` (setattr_copy): the setgid bit
 * asked for goes unless the caller is in that group (its fsgid, or one of its supplementary
 * groups, which the kernel keeps sorted) or has CAP_FSETID. (A caller with CAP_FSETID in a
 * user namespace is taken to have the file's ids mapped there, and an idmapped mount's
 * mapping of the group is left out.) The VFS backends read the mode the op left instead. A
 * global function: checked once. */
__noinline __u32 ow_chmod_mode(__u32 mode, __u32 gid)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	const struct cred *c = BPF_CORE_READ(t, cred);
	struct group_info *gi;
	__u64 caps = 0;
	__u32 lo = 0, hi;

	if (!(mode & S_ISGID) || !c || BPF_CORE_READ(c, fsgid.val) == gid)
		return mode;
	/* (kernel_cap_t: a u64 since 6.3, two u32 before; the low one first either way) */
	bpf_probe_read_kernel(&caps, sizeof(caps),
			      (void *)c + bpf_core_field_offset(struct cred, cap_effective));
	if (caps & (1ull << CAP_FSETID))
		return mode;
	gi = BPF_CORE_READ(c, group_info);
	hi = gi ? BPF_CORE_READ(gi, ngroups) : 0;
	for (int i = 0; i < NGROUPS_SEARCH && lo < hi; i++) {
		__u32 mid = lo + (hi - lo) / 2, g = 0;

		bpf_probe_read_kernel(&g, sizeof(g),
				      (void *)gi + bpf_core_field_offset(struct group_info, gid) +
					      (__u64)(mid & 0xffff) * sizeof(g));
		if (g == gid)
			return mode;
		if (g < gid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return mode & ~S_ISGID;
}

/* Internal to struct pending: the mode still needs the caller's umask. */
#define P_UMASK (1u << 31)

/* An open with any of these may write (or create). */
#define OPEN_WRITES (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)

/* Allowed writers left before (enter_skipped): nothing of the op (not even the umask) is read
 * for them. args: the syscall's arguments as syscall_event() reads them (see the helpers
 * below). */
static __always_inline int remember(__u32 op, enum sc sc, __u32 flags, __u32 mode, __u64 a0,
				    __u64 a1, __u64 a2, __u64 a3, __u64 a4)
{
	__u32 tid;

	if (op_unwanted(op))
		return 0;
	{
		struct pending p = {
			.nseen = 0,
			.op = op,
			.flags = flags & ~P_UMASK,
			.mode = (flags & P_UMASK) ? umasked(mode) : mode,
			.syscall = sc,
			.args = { a0, a1, a2, a3, a4 },
		};

		if (task_storage && !task_storage_off) {
			struct pending *q = bpf_task_storage_get(
				&inflight_task, bpf_get_current_task_btf(), 0,
				BPF_LOCAL_STORAGE_GET_F_CREATE);

			if (q) {
				/* counted before it is active, as below; a pending op whose
				 * exit was skipped is replaced, not counted again */
				if (!q->active)
					__sync_fetch_and_add(&inflight_n, 1);
				p.active = 1;
				*q = p;
				return 0;
			}
			task_storage_off = 1;
		}
		if (task_storage) {
			/* the hash from now on: a stored op whose exit was skipped must not
			 * pass for this one */
			struct pending *q = pending_stored();

			if (q && q->active) {
				q->active = 0;
				__sync_fetch_and_add(&inflight_n, -1);
			}
		}
		tid = current_tid();
		/* counted before it exists (inflight_n), so that no ctime event of this op
		 * can find the count at 0 while the entry is there; an entry of an earlier
		 * syscall whose exit was skipped is replaced, not counted again */
		__sync_fetch_and_add(&inflight_n, 1);
		if (!bpf_map_update_elem(&inflight, &tid, &p, BPF_NOEXIST))
			return 0;
		__sync_fetch_and_add(&inflight_n, -1);
		if (bpf_map_update_elem(&inflight, &tid, &p, BPF_EXIST))
			count_lost();
	}
	return 0;
}

/* open: args = dfd, path, flags */
static __always_inline int open_enter(long dfd, __u64 name, __u64 flags)
{
	/* (openat and open left already, enter_skipped) */
	if (!(flags & OPEN_WRITES))
		return 0;
	return remember(KIND_OPEN, SC_OPEN, 0, 0, dfd, name, flags, 0, 0);
}

/* mknod: args = dfd, path, mode */
static __always_inline int mknod_enter(long dfd, __u64 name, __u32 mode)
{
	return remember(mknod_op(mode), SC_MKNOD, OW_F_NOFOLLOW | P_UMASK, mode, dfd, name, mode,
			0, 0);
}

/* mkdir: args = dfd, path */
static __always_inline int mkdir_enter(long dfd, __u64 name, __u32 mode)
{
	return remember(OW_OP_MKDIR, SC_MKDIR, OW_F_NOFOLLOW | P_UMASK, mode, dfd, name, 0, 0, 0);
}

/* symlink: args = target, dfd, linkpath */
static __always_inline int symlink_enter(__u64 target, long dfd, __u64 name)
{
	return remember(OW_OP_SYMLINK, SC_SYMLINK, OW_F_NOFOLLOW, 0, target, dfd, name, 0, 0);
}

/* link and rename: args = olddfd, old, newdfd, new, flags */
static __always_inline int link_enter(long odfd, __u64 old, long ndfd, __u64 new, __u32 flags)
{
	__u32 f = (flags & AT_SYMLINK_FOLLOW) ? 0 : OW_F_NOFOLLOW;
	__u32 op = OW_OP_LINK;

	if (flags & AT_EMPTY_PATH) {
		char c = 1;

		bpf_probe_read_user(&c, 1, (void *)old);
		if (c == 0) {
			/* Naming an O_TMPFILE file is how it gets created. */
			struct task_struct *task = (struct task_struct *)bpf_get_current_task();
			struct file *file = fd_file(task, odfd);

			if (file && BPF_CORE_READ(file, f_inode, i_nlink) == 0) {
				op = OW_OP_CREATE;
				f |= OW_F_TMPFILE;
			}
		}
	}
	return remember(op, SC_LINK, f, 0, odfd, old, ndfd, new, flags);
}

static __always_inline int rename_enter(long odfd, __u64 old, long ndfd, __u64 new, __u32 flags)
{
	__u32 f = OW_F_NOFOLLOW | ((flags & RENAME_EXCHANGE) ? OW_F_EXCHANGE : 0);

	return remember(OW_OP_RENAME, SC_RENAME, f, 0, odfd, old, ndfd, new, flags);
}

/* unlink and rmdir: args = dfd, path */
static __always_inline int unlink_enter(__u32 op, long dfd, __u64 name)
{
	return remember(op, SC_UNLINK, OW_F_NOFOLLOW, 0, dfd, name, 0, 0, 0);
}

/* chmod: args = dfd, path, empty-path flag */
static __always_inline int chmod_enter(long dfd, __u64 path, __u32 mode, __u32 flags)
{
	__u32 f = (flags & AT_SYMLINK_NOFOLLOW) ? OW_F_NOFOLLOW : 0;

	return remember(OW_OP_CHMOD, SC_CHMOD, f, mode & 07777, dfd, path, flags & AT_EMPTY_PATH,
			0, 0);
}

/* fchmod: args = fd. The mode is the one the file gets (ow_chmod_mode), its group read now:
 * the file is known before the op (a path's only with the ctime programs, hooks/ctime.h). */
static __always_inline int fchmod_enter(long fd, __u32 mode)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f;

	mode &= 07777;
	if (mode & S_ISGID) {
		f = fd_file(task, fd);
		if (f)
			mode = ow_chmod_mode(mode, BPF_CORE_READ(f, f_inode, i_gid.val));
	}
	return remember(OW_OP_CHMOD, SC_FCHMOD, 0, mode, fd, 0, 0, 0, 0);
}

/* chown: args = dfd, path, uid, gid, empty-path flag */
static __always_inline int chown_enter(long dfd, __u64 path, __u32 uid, __u32 gid, __u32 flags)
{
	__u32 f = (flags & AT_SYMLINK_NOFOLLOW) ? OW_F_NOFOLLOW : 0;

	return remember(OW_OP_CHOWN, SC_CHOWN, f, 0, dfd, path, uid, gid, flags & AT_EMPTY_PATH);
}

/* truncate: args = AT_FDCWD, path; ftruncate: args = fd */
static __always_inline int truncate_enter(enum sc sc, long fd, __u64 path)
{
	return remember(OW_OP_TRUNCATE, sc, 0, 0, fd, path, 0, 0, 0);
}

/* xattr by path: args = AT_FDCWD, path, name */
static __always_inline int xattr_enter(__u32 op, __u32 flags, __u64 path, __u64 name)
{
	return remember(op, SC_SETXATTR, flags, 0, AT_FDCWD, path, name, 0, 0);
}

/* xattr by fd: args = fd, name */
static __always_inline int fxattr_enter(__u32 op, long fd, __u64 name)
{
	return remember(op, SC_FSETXATTR, 0, 0, fd, name, 0, 0, 0);
}

/* 6.13+: setxattrat(dfd, path, at_flags, name, args, size), removexattrat(dfd, path, at_flags,
 * name): args = dfd, path, name, empty-path flag */
static __always_inline int xattrat_enter(__u32 op, long dfd, __u64 path, __u32 at_flags,
					 __u64 name)
{
	__u32 f = (at_flags & AT_SYMLINK_NOFOLLOW) ? OW_F_NOFOLLOW : 0;

	return remember(op, SC_SETXATTRAT, f, 0, dfd, path, name, at_flags & AT_EMPTY_PATH, 0);
}

/* bind(2) of an AF_UNIX socket to a path makes the socket's inode there: a mknod, as the VFS
 * backends see it (unix_bind calls the mknod hook). Abstract names (a NUL first) and autobind
 * (no name) make none, nor do other families. args: fd (the exit reads the bound path from
 * the socket: the kernel's own dentry and mount, not the string). */
static __always_inline int bind_enter(long fd, __u64 addr, __u64 len)
{
	__u8 sa[3] = {}; /* sun_family (native byte order: little-endian here), sun_path[0] */

	if (len < sizeof(sa) || bpf_probe_read_user(sa, sizeof(sa), (void *)addr) ||
	    (sa[0] | sa[1] << 8) != AF_UNIX || sa[2] == 0)
		return 0;
	return remember(OW_OP_MKNOD, SC_BIND, 0, 0, fd, 0, 0, 0, 0);
}

/* The syscall numbers and the list of hooked syscalls are per architecture, like vmlinux/:
 * x86_64's (arch/x86/entry/syscalls/syscall_64.tbl) or arm64's (the generic table, which has
 * only the *at forms of the path syscalls). libbpf-cargo passes -D__TARGET_ARCH_<arch>. */
#if defined(__TARGET_ARCH_x86)
#include "syscalls/x86_64.h"
#elif defined(__TARGET_ARCH_arm64)
#include "syscalls/aarch64.h"
#else
#error "no syscall table for this architecture (bpf/syscalls/)"
#endif

/* One program per syscall tracepoint: a syscall we do not hook runs no BPF at all (the
 * kernel checks a bitmap), which on our machines is ~125 ns cheaper per syscall than one
 * raw sys_enter program for all. Each program inlines only its own case. */
static __always_inline int on_enter(long id, __u64 *a)
{
	switch (id) {
	case NR_openat2: {
		struct open_how how = {};

		bpf_probe_read_user(&how, sizeof(how), (void *)a[2]);
		return open_enter(a[0], a[1], how.flags);
	}
#ifdef NR_open
	/* the path syscalls without a dirfd: x86_64 has them, the generic table (arm64) not */
	case NR_open: return open_enter(AT_FDCWD, a[0], a[1]);
	case NR_creat: return open_enter(AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC);
	case NR_mknod: return mknod_enter(AT_FDCWD, a[0], a[1]);
	case NR_mkdir: return mkdir_enter(AT_FDCWD, a[0], a[1]);
	case NR_symlink: return symlink_enter(a[0], AT_FDCWD, a[1]);
	case NR_link: return link_enter(AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
	case NR_rename: return rename_enter(AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
	case NR_unlink: return unlink_enter(OW_OP_UNLINK, AT_FDCWD, a[0]);
	case NR_rmdir: return unlink_enter(OW_OP_RMDIR, AT_FDCWD, a[0]);
	case NR_chmod: return chmod_enter(AT_FDCWD, a[0], a[1], 0);
	case NR_chown: return chown_enter(AT_FDCWD, a[0], a[1], a[2], 0);
	case NR_lchown: return chown_enter(AT_FDCWD, a[0], a[1], a[2], AT_SYMLINK_NOFOLLOW);
#endif
	case NR_openat: return open_enter(a[0], a[1], a[2]);
	/* (a file handle, not a path: the exit reads the file it opened, as for every open) */
	case NR_open_by_handle_at: return open_enter(a[0], 0, a[2]);
	case NR_bind: return bind_enter(a[0], a[1], a[2]);
	/* acct(2) opens an existing file for writing, where the kernel then writes a record for
	 * every process that ends: a write open, as the VFS backends see it (file_open). The
	 * exit reads the file the kernel opened (acct_file). acct(NULL) turns it off. */
	case NR_acct: return a[0] ? remember(OW_OP_WRITE, SC_ACCT, 0, OW_UNSET, 0, 0, 0, 0, 0) : 0;
	case NR_mknodat: return mknod_enter(a[0], a[1], a[2]);
	case NR_mkdirat: return mkdir_enter(a[0], a[1], a[2]);
	case NR_symlinkat: return symlink_enter(a[0], a[1], a[2]);
	case NR_linkat: return link_enter(a[0], a[1], a[2], a[3], a[4]);
	case NR_renameat: return rename_enter(a[0], a[1], a[2], a[3], 0);
	case NR_renameat2: return rename_enter(a[0], a[1], a[2], a[3], a[4]);
	case NR_unlinkat:
		return unlink_enter((a[2] & AT_REMOVEDIR) ? OW_OP_RMDIR : OW_OP_UNLINK, a[0], a[1]);
	case NR_fchmodat: return chmod_enter(a[0], a[1], a[2], 0);
	case NR_fchmodat2: return chmod_enter(a[0], a[1], a[2], a[3]);
	case NR_fchmod: return fchmod_enter(a[0], a[1]);
	case NR_fchownat: return chown_enter(a[0], a[1], a[2], a[3], a[4]);
	case NR_fchown: return remember(OW_OP_CHOWN, SC_FCHOWN, 0, 0, a[0], 0, a[1], a[2], 0);
	case NR_truncate: return truncate_enter(SC_TRUNCATE, AT_FDCWD, a[0]);
	case NR_ftruncate: return truncate_enter(SC_FTRUNCATE, a[0], 0);
	case NR_setxattr: return xattr_enter(OW_OP_SETXATTR, 0, a[0], a[1]);
	case NR_lsetxattr: return xattr_enter(OW_OP_SETXATTR, OW_F_NOFOLLOW, a[0], a[1]);
	case NR_fsetxattr: return fxattr_enter(OW_OP_SETXATTR, a[0], a[1]);
	case NR_setxattrat: return xattrat_enter(OW_OP_SETXATTR, a[0], a[1], a[2], a[3]);
	case NR_removexattr: return xattr_enter(OW_OP_REMOVEXATTR, 0, a[0], a[1]);
	case NR_lremovexattr: return xattr_enter(OW_OP_REMOVEXATTR, OW_F_NOFOLLOW, a[0], a[1]);
	case NR_fremovexattr: return fxattr_enter(OW_OP_REMOVEXATTR, a[0], a[1]);
	case NR_removexattrat: return xattrat_enter(OW_OP_REMOVEXATTR, a[0], a[1], a[2], a[3]);
	}
	return 0;
}

/* 1: nothing to remember for this syscall: a read-only open (the bulk of all opens, by
 * anyone), or an actor allowed everywhere. Tested first, before the arguments are copied and
 * the CPU pinned (lib/pin.h); remember() relies on it for the actor. (openat2's flags are in
 * user memory: read in on_enter.) */
static __always_inline int enter_skipped(long id, struct trace_event_raw_sys_enter *ctx)
{
	if (id == NR_openat && !(ctx->args[2] & OPEN_WRITES))
		return 1;
#ifdef NR_open
	if (id == NR_open && !(ctx->args[1] & OPEN_WRITES))
		return 1;
#endif
	return actor_allowed();
}

/* tp_enter_<syscall>: the name is a contract with user space (lib/prog_names.h). */
#define TP_ENTER(w, name)                                                                  \
	SEC("?tracepoint/syscalls/sys_enter_" #name)                                       \
	int OW_CAT(PROG_TP_ENTER, name)(struct trace_event_raw_sys_enter *ctx)             \
	{                                                                                  \
		if (enter_skipped(NR_##name, ctx))                                         \
			return 0;                                                          \
		__u64 a[6] = { ctx->args[0], ctx->args[1], ctx->args[2],                   \
			       ctx->args[3], ctx->args[4], ctx->args[5] };                 \
		return PINNED(on_enter(NR_##name, a));                                     \
	}
OW_SYSCALLS(TP_ENTER, 0)

#endif
