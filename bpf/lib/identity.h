/* SPDX-License-Identifier: GPL-2.0 */
/* Who did it: the actor (in the event), then as items its command line, exe, tty, cgroup and
 * parents. Captured now, not looked up later in /proc: short-lived callers are gone by then.
 * Only offending events get past the actor. */
#ifndef OW_LIB_IDENTITY_H
#define OW_LIB_IDENTITY_H

/* The writer's task is read through BTF where the program may (task_btf or core_cast,
 * bpf/lib/filter.h: direct loads, an instruction each), else with bpf_probe_read_kernel (a
 * helper call each): fill_actor() and read_writer() are those reads, once per record. */
static __always_inline void fill_actor(struct ow_event *ev, struct task_struct *task)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	ev->ts_boot_ns = bpf_ktime_get_boot_ns();
	ev->backend = backend_id;
	ev->pid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	if (direct_task) {
		struct task_struct *t = task_direct();
		const struct cred *c = t->cred;

		ev->ppid = t->real_parent->tgid;
		ev->uid = c->uid.val;
		ev->gid = c->gid.val;
		ev->euid = c->euid.val;
		ev->fsuid = c->fsuid.val;
		ev->fsgid = c->fsgid.val;
		/* the name as two loads, not a helper call (user space reads up to its NUL) */
		*(__u64 *)&ev->comm[0] = *(const __u64 *)&t->comm[0];
		*(__u64 *)&ev->comm[8] = *(const __u64 *)&t->comm[8];
	} else {
		ev->ppid = BPF_CORE_READ(task, real_parent, tgid);
		ev->uid = BPF_CORE_READ(task, cred, uid.val);
		ev->gid = BPF_CORE_READ(task, cred, gid.val);
		ev->euid = BPF_CORE_READ(task, cred, euid.val);
		ev->fsuid = BPF_CORE_READ(task, cred, fsuid.val);
		ev->fsgid = BPF_CORE_READ(task, cred, fsgid.val);
		bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	}
}

static __always_inline void read_writer(struct ow_writer *w, struct task_struct *task)
{
	if (direct_task) {
		struct task_struct *t = task_direct();
		struct mm_struct *mm = t->mm;
		struct kernfs_node *kn = t->cgroups->dfl_cgrp->kn;

		w->mm = (__u64)mm;
		w->exe = w->arg_start = w->arg_end = 0;
		if (mm) {
			w->exe = (__u64)mm->exe_file;
			w->arg_start = mm->arg_start;
			w->arg_end = mm->arg_end;
		}
		w->tty = (__u64)t->signal->tty;
		w->kn = (__u64)kn;
		w->cgid = kn ? kn->id : 0;
		w->start = t->group_leader->start_time;
		w->exec_id = t->self_exec_id;
		w->loginuid = t->loginuid.val;
		w->sessionid = t->sessionid;
	} else {
		struct mm_struct *mm = BPF_CORE_READ(task, mm);
		struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);

		w->mm = (__u64)mm;
		w->exe = w->arg_start = w->arg_end = 0;
		if (mm) {
			w->exe = (__u64)BPF_CORE_READ(mm, exe_file);
			w->arg_start = BPF_CORE_READ(mm, arg_start);
			w->arg_end = BPF_CORE_READ(mm, arg_end);
		}
		w->tty = (__u64)BPF_CORE_READ(task, signal, tty);
		w->kn = (__u64)kn;
		w->cgid = kn ? BPF_CORE_READ(kn, id) : 0;
		w->start = BPF_CORE_READ(task, group_leader, start_time);
		w->exec_id = BPF_CORE_READ(task, self_exec_id);
		w->loginuid = BPF_CORE_READ(task, loginuid.val);
		w->sessionid = BPF_CORE_READ(task, sessionid);
	}
}

/* The owner a chown gives, as the kernel keeps it: the id the caller passed (in its user
 * namespace; -1, unchanged, stays) mapped down as make_kuid() and make_kgid() do
 * (map_id_down: a namespace's map holds the kernel's own ids already, whatever its depth).
 * That is what the file gets and what the VFS backends' chown hook is given (6.1+); outside
 * user namespaces it is the id itself. Of a map of more than the 5 inline extents, the first
 * KID_EXTENTS (sorted by first id) are looked at: an id beyond them stays as given. A
 * global function (scalars only): the tracepoint backend's chowns and lsm and fentry's
 * chown_common (before 6.1) call it. */
#define KID_INLINE_EXTENTS 5
#define KID_EXTENTS 64
__noinline __u32 ow_kid(__u32 gid, __u32 id)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct user_namespace *ns;
	struct uid_gid_extent e, *ext;
	__u64 map;
	__u32 n;

	if (id == OW_UNSET)
		return id;
	ns = BPF_CORE_READ(t, cred, user_ns);
	if (!ns || BPF_CORE_READ(ns, level) == 0)
		return id;
	map = (__u64)ns + (gid ? bpf_core_field_offset(struct user_namespace, gid_map)
			       : bpf_core_field_offset(struct user_namespace, uid_map));
	n = BPF_CORE_READ((struct uid_gid_map *)map, nr_extents);
	if (n <= KID_INLINE_EXTENTS)
		ext = (struct uid_gid_extent *)(map +
						bpf_core_field_offset(struct uid_gid_map, extent));
	else
		ext = BPF_CORE_READ((struct uid_gid_map *)map, forward);
	for (__u32 i = 0; i < KID_EXTENTS; i++) {
		if (i >= n || bpf_probe_read_kernel(&e, sizeof(e), &ext[i]))
			break;
		if (id >= e.first && id - e.first < e.count)
			return e.lower_first + (id - e.first);
	}
	return id;
}

_Static_assert(ARGV_CHUNK == 0x100, "ow_argv_step masks with ARGV_CHUNK - 1");

/* One ARGV_CHUNK of the command line, or what is left of it; 1 when it is all read or a read
 * failed. Pages of it that are not resident cannot be faulted in here: a step that fails keeps
 * what the ones before it read. A global function, as the walk's step (walk.h): the verifier checks it once,
 * and the loop in ow_put_argv by its counter alone. */
__noinline int ow_argv_step(void)
{
	struct scratch *s = this_scratch();
	__u64 left, n;
	__u8 *dst;

	if (!s || s->argv_at >= s->argv_end)
		return 1;
	left = s->argv_end - s->argv_at;
	dst = &s->data[(s->argv_dst + s->argv_len) & DATA_MASK];
	if (left >= ARGV_CHUNK &&
	    !bpf_probe_read_user(dst, ARGV_CHUNK, (void *)s->argv_at)) {
		s->argv_len += ARGV_CHUNK;
		s->argv_at += ARGV_CHUNK;
		return 0;
	}
	/* the last chunk may end on a page that is not there: read only what is left */
	n = left;
	/* a mask clang cannot drop: old verifiers want to see the bound on the register passed,
	 * not on a copy */
	asm volatile("%0 &= 0xff" : "+r"(n));
	if (left >= ARGV_CHUNK || !n || bpf_probe_read_user(dst, n, (void *)s->argv_at))
		s->argv_failed = left != 0;
	else
		s->argv_len += n;
	return 1;
}

/* The command line [start, end) of the caller's memory, at most ARGV_MAX bytes of it, as a
 * STR item (its aux byte set when it was cut or could not all be read). A global function
 * (scalars only, see ow_walk_chunk): the ways out of the loop meet before the rest of the
 * record. */
__noinline int ow_put_argv(__u64 start, __u64 end)
{
	struct builder bb = { .s = this_scratch() };
	struct builder *b = &bb;
	__u32 hdr;

	if (!b->s)
		return 0;
	hdr = b->s->off;
	if (end <= start || hdr > OW_DATA_MAX - 4 - ARGV_MAX)
		return 0;
	b->s->argv_at = start;
	b->s->argv_end = end - start > ARGV_MAX ? start + ARGV_MAX : end;
	b->s->argv_dst = hdr + 4;
	b->s->argv_len = 0;
	b->s->argv_failed = 0;
	for (__u32 i = 0; i < ARGV_MAX / ARGV_CHUNK; i++)
		if (ow_argv_step())
			break;
	b->s->off = hdr + 4 + (b->s->argv_len & (ARGV_MAX * 2 - 1));
	item_hdr_at(b, hdr, OW_ITEM_STR, end - start > ARGV_MAX || b->s->argv_failed,
		    b->s->argv_len & (ARGV_MAX * 2 - 1));
	return 0;
}

/* kernfs_node.parent became __parent in 6.15 */
struct kernfs_node___old {
	struct kernfs_node___old *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return KREAD(struct kernfs_node, kn, __parent);
	return (struct kernfs_node *)KREAD(struct kernfs_node___old, kn, parent);
}

/* The identity's loops (cgroup names, ancestors) step through global functions, as the walk
 * does (walk.h): the verifier checks a step once and the loop's counter alone, instead of
 * every path through every iteration (a 32-level loop with a string copy in it made most of
 * each program's verification). The step's state is the scratch's `at`. */

/* One name of the cgroup path, leaf first; 1 when the root is reached. */
__noinline int ow_cgroup_step(void)
{
	struct builder bb = { .s = this_scratch() };
	struct kernfs_node *kn, *parent;

	if (!bb.s)
		return 1;
	kn = (struct kernfs_node *)bb.s->at;
	parent = kn_parent(kn);
	if (!parent)
		return 1;
	put_str(&bb, OW_ITEM_NAME, KREAD(struct kernfs_node, kn, name), NAME_MAX_READ,
		OW_DATA_MAX, STR_KERNEL);
	bb.s->at = (__u64)parent;
	return 0;
}

/* The cgroup v2 path: a SEG of dev 0, then the names leaf first, below the root. */
static __always_inline void put_cgroup(struct builder *b, struct kernfs_node *kn)
{
	if (put_hdr(b, OW_ITEM_SEG, 4) == 0)
		put_u32(b, 0);
	b->s->at = (__u64)kn;
	for (int i = 0; i < CGROUP_DEPTH; i++)
		if (ow_cgroup_step())
			break;
}

/* One ancestor, the parent of the task in `at`: an OW_ITEM_PARENT (struct ow_parent);
 * 1 when there is none or it is init. Kernels without core_cast (see put_parents). */
__noinline int ow_parent_step(void)
{
	struct builder bb = { .s = this_scratch() };
	struct builder *b = &bb;
	struct task_struct *t;
	__u32 pid;

	if (!b->s)
		return 1;
	/* (a plain variable: BPF_CORE_READ would relocate b->s too) */
	t = (struct task_struct *)b->s->at;
	t = KREAD(struct task_struct, t, real_parent);
	if (!t)
		return 1;
	pid = KREAD(struct task_struct, t, tgid);
	if (!pid || put_hdr(b, OW_ITEM_PARENT, sizeof(struct ow_parent)))
		return 1;
	put_u32(b, pid);
	bpf_probe_read_kernel(&b->s->data[b->s->off & DATA_MASK], OW_COMM_LEN, t->comm);
	b->s->off += OW_COMM_LEN;
	b->s->at = (__u64)t;
	return pid == 1;
}

/* The ancestors, nearest first, up to init. Where core_cast, a loop of direct loads here:
 * no call, no scratch lookup per ancestor. */
static __always_inline void put_parents(struct builder *b, struct task_struct *t)
{
	if (core_cast) {
		struct task_struct *p = bpf_core_cast(t, struct task_struct);

		for (int i = 0; i < MAX_PARENTS; i++) {
			const __u64 *c;
			__u32 pid;

			p = p->real_parent;
			if (!p)
				break;
			pid = p->tgid;
			if (!pid || put_hdr(b, OW_ITEM_PARENT, sizeof(struct ow_parent)))
				break;
			c = (const __u64 *)p->comm;
			put_u32(b, pid);
			put_u64(b, c[0]);
			put_u64(b, c[1]);
			if (pid == 1)
				break;
		}
		return;
	}
	b->s->at = (__u64)t;
	for (int i = 0; i < MAX_PARENTS; i++)
		if (ow_parent_step())
			break;
}

_Static_assert(sizeof(struct ow_ident) % 8 == 0, "put_ident_item copies u64s");

/* Whether the executable was deleted (or replaced by a rename) since it was run: its dentry
 * is unhashed and not a root, d_unlinked(), what makes /proc say "(deleted)". Read at every
 * record, as part of the identity's key: a binary upgraded under a running process is the
 * same exe file, now deleted. */
static __always_inline int exe_unlinked(struct file *f)
{
	struct dentry *d = KREAD(struct file, f, f_path.dentry);

	return d && !KREAD(struct dentry, d, d_hash.pprev) && KREAD(struct dentry, d, d_parent) != d;
}

/* An IDGEN or IDREF item (bpf/ownwatch.h). */
static __always_inline void put_ident_item(struct builder *b, __u8 kind, struct ow_ident *id)
{
	if (put_hdr(b, kind, sizeof(*id)))
		return;
	for (int i = 0; i < sizeof(*id) / 8; i++)
		put_u64(b, ((__u64 *)id)[i]);
}

/* The exe, tty and cgroup of the writer: sent once per process, then referred to (IDGEN and
 * IDREF in bpf/ownwatch.h) while what they depend on is the same; the ancestors, command line
 * and audit ids are read anew for every record (a parent may die or exec, argv be rewritten in
 * place). The common case, a process that writes many times, then costs a few loads instead
 * of a walk of its exe's path and of its cgroup. */
static __always_inline void put_exe_tty_cgroup(struct builder *b, const struct ow_writer *w)
{
	/* (in the scratch, as the writer: 5.10 counts every frame of the call chain, walk
	 * included, against 512 bytes of stack) */
	struct ow_ident *v, *cur = &b->s->ident;
	struct tty_struct *tty = (struct tty_struct *)w->tty;
	__u32 trunc;

	cur->tgid = bpf_get_current_pid_tgid() >> 32;
	cur->exe_gone = w->exe && exe_unlinked((struct file *)w->exe);
	cur->start = w->start;
	cur->exec_id = w->exec_id;
	cur->mm = w->mm;
	cur->exe = w->exe;
	cur->tty = w->tty;
	cur->cgid = w->cgid;

	b->s->ident_new = 0;
	v = bpf_map_lookup_elem(&idents, &cur->tgid);
	if (v && v->start == cur->start && v->exec_id == cur->exec_id && v->mm == cur->mm &&
	    v->exe == cur->exe && v->exe_gone == cur->exe_gone && v->tty == cur->tty &&
	    v->cgid == cur->cgid) {
		__u32 off = b->s->off;

		put_ident_item(b, OW_ITEM_IDREF, cur);
		if (b->s->off != off)
			return;
	}

	trunc = b->s->trunc;
	put_ident_item(b, OW_ITEM_IDGEN, cur);
	if (w->exe) {
		put_slot(b, OW_SLOT_EXE);
		b->s->limit = b->s->off + EXE_ROOM;
		b->s->walk_flags = cur->exe_gone ? OW_F_UNLINKED : 0;
		put_file_walk(b, (struct file *)w->exe);
		b->s->limit = OW_DATA_MAX;
	}
	if (tty) {
		put_slot(b, OW_SLOT_TTY);
		put_str(b, OW_ITEM_STR, tty->name, sizeof(tty->name), OW_DATA_MAX, STR_UNCOUNTED);
	}
	if (w->kn) {
		put_slot(b, OW_SLOT_CGROUP);
		put_cgroup(b, (struct kernfs_node *)w->kn);
	}
	/* remembered once the record is sent (submit), and only when nothing here was cut:
	 * a later record refers to exactly these items */
	if (b->s->trunc == trunc)
		b->s->ident_new = 1;
}

/* Who did it, as items after the op's own (see the top of this file), into this CPU's
 * record. A global function: the verifier checks it once per program, not once for every
 * way a hook reaches it. */
__noinline int ow_put_identity(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct builder bb = { .s = this_scratch() };
	struct builder *b = &bb;
	struct ow_writer *w;

	if (!b->s)
		return 0;
	w = &b->s->wr;
	read_writer(w, task);
	b->s->limit = OW_DATA_MAX;
	b->s->ev.loginuid = w->loginuid;
	b->s->ev.sessionid = w->sessionid;

	/* (user space finds the identity here without reading every item before it) */
	b->s->ev.ident_at = b->s->off + 1;
	put_slot(b, OW_SLOT_ARGV);
	if (w->mm) {
		/* a cut command line is argv_truncated, not a cut path (OW_F_TRUNCATED) */
		__u32 trunc = b->s->trunc;

		ow_put_argv(w->arg_start, w->arg_end);
		b->s->trunc = trunc;
	}

	put_exe_tty_cgroup(b, w);

	put_slot(b, OW_SLOT_PARENTS);
	put_parents(b, task);
	return 0;
}

#endif
