/* SPDX-License-Identifier: GPL-2.0 */
/* Programs that keep their CPU. 7.x runs trampoline (lsm, fentry) and syscall tracepoint
 * programs preemptibly, only migration off: a writer preempted inside one of our programs
 * keeps the program's recursion guard on its CPU (7.2 and 7.3: per program, for trampolines
 * and syscall tracepoints alike; LSM programs have none), and the kernel skips every run of
 * that program the guard meets meanwhile: events and outcomes lost under load (hence one
 * exit program per syscall, hooks/syscall_exit.h). Where user space sets pin_cpu (kernels
 * with bpf_preempt_disable that also allow global functions with preemption off, which
 * those 7.x kernels do), each such program turns preemption off first thing and on again
 * last: only the kernel's few instructions around the program stay preemptible, and the
 * first test of the programs every writer on the machine runs (the syscall enter programs'
 * read-only open and actor allowed everywhere, the ctime programs' "no op pending", the VFS
 * hooks' actor allowed everywhere: ACTOR_PINNED_PROG), which
 * ends most of their runs before the kfunc calls would begin. Elsewhere
 * the calls are dead code the verifier drops (the kfuncs may not even exist there). Kprobe
 * programs run with preemption off anyway. */
#ifndef OW_LIB_PIN_H
#define OW_LIB_PIN_H

extern void bpf_preempt_disable(void) __weak __ksym;
extern void bpf_preempt_enable(void) __weak __ksym;

/* Set by user space between open and load. */
const volatile __u32 pin_cpu = 0;

static __always_inline void pin_begin(void)
{
	if (pin_cpu)
		bpf_preempt_disable();
}

static __always_inline void pin_end(void)
{
	if (pin_cpu)
		bpf_preempt_enable();
}

/* expr, an int, evaluated pinned */
#define PINNED(expr)                                                                       \
	({                                                                                 \
		int __pinned_ret;                                                          \
		pin_begin();                                                               \
		__pinned_ret = (expr);                                                     \
		pin_end();                                                                 \
		__pinned_ret;                                                              \
	})

/* BPF_PROG (bpf_tracing.h) with its body pinned, after `first`: when it holds, the program
 * returns 0 without pinning. The body may return anywhere. */
#define OW_PINNED_PROG_IF(first, name, args...)                                            \
	name(unsigned long long *ctx);                                                     \
	static __always_inline typeof(name(0)) ____##name(unsigned long long *ctx, ##args); \
	typeof(name(0)) name(unsigned long long *ctx)                                      \
	{                                                                                  \
		if (first)                                                                 \
			return 0;                                                          \
		_Pragma("GCC diagnostic push")                                             \
		_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")                     \
		return PINNED(____##name(___bpf_ctx_cast(args)));                          \
		_Pragma("GCC diagnostic pop")                                              \
	}                                                                                  \
	static __always_inline typeof(name(0)) ____##name(unsigned long long *ctx, ##args)

#define PINNED_PROG(name, args...) OW_PINNED_PROG_IF(0, name, ##args)

/* The VFS hooks' programs (hooks/vfs.h), which every writer on the machine passes: an actor
 * allowed everywhere leaves at the first test, before the kfunc calls of PINNED_PROG; the
 * hooks' code after it does not test it again. ACTOR_KPROBE: the same for the kprobe backend
 * (BPF_KPROBE; kprobes run with preemption off anyway). */
#define ACTOR_PINNED_PROG(name, args...) OW_PINNED_PROG_IF(actor_allowed(), name, ##args)

#define ACTOR_KPROBE(name, args...)                                                        \
	name(struct pt_regs *ctx);                                                         \
	static __always_inline typeof(name(0)) ____##name(struct pt_regs *ctx, ##args);    \
	typeof(name(0)) name(struct pt_regs *ctx)                                          \
	{                                                                                  \
		if (actor_allowed())                                                       \
			return 0;                                                          \
		_Pragma("GCC diagnostic push")                                             \
		_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")                     \
		return ____##name(___bpf_kprobe_args(args));                               \
		_Pragma("GCC diagnostic pop")                                              \
	}                                                                                  \
	static __always_inline typeof(name(0)) ____##name(struct pt_regs *ctx, ##args)

#endif
