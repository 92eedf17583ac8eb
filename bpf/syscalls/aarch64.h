/* SPDX-License-Identifier: GPL-2.0 */
/* arm64 syscall numbers of the ops, and OW_SYSCALLS (see x86_64.h). arm64 uses the generic
 * table (include/uapi/asm-generic/unistd.h, with __ARCH_WANT_RENAMEAT): it has only the *at
 * forms of the path syscalls and none of open, creat, mknod, mkdir, symlink, link, rename,
 * unlink, rmdir, chmod, chown, lchown, so hooks/syscalls.h leaves their cases out (they are
 * left undefined here). Numbers from 400 on are the same on every architecture. */
#ifndef OW_SYSCALLS_AARCH64_H
#define OW_SYSCALLS_AARCH64_H

#define NR_setxattr 5
#define NR_lsetxattr 6
#define NR_fsetxattr 7
#define NR_removexattr 14
#define NR_lremovexattr 15
#define NR_fremovexattr 16
#define NR_mknodat 33
#define NR_mkdirat 34
#define NR_unlinkat 35
#define NR_symlinkat 36
#define NR_linkat 37
#define NR_renameat 38
#define NR_truncate 45
#define NR_ftruncate 46
#define NR_fchmod 52
#define NR_fchmodat 53
#define NR_fchownat 54
#define NR_fchown 55
#define NR_openat 56
#define NR_acct 89
#define NR_bind 200
#define NR_open_by_handle_at 265
#define NR_renameat2 276
#define NR_openat2 437
#define NR_fchmodat2 452
#define NR_setxattrat 463
#define NR_removexattrat 466
#define OW_SYSCALLS(X, w) \
	X(w, openat2) \
	X(w, unlinkat) \
	X(w, setxattrat) \
	X(w, removexattrat) \
	X(w, openat) \
	X(w, mknodat) \
	X(w, mkdirat) \
	X(w, symlinkat) \
	X(w, linkat) \
	X(w, renameat) \
	X(w, renameat2) \
	X(w, fchmodat) \
	X(w, fchmodat2) \
	X(w, fchmod) \
	X(w, fchownat) \
	X(w, fchown) \
	X(w, truncate) \
	X(w, ftruncate) \
	X(w, setxattr) \
	X(w, lsetxattr) \
	X(w, fsetxattr) \
	X(w, removexattr) \
	X(w, lremovexattr) \
	X(w, fremovexattr) \
	X(w, open_by_handle_at) \
	X(w, bind) \
	X(w, acct)

#endif
