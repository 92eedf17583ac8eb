/* SPDX-License-Identifier: GPL-2.0 */
/* The record builder: what a record's data area holds, item by item (enum ow_item), and the
 * writers of those items. Offsets into the area are masked with DATA_MASK so the verifier sees
 * every access inside the scratch value. */
#ifndef OW_LIB_RECORD_H
#define OW_LIB_RECORD_H

struct builder {
	struct scratch *s;
};

/* One store of 4 or 8 bytes, unaligned and little-endian as the record is: x86_64 and arm64
 * do unaligned stores, and their verifiers allow them (HAVE_EFFICIENT_UNALIGNED_ACCESS); the
 * data area has room past DATA_MASK for the bytes after a masked offset. In asm because
 * `*(__u64 *)&data[off]` into the byte array is, to clang 14, a store of unknown alignment,
 * which it splits into eight byte stores and seven shifts: an item header and the u32/u64
 * fields of the identity (parents, IDREF) were ~60 % of ow_put_identity's own time. */
static __always_inline void store_u32(void *p, __u32 v)
{
	asm volatile("*(u32 *)(%[p] + 0) = %[v]" ::[p] "r"(p), [v] "r"((__u64)v) : "memory");
}

static __always_inline void store_u64(void *p, __u64 v)
{
	asm volatile("*(u64 *)(%[p] + 0) = %[v]" ::[p] "r"(p), [v] "r"(v) : "memory");
}

/* The header every item starts with: u8 kind (enum ow_item), u8 aux (a STR item: 1 when the
 * string filled its room and may be cut, or could not be read), u16 little-endian length of
 * what follows. At `at`,
 * which the caller has checked against the room. */
static __always_inline void item_hdr_at(struct builder *b, __u32 at, __u8 kind, __u8 aux,
					__u32 len)
{
	store_u32(&b->s->data[at & DATA_MASK],
		  (__u32)kind | (__u32)aux << 8 | (len & 0xffff) << 16);
}

/* An item of `len` bytes, which the caller puts next. -1 when it would not end before the
 * limit: the record is then marked cut (OW_F_TRUNCATED). */
static __always_inline int put_hdr(struct builder *b, __u8 kind, __u16 len)
{
	__u32 off = b->s->off;

	if (off > b->s->limit - 4 - (__u32)len || b->s->limit > OW_DATA_MAX) {
		b->s->trunc = 1;
		return -1;
	}
	item_hdr_at(b, off, kind, 0, len);
	b->s->off = off + 4;
	return 0;
}

static __always_inline void put_u32(struct builder *b, __u32 v)
{
	__u32 off = b->s->off;

	store_u32(&b->s->data[off & DATA_MASK], v);
	b->s->off = off + 4;
}

static __always_inline void put_u64(struct builder *b, __u64 v)
{
	__u32 off = b->s->off;

	store_u64(&b->s->data[off & DATA_MASK], v);
	b->s->off = off + 8;
}

/* An item holding one byte (OW_ITEM_SLOT, OW_ITEM_SAMEAS). */
static __always_inline int put_u8_item(struct builder *b, __u8 kind, __u8 v)
{
	if (put_hdr(b, kind, 1))
		return -1;
	b->s->data[b->s->off & DATA_MASK] = v;
	b->s->off += 1;
	return 0;
}

static __always_inline void put_slot(struct builder *b, __u8 slot)
{
	put_u8_item(b, OW_ITEM_SLOT, slot);
}

/* How put_str() reads its string and what no room means. */
enum str_how {
	STR_KERNEL = 0,
	/* from the caller's memory, where a string may be longer than its room: the item's aux
	 * byte says when it filled it (kernel strings here always fit theirs) */
	STR_USER = 1,
	/* no room: leave the string out without marking the record cut */
	STR_UNCOUNTED = 2,
};

/* The one bounded string copy: a string of at most `size` bytes (a power of two, the NUL
 * included) as an item of `kind` ending before `limit`, without its NUL. Returns its length,
 * -1 when there was no room. */
static __always_inline long put_str(struct builder *b, __u8 kind, const void *src, __u32 size,
				    __u32 limit, __u32 how)
{
	__u32 off = b->s->off;
	long n, failed;

	if (off > limit - 4 - size || limit > OW_DATA_MAX) {
		if (!(how & STR_UNCOUNTED))
			b->s->trunc = 1;
		return -1;
	}
	if ((how & STR_USER) && !b->s->kstrs)
		n = bpf_probe_read_user_str(&b->s->data[(off + 4) & DATA_MASK], size, src);
	else
		n = bpf_probe_read_kernel_str(&b->s->data[(off + 4) & DATA_MASK], size, src);
	/* A caller's string that could not be read (its page gone from memory by now: the
	 * helper cannot fault it in) comes empty and flagged as cut, like one that filled its
	 * room: an empty string is a real answer (AT_EMPTY_PATH), so it must not pass for one. */
	failed = n <= 0;
	if (failed)
		n = 1;
	n = (n - 1) & (size - 1);
	item_hdr_at(b, off, kind, (how & STR_USER) && (n >= size - 1 || failed), n);
	b->s->off = off + 4 + n;
	return n;
}

/* A string from the caller (a path as given, a link text, an xattr name). Returns its length,
 * -1 when there was no room. A string that begins with "/proc/" sets s->proc. */
static __always_inline int put_user_str(struct builder *b, const char *uptr)
{
	__u32 at = b->s->off + 4; /* where the string's bytes go */
	int n = put_str(b, OW_ITEM_STR, uptr, PATH_MAX, b->s->limit, STR_USER);

	if (n >= 6 && b->s->data[at & DATA_MASK] == '/' &&
	    b->s->data[(at + 1) & DATA_MASK] == 'p' && b->s->data[(at + 2) & DATA_MASK] == 'r' &&
	    b->s->data[(at + 3) & DATA_MASK] == 'o' && b->s->data[(at + 4) & DATA_MASK] == 'c' &&
	    b->s->data[(at + 5) & DATA_MASK] == '/')
		b->s->proc = 1;
	return n;
}

#endif
