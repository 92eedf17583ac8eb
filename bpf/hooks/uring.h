/* SPDX-License-Identifier: GPL-2.0 */
/* Tracepoint backend: io_uring file operations, seen at submission. */
#ifndef OW_HOOKS_URING_H
#define OW_HOOKS_URING_H

/* io_uring file operations bypass the syscall tracepoints: the submission tracepoint sees
 * them (after the request was prepared, so its path strings are known), as the syscall
 * would have been given them. Their outcome comes later, elsewhere: not reported.
 * Each uring_<op>() below puts a request into struct pending as hooks/syscalls.h remembers
 * the syscall; it returns 0 for a request that is not reported. */

/* 7.2+: a request holds the kernel's copy of each path (struct delayed_filename, made at
 * prep), no longer the caller's pointer (struct filename lost uptr). */
struct delayed_filename___ow {
	struct filename *__incomplete_filename;
} __attribute__((preserve_access_index));
struct io_mkdir___df {
	struct delayed_filename___ow filename;
} __attribute__((preserve_access_index));
struct io_open___df {
	struct delayed_filename___ow filename;
} __attribute__((preserve_access_index));
struct io_unlink___df {
	struct delayed_filename___ow filename;
} __attribute__((preserve_access_index));
struct io_rename___df {
	struct delayed_filename___ow oldpath;
	struct delayed_filename___ow newpath;
} __attribute__((preserve_access_index));
struct io_link___df {
	struct delayed_filename___ow oldpath;
	struct delayed_filename___ow newpath;
} __attribute__((preserve_access_index));
struct io_xattr___df {
	struct delayed_filename___ow filename;
} __attribute__((preserve_access_index));

/* The path string of field F of request R (struct T): the caller's pointer, or from 7.2 the
 * kernel's copy, which p->kstrs then says. */
#define URING_NAME(p, R, T, F)                                                             \
	(bpf_core_type_exists(struct delayed_filename___ow)                                \
		 ? ((p)->kstrs = 1,                                                        \
		    (__u64)BPF_CORE_READ((struct T##___df *)(R), F.__incomplete_filename, name)) \
		 : (__u64)BPF_CORE_READ((struct T *)(R), F, uptr))

/* (dfd, path string) into two argument slots, as the *at() syscalls take them */
static __always_inline void uring_path(__u64 *a, int dfd, __u64 name)
{
	a[0] = (__s64)dfd;
	a[1] = name;
}

static __always_inline int uring_mkdirat(struct io_mkdir *m, struct pending *p)
{
	p->op = OW_OP_MKDIR;
	p->flags |= OW_F_NOFOLLOW;
	p->mode = umasked(BPF_CORE_READ(m, mode));
	p->syscall = SC_MKDIR;
	uring_path(p->args, BPF_CORE_READ(m, dfd), URING_NAME(p, m, io_mkdir, filename));
	return 1;
}

static __always_inline int uring_openat(struct io_open *o, struct pending *p)
{
	__u64 of = BPF_CORE_READ(o, how.flags);

	if (!(of & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)))
		return 0;
	/* Whether O_CREAT found the file there is decided later: reported as create. */
	p->op = (of & O_CREAT) ? OW_OP_CREATE : OW_OP_WRITE;
	if (p->op == OW_OP_CREATE)
		p->mode = umasked(BPF_CORE_READ(o, how.mode));
	p->syscall = SC_MKDIR; /* dfd, path */
	uring_path(p->args, BPF_CORE_READ(o, dfd), URING_NAME(p, o, io_open, filename));
	return 1;
}

static __always_inline int uring_renameat(struct io_rename *r, struct pending *p)
{
	__u32 rf = BPF_CORE_READ(r, flags);

	p->op = OW_OP_RENAME;
	p->flags |= OW_F_NOFOLLOW | ((rf & RENAME_EXCHANGE) ? OW_F_EXCHANGE : 0);
	p->syscall = SC_RENAME;
	uring_path(&p->args[0], BPF_CORE_READ(r, old_dfd), URING_NAME(p, r, io_rename, oldpath));
	uring_path(&p->args[2], BPF_CORE_READ(r, new_dfd), URING_NAME(p, r, io_rename, newpath));
	p->args[4] = rf;
	return 1;
}

static __always_inline int uring_unlinkat(struct io_unlink *u, struct pending *p)
{
	p->op = (BPF_CORE_READ(u, flags) & AT_REMOVEDIR) ? OW_OP_RMDIR : OW_OP_UNLINK;
	p->flags |= OW_F_NOFOLLOW;
	p->syscall = SC_UNLINK;
	uring_path(p->args, BPF_CORE_READ(u, dfd), URING_NAME(p, u, io_unlink, filename));
	return 1;
}

static __always_inline int uring_symlinkat(struct io_link *l, struct pending *p)
{
	p->op = OW_OP_SYMLINK;
	p->flags |= OW_F_NOFOLLOW;
	p->syscall = SC_SYMLINK; /* target, dfd, linkpath */
	p->args[0] = URING_NAME(p, l, io_link, oldpath);
	uring_path(&p->args[1], BPF_CORE_READ(l, new_dfd), URING_NAME(p, l, io_link, newpath));
	return 1;
}

static __always_inline int uring_linkat(struct io_link *l, struct pending *p)
{
	__u32 lf = BPF_CORE_READ(l, flags);

	p->op = OW_OP_LINK;
	p->flags |= (lf & AT_SYMLINK_FOLLOW) ? 0 : OW_F_NOFOLLOW;
	p->syscall = SC_LINK;
	uring_path(&p->args[0], BPF_CORE_READ(l, old_dfd), URING_NAME(p, l, io_link, oldpath));
	uring_path(&p->args[2], BPF_CORE_READ(l, new_dfd), URING_NAME(p, l, io_link, newpath));
	p->args[4] = lf & ~AT_EMPTY_PATH;
	return 1;
}

/* The fd a request on a file was given, as fd ops remember it (args[0]); 0 when it has
 * none that the submitter's fd table names: a registered file (IOSQE_FIXED_FILE) is an
 * index into the ring's own table, not seen (README). */
static __always_inline int uring_fd(struct io_kiocb *req, struct pending *p)
{
	if (!bpf_core_field_exists(req->cqe.fd) || (BPF_CORE_READ(req, flags) & REQ_F_FIXED_FILE))
		return 0;
	p->args[0] = (__s64)BPF_CORE_READ(req, cqe.fd);
	return 1;
}

/* 6.9+: ftruncate(fd, len) */
static __always_inline int uring_ftruncate(struct io_kiocb *req, struct pending *p)
{
	p->op = OW_OP_TRUNCATE;
	p->syscall = SC_FTRUNCATE;
	return uring_fd(req, p);
}

/* 5.19+: setxattr(path, name, ...) and fsetxattr(fd, name, ...). The request holds the
 * kernel's copies of the name (and of the path), read as the caller's strings would be
 * (kstrs); setxattr follows a final symlink. */
static __always_inline int uring_xattr(struct io_kiocb *req, struct io_xattr *x,
				       struct pending *p, int by_fd)
{
	/* (the name is an array in struct xattr_name: its address, not a copy of it) */
	__u64 name = (__u64)BPF_CORE_READ(x, ctx.kname) +
		     bpf_core_field_offset(struct xattr_name, name);

	p->op = OW_OP_SETXATTR;
	p->kstrs = 1;
	if (by_fd) {
		p->syscall = SC_FSETXATTR; /* fd, name */
		p->args[1] = name;
		return uring_fd(req, p);
	}
	p->syscall = SC_SETXATTR; /* AT_FDCWD, path, name */
	p->args[0] = (__s64)AT_FDCWD;
	if (bpf_core_type_exists(struct delayed_filename___ow))
		p->args[1] = (__u64)BPF_CORE_READ((struct io_xattr___df *)x,
						  filename.__incomplete_filename, name);
	else
		p->args[1] = (__u64)BPF_CORE_READ(x, filename, name);
	p->args[2] = name;
	return 1;
}

/* The file operations among the requests; 0 for the others. */
static __always_inline int uring_pending(struct io_kiocb *req, struct pending *p)
{
	void *op = req; /* the request's op-specific part comes first */

	switch (BPF_CORE_READ(req, opcode)) {
	case IORING_OP_MKDIRAT: return uring_mkdirat(op, p);
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2: return uring_openat(op, p);
	case IORING_OP_RENAMEAT: return uring_renameat(op, p);
	case IORING_OP_UNLINKAT: return uring_unlinkat(op, p);
	case IORING_OP_SYMLINKAT: return uring_symlinkat(op, p);
	case IORING_OP_LINKAT: return uring_linkat(op, p);
	case IORING_OP_FTRUNCATE: return uring_ftruncate(req, p);
	case IORING_OP_SETXATTR: return uring_xattr(req, op, p, 0);
	case IORING_OP_FSETXATTR: return uring_xattr(req, op, p, 1);
	}
	return 0;
}

static __always_inline int uring_event(struct io_kiocb *req)
{
	struct pending p = { .flags = OW_F_NO_RET, .mode = OW_UNSET };

	if (!uring_pending(req, &p) || actor_filtered(p.op))
		return 0;
	return syscall_event(&p, 0, OW_F_NO_RET);
}

/* Program names: a contract with user space (lib/prog_names.h), which picks one of the two. */
/* 6.4+ */
SEC("?tp_btf/io_uring_submit_req")
int PINNED_PROG(tp_uring_req, struct io_kiocb *req)
{
	return uring_event((struct io_kiocb *)num(req));
}

/* 5.19 to 6.3: the same, under its older name */
SEC("?tp_btf/io_uring_submit_sqe")
int PINNED_PROG(tp_uring_sqe, struct io_kiocb *req)
{
	return uring_event((struct io_kiocb *)num(req));
}

#endif
