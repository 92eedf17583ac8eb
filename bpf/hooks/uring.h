/* SPDX-License-Identifier: GPL-2.0 */
/* Tracepoint backend: io_uring file operations, seen at submission. */
#ifndef OW_HOOKS_URING_H
#define OW_HOOKS_URING_H

/* io_uring file operations bypass the syscall tracepoints: the submission tracepoint sees
 * them (after the request was prepared, so its path strings are known), as the syscall
 * would have been given them. Their outcome comes later, elsewhere: not reported. */
static __always_inline int uring_event(struct io_kiocb *req)
{
	__u8 opcode = BPF_CORE_READ(req, opcode);
	__u32 op, flags = OW_F_NO_RET, mode = OW_UNSET, sc;
	__u64 a[5] = {};

	switch (opcode) {
	case IORING_OP_MKDIRAT: {
		struct io_mkdir *m = (void *)req;

		op = OW_OP_MKDIR;
		flags |= OW_F_NOFOLLOW;
		mode = umasked(BPF_CORE_READ(m, mode));
		sc = SC_MKDIR;
		a[0] = (__s64)BPF_CORE_READ(m, dfd);
		a[1] = (__u64)BPF_CORE_READ(m, filename, uptr);
		break;
	}
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2: {
		struct io_open *o = (void *)req;
		__u64 of = BPF_CORE_READ(o, how.flags);

		if (!(of & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)))
			return 0;
		/* Whether O_CREAT found the file there is decided later: reported as create. */
		op = (of & O_CREAT) ? OW_OP_CREATE : OW_OP_WRITE;
		if (op == OW_OP_CREATE)
			mode = umasked(BPF_CORE_READ(o, how.mode));
		sc = SC_MKDIR; /* dfd, path */
		a[0] = (__s64)BPF_CORE_READ(o, dfd);
		a[1] = (__u64)BPF_CORE_READ(o, filename, uptr);
		break;
	}
	case IORING_OP_RENAMEAT: {
		struct io_rename *r = (void *)req;
		__u32 rf = BPF_CORE_READ(r, flags);

		op = OW_OP_RENAME;
		flags |= OW_F_NOFOLLOW | ((rf & RENAME_EXCHANGE) ? OW_F_EXCHANGE : 0);
		sc = SC_RENAME;
		a[0] = (__s64)BPF_CORE_READ(r, old_dfd);
		a[1] = (__u64)BPF_CORE_READ(r, oldpath, uptr);
		a[2] = (__s64)BPF_CORE_READ(r, new_dfd);
		a[3] = (__u64)BPF_CORE_READ(r, newpath, uptr);
		a[4] = rf;
		break;
	}
	case IORING_OP_UNLINKAT: {
		struct io_unlink *u = (void *)req;

		op = (BPF_CORE_READ(u, flags) & AT_REMOVEDIR) ? OW_OP_RMDIR : OW_OP_UNLINK;
		flags |= OW_F_NOFOLLOW;
		sc = SC_UNLINK;
		a[0] = (__s64)BPF_CORE_READ(u, dfd);
		a[1] = (__u64)BPF_CORE_READ(u, filename, uptr);
		break;
	}
	case IORING_OP_SYMLINKAT: {
		struct io_link *l = (void *)req;

		op = OW_OP_SYMLINK;
		flags |= OW_F_NOFOLLOW;
		sc = SC_SYMLINK; /* target, dfd, linkpath */
		a[0] = (__u64)BPF_CORE_READ(l, oldpath, uptr);
		a[1] = (__s64)BPF_CORE_READ(l, new_dfd);
		a[2] = (__u64)BPF_CORE_READ(l, newpath, uptr);
		break;
	}
	case IORING_OP_LINKAT: {
		struct io_link *l = (void *)req;
		__u32 lf = BPF_CORE_READ(l, flags);

		op = OW_OP_LINK;
		flags |= (lf & AT_SYMLINK_FOLLOW) ? 0 : OW_F_NOFOLLOW;
		sc = SC_LINK;
		a[0] = (__s64)BPF_CORE_READ(l, old_dfd);
		a[1] = (__u64)BPF_CORE_READ(l, oldpath, uptr);
		a[2] = (__s64)BPF_CORE_READ(l, new_dfd);
		a[3] = (__u64)BPF_CORE_READ(l, newpath, uptr);
		a[4] = lf & ~AT_EMPTY_PATH;
		break;
	}
	default:
		return 0;
	}
	if (actor_filtered(op))
		return 0;
	{
		struct pending p = {
			.op = op,
			.flags = flags,
			.mode = mode,
			.syscall = sc,
			.args = { a[0], a[1], a[2], a[3], a[4] },
		};

		return syscall_event(p, 0, OW_F_NO_RET);
	}
}

/* Program names: a contract with user space (lib/prog_names.h), which picks one of the two. */
/* 6.4+ */
SEC("?tp_btf/io_uring_submit_req")
int BPF_PROG(tp_uring_req, struct io_kiocb *req)
{
	return uring_event((struct io_kiocb *)num(req));
}

/* 5.19 to 6.3: the same, under its older name */
SEC("?tp_btf/io_uring_submit_sqe")
int BPF_PROG(tp_uring_sqe, struct io_kiocb *req)
{
	return uring_event((struct io_kiocb *)num(req));
}

#endif
