/* SPDX-License-Identifier: GPL-2.0 */
/* The cheap filter every hook runs first. */
#ifndef OW_LIB_FILTER_H
#define OW_LIB_FILTER_H

/* 1: nothing to report for this actor, whatever the op: allowed in every tree, ourselves, or
 * we are stopping. The VFS hooks test this first, before they read anything of the op. */
static __always_inline int actor_allowed(void)
{
	struct task_struct *task;
	__u32 fsuid;
	__u64 *mask;

	if (ow_stopping)
		return 1;
	task = (struct task_struct *)bpf_get_current_task();
	fsuid = BPF_CORE_READ(task, cred, fsuid.val);
	mask = bpf_map_lookup_elem(&allowed, &fsuid);
	if (mask && (*mask & all_trees) == all_trees)
		return 1;
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
