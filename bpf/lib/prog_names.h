/* SPDX-License-Identifier: GPL-2.0 */
/* Program names: a contract with user space, which switches programs on by name (src/kernel/
 * abi.rs `mod prog`: PROG_X here is its prog::X). The prefixes below, the fixed names listed
 * after them and the suffixes _chown_common, _rename_noflags, do_rmdir, _ftruncate, _setacl, _removeacl, vfs_set_acl and vfs_remove_acl
 * (hooks that some kernels lack) must match that module: never rename a program here alone.
 * A hook's verdict program (hooks/vfs.h, VFS_VERDICTS: fentry_v_mkdir, lsm_v_chown_common,
 * ...) is its hook program's name with v_ after the prefix: user space switches it on and off
 * with the hook by the same prefix and suffix. */
#ifndef OW_LIB_PROG_NAMES_H
#define OW_LIB_PROG_NAMES_H

/* lsm, fentry and kprobe backends: the security hooks (VFS_HOOKS in hooks/vfs.h) */
#define PROG_LSM lsm_
#define PROG_FENTRY fentry_
#define PROG_KPROBE kp_
/* their outcome, from the function that does the op (FX_DONE in hooks/vfs.h) */
#define PROG_FEXIT_DONE fx_done_     /* lsm and fentry */
#define PROG_KRETPROBE_DONE kr_done_ /* kprobe */
/* kprobe: the entry of that function; begins with PROG_KPROBE, so user space has no name for
 * it: it is switched on with the kprobe hooks */
#define PROG_KPROBE_ARM kp_arm_
/* tracepoint backend: two programs per syscall, PROG_TP_ENTER + the syscall's name (TP_ENTER
 * in hooks/syscalls.h) and PROG_TP_EXIT + the name (TP_EXIT in hooks/syscall_exit.h), which
 * goes on in tp_sys_exit */
#define PROG_TP_ENTER tp_enter_
#define PROG_TP_EXIT tp_exit_
/* Fixed names, written where they are defined: tp_sys_exit (hooks/syscall_exit.h),
 * tp_uring_req and tp_uring_sqe (hooks/uring.h), tp_ctime_set, tp_ctime_xchg and tp_ctime_skip
 * (hooks/ctime.h) and, with them, tp_core_begin and tp_core_end (hooks/coredump.h) and
 * tp_mnt_enter_<syscall> and tp_mnt_exit_<syscall> on the mount calls (hooks/ctime.h; lsm, fentry and kprobe: <hook prefix>mnt_<hook>, MOUNT_HOOKS in
 * hooks/vfs.h, switched on with the hooks), kp_done (hooks/vfs.h: the kprobe backend's
 * outcomes on 6.10+, one kprobe session; it begins with PROG_KPROBE, and user space switches
 * it off where the kernel has no kprobe sessions), kp_open_session (hooks/vfs.h: with kp_done,
 * the file_open hook as a session, in place of kp_open), vfs_wait_exit (hooks/vfs.h: lsm, fentry and
 * kprobe, a thread's end). */

/* a##b after expanding both: OW_CAT(PROG_LSM, mkdir) is lsm_mkdir */
#define OW_CAT_(a, b) a##b
#define OW_CAT(a, b) OW_CAT_(a, b)
/* DEF(name, ...) with name expanded first: BPF_PROG and BPF_KPROBE paste it as it comes. */
#define OW_PROG(DEF, name, ...) DEF(name, __VA_ARGS__)

#endif
