/* SPDX-License-Identifier: GPL-2.0 */
/* x86_64 syscall numbers of the ops, and OW_SYSCALLS: the syscalls the enter programs are
 * generated from, one per syscall tracepoint (hooks/syscalls.h), one per line. */
#ifndef OW_SYSCALLS_X86_64_H
#define OW_SYSCALLS_X86_64_H

#define NR_openat2 437
#define NR_unlinkat 263
#define NR_setxattrat 463
#define NR_removexattrat 466
#define NR_open 2
#define NR_openat 257
#define NR_creat 85
#define NR_mknod 133
#define NR_mknodat 259
#define NR_mkdir 83
#define NR_mkdirat 258
#define NR_symlink 88
#define NR_symlinkat 266
#define NR_link 86
#define NR_linkat 265
#define NR_rename 82
#define NR_renameat 264
#define NR_renameat2 316
#define NR_unlink 87
#define NR_rmdir 84
#define NR_chmod 90
#define NR_fchmodat 268
#define NR_fchmodat2 452
#define NR_fchmod 91
#define NR_chown 92
#define NR_lchown 94
#define NR_fchownat 260
#define NR_fchown 93
#define NR_truncate 76
#define NR_ftruncate 77
#define NR_setxattr 188
#define NR_lsetxattr 189
#define NR_fsetxattr 190
#define NR_removexattr 197
#define NR_lremovexattr 198
#define NR_fremovexattr 199
#define NR_open_by_handle_at 304
#define NR_acct 163
#define NR_bind 49
#define OW_SYSCALLS(X, w) \
	X(w, openat2) \
	X(w, unlinkat) \
	X(w, setxattrat) \
	X(w, removexattrat) \
	X(w, open) \
	X(w, openat) \
	X(w, creat) \
	X(w, mknod) \
	X(w, mknodat) \
	X(w, mkdir) \
	X(w, mkdirat) \
	X(w, symlink) \
	X(w, symlinkat) \
	X(w, link) \
	X(w, linkat) \
	X(w, rename) \
	X(w, renameat) \
	X(w, renameat2) \
	X(w, unlink) \
	X(w, rmdir) \
	X(w, chmod) \
	X(w, fchmodat) \
	X(w, fchmodat2) \
	X(w, fchmod) \
	X(w, chown) \
	X(w, lchown) \
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
