/* SPDX-License-Identifier: GPL-2.0 */
/* Tracepoint backend, syscall exit: the outcome, the paths, one record. */
#ifndef OW_HOOKS_SYSCALL_EXIT_H
#define OW_HOOKS_SYSCALL_EXIT_H

/* ---- exit: the outcome, the paths, one record --------------------------- */

static __always_inline int maybe_in_tree(struct pending *p)
{
	for (int i = 0; i < OW_MAX_SEEN; i++) {
		struct dentry *d;
		__u32 dev, *flag;

		if (i >= p->nseen)
			break;
		d = (struct dentry *)p->seen[i];
		dev = BPF_CORE_READ(d, d_sb, s_dev);
		flag = bpf_map_lookup_elem(&devs, &dev);
		if (!flag || *flag != 1)
			return 1;
	}
	return 0;
}

static __always_inline int syscall_event(struct pending p, long ret, __u32 extra_flags);

/* One program for the exit of every hooked syscall: user space attaches it to sys_exit_<name>
 * for each tp_enter_<name> it switched on. Its name is a contract (lib/prog_names.h). */
SEC("?tracepoint")
int tp_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	__u32 tid = current_tid();
	struct pending *pp;
	struct pending p;

	pp = bpf_map_lookup_elem(&inflight, &tid);
	if (!pp)
		return 0;
	p = *pp;
	bpf_map_delete_elem(&inflight, &tid);
	/* A write that failed did not happen. */
	if (ret < 0)
		return 0;
	return syscall_event(p, ret, 0);
}
static __always_inline int syscall_event(struct pending p, long ret, __u32 extra_flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct builder b;
	struct ow_event *ev = record_begin(&b, task, WALK_ROOM);
	__u32 tree = OW_NO_TREE;
	__u32 found = 0; /* a walk of this record reached a watched root */
	__u32 string_op;

	if (!ev)
		return 0;
	ev->op = p.op;
	ev->flags = p.flags | extra_flags;
	ev->mode = p.mode;

	/* What the op changed comes first: it decides tree and path, so it gets the room. */
	string_op = p.syscall != SC_OPEN && p.syscall != SC_FCHMOD && p.syscall != SC_FCHOWN &&
		    p.syscall != SC_FTRUNCATE && p.syscall != SC_FSETXATTR;
	if (string_op) {
		for (int i = 0; i < OW_MAX_SEEN; i++) {
			__u32 t;

			if (i >= p.nseen)
				break;
			put_slot(&b, OW_SLOT_SEEN);
			b.s->limit = SEEN_ROOM;
			t = put_walk(&b, (struct dentry *)p.seen[i], 0);
			if (t != OW_NO_TREE)
				found = 1;
			b.s->seen_d[i & (OW_MAX_SEEN - 1)] = p.seen[i];
			b.s->seen_tree[i & (OW_MAX_SEEN - 1)] = t;
			b.s->nseen = i + 1;
		}
	}
	b.s->limit = WALK_ROOM;
	switch (p.syscall) {
	case SC_OPEN: {
		struct file *f = fd_file(task, ret);
		__u32 fmode;

		if (!f)
			return 0;
		fmode = BPF_CORE_READ(f, f_mode);
		/* An O_TMPFILE file has no name yet: reported when linkat names it. */
		if (BPF_CORE_READ(f, f_inode, i_nlink) == 0)
			return 0;
		if (fmode & FMODE_CREATED) {
			ev->op = OW_OP_CREATE;
			ev->mode = BPF_CORE_READ(f, f_inode, i_mode) & 07777;
		} else if (fmode & FMODE_WRITE) {
			ev->op = OW_OP_WRITE;
			ev->mode = OW_UNSET;
		} else {
			return 0;
		}
		if (!(op_mask & (1u << ev->op)))
			return 0;
		put_slot(&b, OW_SLOT_PATH);
		tree = put_file_walk(&b, f);
		if (tree == OW_NO_TREE || is_allowed_in(ev->fsuid, tree))
			return 0;
		break;
	}
	case SC_FCHMOD:
	case SC_FCHOWN:
	case SC_FTRUNCATE:
	case SC_FSETXATTR:
		put_slot(&b, OW_SLOT_PATH);
		tree = put_file_walk(&b, fd_file(task, p.args[0]));
		if (tree == OW_NO_TREE || is_allowed_in(ev->fsuid, tree))
			return 0;
		if (p.syscall == SC_FCHOWN) {
			ev->new_uid = p.args[2];
			ev->new_gid = p.args[3];
		} else if (p.syscall == SC_FSETXATTR) {
			put_slot(&b, OW_SLOT_XATTR);
			put_user_str(&b, (const char *)p.args[1]);
		}
		break;
	case SC_SYMLINK:
		put_slot(&b, OW_SLOT_TARGET);
		put_user_str(&b, (const char *)p.args[0]);
		put_slot(&b, OW_SLOT_PATH);
		b.s->limit = LIMIT_ONE;
		found |= OW_NO_TREE != put_str_path(&b, task, p.args[1], (const char *)p.args[2], 0, OW_F_ABSOLUTE, 0);
		b.s->limit = WALK_ROOM;
		break;
	case SC_LINK:
	case SC_RENAME:
		put_slot(&b, OW_SLOT_PATH);
		b.s->limit = LIMIT_FIRST;
		found |= OW_NO_TREE != put_str_path(&b, task, p.args[0], (const char *)p.args[1],
			     p.syscall == SC_LINK && (p.args[4] & AT_EMPTY_PATH), OW_F_ABSOLUTE, 0);
		b.s->limit = WALK_ROOM;
		put_slot(&b, OW_SLOT_NEW);
		b.s->limit = LIMIT_SECOND;
		found |= OW_NO_TREE != put_str_path(&b, task, p.args[2], (const char *)p.args[3], 0, OW_F_NEW_ABSOLUTE,
			     0);
		b.s->limit = WALK_ROOM;
		break;
	default:
		/* path ops: args = dfd, path, extra..., empty_path flag in args[2] or [4] */
		put_slot(&b, OW_SLOT_PATH);
		{
			__u32 empty_ok = 0;

			if (p.syscall == SC_CHMOD)
				empty_ok = p.args[2];
			else if (p.syscall == SC_CHOWN)
				empty_ok = p.args[4];
			else if (p.syscall == SC_SETXATTRAT)
				empty_ok = p.args[3];
			b.s->limit = LIMIT_ONE;
			found |= OW_NO_TREE != put_str_path(&b, task, p.args[0], (const char *)p.args[1], empty_ok,
				     OW_F_ABSOLUTE, 1);
		b.s->limit = WALK_ROOM;
		}
		if (p.syscall == SC_CHOWN) {
			ev->new_uid = p.args[2];
			ev->new_gid = p.args[3];
		} else if (p.syscall == SC_SETXATTR || p.syscall == SC_SETXATTRAT) {
			put_slot(&b, OW_SLOT_XATTR);
			put_user_str(&b, (const char *)p.args[2]);
		}
		break;
	}
	/* The kernel's own answer: the directories this op changed lie outside every tree,
	 * on superblocks no tree holds a mount of. Nothing to send. */
	if (string_op && !found && p.nseen && !maybe_in_tree(&p))
		return 0;
	ev->tree = tree;
	b.s->limit = WALK_ROOM;
	/* "/proc/self/cwd/..." and friends are resolved against the caller, which may be
	 * gone by the time user space looks: send its cwd along. */
	if (b.s->proc) {
		put_slot(&b, OW_SLOT_CWD);
		put_walk(&b, BPF_CORE_READ(task, fs, pwd.dentry), BPF_CORE_READ(task, fs, pwd.mnt));
	}
	put_identity(&b, task);
	return submit(&b);
}

#endif
