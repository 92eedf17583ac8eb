/* SPDX-License-Identifier: GPL-2.0 */
/* Starting a record (record_begin) and sending it (submit), with the reader's wakeups. */
#ifndef OW_LIB_SUBMIT_H
#define OW_LIB_SUBMIT_H

/* Wakeup batching. Waking the reader costs the writer an irq_work and the reader a context
 * switch per record; in a storm the reader drains a whole batch per wakeup instead. A record
 * wakes the reader when the last wakeup is older than wakeup_gap_ns (so an isolated event is
 * read at once) or when the unread data reaches wakeup_bytes (so a burst never waits for the
 * ring to fill); records in between are picked up by the reader's next poll, which user space
 * keeps short while records flow. Both set by user space before load. */
const volatile __u64 wakeup_bytes = 1 << 20;
const volatile __u64 wakeup_gap_ns = 1000000;
__u64 last_wakeup_ns = 0;

/* Start a record in this CPU's scratch: no items yet, items end before `limit`, the actor
 * filled in, no owner change and no return value yet. NULL when there is no scratch. */
static __always_inline struct ow_event *record_begin(struct builder *b, struct task_struct *task,
						     __u32 limit)
{
	__u32 cpu = bpf_get_smp_processor_id();

	b->s = bpf_map_lookup_elem(&heap, &cpu);
	if (!b->s)
		return 0;
	b->s->off = 0;
	b->s->trunc = 0;
	b->s->proc = 0;
	b->s->kstrs = 0;
	b->s->nseen = 0;
	b->s->ident_new = 0;
	b->s->limit = limit;
	fill_actor(&b->s->ev, task);
	b->s->ev.new_uid = OW_UNSET;
	b->s->ev.new_gid = OW_UNSET;
	b->s->ev.ret = 0;
	return &b->s->ev;
}

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
	/* the exe, tty and cgroup this record numbered: later records of the process refer to
	 * them (after this one in the ring, so user space has them first) */
	if (b->s->ident_new)
		bpf_map_update_elem(&idents, &b->s->ident.tgid, &b->s->ident, BPF_ANY);
	return 0;
}

#endif
