// SPDX-License-Identifier: GPL-2.0
/* Minimal programs that `ownwatch probe` loads and attaches one at a time: whether a hook
 * family really works on this kernel is only known by trying (an LSM program can be refused
 * with EPERM, kprobes may not be built in). Each program bumps a counter so a trial can also
 * prove that it fires. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
__u64 hits[5] = {};

static __always_inline void hit(int i)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_tgid)
		__sync_fetch_and_add(&hits[i], 1);
}

SEC("?lsm/path_mkdir")
int BPF_PROG(probe_lsm, const struct path *dir, struct dentry *dentry, umode_t mode)
{
	hit(0);
	return 0;
}

SEC("?lsm.s/path_mkdir")
int BPF_PROG(probe_lsm_sleepable, const struct path *dir, struct dentry *dentry, umode_t mode)
{
	hit(1);
	return 0;
}

SEC("?fentry/security_path_mkdir")
int BPF_PROG(probe_fentry, const struct path *dir, struct dentry *dentry, umode_t mode)
{
	hit(2);
	return 0;
}

SEC("?kprobe/security_path_mkdir")
int BPF_KPROBE(probe_kprobe)
{
	hit(3);
	return 0;
}

SEC("?tp_btf/sys_enter")
int BPF_PROG(probe_tracepoint, struct pt_regs *regs, long id)
{
	hit(4);
	return 0;
}
