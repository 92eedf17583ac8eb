/* SPDX-License-Identifier: GPL-2.0 */
/* Dentry walks up to a watched root, and paths given as strings relative to a directory. */
#ifndef OW_LIB_WALK_H
#define OW_LIB_WALK_H

static __always_inline struct mount *real_mount(struct vfsmount *mnt)
{
	return (struct mount *)((void *)mnt - bpf_core_field_offset(struct mount, mnt));
}

/* 7.x moved d_alias out of the union d_u into an anonymous one: dentry.d_alias. */
struct dentry___anon_alias {
	struct hlist_node d_alias;
} __attribute__((preserve_access_index));

/* Where d_alias sits in struct dentry on this kernel. */
static __always_inline __u64 d_alias_offset(void)
{
	if (bpf_core_field_exists(struct dentry, d_u))
		return bpf_core_field_offset(struct dentry, d_u.d_alias);
	return bpf_core_field_offset(struct dentry___anon_alias, d_alias);
}

/* This CPU's scratch (the record being built). */
static __always_inline struct scratch *this_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&heap, &cpu);
}

/* The tree whose root is `key`, or NULL. */
static __always_inline __u32 *root_tree(const struct root_key *key)
{
	__u32 n = roots_fast_n, c = (n >> 8) & 1;

	n &= 0xff;
	if (n == 0)
		return bpf_map_lookup_elem(&roots, key);
	for (__u32 i = 0; i < OW_FAST_ROOTS && i < n; i++)
		if (roots_fast[c][i].ino == key->ino && roots_fast[c][i].dev == key->dev)
			return &roots_fast_tree[c][i];
	return 0;
}

/* The tree whose root is dentry d (its inode non-NULL), or NULL. */
static __always_inline __u32 *dentry_root_tree(struct dentry *d, struct inode *inode)
{
	struct root_key key;

	key.dev = KREAD(struct super_block, KREAD(struct dentry, d, d_sb), s_dev);
	key.ino = KREAD(struct inode, inode, i_ino);
	return root_tree(&key);
}

/* Whether a watched root lies on superblock dev (1 where the roots are too many to tell). */
static __always_inline int dev_has_root(__u32 dev)
{
	__u32 n = roots_fast_n, c = (n >> 8) & 1;

	n &= 0xff;
	if (n == 0)
		return 1;
	for (__u32 i = 0; i < OW_FAST_ROOTS && i < n; i++)
		if (roots_fast[c][i].dev == dev)
			return 1;
	return 0;
}

/* Whether some mount of the superblock of d may lie inside a watched tree (devs: 2, or not
 * known, or a mount call since user space last read the mounts: lib/maps.h): a walk of d that
 * stayed within its superblock and found no root is then no answer. */
static __always_inline int sb_mounted_in_tree(struct dentry *d)
{
	if (mounts_gen != devs_gen)
		return 1;
	__u32 dev = KREAD(struct super_block, KREAD(struct dentry, d, d_sb), s_dev);
	__u32 *flag = bpf_map_lookup_elem(&devs, &dev);

	return !flag || *flag != 1;
}

/* Whether this CPU's last root chain (RC_KEPT) is still what is above its root: the same
 * dentries up to the superblock's root, each with the same name, and mnt_root (the walk's
 * mount's root) where it was among them. A global function: the loop is checked once. */
__noinline int ow_root_chain_same(__u64 mnt_root)
{
	struct scratch *s = this_scratch();
	struct root_chain *k;

	if (!s)
		return 0;
	k = RC_KEPT(s);
	for (int i = 0; i < RC_LEVELS; i++) {
		__u64 x, up;

		if (i >= k->levels)
			break;
		x = k->d[i];
		if (KREAD(struct dentry, x, d_name.hash_len) != k->hash[i])
			return 0;
		up = (__u64)KREAD(struct dentry, x, d_parent);
		/* (the superblock's root has no name, nor a MNTROOT before it) */
		if (i + 1 < k->levels ? up != k->d[(i + 1) & (RC_LEVELS - 1)] ||
						(x == mnt_root) != (i == k->mnt_level)
				      : up != x)
			return 0;
	}
	return k->levels != 0;
}

/* Room for the walk's end marker (struct ow_walkend and its header) after an item of `len`. */
#define WALKEND_ROOM (4 + sizeof(struct ow_walkend))

/* The walk found its root at d (tree and mount in the walk's state). Names above a root are
 * the same for every walk in it while nothing above is renamed or moved: where this CPU sent
 * them lately and they are still the same (ow_root_chain_same), an OW_ITEM_ROOTREF stands
 * for them and the walk ends here (1). Else the walk goes on and records them (RC_NEW), to
 * be kept by put_root_keep (once per record). A root at its superblock's root has none. */
static __always_inline int put_root_ref(struct builder *b, struct dentry *d)
{
	struct scratch *s = b->s;
	struct walk_state *c = &s->w;
	struct root_chain *k = RC_KEPT(s);
	__u32 off = s->off;

	/* (not in the identity: the exe's walk sends them whole) */
	if (c->full || s->ev.ident_at || KREAD(struct dentry, d, d_parent) == d)
		return 0;
	if (k->seq && k->d[0] == (__u64)d && k->tree == c->tree && k->gen == roots_gen &&
	    ow_root_chain_same(c->mnt_root)) {
		if (off + 4 + sizeof(struct ow_rootref) + WALKEND_ROOM > s->limit ||
		    put_hdr(b, OW_ITEM_ROOTREF, sizeof(struct ow_rootref)))
			return 0;
		put_u32(b, bpf_get_smp_processor_id());
		put_u32(b, k->seq);
		c->rootref = 1;
		c->done = 1;
		return 1;
	}
	if (!s->rc_new_ok) {
		c->rc_level = 0;
		c->rc_start = off;
		RC_NEW(s)->mnt_level = RC_OFF;
	}
	return 0;
}

/* The walk reached its superblock's root after its root: the names above that root it
 * recorded (put_root_ref) are kept, after an OW_ITEM_ROOTKEEP saying where they begin, when
 * they came whole and this record keeps no other. */
static __always_inline void put_root_keep(struct builder *b)
{
	struct scratch *s = b->s;
	struct walk_state *c = &s->w;
	struct root_chain *k;
	__u32 l = c->rc_level, off = s->off, seq;

	c->rc_level = RC_OFF;
	if (l > RC_LEVELS || c->full || s->rc_new_ok || off < c->rc_start ||
	    off + 4 + sizeof(struct ow_rootkeep) + WALKEND_ROOM > s->limit ||
	    put_hdr(b, OW_ITEM_ROOTKEEP, sizeof(struct ow_rootkeep)))
		return;
	seq = s->rc_seq + 1;
	if (!seq)
		seq = 1;
	s->rc_seq = seq;
	k = RC_NEW(s);
	k->levels = l;
	k->tree = c->tree;
	k->gen = roots_gen;
	k->seq = seq;
	s->rc_new_ok = 1;
	put_u32(b, bpf_get_smp_processor_id());
	put_u32(b, seq);
	put_u32(b, off - c->rc_start);
	s->ev.flags |= OW_F_ROOTKEEP;
}

/* The walk is at the root of a superblock. Its path within the superblock is complete, which
 * user space maps to the host's view with mountinfo. Cross to the parent mount only while no
 * tree was found: a tree may hold other mounts. Returns 1 when the walk is done. */
static __always_inline long walk_cross_mount(struct builder *b)
{
	struct walk_state *c = &b->s->w;
	struct mount *m = (struct mount *)c->m;
	struct mount *pm;
	struct dentry *mp;

	if (c->tree != OW_NO_TREE || !m) {
		c->done = 1;
		put_root_keep(b);
		return 1;
	}
	pm = KREAD(struct mount, m, mnt_parent);
	if (!pm || pm == m) {
		c->done = 1;
		return 1;
	}
	c->crossed = 1;
	mp = KREAD(struct mount, m, mnt_mountpoint);
	b->s->above_mnt_root = 0;
	c->d = (__u64)mp;
	c->m = (__u64)pm;
	c->mnt_root = (__u64)KREAD(struct mount, pm, mnt.mnt_root);
	if (c->full || put_hdr(b, OW_ITEM_SEG, 4))
		c->full = 1;
	else
		put_u32(b, KREAD(struct super_block, KREAD(struct dentry, mp, d_sb), s_dev));
	return 0;
}

/* Whether this CPU's kept walk is still what it was from its level `from` up, below the
 * names above its root: the same dentries, each with the same name, up to the superblock's
 * root or (where it stopped at its root) to that root; the watched root's inode where it
 * was. */
static __always_inline int kept_links_same(struct scratch *s, __u32 from)
{
	struct kept_walk *c = KW_KEPT(s);
	struct inode *inode;
	__u64 x;

	/* (from its level on, not every level with those below skipped: the verifier follows
	 * one state per iteration, not one per iteration and level) */
	for (__u32 n = 0; n < KEPT_LEVELS; n++) {
		__u32 i = from + n;
		__u64 up;

		if (i >= c->levels)
			break;
		i &= KEPT_LEVELS - 1;
		x = c->d[i];
		if (KREAD(struct dentry, x, d_name.hash_len) != c->hash[i])
			return 0;
		up = (__u64)KREAD(struct dentry, x, d_parent);
		/* (a walk that stopped at its root: above it, the root chain it referred to) */
		if (i + 1 < c->levels ? up != c->d[(i + 1) & (KEPT_LEVELS - 1)]
				      : !c->rc_seq && up != x)
			return 0;
	}
	x = c->d[c->root_level & (KEPT_LEVELS - 1)];
	inode = KREAD(struct dentry, x, d_inode);
	return (__u64)inode == c->root_inode && KREAD(struct inode, inode, i_ino) == c->root_ino;
}

/* ... and, where it stopped at its root, the root chain it referred to (the names above). */
static __always_inline int kept_above_same(struct scratch *s)
{
	struct kept_walk *c = KW_KEPT(s);

	return !c->rc_seq || (RC_KEPT(s)->seq == c->rc_seq && ow_root_chain_same(c->mnt_root));
}

/* kept_links_same from a level only known at run time, for ow_walk_up. A global function:
 * the verifier checks it once. Inline there, each of the loop's exits (a level and a length
 * known to differ) took the rest of ow_walk_up along as a state of its own: the verifier
 * processed 5x the instructions in every program that walks (tp_ctime_set 10,577 before
 * ow_walk_up, 50,295 with it inline, ~15k now; all tracepoint programs 103k, 302k, 123k on
 * 6.18), and every agent's start under TCG, which the kernel matrix does a few hundred times,
 * took that much longer. The root chain's check stays in ow_walk_up: from here it would be a
 * seventh frame, and 6.1 refuses the stack of that chain (544 bytes, tp_sys_exit).
 * ow_kept_walk_same checks from level 0, as its last statement: inline there costs the
 * verifier little. */
__noinline int ow_kept_links_from(__u32 from)
{
	struct scratch *s = this_scratch();

	return s ? kept_links_same(s, from) : 0;
}

/* The walk paused at its level `steps` (its own names below), at the kept walk's dentry up_j,
 * through the same mount (walk_step): when the kept walk is still what it was from there up
 * (ow_kept_links_from, kept_above_same), an OW_ITEM_WALKUP ends this walk, which user space
 * completes with the kept walk's items from that directory on. tar writes each file of a
 * directory after the one before it, a create follows the mkdir of its directory: their names
 * up to the tree's root are sent once, not once per file. A walk being kept (chain) takes the
 * kept walk's dentries from there as its own. 1 when the walk is done; else it goes on. */
__noinline int ow_walk_up(void)
{
	struct builder bb = { .s = this_scratch() };
	struct scratch *s = bb.s;
	struct walk_state *c;
	struct kept_walk *k, *n;
	__u32 j, levels, at, from, level;

	if (!s)
		return 0;
	c = &s->w;
	level = c->steps;
	k = KW_KEPT(s);
	levels = k->levels;
	j = c->up_j;
	if (!k->seq || k->mnt_root != c->mnt_root || k->gen != roots_gen ||
	    levels > KEPT_LEVELS || j > k->root_level || k->root_level >= levels ||
	    !ow_kept_links_from(j) || !kept_above_same(s))
		return 0;
	at = s->off;
	if (at + 4 + sizeof(struct ow_walkup) + WALKEND_ROOM > s->limit ||
	    put_hdr(&bb, OW_ITEM_WALKUP, sizeof(struct ow_walkup)))
		return 0;
	from = k->off[j & (KEPT_LEVELS - 1)];
	put_u32(&bb, bpf_get_smp_processor_id());
	put_u32(&bb, k->seq);
	put_u32(&bb, from);
	s->ev.flags |= OW_F_WALKREF;
	c->tree = k->tree;
	/* (a kept walk is whole: one name for each dentry below its root) */
	c->tree_depth = c->names + (k->root_level - j);
	c->rootref = k->rc_seq != 0;
	c->done = 1;
	if (!c->chain)
		return 1;
	n = KW_NEW(s);
	for (__u32 x = 0; x < KEPT_LEVELS; x++) {
		__u32 a = level + x, b = j + x;

		if (b >= levels || a >= KEPT_LEVELS)
			break;
		/* (masks clang cannot fold into a pointer it steps: the verifier wants each
		 * index bounded where it is used) */
		asm volatile("%0 &= 15" : "+r"(a));
		asm volatile("%0 &= 15" : "+r"(b));
		n->d[a] = k->d[b];
		n->hash[a] = k->hash[b];
		n->off[a] = at - c->start + k->off[b] - from;
	}
	n->root_level = level + k->root_level - j;
	n->root_inode = k->root_inode;
	n->root_ino = k->root_ino;
	/* (more than KEPT_LEVELS: not kept) */
	c->steps = level + levels - j;
	return 1;
}

/* One step of the walk: the dentry's tree, if it is a watched root, and its name; then its
 * parent, or the mount it is mounted on. Returns 1 when the walk is done. */
static __always_inline long walk_step(struct builder *b)
{
	struct walk_state *c = &b->s->w;
	struct dentry *d = (struct dentry *)c->d;
	struct dentry *parent;
	struct inode *inode;
	const unsigned char *name;
	__u32 level;

	if (!d) {
		c->done = 1;
		return 1;
	}
	level = c->steps;
	c->steps = level + 1;
	if (c->chain && level < KEPT_LEVELS) {
		/* (a walk to keep: put_kept_walk) */
		struct kept_walk *k = KW_NEW(b->s);

		k->d[level & (KEPT_LEVELS - 1)] = (__u64)d;
		k->hash[level & (KEPT_LEVELS - 1)] = KREAD(struct dentry, d, d_name.hash_len);
		k->off[level & (KEPT_LEVELS - 1)] = b->s->off - c->start;
	}
	inode = KREAD(struct dentry, d, d_inode);
	if (inode && c->tree == OW_NO_TREE) {
		__u32 *t = dentry_root_tree(d, inode);

		if (t) {
			c->tree = *t;
			if (c->chain) {
				struct kept_walk *k = KW_NEW(b->s);

				k->root_level = level;
				k->root_inode = (__u64)inode;
				k->root_ino = KREAD(struct inode, inode, i_ino);
			}
			/* A bind mount of a subdirectory is walked on up its superblock
			 * (identity), but those names are not in the path user space prints:
			 * they count only when the root was found there. */
			c->tree_depth = b->s->above_mnt_root ? c->names : b->s->view_names;
			if (put_root_ref(b, d))
				return 1;
		}
	}
	/* The parent or grandparent, where tar's next file or a new directory's first one meet
	 * the walk before: a dentry of the kept walk below its root pauses the walk, for
	 * ow_put_walk to try ow_walk_up (from there: the verifier allows 8 frames), and to
	 * take this step again if it fails. */
	if (c->up && (level == 1 || level == 2) && c->tree == OW_NO_TREE && !c->full &&
	    !b->s->above_mnt_root) {
		struct kept_walk *k = KW_KEPT(b->s);

		/* (kept: the vfsmount; the walk's state: its struct mount) */
		if (k->seq && k->m == b->s->arg_m) {
			for (__u32 j = 0; j < KEPT_LEVELS; j++) {
				if (j >= k->root_level)
					break;
				if (k->d[j] == (__u64)d) {
					c->up_j = j;
					c->steps = level;
					c->paused = 1;
					return 1;
				}
			}
		}
	}
	if (c->rc_level < RC_LEVELS) {
		/* (above the root: recorded for put_root_keep) */
		struct root_chain *k = RC_NEW(b->s);
		__u32 l = c->rc_level;

		k->d[l & (RC_LEVELS - 1)] = (__u64)d;
		k->hash[l & (RC_LEVELS - 1)] = KREAD(struct dentry, d, d_name.hash_len);
		if ((__u64)d == c->mnt_root && KREAD(struct dentry, d, d_parent) != d)
			k->mnt_level = l;
		c->rc_level = l + 1;
	} else if (c->rc_level == RC_LEVELS) {
		c->rc_level = RC_OFF; /* deeper than kept: sent whole, not kept */
	}
	parent = KREAD(struct dentry, d, d_parent);
	if (parent == d)
		return walk_cross_mount(b);
	c->d = (__u64)parent;
	if (c->full)
		return 0;
	if ((__u64)d == c->mnt_root) {
		/* A bind mount of a subdirectory: keep walking the superblock (identity),
		 * but tell user space where the mount's own root was. */
		b->s->above_mnt_root = 1;
		if (put_hdr(b, OW_ITEM_MNTROOT, 0)) {
			c->full = 1;
			return 0;
		}
	}
	name = KREAD(struct dentry, d, d_name.name);
	/* 24 bytes stay free for the walk's end marker */
	if (put_str(b, OW_ITEM_NAME, name, NAME_MAX_READ, b->s->limit - 24, STR_KERNEL) < 0) {
		c->full = 1;
	} else {
		c->names++;
		if (!b->s->above_mnt_root)
			b->s->view_names++;
	}
	return 0;
}

/* The walk in this CPU's scratch: one step, then WALK_CHUNK of them, then WALK_CHUNKS chunks;
 * 1 when it is done.
 * Global functions, each calling the one below in a bounded loop: the verifier checks a step
 * once and each loop's counter alone, and the walk needs no bpf_loop (5.17+). Levels of
 * loops, not one: a single loop of WALK_MAX_STEPS calls exceeds the verifier's jump history
 * (8192); three, not two: a loop costs the verifier its length times its body in every program
 * that walks. Global functions take no pointers before 5.12, so the walk's state lives in the
 * scratch and each finds it itself. */
__noinline int ow_walk_step(void)
{
	struct builder b = { .s = this_scratch() };

	return b.s ? walk_step(&b) : 1;
}

__noinline int ow_walk_chunk(void)
{
	for (int i = 0; i < WALK_CHUNK; i++)
		if (ow_walk_step())
			return 1;
	return 0;
}

/* WALK_CHUNKS chunks: a third level keeps each loop short, and the verifier's work with it
 * (each loop is followed iteration by iteration, in every program that walks). */
__noinline int ow_walk_chunks(void)
{
	for (int i = 0; i < WALK_CHUNKS; i++)
		if (ow_walk_chunk())
			return 1;
	return 0;
}

/* BTF-typed hook arguments (lsm, fentry, tp_btf) are trusted pointers, which a global function
 * (ow_put_walk) does not take: pass their value as a plain number. */
static __always_inline __u64 num(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

/* Walk from (dentry, mount) up to the superblock root, crossing mounts until a watched
 * root is found, into this CPU's record. Returns the tree index or OW_NO_TREE. No depth
 * limit short of the record's room and WALK_MAX_STEPS; a walk that is cut short says so
 * (OW_F_TRUNCATED), it is not dropped. A global (not static) function: the verifier checks
 * it once, not at each of the many places that walk, which kept loading at over a second.
 * Kernel pointers come as scalars. */
__noinline __u32 ow_put_walk(__u64 dentry, __u64 vfsmount)
{
	struct dentry *d = (struct dentry *)dentry;
	struct vfsmount *vm = (struct vfsmount *)vfsmount;
	struct builder bb = { .s = this_scratch() };
	struct builder *b = &bb;
	struct scratch *s = bb.s;
	__u32 flags;

	if (!s)
		return OW_NO_TREE;
	flags = s->walk_flags;
	s->walk_flags = 0;
	if (!d)
		return OW_NO_TREE;
	s->w.d = dentry;
	s->w.m = vm ? (__u64)real_mount(vm) : 0;
	s->w.mnt_root = vm ? (__u64)KREAD(struct vfsmount, vm, mnt_root) : 0;
	s->w.tree = OW_NO_TREE;
	s->w.done = 0;
	s->w.full = 0;
	s->w.names = 0;
	s->w.tree_depth = 0;
	s->w.crossed = 0;
	s->w.steps = 0;
	s->w.rootref = 0;
	s->w.rc_level = RC_OFF;
	s->w.paused = 0;
	s->w.start = s->off;
	if (put_hdr(b, OW_ITEM_SEG, 4))
		return OW_NO_TREE;
	put_u32(b, KREAD(struct super_block, KREAD(struct dentry, d, d_sb), s_dev));
	s->view_names = 0;
	s->above_mnt_root = 0;
	for (int i = 0; i < WALK_MAX_STEPS / (WALK_CHUNK * WALK_CHUNKS); i++)
		if (ow_walk_chunks())
			break;
	if (s->w.paused) {
		s->w.paused = 0;
		if (!ow_walk_up()) {
			/* (the step again, without the pause) */
			s->w.up = 0;
			for (int i = 0; i < WALK_MAX_STEPS / (WALK_CHUNK * WALK_CHUNKS); i++)
				if (ow_walk_chunks())
					break;
		}
	}
	if (!s->w.done || s->w.full)
		flags |= OW_F_TRUNCATED;
	if (put_hdr(b, OW_ITEM_WALKEND, sizeof(struct ow_walkend)) == 0) {
		put_u32(b, s->w.tree);
		put_u32(b, flags);
		put_u32(b, KREAD(struct inode, KREAD(struct dentry, d, d_inode), i_mode));
		put_u32(b, s->w.tree_depth);
	}
	return s->w.tree;
}

/* (d and vm pass through the scratch: what KREAD gave is a BTF pointer where core_cast, and
 * a global function takes numbers only; a value loaded back from a map is one) */
static __always_inline __u32 put_walk(struct builder *b, struct dentry *d, struct vfsmount *vm)
{
	b->s->arg_d = (__u64)d;
	b->s->arg_m = (__u64)vm;
	return ow_put_walk(b->s->arg_d, b->s->arg_m);
}

/* Whether this CPU's kept walk (struct kept_walk) is the walk of (dentry, vfsmount) now:
 * the same mount, the same dentries up to the superblock's root with the same names, the
 * watched root where it was, the same roots. A global function: checked once. */
__noinline int ow_kept_walk_same(__u64 dentry, __u64 vfsmount)
{
	struct scratch *s = this_scratch();
	struct kept_walk *c;

	if (!s)
		return 0;
	c = KW_KEPT(s);
	if (!c->seq || c->d[0] != dentry || c->m != vfsmount || c->gen != roots_gen ||
	    (__u64)KREAD(struct vfsmount, vfsmount, mnt_root) != c->mnt_root)
		return 0;
	return kept_links_same(s, 0) && kept_above_same(s);
}

/* The walk of a record's one object from (dentry, vfsmount), numbers. tar makes three
 * records of each file it writes (create, fchown, fchmod through one fd), cp -p two, a chmod
 * then an unlink or a mkdir then an rmdir two of one name: the later ones refer to the walk
 * the first one sent (OW_ITEM_WALKREF) when this CPU kept it and it is still the same
 * (ow_kept_walk_same), instead of walking the same names again. A walk of a positive dentry
 * that found a root without leaving its mount, whole and at most KEPT_LEVELS deep, is kept
 * (OW_ITEM_WALKKEEP after it) once its record is sent (submit). */
static __always_inline __u32 put_kept_walk(struct builder *b, __u64 dentry, __u64 vfsmount)
{
	struct scratch *s = b->s;
	struct walk_state *w = &s->w;
	struct kept_walk *k = KW_KEPT(s);
	__u32 cpu = bpf_get_smp_processor_id();
	__u32 n = roots_fast_n & 0xff, gen = roots_gen, start, tree, seq, keep;
	struct inode *inode;

	/* (numbers read back from the scratch: see put_walk) */
	s->arg_d = dentry;
	s->arg_m = vfsmount;
	inode = KREAD(struct dentry, s->arg_d, d_inode);
	/* (the first test here: a walk of another object skips the call) */
	if (k->d[0] == dentry && ow_kept_walk_same(s->arg_d, s->arg_m) &&
	    put_hdr(b, OW_ITEM_WALKREF, sizeof(struct ow_walkref)) == 0) {
		put_u32(b, cpu);
		put_u32(b, k->seq);
		put_u32(b, inode ? KREAD(struct inode, inode, i_mode) : 0);
		s->ev.flags |= OW_F_WALKREF;
		return k->tree;
	}
	start = s->off;
	/* only a positive object's walk is kept: the others record no chain */
	keep = n != 0 && inode;
	w->chain = keep;
	w->up = n != 0;
	tree = ow_put_walk(s->arg_d, s->arg_m);
	w->chain = 0;
	w->up = 0;
	if (!keep || tree == OW_NO_TREE || !w->done || w->full || w->crossed ||
	    w->steps > KEPT_LEVELS || s->off > s->limit - 4 - sizeof(struct ow_walkkeep) ||
	    s->limit > OW_DATA_MAX)
		return tree;
	seq = s->kw_seq + 1;
	if (!seq)
		seq = 1;
	s->kw_seq = seq;
	k = KW_NEW(s);
	k->levels = w->steps;
	k->m = s->arg_m;
	k->mnt_root = (__u64)KREAD(struct vfsmount, s->arg_m, mnt_root);
	k->tree = tree;
	k->gen = gen;
	k->seq = seq;
	k->rc_seq = w->rootref ? RC_KEPT(s)->seq : 0;
	s->kw_new_ok = 1;
	put_hdr(b, OW_ITEM_WALKKEEP, sizeof(struct ow_walkkeep));
	put_u32(b, cpu);
	put_u32(b, seq);
	put_u32(b, s->off - 4 - 8 - start);
	s->ev.flags |= OW_F_WALKKEEP;
	return tree;
}

static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = KREAD(struct files_struct, KREAD(struct task_struct, task, files), fdt);
	struct file **fds;
	struct file *f = 0;

	if (fd < 0 || !fdt || fd >= KREAD(struct fdtable, fdt, max_fds))
		return 0;
	/* (a pointer to pointers: a number, also where core_cast) */
	fds = (struct file **)KREAD(struct fdtable, fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline __u32 put_file_walk(struct builder *b, struct file *f)
{
	if (!f)
		return OW_NO_TREE;
	return put_walk(b, KREAD(struct file, f, f_path.dentry), KREAD(struct file, f, f_path.mnt));
}

/* The directory a string is relative to was often walked already as a changed directory:
 * refer to that walk instead of sending a deep path twice. */
static __always_inline int put_base_walk(struct builder *b, struct dentry *d, struct vfsmount *m)
{
	for (int i = 0; i < OW_MAX_SEEN; i++) {
		if (i >= b->s->nseen)
			break;
		if (b->s->seen_d[i] == (__u64)d && put_u8_item(b, OW_ITEM_SAMEAS, 0x80 | i) == 0)
			return b->s->seen_tree[i];
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

/* A path given as a string: the string, then the directory it is relative to (the caller's
 * root for absolute strings, else dirfd or cwd), or what the string names when that is
 * known here. User space resolves the rest. Returns the tree of the walk sent.
 * empty_ok: an empty string names dfd itself (AT_EMPTY_PATH).
 * abs_flag: the event flag that says the string was absolute.
 * follow_proc_fd: the op follows the path (chmod, chown, truncate, setxattr): a
 * "/proc/self/fd/N" string names the file open as N, which is walked as the object. */
static __always_inline __u32 put_str_path(struct builder *b, struct task_struct *task, int dfd,
					  const char *uptr, __u32 empty_ok, __u32 abs_flag,
					  __u32 follow_proc_fd)
{
	__u32 at = b->s->off + 4; /* where put_user_str puts the string's bytes */
	int n = put_user_str(b, uptr);
	__u8 first = n > 0 ? b->s->data[at & DATA_MASK] : 0;

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
	/* the object was walked whole already (struct scratch, object_seen): the string, not
	 * its base */
	if (b->s->object_seen && n > 0) {
		if (first == '/')
			b->s->ev.flags |= abs_flag;
		return OW_NO_TREE;
	}
	/* (the base as a number, read back from the scratch: put_base_walk compares it) */
	if (first == '/') {
		struct fs_struct *fs = KREAD(struct task_struct, task, fs);

		b->s->ev.flags |= abs_flag;
		b->s->last_base = (__u64)KREAD(struct fs_struct, fs, root.dentry);
		b->s->last_tree = put_base_walk(b, (struct dentry *)b->s->last_base,
						KREAD(struct fs_struct, fs, root.mnt));
	} else if (dfd == AT_FDCWD) {
		struct fs_struct *fs = KREAD(struct task_struct, task, fs);

		b->s->last_base = (__u64)KREAD(struct fs_struct, fs, pwd.dentry);
		b->s->last_tree = put_base_walk(b, (struct dentry *)b->s->last_base,
						KREAD(struct fs_struct, fs, pwd.mnt));
	} else {
		struct file *f = fd_file(task, dfd);

		b->s->last_base = f ? (__u64)KREAD(struct file, f, f_path.dentry) : 0;
		b->s->last_tree = put_base_walk(b, (struct dentry *)b->s->last_base,
						f ? KREAD(struct file, f, f_path.mnt) : 0);
	}
	return b->s->last_tree;
}

/* put_str_path() as a global function: the verifier checks it once per program, not at each
 * of the places a syscall's path strings are sent (symlink, link and rename's two, the rest),
 * which took tp_sys_exit and tp_uring_req to ~26,000 processed instructions each. Its state is
 * this CPU's record; arguments are plain numbers. */
__noinline __u32 ow_put_str_path(__u64 dfd, __u64 uptr, __u32 empty_ok, __u32 abs_flag,
				 __u32 follow_proc_fd)
{
	struct builder bb = { .s = this_scratch() };

	if (!bb.s)
		return OW_NO_TREE;
	return put_str_path(&bb, (struct task_struct *)bpf_get_current_task(), (int)dfd,
			    (const char *)uptr, empty_ok, abs_flag, follow_proc_fd);
}

#endif
