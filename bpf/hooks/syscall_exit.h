/* SPDX-License-Identifier: GPL-2.0 */
/* Tracepoint backend, syscall exit: the outcome, the paths, one record (syscall_event(),
 * which hooks/uring.h also uses for io_uring requests). */
#ifndef OW_HOOKS_SYSCALL_EXIT_H
#define OW_HOOKS_SYSCALL_EXIT_H

/* 0 when every changed directory lies on a superblock that no watched tree holds a mount of
 * (devs map): then a walk that found no root is the final answer. Not for an attribute op's
 * object seen under another of its names (other_name) on a superblock that holds a root: the
 * op's own name may be under it. */
static __always_inline int maybe_in_tree(struct pending *p, __u32 other_name)
{
	for (int i = 0; i < OW_MAX_SEEN; i++) {
		struct dentry *d;

		if (i >= p->nseen)
			break;
		d = (struct dentry *)p->seen[i];
		if (sb_mounted_in_tree(d))
			return 1;
		if (i == 0 && other_name &&
		    dev_has_root(KREAD(struct super_block, KREAD(struct dentry, d, d_sb), s_dev)))
			return 1;
	}
	return 0;
}

/* Ops on an fd (the file open returned, fchmod's, the socket bind named, ...), not on path
 * strings. */
static __always_inline int is_fd_op(__u32 sc)
{
	return sc == SC_OPEN || sc == SC_FCHMOD || sc == SC_FCHOWN || sc == SC_FTRUNCATE ||
	       sc == SC_FSETXATTR || sc == SC_BIND || sc == SC_ACCT;
}

/* The file acct(2) opened in the caller's pid namespace (its bsd_acct_struct, whose fs_pin
 * the namespace points to), or NULL. Its mount is one of the kernel's own, attached nowhere
 * (acct_on: mnt_clone_internal): the walk of it stays in its superblock. */
static __always_inline struct file *acct_file(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	struct pid_namespace *ns = 0;
	struct fs_pin *pin;
	__u32 level;

	if (!pid)
		return 0;
	level = BPF_CORE_READ(pid, level);
	bpf_probe_read_kernel(&ns, sizeof(ns),
			      (void *)pid + bpf_core_field_offset(struct pid, numbers) +
				      (level & 31) * bpf_core_type_size(struct upid) +
				      bpf_core_field_offset(struct upid, ns));
	pin = ns ? BPF_CORE_READ(ns, bacct) : 0;
	if (!pin)
		return 0;
	return BPF_CORE_READ((struct bsd_acct_struct *)((void *)pin -
					bpf_core_field_offset(struct bsd_acct_struct, pin)),
			     file);
}

/* The name an AF_UNIX socket (fd) was just bound to, as the kernel keeps it (unix_sock.path),
 * with the mode it made the socket's inode with; 0 when the fd is not such a socket. */
static __always_inline const struct path *bound_path(struct ow_event *ev,
						     struct task_struct *task, long fd)
{
	struct file *f = fd_file(task, fd);
	struct socket *sock;
	struct sock *sk;
	struct unix_sock *u;
	struct dentry *d;

	if (!f)
		return 0;
	sock = (struct socket *)KREAD(struct file, f, private_data);
	sk = sock ? KREAD(struct socket, sock, sk) : 0;
	if (!sk || KREAD(struct sock, sk, __sk_common.skc_family) != AF_UNIX)
		return 0;
	u = (struct unix_sock *)sk;
	d = KREAD(struct unix_sock, u, path.dentry);
	if (!d)
		return 0;
	ev->mode = KREAD(struct inode, KREAD(struct dentry, d, d_inode), i_mode) & 07777;
	return &u->path;
}

/* The file an open returned, when it was created or opened for write (the op says which, with
 * the mode a create gave it) and that op is wanted; else NULL. */
static __always_inline struct file *opened_file(struct ow_event *ev, struct task_struct *task,
						long ret)
{
	struct file *f = fd_file(task, ret);
	struct inode *inode;
	__u32 fmode;

	if (!f)
		return 0;
	fmode = KREAD(struct file, f, f_mode);
	inode = KREAD(struct file, f, f_inode);
	/* An O_TMPFILE file has no name yet: reported when linkat names it. */
	if (KREAD(struct inode, inode, i_nlink) == 0)
		return 0;
	if (fmode & FMODE_CREATED) {
		ev->op = OW_OP_CREATE;
		ev->mode = KREAD(struct inode, inode, i_mode) & 07777;
	} else if (fmode & FMODE_WRITE) {
		ev->op = OW_OP_WRITE;
		ev->mode = OW_UNSET;
	} else {
		return 0;
	}
	if (!(op_mask & (1u << ev->op)))
		return 0;
	return f;
}

/* An op on an fd: the fd's file is the object (a bound socket: the name it was bound to).
 * Returns its tree, or OW_NO_TREE when there is nothing to send (no such file, outside every
 * tree, or the actor may write there). */
static __always_inline __u32 put_fd_op(struct builder *b, struct task_struct *task,
				       struct pending *p, long ret)
{
	struct ow_event *ev = &b->s->ev;
	const struct path *obj;
	struct file *f;
	__u32 tree;

	if (p->syscall == SC_BIND) {
		obj = bound_path(ev, task, p->args[0]);
		if (!obj)
			return OW_NO_TREE;
	} else if (p->syscall == SC_OPEN) {
		f = opened_file(ev, task, ret);
		if (!f)
			return OW_NO_TREE;
		obj = &f->f_path;
	} else if (p->syscall == SC_ACCT) {
		struct dentry *d;

		f = acct_file(task);
		d = f ? BPF_CORE_READ(f, f_path.dentry) : 0;
		if (!d)
			return OW_NO_TREE;
		put_slot(b, OW_SLOT_PATH);
		tree = put_walk(b, d, 0);
		/* (a tree whose root lies above the file's superblock, through a mount, is not
		 * found: that would need the mount acct_on cloned from) */
		if (tree == OW_NO_TREE || is_allowed_in(ev->fsuid, tree))
			return OW_NO_TREE;
		return tree;
	} else {
		f = fd_file(task, p->args[0]);
		obj = f ? &f->f_path : 0;
	}
	put_slot(b, OW_SLOT_PATH);
	tree = obj ? put_kept_walk(b, (__u64)KREAD(struct path, obj, dentry),
				   (__u64)KREAD(struct path, obj, mnt))
		   : OW_NO_TREE;
	if (tree == OW_NO_TREE || is_allowed_in(ev->fsuid, tree))
		return OW_NO_TREE;
	if (p->syscall == SC_FCHOWN) {
		ev->new_uid = ow_kid(0, p->args[2]);
		ev->new_gid = ow_kid(1, p->args[3]);
	} else if (p->syscall == SC_FSETXATTR) {
		put_slot(b, OW_SLOT_XATTR);
		put_user_str(b, (const char *)p->args[1]);
	}
	return tree;
}

/* Ops that change their object's attributes only: its ctime is the one they change, so the
 * first changed dentry is the object (user space: locate.rs refine). */
static __always_inline int is_attr_op(__u32 op)
{
	return op == OW_OP_CHMOD || op == OW_OP_CHOWN || op == OW_OP_TRUNCATE ||
	       op == OW_OP_SETXATTR || op == OW_OP_REMOVEXATTR;
}

#define OW_NO_REL 0xfffffffe

/* The i-th changed dentry (i > 0), when it is the parent or a child of one walked whole
 * before it: unlink and rmdir change the object and its directory, rename the directories
 * and what moved, all on one chain. A WALKREL item (struct ow_walkrel) then says which
 * instead of a second walk up that chain: the names are the same but one, the tree is
 * decided by the first walk's, unless the child is a watched root itself. Returns its tree,
 * or OW_NO_REL when it is related to none (or there is no room): it is walked then. A
 * global function (scalars only): checked once. */
__noinline __u32 ow_put_seen_rel(__u64 dentry, __u32 i)
{
	struct builder bb = { .s = this_scratch() };
	struct builder *b = &bb;
	struct dentry *d = (struct dentry *)dentry, *parent;
	struct inode *inode;
	__u32 mode;

	if (!b->s || !d)
		return OW_NO_REL;
	parent = KREAD(struct dentry, d, d_parent);
	inode = KREAD(struct dentry, d, d_inode);
	mode = inode ? KREAD(struct inode, inode, i_mode) : 0;
	for (int j = 0; j < OW_MAX_SEEN - 1; j++) {
		struct dentry *dj;
		__u32 tree, depth, off, n = 0, up, *t;

		if (j >= i)
			break;
		if (!(b->s->seen_whole & (1u << j)))
			continue;
		dj = (struct dentry *)b->s->seen_d[j];
		tree = b->s->seen_tree[j];
		depth = b->s->seen_depth[j];
		if (parent == dj && parent != d) {
			up = 0;
			t = inode ? dentry_root_tree(d, inode) : 0;
			if (t) {
				tree = *t;
				depth = 0;
			} else if (tree != OW_NO_TREE) {
				depth++;
			}
		} else if (KREAD(struct dentry, dj, d_parent) == d && dj != d) {
			/* (a root found at dj itself: its walk did not look above it) */
			if (tree != OW_NO_TREE && depth == 0)
				continue;
			up = 1;
			if (tree != OW_NO_TREE)
				depth--;
		} else {
			continue;
		}
		off = b->s->off;
		if (off > b->s->limit - 4 - sizeof(struct ow_walkrel) - NAME_MAX_READ ||
		    b->s->limit > OW_DATA_MAX)
			return OW_NO_REL;
		b->s->off = off + 4;
		put_u32(b, j | up << 8);
		put_u32(b, tree);
		put_u32(b, depth);
		put_u32(b, mode);
		if (!up) {
			long r = bpf_probe_read_kernel_str(
				&b->s->data[(off + 4 + sizeof(struct ow_walkrel)) & DATA_MASK],
				NAME_MAX_READ, KREAD(struct dentry, d, d_name.name));

			n = r > 0 ? (r - 1) & (NAME_MAX_READ - 1) : 0;
		}
		item_hdr_at(b, off, OW_ITEM_WALKREL, 0, sizeof(struct ow_walkrel) + n);
		b->s->off = off + 4 + sizeof(struct ow_walkrel) + n;
		b->s->seen_depth[i & (OW_MAX_SEEN - 1)] = depth;
		b->s->seen_whole |= 1u << (i & (OW_MAX_SEEN - 1));
		return tree;
	}
	return OW_NO_REL;
}

/* Whether d is its inode's only name in the dentry cache. The ctime tracepoints give an inode,
 * and its dentry is the first of its names there (hooks/ctime.h): of a file with hard links,
 * maybe not the one the op went through. That name is cached (the op looked it up), so a
 * sole name is the op's. */
static __always_inline int sole_alias(struct dentry *d)
{
	struct inode *inode = KREAD(struct dentry, d, d_inode);
	struct hlist_node *first;

	if (!inode)
		return 0;
	first = KREAD(struct inode, inode, i_dentry.first);
	return first && !KREAD(struct hlist_node, first, next);
}

/* What the op changed (OW_SLOT_SEEN, from the ctime tracepoints) comes first: it decides tree
 * and path, so it gets the room. Returns 1 when a walk reached a watched root. */
static __always_inline __u32 put_seen(struct builder *b, struct pending *p)
{
	__u32 found = 0;

	b->s->seen_whole = 0;
	for (int i = 0; i < OW_MAX_SEEN; i++) {
		__u32 t = OW_NO_REL;

		if (i >= p->nseen)
			break;
		put_slot(b, OW_SLOT_SEEN);
		b->s->limit = SEEN_ROOM;
		b->s->w.done = 0;
		if (i > 0)
			t = ow_put_seen_rel(p->seen[i], i);
		if (t == OW_NO_REL) {
			t = put_walk(b, (struct dentry *)p->seen[i], 0);
			b->s->seen_depth[i & (OW_MAX_SEEN - 1)] = b->s->w.tree_depth;
			if (b->s->w.done && !b->s->w.full)
				b->s->seen_whole |= 1u << (i & (OW_MAX_SEEN - 1));
		}
		if (t != OW_NO_TREE)
			found = 1;
		if (i == 0 && is_attr_op(p->op)) {
			b->s->other_name = !sole_alias((struct dentry *)p->seen[0]);
			b->s->object_seen = b->s->w.done && !b->s->w.full && !b->s->other_name;
		}
		b->s->seen_d[i & (OW_MAX_SEEN - 1)] = p->seen[i];
		b->s->seen_tree[i & (OW_MAX_SEEN - 1)] = t;
		b->s->nseen = i + 1;
	}
	b->s->limit = WALK_ROOM;
	return found;
}

/* One path argument (dfd, string) in `slot`, its items ending before `limit`. Returns 1 when
 * a walk reached a watched root. follow_proc_fd: see put_str_path(). */
static __always_inline __u32 put_path_arg(struct builder *b, __u8 slot, __u32 limit, __u64 dfd,
					  __u64 uptr, __u32 empty_ok, __u32 follow_proc_fd)
{
	__u32 abs_flag = slot == OW_SLOT_NEW ? OW_F_NEW_ABSOLUTE : OW_F_ABSOLUTE;
	__u32 tree;

	put_slot(b, slot);
	b->s->limit = limit;
	tree = ow_put_str_path(dfd, uptr, empty_ok, abs_flag, follow_proc_fd);
	b->s->limit = WALK_ROOM;
	return tree != OW_NO_TREE;
}

/* An op on path strings (args as hooks/syscalls.h remembered them). Returns 1 when a walk
 * reached a watched root. */
static __always_inline __u32 put_str_op(struct builder *b, struct pending *p)
{
	struct ow_event *ev = &b->s->ev;
	__u64 *a = p->args;
	__u32 found, empty_ok = 0;

	switch (p->syscall) {
	case SC_SYMLINK: /* target, dfd, linkpath */
		put_slot(b, OW_SLOT_TARGET);
		put_user_str(b, (const char *)a[0]);
		return put_path_arg(b, OW_SLOT_PATH, LIMIT_ONE, a[1], a[2], 0, 0);
	case SC_LINK:
	case SC_RENAME: /* olddfd, old, newdfd, new, flags */
		found = put_path_arg(b, OW_SLOT_PATH, LIMIT_FIRST, a[0], a[1],
				     p->syscall == SC_LINK && (a[4] & AT_EMPTY_PATH), 0);
		found |= put_path_arg(b, OW_SLOT_NEW, LIMIT_SECOND, a[2], a[3], 0, 0);
		return found;
	}
	/* the others: dfd, path, extra...; the empty-path flag in args[2], [3] or [4] */
	if (p->syscall == SC_CHMOD)
		empty_ok = a[2];
	else if (p->syscall == SC_CHOWN)
		empty_ok = a[4];
	else if (p->syscall == SC_SETXATTRAT)
		empty_ok = a[3];
	if (b->s->object_seen) {
		/* The object walked whole already (put_seen): its string would tell user space
		 * nothing more (locate.rs refine), and reading it cost an offending chmod ~0.2 µs
		 * of its ~1.7 (6.18 host). Its tree, if any, is put_seen's answer; a cut walk
		 * or a walk of something else is not object_seen, and the string is sent. */
		put_slot(b, OW_SLOT_PATH);
		ev->flags |= OW_F_SEEN_OBJECT;
		found = 0;
	} else {
		found = put_path_arg(b, OW_SLOT_PATH, LIMIT_ONE, a[0], a[1], empty_ok, 1);
	}
	if (p->syscall == SC_CHOWN) {
		ev->new_uid = ow_kid(0, a[2]);
		ev->new_gid = ow_kid(1, a[3]);
	} else if (p->syscall == SC_SETXATTR || p->syscall == SC_SETXATTRAT) {
		put_slot(b, OW_SLOT_XATTR);
		put_user_str(b, (const char *)a[2]);
	}
	return found;
}

/* One record for an op that returned `ret` (the tracepoint backend; io_uring requests at
 * submission, with OW_F_NO_RET). */
static __always_inline int syscall_event(struct pending *p, long ret, __u32 extra_flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct builder b;
	struct ow_event *ev = record_begin(&b, task, WALK_ROOM);
	__u32 tree = OW_NO_TREE;

	if (!ev)
		return 0;
	ev->op = p->op;
	ev->flags = p->flags | extra_flags;
	ev->mode = p->mode;
	b.s->kstrs = p->kstrs;
	if (is_fd_op(p->syscall)) {
		tree = put_fd_op(&b, task, p, ret);
		if (tree == OW_NO_TREE)
			return 0;
	} else {
		__u32 found;

		b.s->object_seen = 0;
		b.s->other_name = 0;
		found = put_seen(&b, p);
		found |= put_str_op(&b, p);
		b.s->object_seen = 0;
		/* The kernel's own answer: the directories this op changed lie outside every
		 * tree, on superblocks no tree holds a mount of. Nothing to send. */
		if (!found && p->nseen && !maybe_in_tree(p, b.s->other_name))
			return 0;
	}
	ev->tree = tree;
	b.s->limit = WALK_ROOM;
	/* "/proc/self/cwd/..." and friends are resolved against the caller, which may be
	 * gone by the time user space looks: send its cwd along. */
	if (b.s->proc) {
		put_slot(&b, OW_SLOT_CWD);
		put_walk(&b, BPF_CORE_READ(task, fs, pwd.dentry), BPF_CORE_READ(task, fs, pwd.mnt));
	}
	ow_put_identity();
	return submit(&b);
}

/* A hooked syscall's exit: its enter left a pending op for this thread. */
static __always_inline int on_exit(long ret)
{
	struct pending *pp;
	struct pending p;

	if (!inflight_n)
		return 0; /* no thread has an op pending: not this one either */
	pp = pending_get();
	if (!pp)
		return 0;
	p = *pp;
	pending_end(pp);
	/* A write that failed did not happen. */
	if (ret < 0)
		return 0;
	return syscall_event(&p, ret, 0);
}

/* The exit of every hooked syscall, reached from the tp_exit_<name> programs below by a tail
 * call (exit_body); attached nowhere itself. Its name is a contract (lib/prog_names.h). */
SEC("?tracepoint")
int tp_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	return PINNED(on_exit(ctx->ret));
}

/* tp_sys_exit, put in by user space after the load. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} exit_body SEC(".maps");

/* tp_exit_<syscall>, on sys_exit_<syscall> for each tp_enter_<syscall> switched on (the name
 * is a contract, lib/prog_names.h): one small program per syscall that goes on in tp_sys_exit
 * only while some thread has an op pending. Why not tp_sys_exit on every exit: 7.x runs
 * syscall tracepoint programs preemptibly, and the kernel's recursion guard is per program
 * and CPU: a task preempted inside the exit program (around it in the kernel's code, or at
 * the end of its pinned part) made the kernel skip that program for every other task on the
 * CPU meanwhile, whatever its syscall: an openat of the agent's or a --fix chown held it,
 * and a writer's mkdir went unreported (counted as skipped). A tail call runs under its
 * caller's guard, so now only tasks in the same syscall share one. */
#define TP_EXIT(w, name)                                                                   \
	SEC("?tracepoint/syscalls/sys_exit_" #name)                                        \
	int OW_CAT(PROG_TP_EXIT, name)(struct trace_event_raw_sys_exit *ctx)               \
	{                                                                                  \
		if (inflight_n)                                                            \
			bpf_tail_call(ctx, &exit_body, 0);                                 \
		return 0;                                                                  \
	}
OW_SYSCALLS(TP_EXIT, 0)

#endif
