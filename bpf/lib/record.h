/* SPDX-License-Identifier: GPL-2.0 */
/* The record builder: item headers, numbers, user and kernel strings. */
#ifndef OW_LIB_RECORD_H
#define OW_LIB_RECORD_H

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

#endif
