/* SPDX-License-Identifier: GPL-2.0 */
/* The one definition of what crosses from the kernel to user space. Fixed-width fields only;
 * the Rust side uses the skeleton's generated types with `plain`, never a hand-written mirror. */
#ifndef OWNWATCH_H
#define OWNWATCH_H

#define OW_MAX_TREES 64
#define OW_COMM_LEN 16
/* Variable part of a record: a sequence of items. Deep paths (120 levels of 255-byte names)
 * must fit, so the data area is large; only the used length is copied to the ring buffer. */
#define OW_DATA_MAX 131072
#define OW_NO_TREE 0xffffffffu
/* A u32 field of the record with no value: mode unknown, owner unchanged, audit ids unset
 * (user space: UNSET). */
#define OW_UNSET 0xffffffffu

enum ow_op {
	OW_OP_CREATE = 0,
	OW_OP_MKDIR,
	OW_OP_MKNOD,
	OW_OP_SYMLINK,
	OW_OP_LINK,
	OW_OP_RENAME,
	OW_OP_UNLINK,
	OW_OP_RMDIR,
	OW_OP_CHMOD,
	OW_OP_CHOWN,
	OW_OP_TRUNCATE,
	OW_OP_SETXATTR,
	OW_OP_REMOVEXATTR,
	OW_OP_WRITE,
	OW_OP_COUNT,
};

enum ow_backend {
	OW_BACKEND_LSM = 0,
	OW_BACKEND_FENTRY,
	OW_BACKEND_KPROBE,
	OW_BACKEND_TRACEPOINT,
};

/* What the reader says it does (reader_state, bpf/lib/submit.h): whether a record must wake it. */
enum ow_reader {
	OW_READER_IDLE = 0, /* sleeps until woken */
	OW_READER_POLLS,    /* sleeps on a short timer, then reads the ring */
	OW_READER_AWAKE,    /* reads the ring again before it sleeps */
};

/* Which field of the event the following path items describe. */
enum ow_slot {
	OW_SLOT_PATH = 0, /* the object (old name for rename/link) */
	OW_SLOT_NEW,      /* new name for rename/link */
	OW_SLOT_TARGET,   /* symlink text */
	OW_SLOT_XATTR,    /* xattr name */
	OW_SLOT_CWD,      /* caller's cwd, sent with "/proc/..." strings */
	OW_SLOT_SEEN,     /* a dentry whose inode's ctime the op changed (repeatable) */
	OW_SLOT_EXE,      /* the caller's executable (walk) */
	OW_SLOT_ARGV,     /* its command line: NUL-separated (string) */
	OW_SLOT_TTY,      /* its controlling terminal's name (string) */
	OW_SLOT_CGROUP,   /* its cgroup v2 path (names leaf first, after a SEG of dev 0) */
	OW_SLOT_PARENTS,  /* its ancestors (OW_ITEM_PARENT items, nearest first) */
};

#define OW_MAX_SEEN 4

enum ow_item {
	OW_ITEM_SLOT = 1, /* u8 slot follows (len 1) */
	OW_ITEM_SEG,      /* a walk enters a superblock: u32 kernel dev (len 4) */
	OW_ITEM_NAME,     /* one dentry name, leaf first */
	OW_ITEM_MNTROOT,  /* the walk passed the root of the mount it came through (len 0) */
	OW_ITEM_WALKEND,  /* struct ow_walkend */
	OW_ITEM_STR,      /* a string copied from the caller (path as given, link text) */
	OW_ITEM_SAMEAS,   /* this walk is the one of slot u8 (len 1): deep paths are sent once */
	OW_ITEM_PARENT,   /* struct ow_parent */
	/* The writer's exe, tty and cgroup are sent once per process (and again when one of
	 * them changes): the record that sends them has an IDGEN (struct ow_ident) before its
	 * OW_SLOT_EXE; later records of the process carry an IDREF with the same ow_ident in
	 * their place, which user space replaces with the items the IDGEN came with (those up
	 * to the OW_SLOT_PARENTS slot, or the record's end). */
	OW_ITEM_IDGEN,
	OW_ITEM_IDREF,
	/* A changed dentry's walk told by one walked whole before it in the record (struct
	 * ow_walkrel, in an OW_SLOT_SEEN): sent instead of a second walk up the same chain */
	OW_ITEM_WALKREL,
	/* An fd op's walk (tracepoint backend) that a later record may refer to: struct
	 * ow_walkkeep, right after the walk's WALKEND. The walk is the `len` bytes before it,
	 * from its SEG; user space keeps it as its CPU's last kept walk. */
	OW_ITEM_WALKKEEP,
	/* In place of a walk: the kept walk `seq` of CPU `cpu` (struct ow_walkref), which the
	 * kernel found unchanged: the same dentries up to the superblock's root, each with the
	 * same name, the same roots. Its WALKEND's mode is this one. */
	OW_ITEM_WALKREF,
	/* A walk that found a watched root stops there when this CPU sent the names above
	 * that root lately and they are still the same (the same dentries up to the
	 * superblock's root, each with the same name): struct ow_rootref in their place, which
	 * user space replaces with them. A walk that sends them whole (walk.h) follows them with
	 * an OW_ITEM_ROOTKEEP (struct ow_rootkeep), once per record at most: user space keeps
	 * them as its CPU's, from the end of that record. */
	OW_ITEM_ROOTREF,
	OW_ITEM_ROOTKEEP,
	/* The rest of a walk is this CPU's kept walk from one of its directories up (struct
	 * ow_walkup): a record of a file next to the last one kept (tar's next file, a create
	 * in a directory just made) sends its own names up to that directory, then this, then
	 * its WALKEND. User space puts the kept walk's items from `from` on (all but its
	 * WALKEND) in its place. */
	OW_ITEM_WALKUP,
};

/* What a process's exe, tty and cgroup items depend on: while all of it is the same, they
 * are. Unique to the process (tgid and start time), the program it runs (exec), and the
 * exe, tty and cgroup themselves. */
struct ow_ident {
	__u32 tgid;
	__u32 exe_gone; /* the exe was deleted (OW_F_UNLINKED) */
	__u64 start;   /* the thread group leader's start time (a reused pid differs) */
	__u64 exec_id; /* self_exec_id: an exec */
	__u64 mm;
	__u64 exe;     /* mm->exe_file (prctl(PR_SET_MM_EXE_FILE) changes it) */
	__u64 tty;
	__u64 cgid;    /* the cgroup v2 kernfs node id */
};

struct ow_parent {
	__u32 pid;
	__u8 comm[OW_COMM_LEN];
};

enum ow_flags {
	OW_F_TRUNCATED = 1,   /* a walk or string was cut short */
	OW_F_EXCHANGE = 2,    /* RENAME_EXCHANGE */
	OW_F_NOFOLLOW = 4,    /* the op does not follow a final symlink */
	OW_F_ABSOLUTE = 8,    /* the string was absolute: the walk is the caller's root */
	OW_F_TMPFILE = 16,    /* link of an O_TMPFILE file: reported as create */
	OW_F_EMPTY_PATH = 32, /* AT_EMPTY_PATH on an fd: the walk is the object */
	OW_F_NEW_ABSOLUTE = 64, /* the same for the new name (rename, link); set by the
				 * tracepoint backend, not read by user space (it has the string) */
	OW_F_SEEN_OBJECT = 128, /* tracepoint backend: the op changes its object's attributes only
				 * and the first OW_SLOT_SEEN walk is that object (its only
				 * name), whole: its path string is not sent (the slot is
				 * empty). Without it, user space resolves the string. */
	OW_F_NO_RET = 256,    /* the hook runs before the op: its outcome is unknown */
	OW_F_PENDING = 512,   /* lsm/fentry/kprobe: an ow_outcome record for this tid follows
			       * when the op completes; report only if it succeeded. `ret`
			       * holds the low 32 bits of the outcome's key till then */
	OW_F_PROC_FD = 1024,  /* the string is "/proc/self/fd/N" of the caller: the walk is
			       * that fd's file (the object) */
	OW_F_WALKKEEP = 2048, /* the record has an OW_ITEM_WALKKEEP */
	OW_F_WALKREF = 4096,  /* the record has an OW_ITEM_WALKREF or an OW_ITEM_WALKUP */
	OW_F_UNLINKED = 8192, /* walkend of the writer's exe: the file was deleted since it
			       * was run (/proc says "<path> (deleted)") */
	OW_F_ROOTKEEP = 16384, /* the record has an OW_ITEM_ROOTKEEP */
};

/* The functions that do the ops (hooks/vfs.h FX_DONE): an outcome comes from each when it
 * returns. Their arguments move between kernels (an idmap came first in 5.12, vfs_create lost
 * its dir and most gained a delegated_inode in 7.x) and vfs_mkdir returns a dentry since 6.15,
 * so user space says where everything is, from this kernel's BTF (struct ow_fn_args). */
enum ow_done {
	OW_DONE_VFS_MKDIR = 0,
	OW_DONE_VFS_MKNOD,
	OW_DONE_VFS_CREATE,
	OW_DONE_VFS_SYMLINK,
	OW_DONE_VFS_LINK,
	OW_DONE_VFS_UNLINK,
	OW_DONE_VFS_RMDIR,
	OW_DONE_NOTIFY_CHANGE,
	OW_DONE_VFS_SETXATTR,
	OW_DONE_VFS_REMOVEXATTR,
	OW_DONE_VFS_SET_ACL,
	OW_DONE_VFS_REMOVE_ACL,
	OW_DONE_VFS_RENAME,
	OW_DONE_COUNT,
};

/* The xattr and ACL hooks: an idmap came first in 5.12 (6.3: a mnt_idmap). */
enum ow_xhook {
	OW_XHOOK_SETXATTR = 0,
	OW_XHOOK_REMOVEXATTR,
	OW_XHOOK_SET_ACL,
	OW_XHOOK_REMOVE_ACL,
	OW_XHOOK_COUNT,
};

/* Argument positions (0 = first) in this kernel, set by user space before load. */
struct ow_fn_args {
	__u8 done_key[OW_DONE_COUNT];     /* the argument the outcome is matched on */
	__u8 done_nargs[OW_DONE_COUNT];   /* the argument count: fexit's return value follows */
	__u8 done_ret_ptr[OW_DONE_COUNT]; /* returns a dentry or an ERR_PTR, not an int */
	__u8 xattr_dentry[OW_XHOOK_COUNT];
	__u8 xattr_name[OW_XHOOK_COUNT];
	__u8 _pad[3];
};

struct ow_walkend {
	__u32 tree;  /* index of the first watched root on the chain, or OW_NO_TREE */
	__u32 flags; /* OW_F_TRUNCATED */
	__u32 mode;  /* i_mode of the walk's first inode, 0 for a negative dentry */
	__u32 tree_depth; /* how many names lie below the watched root found */
};

/* OW_ITEM_WALKREL: the dentry is the parent of the changed dentry `of` of this record (up:
 * that walk's names but its first), or a child of it (!up: the name that follows this
 * struct, to the item's end, then that walk's names). tree, tree_depth and mode as in
 * struct ow_walkend, of this dentry; its walk is whole, like the one it comes from. */
struct ow_walkrel {
	__u8 of;
	__u8 up;
	__u16 _pad;
	__u32 tree;
	__u32 tree_depth;
	__u32 mode;
};

/* OW_ITEM_WALKKEEP and OW_ITEM_WALKREF */
struct ow_walkkeep {
	__u32 cpu;
	__u32 seq; /* this CPU's count of kept walks, never 0 */
	__u32 len; /* the walk's bytes before this item */
};

struct ow_rootref {
	__u32 cpu;
	__u32 seq; /* the ROOTKEEP whose names above the root go here */
};

struct ow_rootkeep {
	__u32 cpu;
	__u32 seq; /* this CPU's count of kept names above a root, never 0 */
	__u32 len; /* their bytes, before this item (NAME and MNTROOT items) */
};

struct ow_walkref {
	__u32 cpu;
	__u32 seq;
	__u32 mode; /* i_mode of the walk's first inode now */
};

struct ow_walkup {
	__u32 cpu;
	__u32 seq;
	__u32 from; /* where the directory's items begin in that walk's bytes (from its SEG) */
};

struct ow_event {
	__u64 ts_boot_ns;
	__u32 op;
	__u32 backend;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 fsuid;
	__u32 fsgid;
	__u32 mode;    /* chmod/create/mkdir/mknod, OW_UNSET when unknown */
	__u32 new_uid; /* chown, OW_UNSET = unchanged */
	__u32 new_gid;
	__s32 ret;
	__u32 flags;   /* enum ow_flags */
	__u32 tree;    /* tree found by the kernel walk, or OW_NO_TREE */
	__u32 data_len;
	__u32 loginuid;  /* audit login uid, OW_UNSET when unset */
	__u32 sessionid; /* audit session, OW_UNSET when unset */
	/* where the writer's identity (its ARGV slot item) starts in the data, plus 1; 0: none.
	 * User space checks the item is there before it trusts this. */
	__u32 ident_at;
	__u8 comm[OW_COMM_LEN];
};

/* The outcome of the last OW_F_PENDING event of a thread (lsm, fentry, kprobe backends): sent
 * by the function that does the op (vfs_mkdir, notify_change, ...) when it returns. Told apart
 * from ow_event by its size. */
struct ow_outcome {
	__u32 tid;
	__s32 ret;
	__u64 key; /* the dentry the op was matched on */
	__u32 mode; /* i_mode of that dentry's inode after a successful op, else 0 */
	__u32 pad;
};

#endif
