/* SPDX-License-Identifier: GPL-2.0 */
/* Starting a record (record_begin) and sending it (submit), with the reader's wakeups. */
#ifndef OW_LIB_SUBMIT_H
#define OW_LIB_SUBMIT_H

/* Wakeup batching. Waking the reader costs the writer an irq_work (a self-IPI: in a VM a trap
 * to the hypervisor, tens of microseconds) and the reader a context switch per record. So a
 * record wakes the reader only when it would not look by itself soon. The reader says which
 * in reader_state (its mapped .bss, watch/pace.rs):
 * - OW_READER_AWAKE: it works and reads the ring again before it sleeps: no wakeup;
 * - OW_READER_POLLS: records come densely and it sleeps on a short timer, after which it
 *   reads the ring: no wakeup, unless the unread data reaches wakeup_bytes (so a burst never
 *   waits for the ring to fill);
 * - OW_READER_IDLE: it sleeps until woken: the record wakes it, but at most one record per
 *   wakeup_gap_ns does (those right after it are read with it, the reader being awake by
 *   then or about to say so).
 * Both constants set by user space before load (kernel/load.rs). */
const volatile __u64 wakeup_bytes = 1 << 20;
const volatile __u64 wakeup_gap_ns = 1000000;
__u64 last_wakeup_ns = 0;
__u32 reader_state = OW_READER_IDLE;

/* The flags of a record of len bytes sent now: BPF_RB_NO_WAKEUP or BPF_RB_FORCE_WAKEUP. */
static __always_inline __u64 wake_flags(__u64 len)
{
	__u32 st = reader_state;
	__u64 now;

	if (st == OW_READER_AWAKE)
		return BPF_RB_NO_WAKEUP;
	if (st == OW_READER_POLLS && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + len < wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	now = bpf_ktime_get_ns();
	if (now - last_wakeup_ns < wakeup_gap_ns)
		return BPF_RB_NO_WAKEUP;
	last_wakeup_ns = now;
	return BPF_RB_FORCE_WAKEUP;
}

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
	b->s->kw_new_ok = 0;
	b->s->rc_new_ok = 0;
	b->s->limit = limit;
	fill_actor(&b->s->ev, task);
	b->s->ev.new_uid = OW_UNSET;
	b->s->ev.new_gid = OW_UNSET;
	b->s->ev.ret = 0;
	b->s->ev.ident_at = 0;
	return &b->s->ev;
}

static __always_inline int submit(struct builder *b)
{
	__u32 off = b->s->off;
	__u64 len;

	if (off > OW_DATA_MAX)
		off = OW_DATA_MAX;
	if (b->s->trunc)
		b->s->ev.flags |= OW_F_TRUNCATED;
	b->s->ev.data_len = off;
	len = sizeof(struct ow_event) + off;
	if (bpf_ringbuf_output(&events, &b->s->ev, len, wake_flags(len))) {
		count_lost();
		return -1;
	}
	/* the exe, tty and cgroup this record numbered: later records of the process refer to
	 * them (after this one in the ring, so user space has them first) */
	if (b->s->ident_new)
		bpf_map_update_elem(&idents, &b->s->ident.tgid, &b->s->ident, BPF_ANY);
	/* the walk this record kept: user space has it now (walk.h put_kept_walk) */
	if (b->s->kw_new_ok)
		b->s->kw_cur ^= 1;
	/* and the names above a root it sent whole (walk.h put_root_ref) */
	if (b->s->rc_new_ok)
		b->s->rc_cur ^= 1;
	return 0;
}

#endif
