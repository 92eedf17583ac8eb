/* SPDX-License-Identifier: GPL-2.0 */
/* The cheap filter every hook runs first. */
#ifndef OW_LIB_FILTER_H
#define OW_LIB_FILTER_H

/* Set by user space between open and load: 1 where bpf_get_current_task_btf() exists (5.11+)
 * and the backend is lsm, fentry or kprobe; the writer's fsuid is then three loads rather than
 * two helper calls (bpf_probe_read_kernel). Where it is 0 the verifier drops that branch, the
 * helper unknown to 5.10 included. */
const volatile __u32 task_btf = 0;

/* Set by user space between open and load: 1 where the kernel has the bpf_rdonly_cast kfunc
 * (6.2+, inlined by the verifier to nothing): any kernel pointer, even one read as a number,
 * becomes an (untrusted) BTF pointer whose fields are direct loads, an instruction each
 * instead of a bpf_probe_read_kernel call (tens of instructions). Every backend; the walks'
 * steps, ancestors and cgroup names, and the tracepoint backend's reads of the writer's task.
 * Where it is 0 the verifier drops those branches, the kfunc unknown before 6.2 included. */
const volatile __u32 core_cast = 0;

/* p->field of a kernel object of `type` at p (a pointer, or its value as a number): a direct
 * load where core_cast, else bpf_probe_read_kernel. What it gives must not be passed to a
 * global function (they take numbers, not BTF pointers: see num() in walk.h). */
#define KREAD(type, p, field)                                                              \
	({                                                                                 \
		unsigned long __kread_p = (unsigned long)(p);                              \
		core_cast ? bpf_core_cast((void *)__kread_p, type)->field                  \
			  : BPF_CORE_READ((type *)__kread_p, field);                       \
	})

/* Whether the writer's task is read with direct loads (task_direct()). */
#define direct_task (task_btf || core_cast)

/* The writer's task for direct loads: trusted where task_btf, else cast (core_cast). Only
 * where direct_task. */
static __always_inline struct task_struct *task_direct(void)
{
	if (task_btf)
		return bpf_get_current_task_btf();
	return bpf_core_cast((void *)bpf_get_current_task(), struct task_struct);
}

static __always_inline __u32 current_fsuid(void)
{
	if (direct_task)
		return task_direct()->cred->fsuid.val;
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
