/* SPDX-License-Identifier: GPL-2.0 */
/* The cheap filter every hook runs first. */
#ifndef OW_LIB_FILTER_H
#define OW_LIB_FILTER_H

/* Set by user space between open and load: 1 where bpf_get_current_task_btf() exists (5.11+)
 * and the backend is lsm, fentry or kprobe; the writer's fsuid is then three loads rather than
 * two helper calls (bpf_probe_read_kernel). Where it is 0 the verifier drops that branch, the
 * helper unknown to 5.10 included. */
const volatile __u32 task_btf = 0;

static __always_inline __u32 current_fsuid(void)
{
	if (task_btf)
		return bpf_get_current_task_btf()->cred->fsuid.val;
	return BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), cred, fsuid.val);
}

/* 1: nothing to report for this actor, whatever the op: allowed in every tree, ourselves, or
 * we are stopping. The VFS hooks test this first, before they read anything of the op. */
static __always_inline int actor_allowed(void)
{
	__u32 fsuid, n;
	__u64 *mask;

	if (ow_stopping)
		return 1;
	fsuid = current_fsuid();
	n = allowed_fast_n;
	for (__u32 i = 0; i < OW_FAST_ALLOWED && i < n; i++)
		if (allowed_fast[i] == fsuid)
			return 1;
	if (n > OW_FAST_ALLOWED) {
		mask = bpf_map_lookup_elem(&allowed, &fsuid);
		if (mask && (*mask & all_trees) == all_trees)
			return 1;
	}
	if (self_tgid && (bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return 1;
	return 0;
}

/* 1: the op is not one --ops asked for */
static __always_inline int op_unwanted(__u32 op)
{
	if (op == KIND_OPEN)
		return !(op_mask & ((1u << OW_OP_CREATE) | (1u << OW_OP_WRITE)));
	return !(op_mask & (1u << op));
}

/* 1: nothing to report for this actor and op */
static __always_inline int actor_filtered(__u32 op)
{
	return actor_allowed() || op_unwanted(op);
}

static __always_inline int is_allowed_in(__u32 fsuid, __u32 tree)
{
	__u64 *mask = bpf_map_lookup_elem(&allowed, &fsuid);

	return mask && tree < 64 && (*mask & (1ull << tree));
}

#endif
