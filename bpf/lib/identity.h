/* SPDX-License-Identifier: GPL-2.0 */
/* Who did it: the actor (in the event), then as items its command line, exe, tty, cgroup and
 * parents. Captured now, not looked up later in /proc: short-lived callers are gone by then.
 * Only offending events get past the actor. */
#ifndef OW_LIB_IDENTITY_H
#define OW_LIB_IDENTITY_H

static __always_inline void fill_actor(struct ow_event *ev, struct task_struct *task)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	ev->ts_boot_ns = bpf_ktime_get_boot_ns();
	ev->backend = backend_id;
	ev->pid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	ev->ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev->uid = BPF_CORE_READ(task, cred, uid.val);
	ev->gid = BPF_CORE_READ(task, cred, gid.val);
	ev->euid = BPF_CORE_READ(task, cred, euid.val);
	ev->fsuid = BPF_CORE_READ(task, cred, fsuid.val);
	ev->fsgid = BPF_CORE_READ(task, cred, fsgid.val);
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
}

_Static_assert(ARGV_CHUNK == 0x100, "ow_put_argv masks with ARGV_CHUNK - 1");

/* The command line [start, end) of the caller's memory, ARGV_CHUNK bytes per step: pages of
 * it that are not resident cannot be faulted in here, and a step that fails keeps what the
 * ones before it read. Every step but a short last one reads a whole chunk (the environment
 * follows the command line), so the loop's state is its counter alone and the verifier
 * follows each step once. A global function (scalars only, see ow_walk_chunk): the ways out
 * of the loop meet before the rest of the record. */
__noinline int ow_put_argv(__u64 start, __u64 end)
{
	struct builder bb = { .s = this_scratch() };
	struct builder *b = &bb;
	__u32 hdr, len, failed = 0;

	if (!b->s)
		return 0;
	hdr = b->s->off;
	if (end <= start || hdr > OW_DATA_MAX - 4 - ARGV_MAX)
		return 0;
	len = end - start > ARGV_MAX ? ARGV_MAX : end - start;
	for (__u32 i = 0; i < ARGV_MAX / ARGV_CHUNK; i++) {
		__u32 at = i * ARGV_CHUNK;
		__u8 *dst = &b->s->data[(hdr + 4 + at) & DATA_MASK];
		__u64 n;

		if (at >= len)
			break;
		if (!bpf_probe_read_user(dst, ARGV_CHUNK, (void *)(start + at)))
			continue;
		/* the last chunk may end on a page that is not there: read only what is left */
		n = len - at;
		/* a mask clang cannot drop: old verifiers want to see the bound on the register
		 * passed, not on a copy */
		asm volatile("%0 &= 0xff" : "+r"(n));
		if (len - at >= ARGV_CHUNK || bpf_probe_read_user(dst, n, (void *)(start + at))) {
			failed = 1;
			len = at;
		}
		break;
	}
	b->s->off = hdr + 4 + len;
	item_hdr_at(b, hdr, OW_ITEM_STR, end - start > ARGV_MAX || failed, len);
	return 0;
}

static __always_inline void put_argv(struct builder *b, struct task_struct *task)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);

	if (mm)
		ow_put_argv(BPF_CORE_READ(mm, arg_start), BPF_CORE_READ(mm, arg_end));
}

/* kernfs_node.parent became __parent in 6.15 */
struct kernfs_node___old {
	struct kernfs_node___old *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return (struct kernfs_node *)BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* The cgroup v2 path: a SEG of dev 0, then the names leaf first, below the root. */
static __always_inline void put_cgroup(struct builder *b, struct kernfs_node *kn)
{
	if (put_hdr(b, OW_ITEM_SEG, 4) == 0)
		put_u32(b, 0);
	for (int i = 0; i < CGROUP_DEPTH; i++) {
		struct kernfs_node *parent = kn_parent(kn);

		if (!parent)
			break;
		put_str(b, OW_ITEM_NAME, BPF_CORE_READ(kn, name), NAME_MAX_READ, OW_DATA_MAX,
			STR_KERNEL);
		kn = parent;
	}
}

/* The ancestors, nearest first, up to init: an OW_ITEM_PARENT (struct ow_parent) each. */
static __always_inline void put_parents(struct builder *b, struct task_struct *t)
{
	for (int i = 0; i < MAX_PARENTS; i++) {
		__u32 pid;

		t = BPF_CORE_READ(t, real_parent);
		if (!t)
			break;
		pid = BPF_CORE_READ(t, tgid);
		if (!pid || put_hdr(b, OW_ITEM_PARENT, sizeof(struct ow_parent)))
			break;
		put_u32(b, pid);
		bpf_probe_read_kernel(&b->s->data[b->s->off & DATA_MASK], OW_COMM_LEN, t->comm);
		b->s->off += OW_COMM_LEN;
		if (pid == 1)
			break;
	}
}

/* An IDGEN or IDREF item (bpf/ownwatch.h). */
static __always_inline void put_ident_item(struct builder *b, __u8 kind, struct ow_ident *id)
{
	if (put_hdr(b, kind, sizeof(*id)))
		return;
	for (int i = 0; i < sizeof(*id) / 4; i++)
		put_u32(b, ((__u32 *)id)[i]);
}

/* The exe, tty and cgroup of the writer: sent once per process, then referred to (IDGEN and
 * IDREF in bpf/ownwatch.h) while what they depend on is the same; the ancestors, command line
 * and audit ids are read anew for every record (a parent may die or exec, argv be rewritten in
 * place). The common case, a process that writes many times, then costs a few loads instead
 * of a walk of its exe's path and of its cgroup. */
static __always_inline void put_exe_tty_cgroup(struct builder *b, struct task_struct *task)
{
	struct ow_ident *v, cur = {};
	struct tty_struct *tty;
	struct kernfs_node *kn;
	struct mm_struct *mm;
	struct file *exe;
	__u32 trunc;

	mm = BPF_CORE_READ(task, mm);
	exe = mm ? BPF_CORE_READ(mm, exe_file) : 0;
	tty = BPF_CORE_READ(task, signal, tty);
	kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	cur.tgid = bpf_get_current_pid_tgid() >> 32;
	cur.start = BPF_CORE_READ(task, group_leader, start_time);
	cur.exec_id = BPF_CORE_READ(task, self_exec_id);
	cur.mm = (__u64)mm;
	cur.exe = (__u64)exe;
	cur.tty = (__u64)tty;
	cur.cgid = kn ? BPF_CORE_READ(kn, id) : 0;

	b->s->ident_new = 0;
	v = bpf_map_lookup_elem(&idents, &cur.tgid);
	if (v && v->start == cur.start && v->exec_id == cur.exec_id && v->mm == cur.mm &&
	    v->exe == cur.exe && v->tty == cur.tty && v->cgid == cur.cgid) {
		__u32 off = b->s->off;

		put_ident_item(b, OW_ITEM_IDREF, &cur);
		if (b->s->off != off)
			return;
	}

	trunc = b->s->trunc;
	put_ident_item(b, OW_ITEM_IDGEN, &cur);
	if (exe) {
		put_slot(b, OW_SLOT_EXE);
		b->s->limit = b->s->off + EXE_ROOM;
		put_file_walk(b, exe);
		b->s->limit = OW_DATA_MAX;
	}
	if (tty) {
		put_slot(b, OW_SLOT_TTY);
		put_str(b, OW_ITEM_STR, tty->name, sizeof(tty->name), OW_DATA_MAX, STR_UNCOUNTED);
	}
	if (kn) {
		put_slot(b, OW_SLOT_CGROUP);
		put_cgroup(b, kn);
	}
	/* remembered once the record is sent (submit), and only when nothing here was cut:
	 * a later record refers to exactly these items */
	if (b->s->trunc == trunc) {
		b->s->ident = cur;
		b->s->ident_new = 1;
	}
}

/* Who did it, as items after the op's own (see the top of this file). */
static __always_inline void put_identity(struct builder *b, struct task_struct *task)
{
	struct ow_event *ev = &b->s->ev;

	b->s->limit = OW_DATA_MAX;
	ev->loginuid = BPF_CORE_READ(task, loginuid.val);
	ev->sessionid = BPF_CORE_READ(task, sessionid);

	put_slot(b, OW_SLOT_ARGV);
	{
		/* a cut command line is argv_truncated, not a cut path (OW_F_TRUNCATED) */
		__u32 trunc = b->s->trunc;

		put_argv(b, task);
		b->s->trunc = trunc;
	}

	put_exe_tty_cgroup(b, task);

	put_slot(b, OW_SLOT_PARENTS);
	put_parents(b, task);
}

#endif
