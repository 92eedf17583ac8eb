/* SPDX-License-Identifier: GPL-2.0 */
/* Tracepoint backend, core dumps (with the 6.13+ ctime programs, hooks/ctime.h). The kernel
 * writes a crashing process's core file for it, outside any syscall: where core_pattern is a
 * file name, do_coredump() unlinks an earlier file of that name (unless the process was
 * setuid), then creates the new one, as the crashing thread, before it exits. The other
 * backends see those as the unlink and create they are; here the signal that starts the dump
 * leaves a pending op (SC_COREDUMP) and the ctime changes of the dump tell the rest:
 *   - a regular file's inode without a name yet: the new core file, named with its
 *     directory's change;
 *   - a directory's change after it: the create, whose dentry is the name being made
 *     (negative still): the earlier file's if it was unlinked and its dentry kept, else the
 *     directory's newest child;
 *   - a file's change before any new inode: the earlier core file, unlinked (its name is
 *     still there).
 * Each is sent at once, from the ctime program, with the dumping process's identity (its
 * memory is still there). The pending op ends with the create, or when the thread ends. */
#ifndef OW_HOOKS_COREDUMP_H
#define OW_HOOKS_COREDUMP_H

#define S_IFDIR 0040000
#define RLIMIT_CORE 4
/* SIG_KERNEL_COREDUMP_MASK: SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV,
 * SIGXCPU, SIGXFSZ, SIGSYS (the same numbers on x86_64 and arm64) */
#define COREDUMP_SIGS                                                                      \
	((1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8) | (1u << 11) | \
	 (1u << 24) | (1u << 25) | (1u << 31))

/* struct pending of an SC_COREDUMP (args): */
#define CORE_NEW_INODE 0 /* the new file's inode, once seen */
#define CORE_STATE 1     /* CORE_UNLINKED */
#define CORE_GONE_D 2    /* the unlinked file's dentry */
#define CORE_GONE_HASH 3 /* and its name's hash_len */
#define CORE_UNLINKED 1

/* The dentry the dump's create is making in directory `dir`: negative, in dir; 0 if none is. */
static __always_inline struct dentry *core_new_dentry(struct pending *p, struct dentry *dir)
{
	struct dentry *c = (struct dentry *)p->args[CORE_GONE_D];
	struct hlist_node *first;

	/* an unlinked dentry nobody else held stays as a negative one (not on tmpfs): the
	 * create's lookup finds it again */
	if (c && !KREAD(struct dentry, c, d_inode) && KREAD(struct dentry, c, d_parent) == dir &&
	    KREAD(struct dentry, c, d_name.hash_len) == p->args[CORE_GONE_HASH])
		return c;
	/* else the lookup made a new one, which a directory lists first (d_alloc) */
	first = KREAD(struct dentry, dir, d_children.first);
	if (!first)
		return 0;
	c = (struct dentry *)((void *)first - bpf_core_field_offset(struct dentry, d_sib));
	if (KREAD(struct dentry, c, d_inode) || KREAD(struct dentry, c, d_parent) != dir)
		return 0;
	return c;
}

/* The record of a dump's unlink or create of `dentry`, as vfs_event() makes one: its walk, then
 * who. The mount is the working directory's where the file is made in it (core_pattern a
 * plain name, the common case), else unknown: user space places the walk through the mount
 * table. A global function: the ctime programs check it once. */
__noinline int ow_core_event(__u64 dentry, __u32 op, __u32 mode)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dentry *d = (struct dentry *)dentry;
	struct vfsmount *m = 0;
	struct builder b;
	struct ow_event *ev;
	__u32 tree;

	if (!d || op_unwanted(op))
		return 0;
	ev = record_begin(&b, task, WALK_ROOM);
	if (!ev)
		return 0;
	ev->op = op;
	ev->flags = 0;
	ev->mode = mode;
	if (KREAD(struct dentry, d, d_parent) == BPF_CORE_READ(task, fs, pwd.dentry))
		m = BPF_CORE_READ(task, fs, pwd.mnt);
	put_slot(&b, OW_SLOT_PATH);
	tree = put_walk(&b, d, m);
	if (tree == OW_NO_TREE) {
		if (m || !sb_mounted_in_tree(d))
			return 0;
	} else if (is_allowed_in(ev->fsuid, tree)) {
		return 0;
	}
	ev->tree = tree;
	ow_put_identity();
	return submit(&b);
}

/* A ctime change of `inode` while this thread dumps core (p: its SC_COREDUMP op). */
static __always_inline int core_saw_inode(struct pending *p, struct inode *inode)
{
	struct hlist_node *first = inode->i_dentry.first;
	struct inode *created = (struct inode *)p->args[CORE_NEW_INODE];
	struct dentry *d, *c;

	if (!first) {
		/* (a regular file: not the inodes procfs makes as a path goes through it,
		 * /proc/self/root/...) */
		if (!created && (inode->i_mode & S_IFMT) == S_IFREG)
			p->args[CORE_NEW_INODE] = (__u64)inode;
		return 0;
	}
	d = (struct dentry *)((void *)first - d_alias_offset());
	if ((inode->i_mode & S_IFMT) != S_IFDIR) {
		if (created || (p->args[CORE_STATE] & CORE_UNLINKED))
			return 0;
		p->args[CORE_STATE] |= CORE_UNLINKED;
		p->args[CORE_GONE_D] = (__u64)d;
		p->args[CORE_GONE_HASH] = KREAD(struct dentry, d, d_name.hash_len);
		return ow_core_event(num(d), OW_OP_UNLINK, OW_UNSET);
	}
	if (!created)
		return 0;
	c = core_new_dentry(p, d);
	if (!c)
		return 0;
	pending_end(p);
	return ow_core_event(num(c), OW_OP_CREATE, KREAD(struct inode, created, i_mode) & 07777);
}

/* mm_struct.flags was an unsigned long before it became mm_flags_t (a bitmap, 6.18) */
struct mm_struct___flags_ul {
	unsigned long flags;
} __attribute__((preserve_access_index));

#define SUID_DUMP_ROOT 2 /* the dumpable bits of mm flags (MMF_DUMPABLE_BITS, the low two) */

/* Whether the dump will run as root: a process that changed its ids while fs.suid_dumpable
 * was 2 is marked SUID_DUMP_ROOT (in its mm's flags; 7.3: TASK_DUMPABLE_ROOT in its exec
 * state), and do_coredump() makes its file with fsuid 0, whoever the process is now (a
 * daemon that dropped to the service user, then crashed). */
/* 7.3 keeps it in the task's exec state instead (task_struct.exec_state->dumpable) */
enum task_dumpable___ow { TASK_DUMPABLE_ROOT___ow = 2 };
struct task_exec_state___ow {
	enum task_dumpable___ow dumpable;
} __attribute__((preserve_access_index));
struct task_struct___exec {
	struct task_exec_state___ow *exec_state;
} __attribute__((preserve_access_index));

static __always_inline int dumps_as_root(struct task_struct *t)
{
	void *mm = t->mm;
	__u64 flags = 0, off;

	if (bpf_core_field_exists(struct task_struct___exec, exec_state)) {
		struct task_exec_state___ow *es =
			BPF_CORE_READ((struct task_struct___exec *)t, exec_state);

		return es && BPF_CORE_READ(es, dumpable) == TASK_DUMPABLE_ROOT___ow;
	}
	if (!mm)
		return 0;
	if (bpf_core_field_exists(struct mm_struct___flags_ul, flags))
		off = bpf_core_field_offset(struct mm_struct___flags_ul, flags);
	else
		off = bpf_core_field_offset(struct mm_struct, flags);
	bpf_probe_read_kernel(&flags, sizeof(flags), mm + off);
	return (flags & 3) == SUID_DUMP_ROOT;
}

/* A signal that dumps core by default, with no handler: the thread will dump (unless its
 * core limit is 0, or the kernel declines) and end. An actor allowed everywhere is left,
 * unless the dump runs as root. Its name is a contract (lib/prog_names.h). */
SEC("?tp_btf/signal_deliver")
int BPF_PROG(tp_core_begin, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u32 op = OW_OP_CREATE;

	if (sig <= 0 || sig >= 32 || !((1u << sig) & COREDUMP_SIGS) || ka->sa.sa_handler)
		return 0;
	if (!t->signal->rlim[RLIMIT_CORE].rlim_cur || (actor_allowed() && !dumps_as_root(t)))
		return 0;
	if (op_unwanted(op))
		op = OW_OP_UNLINK;
	return PINNED(remember(op, SC_COREDUMP, 0, OW_UNSET, 0, 0, 0, 0, 0));
}

/* A thread's end: a dump that made no file (a `|` core_pattern, a refused dump) leaves its
 * op pending till here. Its name is a contract (lib/prog_names.h). */
SEC("?tracepoint/sched/sched_process_exit")
int tp_core_end(void *ctx)
{
	struct pending *p;

	if (!inflight_n)
		return 0;
	p = pending_get();
	if (p && p->syscall == SC_COREDUMP)
		pending_end(p);
	return 0;
}

#endif
