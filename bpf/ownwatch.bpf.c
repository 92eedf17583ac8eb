// SPDX-License-Identifier: GPL-2.0
/* ownwatch kernel side. Every hook runs the same filter, cheapest first:
 *   1. the caller's fsuid is allowed in every watched tree -> return (the normal workload)
 *   2. the op is not wanted -> return
 *   3. tree membership by (dev, ino) ancestry, then one ring buffer record.
 * Programs are declared optional (SEC("?...")); user space enables the family it picked. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ownwatch.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space between open and load. */
const volatile __u32 op_mask = 0xffffffff;
const volatile __u64 all_trees = 0;
const volatile __u32 self_tgid = 0;
const volatile __u32 backend_id = OW_BACKEND_TRACEPOINT;

_Static_assert(sizeof(struct ow_event) == 104, "ow_event layout changed: update src/bpf.rs");
_Static_assert(sizeof(struct ow_walkend) == 16, "ow_walkend layout changed: update src/bpf.rs");
_Static_assert(sizeof(struct ow_outcome) == 24, "ow_outcome layout changed: update src/bpf.rs");

/* Put the record types into BTF so the skeleton generates them for Rust. */
struct ow_event _ow_event = {};
struct ow_walkend _ow_walkend = {};
struct ow_parent _ow_parent = {};
struct ow_outcome _ow_outcome = {};
enum ow_op _ow_op = 0;
enum ow_flags _ow_flags = 0;
enum ow_slot _ow_slot = 0;
enum ow_item _ow_item = 0;

#define S_IFMT 00170000
#define S_IFREG 0100000
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_TMPFILE_DIR 020000000
#define AT_FDCWD -100
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_SYMLINK_FOLLOW 0x400
#define AT_EMPTY_PATH 0x1000
#define RENAME_EXCHANGE 2
#define FMODE_WRITE 0x2
#define FMODE_CREATED 0x100000
#define NAME_MAX_READ 256
#define PATH_MAX 4096
#define DATA_MASK (OW_DATA_MAX - 1)
#define WALK_MAX_STEPS 8192
/* Room for the walks of the directories path strings are relative to, so that the walks of
 * what the op changed (OW_SLOT_SEEN) still fit: those are what decide tree and path. */
#define IDENTITY_RESERVE 12288 /* argv, exe, cgroup, parents: added last, room kept for them */
#define WALK_ROOM (OW_DATA_MAX - IDENTITY_RESERVE)
/* Changed directories first, then each string with the directory it is relative to. */
#define SEEN_ROOM (WALK_ROOM - 2 * (PATH_MAX + 1024))
#define LIMIT_ONE WALK_ROOM
#define LIMIT_FIRST (WALK_ROOM - PATH_MAX - 1024)
#define LIMIT_SECOND WALK_ROOM
#define ARGV_CHUNK 256
#define ARGV_MAX 8192
#define EXE_ROOM 2048
#define MAX_PARENTS 16
#define CGROUP_DEPTH 32

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

/* records that could not be delivered (ring buffer full, inflight table full) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Internal op for open*(): create or write is known only at exit, from the file. */
#define KIND_OPEN OW_OP_COUNT

struct pending {
	__u32 op;
	__u32 flags;
	__u32 mode;
	__u32 syscall; /* enum sc */
	__u64 args[6];
	__u32 nseen;
	__u32 _pad;
	__u64 seen[OW_MAX_SEEN]; /* struct dentry * */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pending);
} inflight SEC(".maps");

struct scratch {
	/* Builder state lives here, not on the stack: the verifier then treats the offset as
	 * an unknown bounded scalar instead of following every exact value through every
	 * branch (which exceeds its complexity limit). */
	volatile __u32 off;
	volatile __u32 trunc;
	volatile __u32 proc; /* a string began with "/proc/" */
	volatile __u32 limit; /* where the current item must end: shares room between walks */
	/* The walk's names of the path as the mounts show it, and whether it is above the
	 * mount's root (see walk_step). Here, not in walk_ctx: before 6.8 the verifier checked a
	 * bpf_loop callback once, with the caller's stack as at the call, and took these for
	 * their first values, hard-wiring the branches on them. */
	volatile __u32 view_names;
	volatile __u32 above_mnt_root;
	__u32 _pad;
	volatile __u64 last_base; /* the directory put_str_path walked */
	volatile __u32 last_tree; /* and the tree it found */
	__u32 nseen;
	__u64 seen_d[OW_MAX_SEEN];   /* dentries walked as OW_SLOT_SEEN, in order */
	__u32 seen_tree[OW_MAX_SEEN]; /* and the trees they reached */
	struct ow_event ev;
	/* OW_DATA_MAX of logical room plus slack so that a masked offset plus one
	 * bounded read always stays inside the value (what the verifier checks). */
	__u8 data[OW_DATA_MAX + PATH_MAX + 512];
};

/* One scratch record per CPU. A plain array indexed by CPU, because per-CPU
 * map values are limited to 32 KiB and a 120-level path needs more. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized to the number of possible CPUs */
	__type(key, __u32);
	__type(value, struct scratch);
} heap SEC(".maps");

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

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1;
}

/* ---- the cheap filter ------------------------------------------------- */

static __always_inline int actor_filtered(__u32 op)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 fsuid = BPF_CORE_READ(task, cred, fsuid.val);
	__u64 *mask = bpf_map_lookup_elem(&allowed, &fsuid);

	if (mask && (*mask & all_trees) == all_trees)
		return 1;
	if (op == KIND_OPEN) {
		if (!(op_mask & ((1u << OW_OP_CREATE) | (1u << OW_OP_WRITE))))
			return 1;
	} else if (!(op_mask & (1u << op))) {
		return 1;
	}
	if (self_tgid && (bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return 1;
	return 0;
}

static __always_inline int is_allowed_in(__u32 fsuid, __u32 tree)
{
	__u64 *mask = bpf_map_lookup_elem(&allowed, &fsuid);

	return mask && tree < 64 && (*mask & (1ull << tree));
}

/* ---- record building --------------------------------------------------- */

struct builder {
	struct scratch *s;
};

static __always_inline int put_hdr(struct builder *b, __u8 type, __u16 len)
{
	__u32 off = b->s->off;

	if (off > b->s->limit - 4 - (__u32)len || b->s->limit > OW_DATA_MAX) {
		b->s->trunc = 1;
		return -1;
	}
	b->s->data[off & DATA_MASK] = type;
	b->s->data[(off + 1) & DATA_MASK] = 0;
	b->s->data[(off + 2) & DATA_MASK] = len & 0xff;
	b->s->data[(off + 3) & DATA_MASK] = len >> 8;
	b->s->off = off + 4;
	return 0;
}

static __always_inline void put_u32(struct builder *b, __u32 v)
{
	__u32 off = b->s->off;

	b->s->data[off & DATA_MASK] = v & 0xff;
	b->s->data[(off + 1) & DATA_MASK] = (v >> 8) & 0xff;
	b->s->data[(off + 2) & DATA_MASK] = (v >> 16) & 0xff;
	b->s->data[(off + 3) & DATA_MASK] = v >> 24;
	b->s->off = off + 4;
}

static __always_inline void put_slot(struct builder *b, __u8 slot)
{
	if (put_hdr(b, OW_ITEM_SLOT, 1) == 0) {
		b->s->data[b->s->off & DATA_MASK] = slot;
		b->s->off += 1;
	}
}

/* A string from the caller. Returns its first byte (0 when empty or unreadable). */
static __always_inline int put_user_str(struct builder *b, const char *uptr, __u8 *first)
{
	__u32 off = b->s->off;
	long n;

	*first = 0;
	if (off > b->s->limit - 4 - PATH_MAX || b->s->limit > OW_DATA_MAX) {
		b->s->trunc = 1;
		return -1;
	}
	n = bpf_probe_read_user_str(&b->s->data[(off + 4) & DATA_MASK], PATH_MAX, uptr);
	if (n <= 0)
		n = 1;
	n -= 1; /* without the NUL */
	b->s->data[off & DATA_MASK] = OW_ITEM_STR;
	b->s->data[(off + 1) & DATA_MASK] = n >= PATH_MAX - 1 ? 1 : 0;
	b->s->data[(off + 2) & DATA_MASK] = n & 0xff;
	b->s->data[(off + 3) & DATA_MASK] = (n >> 8) & 0xff;
	if (n > 0)
		*first = b->s->data[(off + 4) & DATA_MASK];
	if (n >= 6 && b->s->data[(off + 4) & DATA_MASK] == '/' &&
	    b->s->data[(off + 5) & DATA_MASK] == 'p' && b->s->data[(off + 6) & DATA_MASK] == 'r' &&
	    b->s->data[(off + 7) & DATA_MASK] == 'o' && b->s->data[(off + 8) & DATA_MASK] == 'c' &&
	    b->s->data[(off + 9) & DATA_MASK] == '/')
		b->s->proc = 1;
	b->s->off = off + 4 + (n & (PATH_MAX - 1));
	return n;
}

/* One NAME item from kernel memory, ending before `limit`. -1: no room left. */
static __always_inline int put_kernel_name(struct builder *b, const char *name, __u32 limit)
{
	__u32 off = b->s->off;
	long n;

	if (off > limit - 4 - NAME_MAX_READ || limit > OW_DATA_MAX) {
		b->s->trunc = 1;
		return -1;
	}
	n = bpf_probe_read_kernel_str(&b->s->data[(off + 4) & DATA_MASK], NAME_MAX_READ, name);
	if (n <= 0)
		n = 1;
	n -= 1;
	b->s->data[off & DATA_MASK] = OW_ITEM_NAME;
	b->s->data[(off + 1) & DATA_MASK] = 0;
	b->s->data[(off + 2) & DATA_MASK] = n & 0xff;
	b->s->data[(off + 3) & DATA_MASK] = 0;
	b->s->off = off + 4 + (n & 0xff);
	return 0;
}

struct walk_ctx {
	struct builder *b;
	struct dentry *d;
	struct mount *m;
	struct dentry *mnt_root;
	__u32 tree;
	__u32 done;
	__u32 full; /* no room for more names: keep walking for membership only */
	__u32 names; /* names sent so far */
	__u32 tree_depth; /* names below the watched root, when one was found */
};

static __always_inline struct mount *real_mount(struct vfsmount *mnt)
{
	return (struct mount *)((void *)mnt - bpf_core_field_offset(struct mount, mnt));
}

static long walk_step(__u32 i, void *arg)
{
	struct walk_ctx *c = arg;
	struct builder *b = c->b;
	struct dentry *d = c->d;
	struct dentry *parent;
	struct inode *inode;
	struct root_key key;
	struct qstr name;

	if (!d) {
		c->done = 1;
		return 1;
	}
	inode = BPF_CORE_READ(d, d_inode);
	if (inode && c->tree == OW_NO_TREE) {
		__u32 *t;

		key.dev = BPF_CORE_READ(d, d_sb, s_dev);
		key.ino = BPF_CORE_READ(inode, i_ino);
		t = bpf_map_lookup_elem(&roots, &key);
		if (t) {
			c->tree = *t;
			/* A bind mount of a subdirectory is walked on up its superblock
			 * (identity), but those names are not in the path user space prints:
			 * they count only when the root was found there. */
			c->tree_depth = b->s->above_mnt_root ? c->names : b->s->view_names;
		}
	}
	parent = BPF_CORE_READ(d, d_parent);
	if (parent == d) {
		/* Root of this superblock. Its path within the superblock is complete, which
		 * user space maps to the host's view with mountinfo. Keep crossing mounts
		 * only while no tree was found: a tree may hold other mounts. */
		struct mount *m = c->m;
		struct mount *pm;
		struct dentry *mp;

		if (c->tree != OW_NO_TREE || !m) {
			c->done = 1;
			return 1;
		}
		pm = BPF_CORE_READ(m, mnt_parent);
		if (!pm || pm == m) {
			c->done = 1;
			return 1;
		}
		mp = BPF_CORE_READ(m, mnt_mountpoint);
		b->s->above_mnt_root = 0;
		c->d = mp;
		c->m = pm;
		c->mnt_root = BPF_CORE_READ(pm, mnt.mnt_root);
		if (c->full || put_hdr(b, OW_ITEM_SEG, 4))
			c->full = 1;
		else
			put_u32(b, BPF_CORE_READ(mp, d_sb, s_dev));
		return 0;
	}
	c->d = parent;
	if (c->full)
		return 0;
	if (d == c->mnt_root) {
		/* A bind mount of a subdirectory: keep walking the superblock (identity),
		 * but tell user space where the mount's own root was. */
		b->s->above_mnt_root = 1;
		if (put_hdr(b, OW_ITEM_MNTROOT, 0)) {
			c->full = 1;
			return 0;
		}
	}
	name = BPF_CORE_READ(d, d_name);
	/* 24 bytes stay free for the walk's end marker */
	if (put_kernel_name(b, (const char *)name.name, b->s->limit - 24)) {
		c->full = 1;
	} else {
		c->names++;
		if (!b->s->above_mnt_root)
			b->s->view_names++;
	}
	return 0;
}

/* Walk from (dentry, mount) up to the superblock root, crossing mounts until a watched
 * root is found. Returns the tree index or OW_NO_TREE. No depth limit short of the
 * record's room; a walk that is cut short says so (OW_F_TRUNCATED), it is not dropped. */
/* A global (not static) function: the verifier checks it once, not at each of the many
 * places that walk, which kept loading at over a second. Kernel pointers come as scalars. */
__noinline __u32 ow_put_walk(struct scratch *s, __u64 dentry, __u64 vfsmount)
{
	struct dentry *d = (struct dentry *)dentry;
	struct vfsmount *vm = (struct vfsmount *)vfsmount;
	struct builder bb = { .s = s };
	struct builder *b = &bb;
	struct walk_ctx c = {
		.b = b,
		.d = d,
		.tree = OW_NO_TREE,
	};
	__u32 flags = 0;

	if (!s || !d)
		return OW_NO_TREE;
	if (vm) {
		c.m = real_mount(vm);
		c.mnt_root = BPF_CORE_READ(vm, mnt_root);
	}
	if (put_hdr(b, OW_ITEM_SEG, 4))
		return OW_NO_TREE;
	put_u32(b, BPF_CORE_READ(d, d_sb, s_dev));
	s->view_names = 0;
	s->above_mnt_root = 0;
	bpf_loop(WALK_MAX_STEPS, walk_step, &c, 0);
	if (!c.done || c.full)
		flags |= OW_F_TRUNCATED;
	if (put_hdr(b, OW_ITEM_WALKEND, sizeof(struct ow_walkend)) == 0) {
		put_u32(b, c.tree);
		put_u32(b, flags);
		put_u32(b, BPF_CORE_READ(d, d_inode, i_mode));
		put_u32(b, c.tree_depth);
	}
	return c.tree;
}

static __always_inline __u32 put_walk(struct builder *b, struct dentry *d, struct vfsmount *vm)
{
	return ow_put_walk(b->s, (__u64)d, (__u64)vm);
}

static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = 0;

	if (fd < 0 || !fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline __u32 put_file_walk(struct builder *b, struct file *f)
{
	if (!f)
		return OW_NO_TREE;
	return put_walk(b, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
}

/* A path given as a string: the string, then the directory it is relative to (the caller's
 * root for absolute strings, else dirfd or cwd). User space resolves the rest. */
/* The directory a string is relative to was often walked already as a changed directory:
 * refer to that walk instead of sending a deep path twice. */
static __always_inline int put_base_walk(struct builder *b, struct dentry *d, struct vfsmount *m)
{
	for (int i = 0; i < OW_MAX_SEEN; i++) {
		if (i >= b->s->nseen)
			break;
		if (b->s->seen_d[i] == (__u64)d && put_hdr(b, OW_ITEM_SAMEAS, 1) == 0) {
			b->s->data[b->s->off & DATA_MASK] = 0x80 | i;
			b->s->off += 1;
			return b->s->seen_tree[i];
		}
	}
	return put_walk(b, d, m);
}

/* "/proc/self/fd/N", "/proc/thread-self/fd/N" or "/proc/<own pid or tid>/fd/N": how glibc's
 * lchmod and fchmodat(AT_SYMLINK_NOFOLLOW) (an O_PATH handle, on kernels before fchmodat2 or
 * where glibc does not use it: tar, mkfifo -m, cp -a) name a file. The fd, and often the whole
 * process, is gone by the time user space could read the link. Returns N, or -1. */
static __always_inline int proc_fd_of(struct scratch *sc, __u32 at, int n)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = 0, i = 6, k;
	int fd = 0;

/* the string's byte i, as put_user_str() copied it into the record */
#define C(i) (sc->data[(at + (i)) & DATA_MASK])
	if (n < 15 || n > 40)
		return -1;
	if (C(6) == 's' && C(7) == 'e' && C(8) == 'l' && C(9) == 'f' && C(10) == '/') {
		i = 11;
	} else if (C(6) == 't' && C(7) == 'h' && C(8) == 'r' && C(9) == 'e' && C(10) == 'a' &&
		   C(11) == 'd' && C(12) == '-' && C(13) == 's' && C(14) == 'e' && C(15) == 'l' &&
		   C(16) == 'f' && C(17) == '/') {
		i = 18;
	} else {
		for (k = 0; k < 10; k++) {
			char c = C(6 + k);

			if (c == '/')
				break;
			if (c < '0' || c > '9')
				return -1;
			pid = pid * 10 + (c - '0');
		}
		if (k == 0 || k == 10 || (pid != (__u32)(id >> 32) && pid != (__u32)id))
			return -1;
		i = 7 + k;
	}
	if (C(i) != 'f' || C(i + 1) != 'd' || C(i + 2) != '/')
		return -1;
	i += 3;
	for (k = 0; k < 10; k++) {
		char c;

		if (i + k >= (__u32)n)
			break;
		c = C(i + k);
		if (c < '0' || c > '9')
			return -1;
		fd = fd * 10 + (c - '0');
	}
#undef C
	return (k == 0 || k == 10) ? -1 : fd;
}

/* follow_proc_fd: the op follows the path (chmod, chown, truncate, setxattr): a
 * "/proc/self/fd/N" string names the file open as N, which is walked as the object. */
static __always_inline __u32 put_str_path(struct builder *b, struct task_struct *task, int dfd,
					  const char *uptr, __u32 empty_ok, __u32 abs_flag,
					  __u8 *first_out, __u32 follow_proc_fd)
{
	__u8 first;
	__u32 at = b->s->off + 4; /* where put_user_str puts the string's bytes */
	int n = put_user_str(b, uptr, &first);

	*first_out = first;
	b->s->last_base = 0;
	if (n == 0 && empty_ok) {
		b->s->ev.flags |= OW_F_EMPTY_PATH;
		return put_file_walk(b, fd_file(task, dfd));
	}
	if (first == '/' && b->s->proc && follow_proc_fd && !(b->s->ev.flags & OW_F_NOFOLLOW)) {
		int fd = proc_fd_of(b->s, at, n);
		struct file *f = fd >= 0 ? fd_file(task, fd) : 0;

		if (f) {
			b->s->ev.flags |= OW_F_PROC_FD;
			return put_file_walk(b, f);
		}
	}
	if (first == '/') {
		struct dentry *d = BPF_CORE_READ(task, fs, root.dentry);

		b->s->ev.flags |= abs_flag;
		b->s->last_base = (__u64)d;
		b->s->last_tree = put_base_walk(b, d, BPF_CORE_READ(task, fs, root.mnt));
	} else if (dfd == AT_FDCWD) {
		struct dentry *d = BPF_CORE_READ(task, fs, pwd.dentry);

		b->s->last_base = (__u64)d;
		b->s->last_tree = put_base_walk(b, d, BPF_CORE_READ(task, fs, pwd.mnt));
	} else {
		struct file *f = fd_file(task, dfd);

		b->s->last_base = (__u64)BPF_CORE_READ(f, f_path.dentry);
		b->s->last_tree = put_base_walk(b, (struct dentry *)b->s->last_base,
						BPF_CORE_READ(f, f_path.mnt));
	}
	return b->s->last_tree;
}

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

		tid = (__u32)bpf_get_current_pid_tgid();
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
#define NR_openat2 437
#define NR_unlinkat 263
#define NR_setxattrat 463
#define NR_removexattrat 466
#define NR_open 2
#define NR_openat 257
#define NR_creat 85
#define NR_mknod 133
#define NR_mknodat 259
#define NR_mkdir 83
#define NR_mkdirat 258
#define NR_symlink 88
#define NR_symlinkat 266
#define NR_link 86
#define NR_linkat 265
#define NR_rename 82
#define NR_renameat 264
#define NR_renameat2 316
#define NR_unlink 87
#define NR_rmdir 84
#define NR_chmod 90
#define NR_fchmodat 268
#define NR_fchmodat2 452
#define NR_fchmod 91
#define NR_chown 92
#define NR_lchown 94
#define NR_fchownat 260
#define NR_fchown 93
#define NR_truncate 76
#define NR_ftruncate 77
#define NR_setxattr 188
#define NR_lsetxattr 189
#define NR_fsetxattr 190
#define NR_removexattr 197
#define NR_lremovexattr 198
#define NR_fremovexattr 199
#define OW_SYSCALLS(X, w) X(w, openat2) X(w, unlinkat) X(w, setxattrat) X(w, removexattrat) X(w, open) X(w, openat) X(w, creat) X(w, mknod) X(w, mknodat) X(w, mkdir) X(w, mkdirat) X(w, symlink) X(w, symlinkat) X(w, link) X(w, linkat) X(w, rename) X(w, renameat) X(w, renameat2) X(w, unlink) X(w, rmdir) X(w, chmod) X(w, fchmodat) X(w, fchmodat2) X(w, fchmod) X(w, chown) X(w, lchown) X(w, fchownat) X(w, fchown) X(w, truncate) X(w, ftruncate) X(w, setxattr) X(w, lsetxattr) X(w, fsetxattr) X(w, removexattr) X(w, lremovexattr) X(w, fremovexattr)
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

#define TP_ENTER(w, name)                                                                  \
	SEC("?tracepoint/syscalls/sys_enter_" #name)                                       \
	int tp_enter_##name(struct trace_event_raw_sys_enter *ctx)                         \
	{                                                                                  \
		__u64 a[6] = { ctx->args[0], ctx->args[1], ctx->args[2],                   \
			       ctx->args[3], ctx->args[4], ctx->args[5] };                 \
		return on_enter(NR_##name, a);                                             \
	}
OW_SYSCALLS(TP_ENTER, 0)

/* ---- during the syscall: which inodes did it change? ---------------------
 * A path string says what the caller asked for; which directory the kernel really used (through
 * another mount namespace, a bind mount since unmounted, a racing rename) is only known inside
 * the op. Every namespace or attribute change sets the ctime of the inodes involved, and 6.13+
 * has tracepoints there: remember their dentries for the pending syscall of this thread. */

static __always_inline void saw_inode(struct inode *inode)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&inflight, &tid);
	struct hlist_node *first;
	__u64 d;
	__u32 n;

	if (!p)
		return;
	first = BPF_CORE_READ(inode, i_dentry.first);
	if (!first)
		return; /* a new inode: no name yet */
	d = (__u64)((void *)first - bpf_core_field_offset(struct dentry, d_u.d_alias));
	n = p->nseen;
	if (n >= OW_MAX_SEEN)
		return;
	for (int i = 0; i < OW_MAX_SEEN; i++)
		if (i < n && p->seen[i] == d)
			return;
	p->seen[n & (OW_MAX_SEEN - 1)] = d;
	p->nseen = n + 1;
}

SEC("?tp_btf/inode_set_ctime_to_ts")
int BPF_PROG(tp_ctime_set, struct inode *inode, struct timespec64 *ts)
{
	saw_inode(inode);
	return 0;
}

SEC("?tp_btf/ctime_ns_xchg")
int BPF_PROG(tp_ctime_xchg, struct inode *inode, __u32 old, __u32 new, __u32 cur)
{
	saw_inode(inode);
	return 0;
}

SEC("?tp_btf/ctime_xchg_skip")
int BPF_PROG(tp_ctime_skip, struct inode *inode, struct timespec64 *ctime)
{
	saw_inode(inode);
	return 0;
}

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

/* ---- who did it: captured now, not looked up later in /proc (short-lived callers are gone
 * by then). Only offending events get here. */

struct argv_ctx {
	struct builder *b;
	__u64 uptr;
	__u32 left;
	__u32 failed;
};

static long argv_chunk(__u32 i, void *arg)
{
	struct argv_ctx *c = arg;
	struct builder *b = c->b;
	__u32 off = b->s->off;
	__u32 n = c->left > ARGV_CHUNK ? ARGV_CHUNK : c->left;

	if (!n)
		return 1;
	if (off > OW_DATA_MAX - ARGV_CHUNK) {
		c->failed = 1;
		return 1;
	}
	/* Pages of the command line that are not resident cannot be faulted in here. */
	if (bpf_probe_read_user(&b->s->data[off & DATA_MASK], n & (2 * ARGV_CHUNK - 1),
				(void *)c->uptr)) {
		c->failed = 1;
		return 1;
	}
	b->s->off = off + n;
	c->uptr += n;
	c->left -= n;
	return 0;
}

static __always_inline void put_argv(struct builder *b, struct task_struct *task)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u64 start = BPF_CORE_READ(mm, arg_start), end = BPF_CORE_READ(mm, arg_end);
	struct argv_ctx c = { .b = b, .uptr = start };
	__u32 hdr = b->s->off, len;
	__u8 trunc;

	if (!mm || end <= start || hdr > OW_DATA_MAX - 4 - ARGV_MAX)
		return;
	c.left = end - start > ARGV_MAX ? ARGV_MAX : end - start;
	trunc = end - start > ARGV_MAX;
	b->s->off = hdr + 4;
	bpf_loop(ARGV_MAX / ARGV_CHUNK, argv_chunk, &c, 0);
	len = b->s->off - hdr - 4;
	b->s->data[hdr & DATA_MASK] = OW_ITEM_STR;
	b->s->data[(hdr + 1) & DATA_MASK] = trunc || c.failed;
	b->s->data[(hdr + 2) & DATA_MASK] = len & 0xff;
	b->s->data[(hdr + 3) & DATA_MASK] = (len >> 8) & 0xff;
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

static __always_inline void put_identity(struct builder *b, struct task_struct *task)
{
	struct ow_event *ev = &b->s->ev;
	struct task_struct *t = task;
	struct tty_struct *tty;
	struct kernfs_node *kn;
	struct file *exe;

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

	exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe) {
		put_slot(b, OW_SLOT_EXE);
		b->s->limit = b->s->off + EXE_ROOM;
		put_file_walk(b, exe);
		b->s->limit = OW_DATA_MAX;
	}

	tty = BPF_CORE_READ(task, signal, tty);
	if (tty) {
		__u32 off;
		long n;

		put_slot(b, OW_SLOT_TTY);
		off = b->s->off;
		if (off <= OW_DATA_MAX - 4 - 64) {
			n = bpf_probe_read_kernel_str(&b->s->data[(off + 4) & DATA_MASK], 64, tty->name);
			if (n <= 0)
				n = 1;
			n -= 1;
			b->s->data[off & DATA_MASK] = OW_ITEM_STR;
			b->s->data[(off + 1) & DATA_MASK] = 0;
			b->s->data[(off + 2) & DATA_MASK] = n & 0x7f;
			b->s->data[(off + 3) & DATA_MASK] = 0;
			b->s->off = off + 4 + (n & 0x7f);
		}
	}

	kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	if (kn) {
		put_slot(b, OW_SLOT_CGROUP);
		if (put_hdr(b, OW_ITEM_SEG, 4) == 0)
			put_u32(b, 0);
		for (int i = 0; i < CGROUP_DEPTH; i++) {
			struct kernfs_node *parent = kn_parent(kn);

			if (!parent)
				break;
			put_kernel_name(b, BPF_CORE_READ(kn, name), OW_DATA_MAX);
			kn = parent;
		}
	}

	put_slot(b, OW_SLOT_PARENTS);
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

/* Wakeup batching. Waking the reader costs the writer an irq_work and the reader a context
 * switch per record; in a storm the reader drains a whole batch per wakeup instead. A record
 * wakes the reader when the last wakeup is older than wakeup_gap_ns (so an isolated event is
 * read at once) or when the unread data reaches wakeup_bytes (so a burst never waits for the
 * ring to fill); records in between are picked up by the reader's next poll, which user space
 * keeps short while records flow. Both set before load (src/watch/load.rs). */
const volatile __u64 wakeup_bytes = 1 << 20;
const volatile __u64 wakeup_gap_ns = 1000000;
__u64 last_wakeup_ns = 0;

static __always_inline int submit(struct builder *b)
{
	__u32 off = b->s->off;
	__u64 len, now, flags = BPF_RB_NO_WAKEUP;

	if (off > OW_DATA_MAX)
		off = OW_DATA_MAX;
	if (b->s->trunc)
		b->s->ev.flags |= OW_F_TRUNCATED;
	b->s->ev.data_len = off;
	len = sizeof(struct ow_event) + off;
	now = bpf_ktime_get_ns();
	if (now - last_wakeup_ns >= wakeup_gap_ns ||
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + len >= wakeup_bytes) {
		flags = BPF_RB_FORCE_WAKEUP;
		last_wakeup_ns = now;
	}
	if (bpf_ringbuf_output(&events, &b->s->ev, len, flags)) {
		count_lost();
		return -1;
	}
	return 0;
}

/* One program for every hooked syscall's exit tracepoint. */
/* BTF-typed hook arguments (lsm, fentry) are trusted pointers, which a global function does
 * not take: pass their value as a plain number. */
static __always_inline __u64 num(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

static __always_inline int syscall_event(struct pending p, long ret, __u32 extra_flags);

SEC("?tracepoint")
int tp_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
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

/* io_uring file operations bypass the syscall tracepoints: the submission tracepoint sees
 * them (after the request was prepared, so its path strings are known), as the syscall
 * would have been given them. Their outcome comes later, elsewhere: not reported. */
static __always_inline int uring_event(struct io_kiocb *req)
{
	__u8 opcode = BPF_CORE_READ(req, opcode);
	__u32 op, flags = OW_F_NO_RET, mode = 0xffffffff, sc;
	__u64 a[5] = {};

	switch (opcode) {
	case IORING_OP_MKDIRAT: {
		struct io_mkdir *m = (void *)req;

		op = OW_OP_MKDIR;
		flags |= OW_F_NOFOLLOW;
		mode = umasked(BPF_CORE_READ(m, mode));
		sc = SC_MKDIR;
		a[0] = (__s64)BPF_CORE_READ(m, dfd);
		a[1] = (__u64)BPF_CORE_READ(m, filename, uptr);
		break;
	}
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2: {
		struct io_open *o = (void *)req;
		__u64 of = BPF_CORE_READ(o, how.flags);

		if (!(of & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)))
			return 0;
		/* Whether O_CREAT found the file there is decided later: reported as create. */
		op = (of & O_CREAT) ? OW_OP_CREATE : OW_OP_WRITE;
		if (op == OW_OP_CREATE)
			mode = umasked(BPF_CORE_READ(o, how.mode));
		sc = SC_MKDIR; /* dfd, path */
		a[0] = (__s64)BPF_CORE_READ(o, dfd);
		a[1] = (__u64)BPF_CORE_READ(o, filename, uptr);
		break;
	}
	case IORING_OP_RENAMEAT: {
		struct io_rename *r = (void *)req;
		__u32 rf = BPF_CORE_READ(r, flags);

		op = OW_OP_RENAME;
		flags |= OW_F_NOFOLLOW | ((rf & RENAME_EXCHANGE) ? OW_F_EXCHANGE : 0);
		sc = SC_RENAME;
		a[0] = (__s64)BPF_CORE_READ(r, old_dfd);
		a[1] = (__u64)BPF_CORE_READ(r, oldpath, uptr);
		a[2] = (__s64)BPF_CORE_READ(r, new_dfd);
		a[3] = (__u64)BPF_CORE_READ(r, newpath, uptr);
		a[4] = rf;
		break;
	}
	case IORING_OP_UNLINKAT: {
		struct io_unlink *u = (void *)req;

		op = (BPF_CORE_READ(u, flags) & AT_REMOVEDIR) ? OW_OP_RMDIR : OW_OP_UNLINK;
		flags |= OW_F_NOFOLLOW;
		sc = SC_UNLINK;
		a[0] = (__s64)BPF_CORE_READ(u, dfd);
		a[1] = (__u64)BPF_CORE_READ(u, filename, uptr);
		break;
	}
	case IORING_OP_SYMLINKAT: {
		struct io_link *l = (void *)req;

		op = OW_OP_SYMLINK;
		flags |= OW_F_NOFOLLOW;
		sc = SC_SYMLINK; /* target, dfd, linkpath */
		a[0] = (__u64)BPF_CORE_READ(l, oldpath, uptr);
		a[1] = (__s64)BPF_CORE_READ(l, new_dfd);
		a[2] = (__u64)BPF_CORE_READ(l, newpath, uptr);
		break;
	}
	case IORING_OP_LINKAT: {
		struct io_link *l = (void *)req;
		__u32 lf = BPF_CORE_READ(l, flags);

		op = OW_OP_LINK;
		flags |= (lf & AT_SYMLINK_FOLLOW) ? 0 : OW_F_NOFOLLOW;
		sc = SC_LINK;
		a[0] = (__s64)BPF_CORE_READ(l, old_dfd);
		a[1] = (__u64)BPF_CORE_READ(l, oldpath, uptr);
		a[2] = (__s64)BPF_CORE_READ(l, new_dfd);
		a[3] = (__u64)BPF_CORE_READ(l, newpath, uptr);
		a[4] = lf & ~AT_EMPTY_PATH;
		break;
	}
	default:
		return 0;
	}
	if (actor_filtered(op))
		return 0;
	{
		struct pending p = {
			.op = op,
			.flags = flags,
			.mode = mode,
			.syscall = sc,
			.args = { a[0], a[1], a[2], a[3], a[4] },
		};

		return syscall_event(p, 0, OW_F_NO_RET);
	}
}

/* 6.4+ */
SEC("?tp_btf/io_uring_submit_req")
int BPF_PROG(tp_uring_req, struct io_kiocb *req)
{
	return uring_event((struct io_kiocb *)num(req));
}

/* 5.19 to 6.3: the same, under its older name */
SEC("?tp_btf/io_uring_submit_sqe")
int BPF_PROG(tp_uring_sqe, struct io_kiocb *req)
{
	return uring_event((struct io_kiocb *)num(req));
}

static __always_inline int syscall_event(struct pending p, long ret, __u32 extra_flags)
{
	struct task_struct *task;
	struct builder b;
	struct ow_event *ev;
	__u32 cpu, tree = OW_NO_TREE;
	__u32 found = 0; /* a walk of this record reached a watched root */
	__u32 string_op;
	__u8 first = 0;

	cpu = bpf_get_smp_processor_id();
	b.s = bpf_map_lookup_elem(&heap, &cpu);
	if (!b.s)
		return 0;
	b.s->off = 0;
	b.s->trunc = 0;
	b.s->proc = 0;
	b.s->limit = WALK_ROOM;
	ev = &b.s->ev;
	task = (struct task_struct *)bpf_get_current_task();
	fill_actor(ev, task);
	ev->op = p.op;
	ev->flags = p.flags | extra_flags;
	ev->mode = p.mode;
	ev->new_uid = 0xffffffff;
	ev->new_gid = 0xffffffff;
	ev->ret = 0;

	/* What the op changed comes first: it decides tree and path, so it gets the room. */
	string_op = p.syscall != SC_OPEN && p.syscall != SC_FCHMOD && p.syscall != SC_FCHOWN &&
		    p.syscall != SC_FTRUNCATE && p.syscall != SC_FSETXATTR;
	b.s->nseen = 0;
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
			ev->mode = 0xffffffff;
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
			put_user_str(&b, (const char *)p.args[1], &first);
		}
		break;
	case SC_SYMLINK:
		put_slot(&b, OW_SLOT_TARGET);
		put_user_str(&b, (const char *)p.args[0], &first);
		put_slot(&b, OW_SLOT_PATH);
		b.s->limit = LIMIT_ONE;
		found |= OW_NO_TREE != put_str_path(&b, task, p.args[1], (const char *)p.args[2], 0, OW_F_ABSOLUTE, &first, 0);
		b.s->limit = WALK_ROOM;
		break;
	case SC_LINK:
	case SC_RENAME:
		put_slot(&b, OW_SLOT_PATH);
		b.s->limit = LIMIT_FIRST;
		found |= OW_NO_TREE != put_str_path(&b, task, p.args[0], (const char *)p.args[1],
			     p.syscall == SC_LINK && (p.args[4] & AT_EMPTY_PATH), OW_F_ABSOLUTE, &first, 0);
		b.s->limit = WALK_ROOM;
		put_slot(&b, OW_SLOT_NEW);
		b.s->limit = LIMIT_SECOND;
		found |= OW_NO_TREE != put_str_path(&b, task, p.args[2], (const char *)p.args[3], 0, OW_F_NEW_ABSOLUTE,
			     &first, 0);
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
				     OW_F_ABSOLUTE, &first, 1);
		b.s->limit = WALK_ROOM;
		}
		if (p.syscall == SC_CHOWN) {
			ev->new_uid = p.args[2];
			ev->new_gid = p.args[3];
		} else if (p.syscall == SC_SETXATTR || p.syscall == SC_SETXATTRAT) {
			put_slot(&b, OW_SLOT_XATTR);
			put_user_str(&b, (const char *)p.args[2], &first);
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

/* ---- lsm, fentry, kprobe: the op seen inside the VFS ----------------------
 * The same handlers behind three attach mechanisms. The hooks get dentries and mounts, so
 * tree and path are decided in the kernel for every route, io_uring included, as they are
 * before the op. The security hooks run before the op (and, for the path hooks, before its
 * permission checks), so the outcome comes from the function that does the op: fexit (lsm,
 * fentry) or kretprobe (kprobe) on vfs_mkdir, notify_change, ... sends an ow_outcome record
 * for the thread's pending event, matched on the dentry, and user space reports the event
 * only if the op succeeded. */

struct vfs_wait {
	__u64 key;        /* the dentry the completing function is called with */
	__u64 trunc_skip; /* a write open with O_TRUNC: its truncate is part of the open */
	__u32 armed;      /* kprobe: inside the completing function */
	__u32 depth;      /* kprobe: nested completing functions entered while armed */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct vfs_wait);
} vfs_wait SEC(".maps");

static __always_inline int vfs_event(__u32 op, __u32 flags, __u32 mode, __u64 d, __u64 m,
				     __u64 d2, __u64 m2, const char *kstr, __u8 str_slot,
				     __u32 new_uid, __u32 new_gid, __u64 done_key)
{
	struct task_struct *task;
	struct builder b;
	struct ow_event *ev;
	__u32 cpu, tree, t2, tid;

	if (actor_filtered(op))
		return 0;
	cpu = bpf_get_smp_processor_id();
	b.s = bpf_map_lookup_elem(&heap, &cpu);
	if (!b.s)
		return 0;
	b.s->off = 0;
	b.s->trunc = 0;
	b.s->proc = 0;
	b.s->nseen = 0;
	/* one walk gets all the room; rename and link share it between two */
	b.s->limit = d2 ? WALK_ROOM / 2 : WALK_ROOM;
	ev = &b.s->ev;
	task = (struct task_struct *)bpf_get_current_task();
	fill_actor(ev, task);
	ev->op = op;
	ev->flags = flags | (done_key ? OW_F_PENDING : 0);
	ev->mode = mode;
	ev->new_uid = new_uid;
	ev->new_gid = new_gid;
	ev->ret = 0;
	put_slot(&b, OW_SLOT_PATH);
	tree = ow_put_walk(b.s, d, m);
	if (d2) {
		b.s->limit = WALK_ROOM;
		put_slot(&b, OW_SLOT_NEW);
		t2 = ow_put_walk(b.s, d2, m2);
		if (t2 != OW_NO_TREE)
			tree = t2;
	}
	if (tree == OW_NO_TREE || is_allowed_in(ev->fsuid, tree))
		return 0;
	ev->tree = tree;
	if (kstr) {
		__u32 off = b.s->off;
		long n;

		put_slot(&b, str_slot);
		off = b.s->off;
		if (off <= OW_DATA_MAX - 4 - PATH_MAX) {
			n = bpf_probe_read_kernel_str(&b.s->data[(off + 4) & DATA_MASK], PATH_MAX, kstr);
			if (n <= 0)
				n = 1;
			n -= 1;
			b.s->data[off & DATA_MASK] = OW_ITEM_STR;
			b.s->data[(off + 1) & DATA_MASK] = 0;
			b.s->data[(off + 2) & DATA_MASK] = n & 0xff;
			b.s->data[(off + 3) & DATA_MASK] = (n >> 8) & 0x0f;
			b.s->off = off + 4 + (n & (PATH_MAX - 1));
		}
	}
	put_identity(&b, task);
	tid = ev->tid;
	if (submit(&b) == 0 && done_key) {
		struct vfs_wait w = { .key = done_key };

		/* kprobe: the xattr hooks run inside vfs_setxattr/vfs_removexattr, after their
		 * entry probe: the wait is armed already. */
		if (backend_id == OW_BACKEND_KPROBE &&
		    (op == OW_OP_SETXATTR || op == OW_OP_REMOVEXATTR))
			w.armed = 1;
		bpf_map_update_elem(&vfs_wait, &tid, &w, BPF_ANY);
	}
	return 0;
}

/* The op of the thread's pending event returned: send its outcome. */
/* The mode comes from the inode the op left: the path hooks see mkdir's and mknod's mode
 * before the umask where the filesystem has POSIX ACLs (it applies the umask, or the parent's
 * default ACL, itself). */
static __always_inline void vfs_outcome(struct vfs_wait *w, __u32 tid, long ret)
{
	/* (a plain variable: BPF_CORE_READ would relocate w->key, our own struct, too) */
	struct dentry *d = (struct dentry *)w->key;
	struct ow_outcome o = {
		.tid = tid,
		.ret = (__s32)ret,
		.key = w->key,
		.mode = ret ? 0 : BPF_CORE_READ(d, d_inode, i_mode),
	};

	bpf_map_delete_elem(&vfs_wait, &tid);
	bpf_ringbuf_output(&events, &o, sizeof(o), 0);
}

/* fexit: the function's dentry argument and its return value at once. */
static __always_inline int vfs_done(void *ctx, __u64 key)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct vfs_wait *w = bpf_map_lookup_elem(&vfs_wait, &tid);
	__u64 ret = 0;

	if (!w || !w->key || w->key != key)
		return 0;
	bpf_get_func_ret(ctx, &ret);
	vfs_outcome(w, tid, (long)(int)ret);
	return 0;
}

/* kprobe: entering the completing function arms the thread's wait; other completing
 * functions called inside it (overlayfs calls vfs_* of the layer below) only nest. */
static __always_inline int vfs_arm(__u64 key)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct vfs_wait *w = bpf_map_lookup_elem(&vfs_wait, &tid);

	if (!w || !w->key)
		return 0;
	if (w->armed)
		w->depth++;
	else if (w->key == key)
		w->armed = 1;
	return 0;
}

static __always_inline int vfs_ret(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct vfs_wait *w = bpf_map_lookup_elem(&vfs_wait, &tid);

	if (!w || !w->armed)
		return 0;
	if (w->depth) {
		w->depth--;
		return 0;
	}
	vfs_outcome(w, tid, (long)(int)ret);
	return 0;
}

/* The functions that do the ops, with the argument that holds the dentry the hook saw. */
#define FX_DONE(fn, argi)                                                                  \
	SEC("?fexit/" #fn)                                                                 \
	int fx_done_##fn(void *ctx)                                                        \
	{                                                                                  \
		__u64 a = 0;                                                               \
		bpf_get_func_arg(ctx, argi, &a);                                           \
		return vfs_done(ctx, a);                                                   \
	}                                                                                  \
	SEC("?kprobe/" #fn)                                                                \
	int kp_arm_##fn(struct pt_regs *ctx)                                               \
	{                                                                                  \
		return vfs_arm(argi == 0 ? PT_REGS_PARM1(ctx) : argi == 1 ? PT_REGS_PARM2(ctx) \
								    : PT_REGS_PARM3(ctx)); \
	}                                                                                  \
	SEC("?kretprobe/" #fn)                                                             \
	int kr_done_##fn(struct pt_regs *ctx)                                              \
	{                                                                                  \
		return vfs_ret(PT_REGS_RC(ctx));                                           \
	}

FX_DONE(vfs_mkdir, 2)
FX_DONE(vfs_mknod, 2)
FX_DONE(vfs_create, 2)
FX_DONE(vfs_symlink, 2)
FX_DONE(vfs_link, 0)
FX_DONE(vfs_unlink, 2)
FX_DONE(vfs_rmdir, 2)
FX_DONE(notify_change, 1)
FX_DONE(vfs_setxattr, 1)
FX_DONE(vfs_removexattr, 1)
FX_DONE(vfs_set_acl, 1)
FX_DONE(vfs_remove_acl, 1)

/* vfs_rename(struct renamedata *): matched on the old dentry. */
SEC("?fexit/vfs_rename")
int fx_done_vfs_rename(void *ctx)
{
	__u64 a = 0;

	bpf_get_func_arg(ctx, 0, &a);
	return vfs_done(ctx, (__u64)BPF_CORE_READ((struct renamedata *)a, old_dentry));
}

SEC("?kprobe/vfs_rename")
int kp_arm_vfs_rename(struct pt_regs *ctx)
{
	struct renamedata *rd = (struct renamedata *)PT_REGS_PARM1(ctx);

	return vfs_arm((__u64)BPF_CORE_READ(rd, old_dentry));
}

SEC("?kretprobe/vfs_rename")
int kr_done_vfs_rename(struct pt_regs *ctx)
{
	return vfs_ret(PT_REGS_RC(ctx));
}

static __always_inline __u64 path_mnt(const struct path *p)
{
	return (__u64)BPF_CORE_READ(p, mnt);
}

static __always_inline int on_mkdir(const struct path *dir, struct dentry *d, __u32 mode)
{
	__u64 dv = num(d);

	return vfs_event(OW_OP_MKDIR, OW_F_NOFOLLOW, mode & 07777, dv, path_mnt(dir), 0, 0, 0, 0,
			 0xffffffff, 0xffffffff, dv);
}

#define NR_mknod_ 133
#define NR_mknodat_ 259

static __always_inline int on_mknod(const struct path *dir, struct dentry *d, __u32 mode)
{
	__u32 op = ((mode & S_IFMT) == S_IFREG || (mode & S_IFMT) == 0) ? OW_OP_CREATE : OW_OP_MKNOD;
	__u64 dv = num(d);

	/* open(O_CREAT) passes here too (may_o_create): file_open reports that create, with
	 * the file's real mode. A regular file from mknod(2) is reported here. */
	if (op == OW_OP_CREATE) {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		long nr = BPF_CORE_READ(regs, orig_ax);

		if (nr != NR_mknod_ && nr != NR_mknodat_)
			return 0;
	}
	return vfs_event(op, OW_F_NOFOLLOW, mode & 07777, dv, path_mnt(dir), 0, 0, 0, 0, 0xffffffff,
			 0xffffffff, dv);
}

static __always_inline int on_symlink(const struct path *dir, struct dentry *d, const char *old)
{
	__u64 dv = num(d);

	return vfs_event(OW_OP_SYMLINK, OW_F_NOFOLLOW, 0xffffffff, dv, path_mnt(dir), 0, 0, old,
			 OW_SLOT_TARGET, 0xffffffff, 0xffffffff, dv);
}

static __always_inline int on_link(struct dentry *old, const struct path *new_dir, struct dentry *new)
{
	__u64 m = path_mnt(new_dir), ov = num(old), nv = num(new);

	/* Naming an O_TMPFILE file is how it gets created. */
	if (BPF_CORE_READ(old, d_inode, i_nlink) == 0)
		return vfs_event(OW_OP_CREATE, OW_F_NOFOLLOW | OW_F_TMPFILE,
				 BPF_CORE_READ(old, d_inode, i_mode) & 07777, nv, m, 0, 0, 0, 0,
				 0xffffffff, 0xffffffff, ov);
	return vfs_event(OW_OP_LINK, OW_F_NOFOLLOW, 0xffffffff, ov, m, nv, m, 0, 0, 0xffffffff,
			 0xffffffff, ov);
}

static __always_inline int on_rename(const struct path *old_dir, struct dentry *old,
				     const struct path *new_dir, struct dentry *new, __u32 flags)
{
	__u64 ov = num(old);

	return vfs_event(OW_OP_RENAME,
			 OW_F_NOFOLLOW | ((flags & RENAME_EXCHANGE) ? OW_F_EXCHANGE : 0),
			 0xffffffff, ov, path_mnt(old_dir), num(new), path_mnt(new_dir), 0, 0,
			 0xffffffff, 0xffffffff, ov);
}

static __always_inline int on_remove(__u32 op, const struct path *dir, struct dentry *d)
{
	__u64 dv = num(d);

	return vfs_event(op, OW_F_NOFOLLOW, 0xffffffff, dv, path_mnt(dir), 0, 0, 0, 0, 0xffffffff,
			 0xffffffff, dv);
}

static __always_inline int on_attr(__u32 op, const struct path *p, __u32 mode, __u32 uid,
				   __u32 gid)
{
	__u64 dv = (__u64)BPF_CORE_READ(p, dentry);

	if (op == OW_OP_TRUNCATE) {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		struct vfs_wait *w = bpf_map_lookup_elem(&vfs_wait, &tid);

		if (w && w->trunc_skip == dv) {
			w->trunc_skip = 0;
			return 0; /* open(O_TRUNC): reported as the write open */
		}
	}
	return vfs_event(op, 0, mode, dv, path_mnt(p), 0, 0, 0, 0, uid, gid, dv);
}

static __always_inline int on_open(struct file *f)
{
	__u32 fmode = BPF_CORE_READ(f, f_mode);
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	__u64 dv = (__u64)BPF_CORE_READ(f, f_path.dentry);
	__u32 op;

	if (!(fmode & (FMODE_WRITE | FMODE_CREATED)))
		return 0;
	if (BPF_CORE_READ(inode, i_nlink) == 0)
		return 0; /* O_TMPFILE: reported when linked */
	op = (fmode & FMODE_CREATED) ? OW_OP_CREATE : OW_OP_WRITE;
	if (op == OW_OP_WRITE && (BPF_CORE_READ(f, f_flags) & O_TRUNC)) {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		struct vfs_wait w = { .trunc_skip = dv };

		bpf_map_update_elem(&vfs_wait, &tid, &w, BPF_ANY);
	}
	/* The create or the opening for write is done when the file is opened. */
	return vfs_event(op, 0,
			 op == OW_OP_CREATE ? (BPF_CORE_READ(inode, i_mode) & 07777) : 0xffffffff,
			 dv, (__u64)BPF_CORE_READ(f, f_path.mnt), 0, 0, 0, 0, 0xffffffff, 0xffffffff, 0);
}

static __always_inline int on_xattr(__u32 op, struct dentry *d, const char *name)
{
	__u64 dv = num(d);

	return vfs_event(op, 0, 0xffffffff, dv, 0, 0, 0, name, OW_SLOT_XATTR, 0xffffffff,
			 0xffffffff, dv);
}

/* kuid_t and kgid_t are one-field structs passed by value, in a register each: taken as
 * integers here. */
#define VFS_HOOKS(KIND, PFX, FN, PROG)                                                           \
	SEC("?" KIND "/" PFX "path_mkdir")                                                 \
	int PROG(FN##_mkdir, const struct path *dir, struct dentry *d, umode_t mode)   \
	{ on_mkdir(dir, d, mode); return 0; }                                              \
	SEC("?" KIND "/" PFX "path_mknod")                                                 \
	int PROG(FN##_mknod, const struct path *dir, struct dentry *d, umode_t mode,   \
		     unsigned int dev)                                                     \
	{ on_mknod(dir, d, mode); return 0; }                                              \
	SEC("?" KIND "/" PFX "path_symlink")                                               \
	int PROG(FN##_symlink, const struct path *dir, struct dentry *d,               \
		     const char *old)                                                      \
	{ on_symlink(dir, d, old); return 0; }                                             \
	SEC("?" KIND "/" PFX "path_link")                                                  \
	int PROG(FN##_link, struct dentry *old, const struct path *dir,                \
		     struct dentry *new)                                                   \
	{ on_link(old, dir, new); return 0; }                                              \
	SEC("?" KIND "/" PFX "path_rename")                                                \
	int PROG(FN##_rename, const struct path *od, struct dentry *o,                 \
		     const struct path *nd, struct dentry *n, unsigned int flags)          \
	{ on_rename(od, o, nd, n, flags); return 0; }                                      \
	SEC("?" KIND "/" PFX "path_unlink")                                                \
	int PROG(FN##_unlink, const struct path *dir, struct dentry *d)                \
	{ on_remove(OW_OP_UNLINK, dir, d); return 0; }                                     \
	SEC("?" KIND "/" PFX "path_rmdir")                                                 \
	int PROG(FN##_rmdir, const struct path *dir, struct dentry *d)                 \
	{ on_remove(OW_OP_RMDIR, dir, d); return 0; }                                      \
	SEC("?" KIND "/" PFX "path_truncate")                                              \
	int PROG(FN##_truncate, const struct path *p)                                  \
	{ on_attr(OW_OP_TRUNCATE, p, 0xffffffff, 0xffffffff, 0xffffffff); return 0; }      \
	SEC("?" KIND "/" PFX "file_truncate")                                              \
	int PROG(FN##_ftruncate, struct file *f)                                       \
	{ on_attr(OW_OP_TRUNCATE, &f->f_path, 0xffffffff, 0xffffffff, 0xffffffff); return 0; } \
	SEC("?" KIND "/" PFX "path_chmod")                                                 \
	int PROG(FN##_chmod, const struct path *p, umode_t mode)                       \
	{ on_attr(OW_OP_CHMOD, p, mode & 07777, 0xffffffff, 0xffffffff); return 0; }       \
	SEC("?" KIND "/" PFX "path_chown")                                                 \
	int PROG(FN##_chown, const struct path *p, __u64 uid, __u64 gid)               \
	{ on_attr(OW_OP_CHOWN, p, 0xffffffff, (__u32)uid, (__u32)gid); return 0; }         \
	SEC("?" KIND "/" PFX "file_open")                                                  \
	int PROG(FN##_open, struct file *f)                                            \
	{ on_open(f); return 0; }                                                          \
	SEC("?" KIND "/" PFX "inode_setxattr")                                             \
	int PROG(FN##_setxattr, void *idmap, struct dentry *d, const char *name)       \
	{ on_xattr(OW_OP_SETXATTR, d, name); return 0; }                                   \
	SEC("?" KIND "/" PFX "inode_removexattr")                                          \
	int PROG(FN##_removexattr, void *idmap, struct dentry *d, const char *name)    \
	{ on_xattr(OW_OP_REMOVEXATTR, d, name); return 0; }                                \
	/* 6.2+: POSIX ACLs (system.posix_acl_*) no longer pass the xattr hooks */         \
	SEC("?" KIND "/" PFX "inode_set_acl")                                              \
	int PROG(FN##_setacl, void *idmap, struct dentry *d, const char *name)         \
	{ on_xattr(OW_OP_SETXATTR, d, name); return 0; }                                   \
	SEC("?" KIND "/" PFX "inode_remove_acl")                                           \
	int PROG(FN##_removeacl, void *idmap, struct dentry *d, const char *name)      \
	{ on_xattr(OW_OP_REMOVEXATTR, d, name); return 0; }

VFS_HOOKS("lsm", "", lsm, BPF_PROG)
VFS_HOOKS("fentry", "security_", fentry, BPF_PROG)
VFS_HOOKS("kprobe", "security_", kp, BPF_KPROBE)
