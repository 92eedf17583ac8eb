/* SPDX-License-Identifier: GPL-2.0 */
/* Every map and the per-CPU scratch the records are built in. */
#ifndef OW_LIB_MAPS_H
#define OW_LIB_MAPS_H

struct root_key {
	__u64 dev;
	__u64 ino;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OW_MAX_TREES);
	__type(key, struct root_key);
	__type(value, __u32);
} roots SEC(".maps");

/* The roots again, for the walk's step, which tests every dentry it passes while no root is
 * found: where there are at most OW_FAST_ROOTS of them, a few compares instead of a hash
 * lookup per step. Kept by user space beside the map (kernel/load.rs, watch/mod.rs), in two
 * copies: it rewrites the one not switched to last, then switches with one store of
 * roots_fast_n (bits 0-7: how many, bit 8: which copy), so a program never compares with an
 * entry being written. While the count is 0 the map decides: before user space fills them,
 * while it changes the roots (a reload) and with more than OW_FAST_ROOTS of them. */
#define OW_FAST_ROOTS 8
struct root_key roots_fast[2][OW_FAST_ROOTS] = {};
__u32 roots_fast_tree[2][OW_FAST_ROOTS] = {};
__u32 roots_fast_n = 0;
/* Counts user space's changes of the roots (kernel/load.rs set_roots_fast): a kept walk
 * (walk.h put_kept_walk) is referred to only while it is the one it was found with. */
__u32 roots_gen = 0;

/* uid -> bit mask of the trees where its writes are allowed */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} allowed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* Records that could not be delivered (ring buffer full, inflight table full). A global in
 * .bss, which user space reads through memory: a bpf(2) map lookup raises the CPU's
 * bpf_prog_active while it runs, preemptibly, and a reader preempted there would make the
 * kernel skip every kprobe and tracepoint program on that CPU meanwhile. */
__u64 lost_records = 0;
/* The last error of the wait table (hooks/vfs.h, set_wait), said on stderr: the event whose
 * wait it refused comes without "ret", which user space counts in-band as it sends it. */
__s64 lost_wait_err = 0;

/* Set by user space as it stops: the programs stay attached for seconds after (the detacher
 * closes their links, each waiting for RCU grace periods), and meanwhile every writer on the
 * machine would still pay for records nobody reads. With it set, each hook leaves at its first
 * test. */
__u32 ow_stopping = 0;

/* The bits of the watched trees (their indexes in `roots`): a user whose `allowed` mask holds
 * them all never gets past the filter. In .bss, not rodata: a config reload (SIGHUP) adds and
 * removes trees while the programs run. */
__u64 all_trees = 0;

/* The writers allowed in every tree, for the first test of every hook: a few loads where the
 * allowed map would be a hash lookup. Written by user space before it attaches, and on a
 * config reload (allowed_fast_n 0 meanwhile, written last: with 0 nobody leaves at the first
 * test, and the tree's check after the walk decides). More than OW_FAST_ALLOWED of them
 * (allowed_fast_n larger): the list is incomplete and the map decides. */
#define OW_FAST_ALLOWED 8
__u32 allowed_fast[OW_FAST_ALLOWED] = {};
__u32 allowed_fast_n = 0;

/* The key of the maps kept per thread (inflight, vfs_wait). */
static __always_inline __u32 current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

/* Internal op for open*(): create or write is known only at exit, from the file. */
#define KIND_OPEN OW_OP_COUNT

struct pending {
	__u32 op;
	__u32 flags;
	__u32 mode;
	__u32 syscall; /* enum sc */
	__u64 args[6];
	__u32 nseen;
	__u32 kstrs; /* the path strings in args are the kernel's copies (io_uring, 7.2+) */
	__u64 seen[OW_MAX_SEEN]; /* struct dentry * */
	__u32 active; /* (task storage) the op is pending; its exit has not come yet */
	/* an inode of a stacked filesystem (overlayfs) changed: seen holds only such inodes'
	 * dentries from then on, not the layers' below, which change first (hooks/ctime.h) */
	__u32 stacked;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pending);
} inflight SEC(".maps");

/* Set by user space between open and load: 1 where the kernel has task storage for tracing
 * programs and bpf_get_current_task_btf() (5.11+). The pending op then lives in the thread's
 * own storage (inflight_task): found without hashing or locking, and an enter or exit writes a
 * flag instead of inserting and deleting a hash entry (together ~40 % of an offending op's BPF
 * outside the record). Where 0, the hash `inflight`, and inflight_task is not created. */
const volatile __u32 task_storage = 0;

/* Set by the programs the first time a thread's storage could not be made: from then on new
 * entries go to the hashes (inflight, vfs_wait), which exist beside the storage maps. Debian's
 * 7.2 and 7.3 return NULL for every BPF_LOCAL_STORAGE_GET_F_CREATE from these programs
 * (measured: tracepoint, lsm, fentry and kprobe alike; 6.1, 6.12 and 6.18 make them), so
 * there the first offending op switches, and nothing is lost. Entries already in storage
 * stay valid until their op ends. */
__u32 task_storage_off = 0;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending);
} inflight_task SEC(".maps");

/* How many ops are pending (tracepoint backend: entries in `inflight`, and active entries in
 * `inflight_task`): incremented when one is made, decremented when one is deleted or made
 * inactive, each only when the map said it did. A thread's own entry
 * is counted from its enter to its exit, so while the count is 0 no thread has one and the
 * exit and ctime programs, which run for allowed writers and for every ctime change on the
 * machine, leave at one load instead of a hash lookup. A count too high (an entry left by an
 * exit the kernel skipped) only costs that lookup. */
__u64 inflight_n = 0;

/* This thread's pending op in its task storage (active or not), or NULL. */
static __always_inline struct pending *pending_stored(void)
{
	return bpf_task_storage_get(&inflight_task, bpf_get_current_task_btf(), 0, 0);
}

/* This thread's pending op (tracepoint backend), or NULL. */
static __always_inline struct pending *pending_get(void)
{
	__u32 tid;

	if (task_storage) {
		struct pending *p = pending_stored();

		if (p && p->active)
			return p;
		if (!task_storage_off)
			return 0; /* the hash holds nothing */
	}
	tid = current_tid();
	return bpf_map_lookup_elem(&inflight, &tid);
}

/* The op `p` (pending_get's) is no longer pending. */
static __always_inline void pending_end(struct pending *p)
{
	__u32 tid;

	/* (a hash entry's active is 0) */
	if (task_storage && p->active) {
		p->active = 0;
		__sync_fetch_and_add(&inflight_n, -1);
		return;
	}
	tid = current_tid();
	if (!bpf_map_delete_elem(&inflight, &tid))
		__sync_fetch_and_add(&inflight_n, -1);
}

/* Where a dentry walk is (lib/walk.h); kernel pointers as numbers. */
struct walk_state {
	__u64 d; /* struct dentry * */
	__u64 m; /* struct mount * */
	__u64 mnt_root; /* struct dentry * */
	__u32 tree;
	__u32 done;
	__u32 full; /* no room for more names: keep walking for membership only */
	__u32 names; /* names sent so far */
	__u32 tree_depth; /* names below the watched root, when one was found */
	__u32 crossed; /* it went on into a parent mount */
	__u32 chain; /* keep its dentries in the scratch's KW_NEW (walk.h put_kept_walk) */
	__u32 up; /* it may end in the kept walk (OW_ITEM_WALKUP, walk.h ow_walk_up) */
	__u32 paused, up_j; /* it stopped at the kept walk's dentry up_j, at level `steps` */
	__u32 start; /* where its SEG begins in the record */
	__u32 steps; /* dentries passed */
	__u32 rootref; /* it stopped at its root with an OW_ITEM_ROOTREF */
	__u32 rc_level; /* the next level of the root chain it records (RC_NEW), or RC_OFF */
	__u32 rc_start; /* where its names above the root begin */
};

/* A walk as the kernel checks it before a later record of the same CPU refers to it
 * (walk.h, put_kept_walk): the walk's dentries, leaf to the superblock's root,
 * and their names' hash_len. A name's hash is salted with its parent's address, so the same
 * dentry addresses with the same hash_len all the way up are the same names under the same
 * parents, whatever was renamed, freed or reused in between (a 32-bit hash collision aside). */
#define KEPT_LEVELS 16
struct kept_walk {
	__u64 d[KEPT_LEVELS];
	__u64 hash[KEPT_LEVELS];
	__u64 m, mnt_root;
	__u64 root_inode, root_ino; /* the watched root's inode where the walk found it */
	__u32 off[KEPT_LEVELS]; /* where each dentry's items begin in the walk's bytes */
	__u32 levels, root_level;
	__u32 tree, gen, seq;
	__u32 rc_seq; /* the walk stopped at its root: the root chain it referred to, else 0 */
};

/* The names above a watched root as this CPU last sent them (walk.h, put_root_ref): the
 * root's dentry, then its parents up to the superblock's root, their names' hash_len (salted
 * with the parent's address, as in struct kept_walk), and which of them was the root of the
 * mount the walk came through (a MNTROOT item before its name), RC_OFF for none. */
#define RC_LEVELS 16
struct root_chain {
	__u64 d[RC_LEVELS];
	__u64 hash[RC_LEVELS];
	__u32 levels, tree, gen, seq, mnt_level, _pad;
};

/* What the identity reads of the writer's task, beyond the actor (identity.h read_writer). */
struct ow_writer {
	__u64 mm, exe, tty, kn, cgid, start, arg_start, arg_end;
	__u32 exec_id, loginuid, sessionid;
};

struct scratch {
	/* Builder state lives here, not on the stack: the verifier then treats the offset as
	 * an unknown bounded scalar instead of following every exact value through every
	 * branch (which exceeds its complexity limit). */
	volatile __u32 off;
	volatile __u32 trunc;
	volatile __u32 proc; /* a string began with "/proc/" */
	volatile __u32 limit; /* where the current item must end: shares room between walks */
	/* The walk's names of the path as the mounts show it, and whether it is above the
	 * mount's root (see walk_step). */
	volatile __u32 view_names;
	volatile __u32 above_mnt_root;
	volatile __u32 kstrs; /* strings "from the caller" are in kernel memory (pending.kstrs) */
	/* The op's object came whole as the first changed dentry (an attribute op: chmod,
	 * chown, truncate, xattrs, whose ctime change names the object itself): user space
	 * places the event there, so a path string goes without the walk of its base. */
	volatile __u32 object_seen;
	/* An attribute op's changed inode has other names in the dentry cache: the first
	 * changed dentry may not be the name the op went through (hooks/syscall_exit.h). */
	volatile __u32 other_name;
	volatile __u64 last_base; /* the directory put_str_path walked */
	volatile __u32 last_tree; /* and the tree it found */
	volatile __u64 arg_d, arg_m; /* put_walk's arguments, as numbers */
	volatile __u32 walk_flags; /* the next walk's WALKEND flags (OW_F_UNLINKED), then 0 */
	__u32 nseen;
	struct walk_state w;
	__u64 seen_d[OW_MAX_SEEN];   /* dentries walked as OW_SLOT_SEEN, in order */
	__u32 seen_tree[OW_MAX_SEEN]; /* and the trees they reached */
	__u32 seen_depth[OW_MAX_SEEN]; /* names below those trees' roots */
	__u32 seen_whole; /* bit i: the i-th walk reached the superblock's root, nothing cut */
	volatile __u64 at; /* the cgroup node or ancestor the identity's next step reads */
	/* the command line being copied (ow_put_argv): from `argv_at` to `argv_end` of the
	 * caller's memory, to the record's `argv_dst`; `argv_len` read so far, `argv_failed` */
	volatile __u64 argv_at, argv_end;
	volatile __u32 argv_dst, argv_len, argv_failed;
	struct ow_writer wr;
	/* this record's identity key; remembered once the record is sent, when ident_new */
	struct ow_ident ident;
	__u32 ident_new;
	/* This CPU's kept walks, two buffers: KW_KEPT the last one kept (valid when its seq is
	 * not 0), KW_NEW where this record's walk goes, kept once the record is sent
	 * (kw_new_ok): submit() then flips kw_cur instead of copying 300 bytes. kw_seq counts
	 * them. */
	struct kept_walk kw[2];
	__u32 kw_cur, kw_new_ok, kw_seq;
	/* This CPU's names above a root, two buffers as kw: RC_KEPT the last sent (valid
	 * when its seq is not 0), RC_NEW the one a walk of this record records, sent once
	 * (rc_new_ok: at most one per record) and kept once the record is sent. */
	struct root_chain rc[2];
	__u32 rc_cur, rc_new_ok, rc_seq;
	struct ow_event ev;
	/* OW_DATA_MAX of logical room plus slack so that a masked offset plus one
	 * bounded read always stays inside the value (what the verifier checks). */
	__u8 data[OW_DATA_MAX + PATH_MAX + 512];
};

#define KW_KEPT(s) (&(s)->kw[(s)->kw_cur & 1])
#define KW_NEW(s) (&(s)->kw[((s)->kw_cur ^ 1) & 1])
#define RC_KEPT(s) (&(s)->rc[(s)->rc_cur & 1])
#define RC_NEW(s) (&(s)->rc[((s)->rc_cur ^ 1) & 1])
#define RC_OFF 0xffff

/* One scratch record per CPU. A plain array indexed by CPU, because per-CPU
 * map values are limited to 32 KiB and a 120-level path needs more. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized to the number of possible CPUs */
	__type(key, __u32);
	__type(value, struct scratch);
} heap SEC(".maps");

/* tgid -> what the exe, tty and cgroup its last record with them sent depend on (bpf/lib/
 * identity.h). User space keeps the items of more processes than this holds (watch/ident.rs),
 * so an IDREF always names items it still has. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1); /* sized by user space (kernel/load.rs IDENTS) */
	__type(key, __u32);
	__type(value, struct ow_ident);
} idents SEC(".maps");

/* kernel dev -> 1: no mount of this superblock lies inside a watched tree, so a dentry walk
 * that stays within it and finds no root is outside every tree; 2: some mount does. Kept
 * current by user space from the mount table. A superblock missing here (mounted only in
 * another namespace) counts as 2. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} devs SEC(".maps");

/* Mount calls. The devs map says which superblocks have no mount inside a tree, as of the
 * mount table user space last read. A bind mount into a tree (of a directory on a superblock
 * flagged 1) changes that at once, and a write through it right after, by a walk that cannot
 * see its mount (the tracepoint backend's changed dentries, the xattr hooks' dentry), would
 * be taken for one outside every tree. So each call that can put a mount somewhere (mount,
 * move_mount, pivot_root; with them what propagates) bumps mounts_gen: the tracepoint
 * backend at its entry and exit, counting it busy between them (hooks/ctime.h), the others
 * at its security hook, before the mount is made (hooks/vfs.h). User space writes devs_gen,
 * the generation its devs map reflects, once it has read the table after the generation
 * settled with no call busy (watch/mod.rs); until then no flag is trusted
 * (sb_mounted_in_tree, lib/walk.h). */
__u64 mounts_gen = 0;
__u64 mounts_busy = 0;
__u64 devs_gen = 0;

static __always_inline void count_lost(void)
{
	__sync_fetch_and_add(&lost_records, 1);
}

static __always_inline void wait_refused(long err)
{
	lost_wait_err = err;
}

#endif
