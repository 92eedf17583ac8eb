/* SPDX-License-Identifier: GPL-2.0 */
/* lsm, fentry and kprobe backends: the op seen inside the VFS, and its outcome.
 * The same handlers behind three attach mechanisms. The hooks get dentries and mounts, so
 * tree and path are decided in the kernel for every route, io_uring included, as they are
 * before the op. The security hooks run before the op (and, for the path hooks, before its
 * permission checks), so the outcome comes from the function that does the op: fexit (lsm,
 * fentry) or kretprobe (kprobe) on vfs_mkdir, notify_change, ... sends an ow_outcome record
 * for the thread's pending event, matched on the dentry, and user space reports the event
 * only if the op succeeded. */
#ifndef OW_HOOKS_VFS_H
#define OW_HOOKS_VFS_H

/* A thread's wait for the outcome of its pending event. */
struct vfs_wait {
	__u64 key;        /* the dentry the completing function is called with */
	__u64 trunc_skip; /* a write open with O_TRUNC: its truncate is part of the open */
	__u32 armed;      /* kprobe: inside the completing function */
	__u32 depth;      /* kprobe: nested completing functions entered while armed */
	__u32 op;         /* the event's op (enum ow_op) */
	__u32 active;     /* (task storage) the thread waits */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct vfs_wait);
} vfs_wait SEC(".maps");

/* Where the kernel has task storage (lib/maps.h, task_storage): the wait in the thread's own
 * storage, no hash insert, lookup and delete (an LRU hash's, with its locks) per event. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vfs_wait);
} vfs_wait_task SEC(".maps");

/* At least the number of waits, entries in vfs_wait and active ones in vfs_wait_task (never
 * fewer: raised before an entry is added or made active, lowered after one is deleted or made
 * inactive; an entry the LRU evicts leaves it one too high, which only
 * costs a lookup). The programs on the functions that complete an op run for every writer on
 * the machine, allowed ones included: while no thread waits, this one load is all they do. A
 * wait exists only for an event sent, i.e. an offending write in a watched tree, and lives
 * until its op completes. */
__u64 ow_waits = 0;

/* The calling thread's wait, or NULL. */
static __always_inline struct vfs_wait *wait_of_current(void)
{
	__u32 tid;

	/* (before any helper call: the kretprobes run for every writer) */
	if (!ow_waits)
		return NULL;
	if (task_storage) {
		struct vfs_wait *w = bpf_task_storage_get(&vfs_wait_task,
							  bpf_get_current_task_btf(), 0, 0);

		if (w && w->active)
			return w;
		if (!task_storage_off)
			return 0; /* the hash holds nothing (lib/maps.h, task_storage_off) */
	}
	tid = current_tid();
	return bpf_map_lookup_elem(&vfs_wait, &tid);
}

/* A thread's new wait replaces its old one, which is then no longer counted twice. An old one
 * still waiting for an outcome (`key`) is an outcome that did not come: another LSM refused
 * the op between hook and function, or the kernel skipped the outcome program (it skips the
 * fexit programs of a call in flight when it replaces the function's trampoline,
 * bpf_tramp_image_put, counting no miss). Its event then goes without "ret", and user space,
 * which holds it, counts it in-band as it sends it (src/watch/processor.rs,
 * emit_without_outcome): every event without "ret" is counted there, whatever kept its
 * outcome away, so nothing is counted here. */
static __always_inline void set_wait(const struct vfs_wait *w)
{
	__u32 tid = current_tid();
	long err;

	if (task_storage && !task_storage_off) {
		struct vfs_wait *t = bpf_task_storage_get(&vfs_wait_task,
							  bpf_get_current_task_btf(), 0,
							  BPF_LOCAL_STORAGE_GET_F_CREATE);

		if (t) {
			/* counted before it is active, uncounted after it is not */
			if (!t->active)
				__sync_fetch_and_add(&ow_waits, 1);
			*t = *w;
			t->active = 1;
			return;
		}
		task_storage_off = 1;
	}
	if (task_storage) {
		/* the hash from now on: a stored wait must not pass for this one */
		struct vfs_wait *t = bpf_task_storage_get(&vfs_wait_task,
							  bpf_get_current_task_btf(), 0, 0);

		if (t && t->active) {
			t->active = 0;
			__sync_fetch_and_add(&ow_waits, -1);
		}
	}
	__sync_fetch_and_add(&ow_waits, 1);
	err = bpf_map_update_elem(&vfs_wait, &tid, w, BPF_NOEXIST);
	if (err == 0)
		return;
	if (err == -EEXIST)
		err = bpf_map_update_elem(&vfs_wait, &tid, w, BPF_EXIST);
	if (err)
		wait_refused(err);
	__sync_fetch_and_add(&ow_waits, -1);
}

static __always_inline void drop_wait(void)
{
	__u32 tid = current_tid();

	if (task_storage) {
		struct vfs_wait *w = bpf_task_storage_get(&vfs_wait_task,
							  bpf_get_current_task_btf(), 0, 0);

		if (w && w->active) {
			w->active = 0;
			__sync_fetch_and_add(&ow_waits, -1);
			return;
		}
		if (!task_storage_off)
			return;
	}
	if (bpf_map_delete_elem(&vfs_wait, &tid) == 0)
		__sync_fetch_and_add(&ow_waits, -1);
}

/* drop_wait() for the wait wait_of_current() gave, without looking it up again: an active one
 * is the thread's task storage (set_wait), the others the hash's. */
static __always_inline void drop_wait_of(struct vfs_wait *w)
{
	if (w->active) {
		w->active = 0;
		__sync_fetch_and_add(&ow_waits, -1);
		return;
	}
	drop_wait();
}

/* What a hook saw, for vfs_event(). Built by the on_*() helpers with designated initialisers;
 * .mode always given (0 is a mode: OW_UNSET when the op sets none). */
struct vfs_op {
	__u32 op;
	__u32 flags;
	__u32 mode;
	__u32 new_uid;    /* chown only: the other ops send OW_UNSET */
	__u32 new_gid;
	__u8 str_slot;    /* where kstr goes */
	const char *kstr; /* a string the kernel holds (symlink text, xattr name), or 0 */
	__u64 d, m;       /* the object (old name for rename and link): dentry, vfsmount */
	__u64 d2, m2;     /* rename, link: the new name; else 0 */
	__u64 done_key;   /* the dentry the completing function is called with; 0: no outcome */
};

/* Whether an op seen by an inode hook (no mount: the xattr and ACL hooks) runs inside another
 * op of this thread that waits for its outcome: a stacked filesystem doing its own op on the
 * layer below (overlayfs's copy-up for a chmod sets trusted.overlay.* on the upper layer's
 * inodes, inside notify_change). Its wait would replace the outer op's, and the outcome that
 * then came (the inner function's exit) was taken for the outer op's: a chmod said the mode of
 * the upper directory the xattr was set on. Told by the superblock: the layer below is another
 * one. (A wait left over from an op whose outcome never came, on another superblock, passes
 * for an outer op too: that event then goes without "ret", as it would have.) */
static __always_inline bool inside_waiting_op(const struct vfs_op *o)
{
	struct vfs_wait *w;

	if (o->m || !o->done_key)
		return false;
	w = wait_of_current();
	if (!w || !w->key || w->key == o->done_key)
		return false;
	return KREAD(struct dentry, (struct dentry *)w->key, d_sb) !=
	       KREAD(struct dentry, (struct dentry *)o->done_key, d_sb);
}

static __always_inline int vfs_event(const struct vfs_op *o)
{
	struct task_struct *task;
	struct builder b;
	struct ow_event *ev;
	__u32 tree, t2;
	bool nested;

	/* (the hooks tested actor_allowed() first) */
	if (op_unwanted(o->op))
		return 0;
	/* (its outcome unknown: no wait, the outer op's stays) */
	nested = inside_waiting_op(o);
	task = (struct task_struct *)bpf_get_current_task();
	/* one walk gets all the room; rename and link share it between two */
	ev = record_begin(&b, task, o->d2 ? WALK_ROOM / 2 : WALK_ROOM);
	if (!ev)
		return 0;
	ev->op = o->op;
	ev->flags = o->flags | (nested ? OW_F_NO_RET : o->done_key ? OW_F_PENDING : 0);
	/* (a waiting event's ret is its outcome's: until then it carries the wait's key, which
	 * user space matches the outcome on) */
	if (ev->flags & OW_F_PENDING)
		ev->ret = (__s32)o->done_key;
	ev->mode = o->mode;
	if (o->op == OW_OP_CHOWN) {
		ev->new_uid = o->new_uid;
		ev->new_gid = o->new_gid;
	}
	put_slot(&b, OW_SLOT_PATH);
	/* (rename and link: two walks, none kept) */
	tree = o->d2 ? ow_put_walk(o->d, o->m) : put_kept_walk(&b, o->d, o->m);
	if (o->d2) {
		b.s->limit = WALK_ROOM;
		put_slot(&b, OW_SLOT_NEW);
		t2 = ow_put_walk(o->d2, o->m2);
		if (t2 != OW_NO_TREE)
			tree = t2;
	}
	if (tree == OW_NO_TREE) {
		/* The xattr hooks get no mount (!o->m): their walk stays in the dentry's
		 * superblock, and a directory of it bind-mounted into a tree is in the tree all
		 * the same. Where some mount of it may be, user space places the walk (through
		 * the mount table, a tree's view first) and decides. */
		if (o->m || !sb_mounted_in_tree((struct dentry *)o->d))
			return 0;
	} else if (is_allowed_in(ev->fsuid, tree)) {
		return 0;
	}
	ev->tree = tree;
	if (o->kstr) {
		put_slot(&b, o->str_slot);
		put_str(&b, OW_ITEM_STR, o->kstr, PATH_MAX, OW_DATA_MAX, STR_UNCOUNTED);
	}
	ow_put_identity();
	if (submit(&b) == 0 && o->done_key && !nested) {
		struct vfs_wait w = { .key = o->done_key, .op = o->op };

		/* kprobe: the xattr hooks run inside vfs_setxattr/vfs_removexattr, after their
		 * entry probe: the wait is armed already. */
		if (backend_id == OW_BACKEND_KPROBE &&
		    (o->op == OW_OP_SETXATTR || o->op == OW_OP_REMOVEXATTR))
			w.armed = 1;
		/* kprobe, a write open seen by kp_open_session: its outcome is the hook's own
		 * verdict, at the hook's return (the thread is inside it) */
		if (o->op == OW_OP_WRITE)
			w.armed = 1;
		set_wait(&w);
	}
	return 0;
}

/* The op of the thread's pending event returned: send its outcome. */
/* The mode comes from the inode the op left: the path hooks see mkdir's and mknod's mode
 * before the umask where the filesystem has POSIX ACLs (it applies the umask, or the parent's
 * default ACL, itself). */
static __always_inline void vfs_outcome(struct vfs_wait *w, long ret)
{
	__u32 tid = current_tid();
	/* (a plain variable: BPF_CORE_READ would relocate w->key, our own struct, too) */
	struct dentry *d = (struct dentry *)w->key;
	struct ow_outcome o = {
		.tid = tid,
		.ret = (__s32)ret,
		.key = w->key,
		.mode = ret ? 0 : KREAD(struct inode, KREAD(struct dentry, d, d_inode), i_mode),
	};

	drop_wait_of(w);
	/* (a full ring: the event goes without "ret", counted by user space) */
	bpf_ringbuf_output(&events, &o, sizeof(o), wake_flags(sizeof(o)));
}

/* Argument i of a tracing program (fentry, fexit, lsm) or a kprobe. i comes from fn_args,
 * which the verifier knows (read-only data): it follows the one case that applies. Each case
 * is its own constant offset: the verifier refuses a ctx load through a pointer moved by a
 * variable, which is what the compiler makes of ctx[i]. A tracing program's arguments are
 * copied, not loaded: a loaded one is typed by BTF (a returned dentry is a pointer the
 * verifier will not let us store as an int); copied, each is a plain number, as
 * bpf_get_func_arg gave them (5.17+, which 5.10 lacks). */
static __always_inline __u64 ctx_copy(void *ctx, __u32 off)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (char *)ctx + off);
	return v;
}

static __always_inline __u64 tracing_arg(void *ctx, __u32 i)
{
	switch (i) {
	case 0: return ctx_copy(ctx, 0);
	case 1: return ctx_copy(ctx, 8);
	case 2: return ctx_copy(ctx, 16);
	case 3: return ctx_copy(ctx, 24);
	case 4: return ctx_copy(ctx, 32);
	case 5: return ctx_copy(ctx, 40);
	case 6: return ctx_copy(ctx, 48);
	}
	return 0;
}

#define OW_LOAD_AT(ctx, off)                                                               \
	({                                                                                 \
		__u64 __v;                                                                 \
		asm volatile("%0 = *(u64 *)(%1 + %2)" : "=r"(__v) : "r"(ctx), "i"(off));     \
		__v;                                                                       \
	})

#define OW_PT_AT(ctx, reg) OW_LOAD_AT(ctx, __builtin_offsetof(struct pt_regs, reg))

static __always_inline __u64 kprobe_arg(void *ctx, __u32 i)
{
	switch (i) {
	case 0: return OW_PT_AT(ctx, __PT_PARM1_REG);
	case 1: return OW_PT_AT(ctx, __PT_PARM2_REG);
	case 2: return OW_PT_AT(ctx, __PT_PARM3_REG);
	case 3: return OW_PT_AT(ctx, __PT_PARM4_REG);
	case 4: return OW_PT_AT(ctx, __PT_PARM5_REG);
	}
	return 0;
}

/* A completing function's return value as an error number: 0 or -errno. vfs_mkdir returns
 * a dentry or an ERR_PTR since 6.15. */
static __always_inline long done_ret(__u32 fn, __u64 raw)
{
	if (fn_args.done_ret_ptr[fn])
		return raw >= (__u64)-4095 ? (long)(int)raw : 0;
	return (long)(int)raw;
}

/* fexit: the function's key argument and its return value at once. */
static __always_inline int vfs_done(void *ctx, __u32 fn, __u64 key)
{
	struct vfs_wait *w = wait_of_current();

	if (!w || !w->key || w->key != key)
		return 0;
	vfs_outcome(w, done_ret(fn, tracing_arg(ctx, fn_args.done_nargs[fn])));
	return 0;
}

/* kprobe: entering the completing function arms the thread's wait; other completing
 * functions called inside it (overlayfs calls vfs_* of the layer below) only nest. */
static __always_inline int vfs_arm(__u64 key)
{
	struct vfs_wait *w = wait_of_current();

	if (!w || !w->key)
		return 0;
	if (w->armed)
		w->depth++;
	else if (w->key == key)
		w->armed = 1;
	return 0;
}

static __always_inline int vfs_ret(__u32 fn, __u64 raw)
{
	struct vfs_wait *w = wait_of_current();

	if (!w || !w->armed)
		return 0;
	if (w->depth) {
		w->depth--;
		return 0;
	}
	vfs_outcome(w, done_ret(fn, raw));
	return 0;
}

/* A thread that ends while it waits for an outcome that never came (another LSM refused its op
 * after our hook, the kernel skipped the outcome program): its wait goes with it, uncounted.
 * Else ow_waits stayed above 0 for good, and every program on the functions that complete an
 * op, which run for every writer on the machine, looked its thread's wait up instead of
 * leaving at one load. (A classic tracepoint: it runs wherever kprobes do; a thread's end
 * costs it far more than this program's run.) Its name is a contract (lib/prog_names.h). */
SEC("?tracepoint/sched/sched_process_exit")
int vfs_wait_exit(void *ctx)
{
	if (ow_waits)
		drop_wait();
	return 0;
}

/* The key of a completing function's wait: the dentry argument the hook saw, or for
 * vfs_rename(struct renamedata *) its old dentry. */
static __always_inline __u64 dentry_key(__u64 arg)
{
	return arg;
}

static __always_inline __u64 rename_key(__u64 arg)
{
	return (__u64)BPF_CORE_READ((struct renamedata *)arg, old_dentry);
}

/* The functions that do the ops; fn_args says where their key argument is (enum ow_done).
 * Program names fx_done_<fn>, kp_arm_<fn>, kr_done_<fn>: a contract with user space
 * (lib/prog_names.h). */
#define FX_DONE_KEYED(fn, which, key)                                                      \
	SEC("?fexit/" #fn)                                                                 \
	int OW_CAT(PROG_FEXIT_DONE, fn)(void *ctx)                                         \
	{                                                                                  \
		__u64 a;                                                                   \
                                                                                           \
		if (!ow_waits)                                                             \
			return 0;                                                          \
		a = tracing_arg(ctx, fn_args.done_key[which]);                             \
		return PINNED(vfs_done(ctx, which, key(a)));                               \
	}                                                                                  \
	SEC("?kprobe/" #fn)                                                                \
	int OW_CAT(PROG_KPROBE_ARM, fn)(struct pt_regs *ctx)                               \
	{                                                                                  \
		if (!ow_waits)                                                             \
			return 0;                                                          \
		return vfs_arm(key(kprobe_arg(ctx, fn_args.done_key[which])));             \
	}                                                                                  \
	SEC("?kretprobe/" #fn)                                                             \
	int OW_CAT(PROG_KRETPROBE_DONE, fn)(struct pt_regs *ctx)                           \
	{                                                                                  \
		return vfs_ret(which, PT_REGS_RC(ctx));                                    \
	}
#define FX_DONE(fn, which) FX_DONE_KEYED(fn, which, dentry_key)

FX_DONE(vfs_mkdir, OW_DONE_VFS_MKDIR)
FX_DONE(vfs_mknod, OW_DONE_VFS_MKNOD)
FX_DONE(vfs_create, OW_DONE_VFS_CREATE)
FX_DONE(vfs_symlink, OW_DONE_VFS_SYMLINK)
FX_DONE(vfs_link, OW_DONE_VFS_LINK)
FX_DONE(vfs_unlink, OW_DONE_VFS_UNLINK)
FX_DONE(vfs_rmdir, OW_DONE_VFS_RMDIR)
FX_DONE(notify_change, OW_DONE_NOTIFY_CHANGE)
FX_DONE(vfs_setxattr, OW_DONE_VFS_SETXATTR)
FX_DONE(vfs_removexattr, OW_DONE_VFS_REMOVEXATTR)
FX_DONE(vfs_set_acl, OW_DONE_VFS_SET_ACL)
FX_DONE(vfs_remove_acl, OW_DONE_VFS_REMOVE_ACL)
FX_DONE_KEYED(vfs_rename, OW_DONE_VFS_RENAME, rename_key)

/* kprobe, 6.10+: one kprobe.session program, kp_done, attached to the completing functions
 * whose wait the hook sets before they are entered (not the xattr and ACL ones: their hooks
 * run inside them, and they keep kp_arm_ + kr_done_), the function told by the attachment's
 * cookie (enum ow_done). Its entry runs on every call and asks for the return (returns 0)
 * only for the call that completes the thread's wait; every other call, all of an allowed
 * writer's, returns 1 and no return is armed: one probe per call where the kprobe and the
 * kretprobe were two, and no return-probe instance held (6.10-6.13 keep a pool of them per
 * attachment) but by a call that ends a wait. Nested completing functions (overlayfs's on
 * its upper layer) find the wait armed and ask for nothing. Where it cannot be attached (no
 * CONFIG_FPROBE: Debian's arm64 6.12), user space attaches the pairs instead (kernel/load.rs).
 * bpf_session_is_return takes no argument in 6.12 and the context in 7.3 (a "flavor" of the
 * name: libbpf resolves the one this kernel has, the other is 0 and its branch dead). */
extern bool bpf_session_is_return(void) __ksym __weak;
extern bool bpf_session_is_return___ctx(void *ctx) __ksym __weak;

static __always_inline bool session_is_return(void *ctx)
{
	if (bpf_ksym_exists(bpf_session_is_return___ctx))
		return bpf_session_is_return___ctx(ctx);
	return bpf_session_is_return();
}

SEC("?kprobe.session")
int kp_done(struct pt_regs *ctx)
{
	struct vfs_wait *w;
	__u32 fn;
	__u64 key;

	/* (before any helper call: the entry runs for every writer; a return runs only
	 * while the wait it was asked for exists) */
	if (!ow_waits)
		return 1;
	w = wait_of_current();
	if (session_is_return(ctx)) {
		if (w && w->armed) {
			fn = bpf_get_attach_cookie(ctx);
			if (fn < OW_DONE_COUNT)
				vfs_outcome(w, done_ret(fn, PT_REGS_RC(ctx)));
		}
		return 0;
	}
	if (!w || !w->key || w->armed)
		return 1;
	fn = bpf_get_attach_cookie(ctx);
	if (fn >= OW_DONE_COUNT)
		return 1;
	key = kprobe_arg(ctx, fn_args.done_key[fn]);
	if (fn == OW_DONE_VFS_RENAME)
		key = rename_key(key);
	if (key != w->key)
		return 1;
	w->armed = 1;
	return 0;
}

/* rmdir's outcome from do_rmdir, the one caller of the rmdir hook (5.10's compiler inlined
 * vfs_rmdir there, so its exit never runs for a syscall): where the kernel has
 * do_rmdir(int dfd, struct filename *name), which user space checks, the vfs_rmdir programs
 * stay off (kernel/load.rs, rmdir_done_on) and this one reports; else those do. Completing
 * functions called inside it (overlayfs's on its upper layer) have other keys: no outcome,
 * and under kprobe no arming, comes from them. */
static __always_inline int rmdir_done(void *ctx)
{
	struct vfs_wait *w = wait_of_current();

	if (w && w->key && w->op == OW_OP_RMDIR)
		vfs_outcome(w, (long)(int)tracing_arg(ctx, 2));
	return 0;
}

SEC("?fexit/do_rmdir")
int OW_CAT(PROG_FEXIT_DONE, do_rmdir)(void *ctx)
{
	if (!ow_waits)
		return 0;
	return PINNED(rmdir_done(ctx));
}

SEC("?kretprobe/do_rmdir")
int OW_CAT(PROG_KRETPROBE_DONE, do_rmdir)(struct pt_regs *ctx)
{
	struct vfs_wait *w = wait_of_current();

	if (w && w->key && w->op == OW_OP_RMDIR && !w->armed)
		vfs_outcome(w, (long)(int)PT_REGS_RC(ctx));
	return 0;
}

/* The hooks' handlers (on_*) below run for actors not allowed everywhere: the programs
 * (ACTOR_PINNED_PROG, ACTOR_KPROBE in lib/pin.h) tested that first, before anything of the op
 * is read. */
static __always_inline __u64 path_mnt(const struct path *p)
{
	return (__u64)BPF_CORE_READ(p, mnt);
}

/* The dentry of an op on a path or a file (&f->f_path): its walk's start and its wait's key,
 * which the hook's verdict program reads again. */
static __always_inline __u64 path_dentry(const struct path *p)
{
	return (__u64)BPF_CORE_READ(p, dentry);
}

/* An op on a name in a directory (mkdir, mknod, symlink, unlink, rmdir): the walk starts at
 * the name's dentry, which is also what the function that does the op is matched on. */
static __always_inline int on_entry(struct vfs_op o, const struct path *dir, struct dentry *d)
{
	o.d = num(d);
	o.m = path_mnt(dir);
	o.done_key = o.d;
	return vfs_event(&o);
}

static __always_inline int on_mkdir(const struct path *dir, struct dentry *d, __u32 mode)
{
	struct vfs_op o = { .op = OW_OP_MKDIR, .flags = OW_F_NOFOLLOW, .mode = mode & 07777 };

	return on_entry(o, dir, d);
}

static __always_inline int on_mknod(const struct path *dir, struct dentry *d, __u32 mode)
{
	struct vfs_op o = { .op = mknod_op(mode), .flags = OW_F_NOFOLLOW, .mode = mode & 07777 };

	/* open(O_CREAT) passes here too (may_o_create): file_open reports that create, with
	 * the file's real mode. A regular file from mknod(2) is reported here. open's lookup
	 * runs with the thread's nameidata set; mknod (and a unix socket's bind) call this
	 * hook after their lookup has restored it to none. */
	if (o.op == OW_OP_CREATE) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		if (KREAD(struct task_struct, task, nameidata))
			return 0;
	}
	return on_entry(o, dir, d);
}

static __always_inline int on_symlink(const struct path *dir, struct dentry *d, const char *old)
{
	struct vfs_op o = { .op = OW_OP_SYMLINK, .flags = OW_F_NOFOLLOW, .mode = OW_UNSET,
			    .kstr = old, .str_slot = OW_SLOT_TARGET };

	return on_entry(o, dir, d);
}

static __always_inline int on_remove(__u32 op, const struct path *dir, struct dentry *d)
{
	struct vfs_op o = { .op = op, .flags = OW_F_NOFOLLOW, .mode = OW_UNSET };

	return on_entry(o, dir, d);
}

static __always_inline int on_link(struct dentry *old, const struct path *new_dir,
				   struct dentry *new)
{
	__u64 m, ov, nv;
	struct vfs_op o = { .op = OW_OP_LINK, .flags = OW_F_NOFOLLOW, .mode = OW_UNSET };

	ov = num(old);
	nv = num(new);
	o.d = ov;
	o.d2 = nv;
	o.done_key = ov;
	m = path_mnt(new_dir);
	o.m = m;
	o.m2 = m;

	/* Naming an O_TMPFILE file is how it gets created: the new name is the object. */
	if (KREAD(struct inode, KREAD(struct dentry, old, d_inode), i_nlink) == 0) {
		o.op = OW_OP_CREATE;
		o.flags |= OW_F_TMPFILE;
		o.mode = KREAD(struct inode, KREAD(struct dentry, old, d_inode), i_mode) & 07777;
		o.d = nv;
		o.d2 = 0;
		o.m2 = 0;
	}
	return vfs_event(&o);
}

static __always_inline int on_rename(const struct path *old_dir, struct dentry *old,
				     const struct path *new_dir, struct dentry *new, __u32 flags)
{
	__u64 ov;

	ov = num(old);
	return vfs_event(&(struct vfs_op){
		.op = OW_OP_RENAME,
		.flags = OW_F_NOFOLLOW | ((flags & RENAME_EXCHANGE) ? OW_F_EXCHANGE : 0),
		.mode = OW_UNSET,
		.d = ov, .m = path_mnt(old_dir),
		.d2 = num(new), .m2 = path_mnt(new_dir),
		.done_key = ov,
	});
}

static __always_inline int on_attr(__u32 op, const struct path *p, __u32 mode, __u32 uid,
				   __u32 gid)
{
	__u64 dv;

	dv = path_dentry(p);
	if (op == OW_OP_TRUNCATE) {
		struct vfs_wait *w = wait_of_current();

		if (w && w->trunc_skip == dv) {
			w->trunc_skip = 0;
			if (!w->key)
				drop_wait_of(w);
			return 0; /* open(O_TRUNC): reported as the write open */
		}
	}
	return vfs_event(&(struct vfs_op){ .op = op, .mode = mode, .new_uid = uid, .new_gid = gid,
					   .d = dv, .m = path_mnt(p), .done_key = dv });
}

/* verdict_later: the hook's verdict comes at its return (fentry's fentry_v_open, kprobe's
 * kp_open_session): an open for writing is an event that waits for it, as the other ops wait
 * for the function that completes them, and one the verdict refuses is no event. A create is
 * final here: the file exists whatever the verdict. */
static __always_inline int on_open(struct file *f, bool verdict_later)
{
	__u32 fmode;
	struct inode *inode;
	__u64 dv;
	struct vfs_op o = { .mode = OW_UNSET };

	/* (direct loads where core_cast, but the dentry and mount go on as numbers: a global
	 * function takes them) */
	fmode = KREAD(struct file, f, f_mode);
	if (!(fmode & (FMODE_WRITE | FMODE_CREATED)))
		return 0;
	inode = KREAD(struct file, f, f_inode);
	dv = path_dentry(&f->f_path);
	/* overlayfs before 6.6 opens its upper file under the overlay's path
	 * (open_with_fake_path): that is not a second open of the caller's */
	if (KREAD(struct dentry, (struct dentry *)dv, d_inode) != inode)
		return 0;
	o.d = dv;
	if (KREAD(struct inode, inode, i_nlink) == 0)
		return 0; /* O_TMPFILE: reported when linked */
	o.op = (fmode & FMODE_CREATED) ? OW_OP_CREATE : OW_OP_WRITE;
	if (o.op == OW_OP_CREATE)
		o.mode = KREAD(struct inode, inode, i_mode) & 07777;
	/* The create or the opening for write is done when the file is opened: no done_key,
	 * but for the verdict of a hook seen at its entry. */
	o.m = path_mnt(&f->f_path);
	if (verdict_later && o.op == OW_OP_WRITE)
		o.done_key = dv;
	/* A mount of the kernel's own, attached nowhere: acct(2) on 7.x opens its file again
	 * through a clone of the caller's mount (mnt_clone_internal) after the caller's open,
	 * which was the write */
	if (KREAD(struct vfsmount, o.m, mnt_flags) & MNT_INTERNAL)
		return 0;
	vfs_event(&o);
	if (o.op == OW_OP_WRITE && (KREAD(struct file, f, f_flags) & O_TRUNC) &&
	    (KREAD(struct inode, inode, i_mode) & S_IFMT) == S_IFREG) {
		/* The truncate that follows is part of this open (the syscall route sees one
		 * open); a regular file's only: O_TRUNC truncates nothing else, and a wait
		 * nothing consumes would stay. An open waiting for its verdict keeps it in its
		 * wait till then (open_verdict). */
		struct vfs_wait *cur = verdict_later ? wait_of_current() : 0;
		struct vfs_wait w = { .trunc_skip = dv, .op = OW_OP_WRITE };

		if (cur && cur->key == dv)
			cur->trunc_skip = dv;
		else
			set_wait(&w);
	}
	return 0;
}

/* The xattr hooks get no mount: the walk stays in the dentry's superblock. */
static __always_inline int on_xattr(__u32 op, struct dentry *d, const char *name)
{
	__u64 dv = num(d);

	return vfs_event(&(struct vfs_op){ .op = op, .mode = OW_UNSET, .d = dv, .done_key = dv,
					   .kstr = name, .str_slot = OW_SLOT_XATTR });
}

/* The xattr hooks and (6.2+) the POSIX ACL ones: the dentry and the name, where fn_args says
 * (enum ow_xhook). ARG: tracing_arg or kprobe_arg. */
#define XATTR_HOOK(KIND, PFX, FN, ARG, hook, name, op, which)                              \
	SEC("?" KIND "/" PFX #hook)                                                        \
	int OW_CAT(FN, name)(void *ctx)                                                    \
	{                                                                                  \
		if (actor_allowed())                                                       \
			return 0;                                                          \
		on_xattr(op, (struct dentry *)ARG(ctx, fn_args.xattr_dentry[which]),       \
			 (const char *)ARG(ctx, fn_args.xattr_name[which]));               \
		return 0;                                                                  \
	}

/* The other LSMs' verdict. AppArmor, landlock and TOMOYO (and SELinux for file_open) decide
 * inside the path and file_open hooks: the BPF LSM runs after them and is not called for an
 * op one of them refused; the fentry backend's hooks run at the hook's entry, before them,
 * and the kprobe backend's too. The hook's return is the verdict: for the fentry backend (and
 * lsm's hooks at security_path_rename and chown_common on old kernels) a second program at
 * the hook's exit, which for a refused op whose event waits sends the refusal as its outcome:
 * user space drops the event, as the BPF LSM would not have seen it (src/watch/pending.rs).
 * The hooks are not taken at their exit: the kernel skips the fexit programs of a call in
 * flight when it replaces the function's trampoline (bpf_tramp_image_put: any program
 * attached to or detached from it, another ownwatch's start or end among them), and an event
 * built there would then be lost unseen; a verdict skipped that way leaves its event to go
 * without "ret", counted in-band (src/watch/processor.rs, emit_without_outcome). The hook's
 * return is the slot after its arguments, an int; a program that is given them by name
 * (BPF_PROG) reads it from ctx. While no thread on the machine waits, which is every allowed
 * writer's case, or when the hook allowed the op, the program leaves at its first test. */
#define HOOK_RET(args...) ((int)ctx[___bpf_narg(args)])
#define VERDICT_PROG(name, args...)                                                        \
	OW_PINNED_PROG_IF(!HOOK_RET(args) || !ow_waits, name, ##args)

/* A path hook refused the op: the wait its entry set, keyed on the op's dentry, has its
 * outcome. Any other wait is another op's (one whose event this op did not make). */
static __always_inline int hook_verdict(__u64 key, long ret)
{
	struct vfs_wait *w = wait_of_current();

	if (w && w->key && w->key == key)
		vfs_outcome(w, ret);
	return 0;
}

/* file_open returned: a write open whose event waits for the verdict (on_open, verdict_later)
 * gets it as its outcome, refused or not; its O_TRUNC, the truncate that follows, is then
 * waited for as part of it. key: the file's dentry, or 0 where the caller knows the wait is
 * this open's (a kprobe session's return, asked for by that open alone, which cannot read the
 * hook's arguments any more). */
static __always_inline void open_verdict(__u64 key, long ret)
{
	struct vfs_wait *w = wait_of_current();
	__u64 trunc;

	if (!(w && w->armed && w->key && w->op == OW_OP_WRITE && (!key || w->key == key)))
		return;
	trunc = w->trunc_skip;
	vfs_outcome(w, ret);
	if (!ret && trunc) {
		struct vfs_wait t = { .trunc_skip = trunc, .op = OW_OP_WRITE };

		set_wait(&t);
	}
}

#define OPEN_VERDICT_PROG(name, args...) OW_PINNED_PROG_IF(!ow_waits, name, ##args)

/* One program per hook and backend, named FN<op>: lsm_mkdir, fentry_mkdir, kp_mkdir, ... (a
 * contract with user space, lib/prog_names.h). kuid_t and kgid_t are one-field structs passed
 * by value, in a register each: taken as integers here. OPEN_LATER: the file_open hook's
 * verdict comes later (a program at its exit). */
#define VFS_HOOKS(KIND, PFX, FN, DEF, ARG, OPEN_LATER)                                     \
	SEC("?" KIND "/" PFX "path_mkdir")                                                 \
	int OW_PROG(DEF, OW_CAT(FN, mkdir), const struct path *dir, struct dentry *d,      \
		    umode_t mode)                                                          \
	{ on_mkdir(dir, d, mode); return 0; }                                              \
	SEC("?" KIND "/" PFX "path_mknod")                                                 \
	int OW_PROG(DEF, OW_CAT(FN, mknod), const struct path *dir, struct dentry *d,      \
		    umode_t mode, unsigned int dev)                                        \
	{ on_mknod(dir, d, mode); return 0; }                                              \
	SEC("?" KIND "/" PFX "path_symlink")                                               \
	int OW_PROG(DEF, OW_CAT(FN, symlink), const struct path *dir, struct dentry *d,    \
		    const char *old)                                                       \
	{ on_symlink(dir, d, old); return 0; }                                             \
	SEC("?" KIND "/" PFX "path_link")                                                  \
	int OW_PROG(DEF, OW_CAT(FN, link), struct dentry *old, const struct path *dir,     \
		    struct dentry *new)                                                    \
	{ on_link(old, dir, new); return 0; }                                              \
	SEC("?" KIND "/" PFX "path_rename")                                                \
	int OW_PROG(DEF, OW_CAT(FN, rename), const struct path *od, struct dentry *o,      \
		    const struct path *nd, struct dentry *n, unsigned int flags)           \
	{ on_rename(od, o, nd, n, flags); return 0; }                                      \
	SEC("?" KIND "/" PFX "path_unlink")                                                \
	int OW_PROG(DEF, OW_CAT(FN, unlink), const struct path *dir, struct dentry *d)     \
	{ on_remove(OW_OP_UNLINK, dir, d); return 0; }                                     \
	SEC("?" KIND "/" PFX "path_rmdir")                                                 \
	int OW_PROG(DEF, OW_CAT(FN, rmdir), const struct path *dir, struct dentry *d)      \
	{ on_remove(OW_OP_RMDIR, dir, d); return 0; }                                      \
	SEC("?" KIND "/" PFX "path_truncate")                                              \
	int OW_PROG(DEF, OW_CAT(FN, truncate), const struct path *p)                       \
	{ on_attr(OW_OP_TRUNCATE, p, OW_UNSET, OW_UNSET, OW_UNSET); return 0; }            \
	SEC("?" KIND "/" PFX "file_truncate")                                              \
	int OW_PROG(DEF, OW_CAT(FN, ftruncate), struct file *f)                            \
	{ on_attr(OW_OP_TRUNCATE, &f->f_path, OW_UNSET, OW_UNSET, OW_UNSET); return 0; }   \
	SEC("?" KIND "/" PFX "path_chmod")                                                 \
	int OW_PROG(DEF, OW_CAT(FN, chmod), const struct path *p, umode_t mode)            \
	{ on_attr(OW_OP_CHMOD, p, mode & 07777, OW_UNSET, OW_UNSET); return 0; }           \
	SEC("?" KIND "/" PFX "path_chown")                                                 \
	int OW_PROG(DEF, OW_CAT(FN, chown), const struct path *p, __u64 uid, __u64 gid)    \
	{ on_attr(OW_OP_CHOWN, p, OW_UNSET, (__u32)uid, (__u32)gid); return 0; }           \
	SEC("?" KIND "/" PFX "file_open")                                                  \
	int OW_PROG(DEF, OW_CAT(FN, open), struct file *f)                                 \
	{ on_open(f, OPEN_LATER); return 0; }                                              \
	XATTR_HOOK(KIND, PFX, FN, ARG, inode_setxattr, setxattr, OW_OP_SETXATTR,           \
		   OW_XHOOK_SETXATTR)                                                      \
	XATTR_HOOK(KIND, PFX, FN, ARG, inode_removexattr, removexattr, OW_OP_REMOVEXATTR,  \
		   OW_XHOOK_REMOVEXATTR)                                                   \
	/* 6.2+: POSIX ACLs (system.posix_acl_*) no longer pass the xattr hooks */         \
	XATTR_HOOK(KIND, PFX, FN, ARG, inode_set_acl, setacl, OW_OP_SETXATTR,              \
		   OW_XHOOK_SET_ACL)                                                       \
	XATTR_HOOK(KIND, PFX, FN, ARG, inode_remove_acl, removeacl, OW_OP_REMOVEXATTR,     \
		   OW_XHOOK_REMOVE_ACL)

/* The fentry backend's verdicts, fexit on the path and file_open hooks, named FN v_<op>
 * (fentry_v_mkdir, ...: the hook's program's name with v_, which user space switches on with
 * it). The xattr and ACL hooks have none: they run inside the functions whose outcome is
 * followed, which return their refusal. */
#define VFS_VERDICTS(FN)                                                                   \
	SEC("?fexit/security_path_mkdir")                                                  \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_mkdir), const struct path *dir,             \
		    struct dentry *d, umode_t mode)                                        \
	{ return hook_verdict(num(d), HOOK_RET(dir, d, mode)); }                           \
	SEC("?fexit/security_path_mknod")                                                  \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_mknod), const struct path *dir,             \
		    struct dentry *d, umode_t mode, unsigned int dev)                      \
	{ return hook_verdict(num(d), HOOK_RET(dir, d, mode, dev)); }                      \
	SEC("?fexit/security_path_symlink")                                                \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_symlink), const struct path *dir,           \
		    struct dentry *d, const char *old)                                     \
	{ return hook_verdict(num(d), HOOK_RET(dir, d, old)); }                            \
	SEC("?fexit/security_path_link")                                                   \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_link), struct dentry *old,                  \
		    const struct path *dir, struct dentry *new)                            \
	{ return hook_verdict(num(old), HOOK_RET(old, dir, new)); }                        \
	SEC("?fexit/security_path_rename")                                                 \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_rename), const struct path *od,             \
		    struct dentry *o, const struct path *nd, struct dentry *n,             \
		    unsigned int flags)                                                    \
	{ return hook_verdict(num(o), HOOK_RET(od, o, nd, n, flags)); }                    \
	SEC("?fexit/security_path_unlink")                                                 \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_unlink), const struct path *dir,            \
		    struct dentry *d)                                                      \
	{ return hook_verdict(num(d), HOOK_RET(dir, d)); }                                 \
	SEC("?fexit/security_path_rmdir")                                                  \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_rmdir), const struct path *dir,             \
		    struct dentry *d)                                                      \
	{ return hook_verdict(num(d), HOOK_RET(dir, d)); }                                 \
	SEC("?fexit/security_path_truncate")                                               \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_truncate), const struct path *p)            \
	{ return hook_verdict(path_dentry(p), HOOK_RET(p)); }                              \
	SEC("?fexit/security_file_truncate")                                               \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_ftruncate), struct file *f)                 \
	{ return hook_verdict(path_dentry(&f->f_path), HOOK_RET(f)); }                     \
	SEC("?fexit/security_path_chmod")                                                  \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_chmod), const struct path *p, umode_t mode) \
	{ return hook_verdict(path_dentry(p), HOOK_RET(p, mode)); }                        \
	SEC("?fexit/security_path_chown")                                                  \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_chown), const struct path *p, __u64 uid,    \
		    __u64 gid)                                                             \
	{ return hook_verdict(path_dentry(p), HOOK_RET(p, uid, gid)); }                    \
	/* (every open: a write open's verdict is its outcome, whatever it is) */          \
	SEC("?fexit/security_file_open")                                                   \
	int OW_PROG(OPEN_VERDICT_PROG, OW_CAT(FN, v_open), struct file *f)                 \
	{ open_verdict(path_dentry(&f->f_path), HOOK_RET(f)); return 0; }

/* Before 6.1 trampolines take no structs by value, such as path_chown's kuid_t and kgid_t:
 * lsm and fentry see chown at chown_common, the hook's one caller, where the ids are numbers as the
 * caller gave them (-1: unchanged, as OW_UNSET), in the caller's user namespace (ow_kid maps
 * them down to the kernel's, as the hook's are). Its return is the hook's verdict where the
 * hook refused (notify_change, which sends the outcome of a chown that was let through, is
 * not called then). */
#define CHOWN_COMMON(FN)                                                                   \
	SEC("?fentry/chown_common")                                                        \
	int OW_PROG(ACTOR_PINNED_PROG, OW_CAT(FN, chown_common), const struct path *p,     \
		    __u32 uid, __u32 gid)                                                  \
	{ on_attr(OW_OP_CHOWN, p, OW_UNSET, ow_kid(0, uid), ow_kid(1, gid)); return 0; }   \
	SEC("?fexit/chown_common")                                                         \
	int OW_PROG(VERDICT_PROG, OW_CAT(FN, v_chown_common), const struct path *p,        \
		    __u32 uid, __u32 gid)                                                  \
	{ return hook_verdict(path_dentry(p), HOOK_RET(p, uid, gid)); }

/* Before 5.19 the rename LSM hook has no flags (an exchange calls it twice, swapped): the lsm
 * backend sees rename at security_path_rename, which has them, and its verdict as the fentry
 * backend does. */
SEC("?fentry/security_path_rename")
int ACTOR_PINNED_PROG(lsm_rename_noflags, const struct path *od, struct dentry *o,
		      const struct path *nd, struct dentry *n, unsigned int flags)
{
	on_rename(od, o, nd, n, flags);
	return 0;
}

SEC("?fexit/security_path_rename")
int VERDICT_PROG(lsm_v_rename_noflags, const struct path *od, struct dentry *o,
		 const struct path *nd, struct dentry *n, unsigned int flags)
{
	return hook_verdict(num(o), HOOK_RET(od, o, nd, n, flags));
}

/* Mount calls (lib/maps.h, mounts_gen): at their security hook, before the mount is made. */
#define MOUNT_HOOKS(KIND, PFX, FN)                                                         \
	SEC("?" KIND "/" PFX "sb_mount")                                                   \
	int OW_CAT(FN, mnt_sb_mount)(void *ctx) { return mount_call(); }                   \
	SEC("?" KIND "/" PFX "move_mount")                                                 \
	int OW_CAT(FN, mnt_move_mount)(void *ctx) { return mount_call(); }                 \
	SEC("?" KIND "/" PFX "sb_pivotroot")                                               \
	int OW_CAT(FN, mnt_sb_pivotroot)(void *ctx) { return mount_call(); }

static __always_inline int mount_call(void)
{
	__sync_fetch_and_add(&mounts_gen, 1);
	return 0;
}

MOUNT_HOOKS("lsm", "", PROG_LSM)
MOUNT_HOOKS("fentry", "security_", PROG_FENTRY)
MOUNT_HOOKS("kprobe", "security_", PROG_KPROBE)
CHOWN_COMMON(PROG_LSM)
CHOWN_COMMON(PROG_FENTRY)
VFS_HOOKS("lsm", "", PROG_LSM, ACTOR_PINNED_PROG, tracing_arg, false)
VFS_HOOKS("fentry", "security_", PROG_FENTRY, ACTOR_PINNED_PROG, tracing_arg, true)
VFS_VERDICTS(PROG_FENTRY)
VFS_HOOKS("kprobe", "security_", PROG_KPROBE, ACTOR_KPROBE, kprobe_arg, false)

/* kprobe, 6.10+: security_file_open as a kprobe session, in place of kp_open where user space
 * attaches sessions (kernel/load.rs): its entry sees the open (verdict_later: a write open's
 * event waits, armed, the thread being inside the function that decides) and its return is
 * the verdict (open_verdict): a refused open is no event. The return runs only for such an
 * open. Its name is a contract (lib/prog_names.h). */
SEC("?kprobe.session/security_file_open")
int kp_open_session(struct pt_regs *ctx)
{
	struct vfs_wait *w;
	struct file *f;

	if (session_is_return(ctx)) {
		open_verdict(0, (int)PT_REGS_RC(ctx));
		return 0;
	}
	if (actor_allowed())
		return 1;
	f = (struct file *)kprobe_arg(ctx, 0);
	on_open(f, true);
	/* the return only for the open whose event waits (not for every read of root's) */
	w = wait_of_current();
	return !(w && w->armed && w->op == OW_OP_WRITE &&
		 w->key == path_dentry(&f->f_path));
}

#endif
