/* SPDX-License-Identifier: GPL-2.0 */
/* Tracepoint backend, during the syscall: which inodes did it change (6.13+ ctime tracepoints).
 * A path string says what the caller asked for; which directory the kernel really used (through
 * another mount namespace, a bind mount since unmounted, a racing rename) is only known inside
 * the op. Every namespace or attribute change sets the ctime of the inodes involved, and 6.13+
 * has tracepoints there: remember their dentries for the pending syscall of this thread. */
#ifndef OW_HOOKS_CTIME_H
#define OW_HOOKS_CTIME_H

static __always_inline int saw_inode(struct inode *inode)
{
	struct hlist_node *first;
	struct pending *p;
	__u64 d;
	__u32 n;

	p = pending_get();
	if (!p)
		return 0;
	if (p->syscall == SC_COREDUMP)
		return core_saw_inode(p, inode);
	/* a chmod's object, under its lock: the mode it gets depends on its group */
	if (p->op == OW_OP_CHMOD && !p->nseen && (p->mode & S_ISGID))
		p->mode = ow_chmod_mode(p->mode, inode->i_gid.val);
	/* overlayfs changes the upper layer's inodes (a copy-up, a whiteout) before its own:
	 * those name the layer's directories, not the tree's. Its own inodes, the ones the op
	 * went through, replace them, and from then on only they count (an op stays on one
	 * filesystem: a rename or link across is EXDEV). procfs says it is as deep as a stack
	 * may go, so that nothing stacks on it, and makes inodes as a path goes through it
	 * (/proc/self/fd/N/name): not a stacked filesystem. */
	if (inode->i_sb->s_stack_depth && inode->i_sb->s_magic != PROC_SUPER_MAGIC) {
		if (!p->stacked) {
			p->stacked = 1;
			p->nseen = 0;
		}
	} else if (p->stacked) {
		return 0;
	}
	first = inode->i_dentry.first; /* (a BTF argument: a direct load) */
	if (!first)
		return 0; /* a new inode: no name yet */
	d = (__u64)((void *)first - d_alias_offset());
	n = p->nseen;
	if (n >= OW_MAX_SEEN)
		return 0;
	for (int i = 0; i < OW_MAX_SEEN; i++)
		if (i < n && p->seen[i] == d)
			return 0;
	p->seen[n & (OW_MAX_SEEN - 1)] = d;
	p->nseen = n + 1;
	return 0;
}

/* The tracepoint backend's mount calls (lib/maps.h, mounts_gen): busy from entry to exit,
 * with the ctime programs, whose changed dentries are walks that cannot see their mount. */
#define TP_MOUNT_CALL(sc)                                                                  \
	SEC("?tracepoint/syscalls/sys_enter_" #sc)                                         \
	int tp_mnt_enter_##sc(void *ctx)                                                   \
	{                                                                                  \
		__sync_fetch_and_add(&mounts_busy, 1);                                     \
		__sync_fetch_and_add(&mounts_gen, 1);                                      \
		return 0;                                                                  \
	}                                                                                  \
	SEC("?tracepoint/syscalls/sys_exit_" #sc)                                          \
	int tp_mnt_exit_##sc(void *ctx)                                                    \
	{                                                                                  \
		__sync_fetch_and_add(&mounts_gen, 1);                                      \
		__sync_fetch_and_add(&mounts_busy, -1);                                    \
		return 0;                                                                  \
	}
TP_MOUNT_CALL(mount)
TP_MOUNT_CALL(move_mount)
TP_MOUNT_CALL(pivot_root)

/* Every ctime change on the machine, allowed writers' included, runs one of these: while no
 * op is pending anywhere they leave at one load, before they pin their CPU (lib/pin.h).
 * Program names: a contract with user space (lib/prog_names.h), which switches each on where
 * its tracepoint exists. */
SEC("?tp_btf/inode_set_ctime_to_ts")
int BPF_PROG(tp_ctime_set, struct inode *inode, struct timespec64 *ts)
{
	if (!inflight_n)
		return 0;
	return PINNED(saw_inode(inode));
}

SEC("?tp_btf/ctime_ns_xchg")
int BPF_PROG(tp_ctime_xchg, struct inode *inode, __u32 old, __u32 new, __u32 cur)
{
	if (!inflight_n)
		return 0;
	return PINNED(saw_inode(inode));
}

SEC("?tp_btf/ctime_xchg_skip")
int BPF_PROG(tp_ctime_skip, struct inode *inode, struct timespec64 *ctime)
{
	if (!inflight_n)
		return 0;
	return PINNED(saw_inode(inode));
}

#endif
