/* SPDX-License-Identifier: GPL-2.0 */
/* Tracepoint backend, syscall entry: filter and remember the arguments. */
#ifndef OW_HOOKS_SYSCALLS_H
#define OW_HOOKS_SYSCALLS_H

/* ---- enter: filter and remember the arguments --------------------------- */

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
};

static __always_inline __u32 umasked(__u32 mode)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return mode & ~BPF_CORE_READ(task, fs, umask) & 07777;
}

/* Internal to struct pending: the mode still needs the caller's umask. */
#define P_UMASK (1u << 31)

/* Allowed writers leave at the first test: nothing else (not even the umask) is read for
 * them. */
static __always_inline int remember(__u32 op, enum sc sc, __u32 flags, __u32 mode, __u64 a0,
				    __u64 a1, __u64 a2, __u64 a3, __u64 a4)
{
	__u32 tid;

	if (actor_filtered(op))
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

		tid = current_tid();
		if (bpf_map_update_elem(&inflight, &tid, &p, BPF_ANY))
			count_lost();
	}
	return 0;
}

static __always_inline int open_enter(long dfd, const char *name, __u64 flags)
{
	/* Read-only opens are the bulk of all opens: leave them at once. */
	if (!(flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)))
		return 0;
	return remember(KIND_OPEN, SC_OPEN, 0, 0, dfd, (__u64)name, flags, 0, 0);
}




static __always_inline int mknod_enter(long dfd, __u64 name, __u32 mode)
{
	__u32 op = ((mode & S_IFMT) == S_IFREG || (mode & S_IFMT) == 0) ? OW_OP_CREATE : OW_OP_MKNOD;

	return remember(op, SC_MKNOD, OW_F_NOFOLLOW | P_UMASK, mode, dfd, name, mode, 0, 0);
}


/* symlink: args = target, dfd, linkpath */

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
			struct file *file = fd_file((struct task_struct *)bpf_get_current_task(), odfd);

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


/* chmod: args = dfd, path, mode, flags */
static __always_inline int chmod_enter(long dfd, __u64 path, __u32 mode, __u32 flags)
{
	__u32 f = (flags & AT_SYMLINK_NOFOLLOW) ? OW_F_NOFOLLOW : 0;

	return remember(OW_OP_CHMOD, SC_CHMOD, f, mode & 07777, dfd, path, flags & AT_EMPTY_PATH, 0, 0);
}

/* chown: args = dfd, path, uid, gid, flags */
static __always_inline int chown_enter(long dfd, __u64 path, __u32 uid, __u32 gid, __u32 flags)
{
	__u32 f = (flags & AT_SYMLINK_NOFOLLOW) ? OW_F_NOFOLLOW : 0;

	return remember(OW_OP_CHOWN, SC_CHOWN, f, 0, dfd, path, uid, gid, flags & AT_EMPTY_PATH);
}


/* xattr by path: args = dfd, path, name, at_flags */
/* 6.13+: setxattrat(dfd, path, at_flags, name, args, size), removexattrat(dfd, path, at_flags, name) */


/* x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl); vmlinux/ is per
 * architecture, so is this table. */
#include "syscalls/x86_64.h"
/* One program per syscall tracepoint: a syscall we do not hook runs no BPF at all (the
 * kernel checks a bitmap), which on our machines is ~125 ns cheaper per syscall than one
 * raw sys_enter program for all. */
static __always_inline int on_enter(long id, __u64 *a)
{
#define ARG(i) (a[i])
	switch (id) {
	case NR_openat2: {
		struct open_how how = {};
	
		bpf_probe_read_user(&how, sizeof(how), (void *)ARG(2));
		return open_enter(ARG(0), (const char *)ARG(1), how.flags);
	}
	case NR_unlinkat: {
		__u32 op = (ARG(2) & AT_REMOVEDIR) ? OW_OP_RMDIR : OW_OP_UNLINK;
	
		return remember(op, SC_UNLINK, OW_F_NOFOLLOW, 0, ARG(0), ARG(1), 0, 0, 0);
	}
	case NR_setxattrat: {
		__u32 f = (ARG(2) & AT_SYMLINK_NOFOLLOW) ? OW_F_NOFOLLOW : 0;
	
		return remember(OW_OP_SETXATTR, SC_SETXATTRAT, f, 0, ARG(0), ARG(1), ARG(3), ARG(2) & AT_EMPTY_PATH, 0);
	}
	case NR_removexattrat: {
		__u32 f = (ARG(2) & AT_SYMLINK_NOFOLLOW) ? OW_F_NOFOLLOW : 0;
	
		return remember(OW_OP_REMOVEXATTR, SC_SETXATTRAT, f, 0, ARG(0), ARG(1), ARG(3), ARG(2) & AT_EMPTY_PATH, 0);
	}
	case NR_open: { return open_enter(AT_FDCWD, (const char *)ARG(0), ARG(1)); }
	case NR_openat: { return open_enter(ARG(0), (const char *)ARG(1), ARG(2)); }
	case NR_creat: { return open_enter(AT_FDCWD, (const char *)ARG(0), O_CREAT | O_WRONLY | O_TRUNC); }
	case NR_mknod: { return mknod_enter(AT_FDCWD, ARG(0), ARG(1)); }
	case NR_mknodat: { return mknod_enter(ARG(0), ARG(1), ARG(2)); }
	case NR_mkdir: { return remember(OW_OP_MKDIR, SC_MKDIR, OW_F_NOFOLLOW | P_UMASK, ARG(1), AT_FDCWD, ARG(0), 0, 0, 0); }
	case NR_mkdirat: { return remember(OW_OP_MKDIR, SC_MKDIR, OW_F_NOFOLLOW | P_UMASK, ARG(2), ARG(0), ARG(1), 0, 0, 0); }
	case NR_symlink: { return remember(OW_OP_SYMLINK, SC_SYMLINK, OW_F_NOFOLLOW, 0, ARG(0), AT_FDCWD, ARG(1), 0, 0); }
	case NR_symlinkat: { return remember(OW_OP_SYMLINK, SC_SYMLINK, OW_F_NOFOLLOW, 0, ARG(0), ARG(1), ARG(2), 0, 0); }
	case NR_link: { return link_enter(AT_FDCWD, ARG(0), AT_FDCWD, ARG(1), 0); }
	case NR_linkat: { return link_enter(ARG(0), ARG(1), ARG(2), ARG(3), ARG(4)); }
	case NR_rename: { return rename_enter(AT_FDCWD, ARG(0), AT_FDCWD, ARG(1), 0); }
	case NR_renameat: { return rename_enter(ARG(0), ARG(1), ARG(2), ARG(3), 0); }
	case NR_renameat2: { return rename_enter(ARG(0), ARG(1), ARG(2), ARG(3), ARG(4)); }
	case NR_unlink: { return remember(OW_OP_UNLINK, SC_UNLINK, OW_F_NOFOLLOW, 0, AT_FDCWD, ARG(0), 0, 0, 0); }
	case NR_rmdir: { return remember(OW_OP_RMDIR, SC_UNLINK, OW_F_NOFOLLOW, 0, AT_FDCWD, ARG(0), 0, 0, 0); }
	case NR_chmod: { return chmod_enter(AT_FDCWD, ARG(0), ARG(1), 0); }
	case NR_fchmodat: { return chmod_enter(ARG(0), ARG(1), ARG(2), 0); }
	case NR_fchmodat2: { return chmod_enter(ARG(0), ARG(1), ARG(2), ARG(3)); }
	case NR_fchmod: { return remember(OW_OP_CHMOD, SC_FCHMOD, 0, ARG(1) & 07777, ARG(0), 0, 0, 0, 0); }
	case NR_chown: { return chown_enter(AT_FDCWD, ARG(0), ARG(1), ARG(2), 0); }
	case NR_lchown: { return chown_enter(AT_FDCWD, ARG(0), ARG(1), ARG(2), AT_SYMLINK_NOFOLLOW); }
	case NR_fchownat: { return chown_enter(ARG(0), ARG(1), ARG(2), ARG(3), ARG(4)); }
	case NR_fchown: { return remember(OW_OP_CHOWN, SC_FCHOWN, 0, 0, ARG(0), 0, ARG(1), ARG(2), 0); }
	case NR_truncate: { return remember(OW_OP_TRUNCATE, SC_TRUNCATE, 0, 0, AT_FDCWD, ARG(0), 0, 0, 0); }
	case NR_ftruncate: { return remember(OW_OP_TRUNCATE, SC_FTRUNCATE, 0, 0, ARG(0), 0, 0, 0, 0); }
	case NR_setxattr: { return remember(OW_OP_SETXATTR, SC_SETXATTR, 0, 0, AT_FDCWD, ARG(0), ARG(1), 0, 0); }
	case NR_lsetxattr: { return remember(OW_OP_SETXATTR, SC_SETXATTR, OW_F_NOFOLLOW, 0, AT_FDCWD, ARG(0), ARG(1), 0, 0); }
	case NR_fsetxattr: { return remember(OW_OP_SETXATTR, SC_FSETXATTR, 0, 0, ARG(0), ARG(1), 0, 0, 0); }
	case NR_removexattr: { return remember(OW_OP_REMOVEXATTR, SC_SETXATTR, 0, 0, AT_FDCWD, ARG(0), ARG(1), 0, 0); }
	case NR_lremovexattr: { return remember(OW_OP_REMOVEXATTR, SC_SETXATTR, OW_F_NOFOLLOW, 0, AT_FDCWD, ARG(0), ARG(1), 0, 0); }
	case NR_fremovexattr: { return remember(OW_OP_REMOVEXATTR, SC_FSETXATTR, 0, 0, ARG(0), ARG(1), 0, 0, 0); }
	}
	return 0;
}
#undef ARG

/* tp_enter_<syscall>: the name is a contract with user space (lib/prog_names.h). */
#define TP_ENTER(w, name)                                                                  \
	SEC("?tracepoint/syscalls/sys_enter_" #name)                                       \
	int OW_CAT(PROG_TP_ENTER, name)(struct trace_event_raw_sys_enter *ctx)             \
	{                                                                                  \
		__u64 a[6] = { ctx->args[0], ctx->args[1], ctx->args[2],                   \
			       ctx->args[3], ctx->args[4], ctx->args[5] };                 \
		return on_enter(NR_##name, a);                                             \
	}
OW_SYSCALLS(TP_ENTER, 0)

#endif
