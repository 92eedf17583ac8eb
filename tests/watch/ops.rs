//! Every op through every syscall variant that makes it, as root (fsuid 0): open/openat/
//! openat2/creat/O_TMPFILE/mknod creates, mkdir, mknod, symlink, link, rename, unlink and
//! rmdir, chmod, chown, truncate and writes, xattrs (also the *xattrat syscalls), and the same
//! ops through io_uring.

use super::*;

use libc::c_long;

const SYS_FCHMODAT2: c_long = 452;
const SYS_SETXATTRAT: c_long = 463;
const SYS_REMOVEXATTRAT: c_long = 466;

#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// Does this kernel have syscall `nr`? (Called with arguments that fail harmlessly.)
fn have_syscall(nr: c_long) -> bool {
    let r = unsafe { libc::syscall(nr, -1i64, 0i64, 0i64, 0i64, 0i64, 0i64) };
    !(r < 0 && errno() == libc::ENOSYS)
}

#[test]
fn root_create_variants() {
    needs_root!();
    let d = TestDir::new("create");
    let t = &d.tree;
    let (evs, by) = d.root_run(&[], || {
        let fd = sc!(
            libc::SYS_open,
            cp(d.t("c_open")),
            libc::O_CREAT | libc::O_WRONLY,
            0o640
        )?;
        close(fd);
        let fd = sc!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            cp(d.t("c_openat")),
            libc::O_CREAT | libc::O_RDWR,
            0o600
        )?;
        close(fd);
        let dfd = dirfd(t)?; // reading a directory: nothing
        let fd = sc!(
            libc::SYS_openat,
            dfd,
            cs("c_openat_dirfd"),
            libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL,
            0o644
        )?;
        close(fd);
        let fd = openat2(dfd, &cs("c_openat2"), libc::O_CREAT | libc::O_WRONLY, 0o640)?;
        close(fd);
        let fd = sc!(libc::SYS_creat, cp(d.t("c_creat")), 0o604)?;
        close(fd);
        // O_TMPFILE, named by linkat(fd, "", AT_EMPTY_PATH)
        let fd = sc!(
            libc::SYS_open,
            cp(t),
            libc::O_TMPFILE | libc::O_WRONLY,
            0o600
        )?;
        sc!(
            libc::SYS_linkat,
            fd,
            cs(""),
            libc::AT_FDCWD,
            cp(d.t("c_tmp_empty")),
            libc::AT_EMPTY_PATH
        )?;
        close(fd);
        // O_TMPFILE, named by linkat("/proc/self/fd/N", AT_SYMLINK_FOLLOW)
        let fd = sc!(
            libc::SYS_openat,
            dfd,
            cs("."),
            libc::O_TMPFILE | libc::O_RDWR,
            0o640
        )?;
        sc!(
            libc::SYS_linkat,
            libc::AT_FDCWD,
            cs(format!("/proc/self/fd/{fd}")),
            dfd,
            cs("c_tmp_proc"),
            libc::AT_SYMLINK_FOLLOW
        )?;
        close(fd);
        sc!(
            libc::SYS_mknod,
            cp(d.t("c_mknod")),
            libc::S_IFREG | 0o644,
            0
        )?;
        sc!(
            libc::SYS_mknodat,
            dfd,
            cs("c_mknodat"),
            libc::S_IFREG | 0o600,
            0
        )?;
        sc!(libc::SYS_mknod, cp(d.t("c_mknod_notype")), 0o620, 0)?; // type 0 = regular
                                                                    // Existing file: O_CREAT without O_EXCL opens it -> write, not create.
        let fd = sc!(
            libc::SYS_open,
            cp(d.t("c_open")),
            libc::O_CREAT | libc::O_WRONLY,
            0o777
        )?;
        close(fd);
        // Read-only opens of an existing file: nothing.
        let fd = sc!(libc::SYS_open, cp(d.t("c_open")), libc::O_RDONLY)?;
        close(fd);
        let fd = sc!(
            libc::SYS_open,
            cp(d.t("c_open")),
            libc::O_CREAT | libc::O_RDONLY,
            0o600
        )?;
        close(fd);
        close(dfd);
        Ok(())
    });
    assert_events(
        &evs,
        &[
            by.op("create", "c_open").mode(0o640),
            by.op("create", "c_openat").mode(0o600),
            by.op("create", "c_openat_dirfd").mode(0o644),
            by.op("create", "c_openat2").mode(0o640),
            by.op("create", "c_creat").mode(0o604),
            by.op("create", "c_tmp_empty").mode(0o600),
            by.op("create", "c_tmp_proc").mode(0o640),
            by.op("create", "c_mknod").mode(0o644),
            by.op("create", "c_mknodat").mode(0o600),
            by.op("create", "c_mknod_notype").mode(0o620),
            by.op("write", "c_open"),
        ],
        t,
    );
}

#[test]
fn root_mkdir_mknod_symlink_link_variants() {
    needs_root!();
    let d = TestDir::new("mkdir");
    let t = &d.tree;
    make_file(d.t("f"), b"data");
    make_file(d.o("src_in"), b"outside");
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(t)?;
        sc!(libc::SYS_mkdir, cp(d.t("d_mkdir")), 0o755)?;
        sc!(
            libc::SYS_mkdirat,
            libc::AT_FDCWD,
            cp(d.t("d_mkdirat")),
            0o700
        )?;
        sc!(libc::SYS_mkdirat, dfd, cs("d_fd"), 0o750)?;
        sc!(libc::SYS_mkdir, cp(d.t("d_sticky")), 0o1777)?;
        sc!(libc::SYS_mknod, cp(d.t("n_fifo")), libc::S_IFIFO | 0o644, 0)?;
        sc!(
            libc::SYS_mknodat,
            dfd,
            cs("n_fifo2"),
            libc::S_IFIFO | 0o600,
            0
        )?;
        sc!(
            libc::SYS_mknod,
            cp(d.t("n_sock")),
            libc::S_IFSOCK | 0o640,
            0
        )?;
        sc!(
            libc::SYS_mknod,
            cp(d.t("n_chr")),
            libc::S_IFCHR | 0o600,
            libc::makedev(1, 3)
        )?;
        sc!(libc::SYS_symlink, cs("f"), cp(d.t("s_rel")))?;
        sc!(
            libc::SYS_symlinkat,
            cs("/nonexistent/abs target"),
            dfd,
            cs("s_abs")
        )?;
        sc!(libc::SYS_link, cp(d.t("f")), cp(d.t("l_link")))?;
        sc!(libc::SYS_linkat, dfd, cs("f"), dfd, cs("l_linkat"), 0)?;
        // Without AT_SYMLINK_FOLLOW the symlink itself gets the new name.
        sc!(
            libc::SYS_linkat,
            libc::AT_FDCWD,
            cp(d.t("s_rel")),
            libc::AT_FDCWD,
            cp(d.t("l_sym")),
            0
        )?;
        // With it, the target object does.
        sc!(
            libc::SYS_linkat,
            libc::AT_FDCWD,
            cp(d.t("s_rel")),
            libc::AT_FDCWD,
            cp(d.t("l_follow")),
            libc::AT_SYMLINK_FOLLOW
        )?;
        // AT_EMPTY_PATH of an ordinary (named) file is a link, not a create.
        let fd = rdonly(&d.t("f"))?;
        sc!(
            libc::SYS_linkat,
            fd,
            cs(""),
            dfd,
            cs("l_empty"),
            libc::AT_EMPTY_PATH
        )?;
        close(fd);
        // A new name in the tree for a file from outside.
        sc!(libc::SYS_link, cp(d.o("src_in")), cp(d.t("l_in")))?;
        close(dfd);
        Ok(())
    });
    assert_events(
        &evs,
        &[
            by.op("mkdir", "d_mkdir").mode(0o755),
            by.op("mkdir", "d_mkdirat").mode(0o700),
            by.op("mkdir", "d_fd").mode(0o750),
            by.op("mkdir", "d_sticky").mode(0o1777),
            by.op("mknod", "n_fifo").mode(0o644),
            by.op("mknod", "n_fifo2").mode(0o600),
            by.op("mknod", "n_sock").mode(0o640),
            by.op("mknod", "n_chr").mode(0o600),
            by.op("symlink", "s_rel").target("f"),
            by.op("symlink", "s_abs").target("/nonexistent/abs target"),
            by.op("link", "f").new_path(d.t("l_link")),
            by.op("link", "f").new_path(d.t("l_linkat")),
            by.op("link", "s_rel").new_path(d.t("l_sym")),
            by.op("link", "f").new_path(d.t("l_follow")),
            by.op("link", "f").new_path(d.t("l_empty")),
            by.op("link", d.o("src_in")).new_path(d.t("l_in")),
        ],
        t,
    );
}

#[test]
fn root_rename_variants() {
    needs_root!();
    let d = TestDir::new("rename");
    let t = &d.tree;
    for f in ["r1", "r2", "r3", "x1", "x2", "victim", "out1"] {
        make_file(d.t(f), f.as_bytes());
    }
    make_dir(d.t("rd"));
    make_file(d.t("rd/inner"), b"");
    std::os::unix::fs::symlink("r3", d.t("rsl")).unwrap();
    make_file(d.o("in1"), b"in");
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(t)?;
        sc!(libc::SYS_rename, cp(d.t("r1")), cp(d.t("r1b")))?;
        sc!(libc::SYS_renameat, dfd, cs("r2"), dfd, cs("r2b"))?;
        sc!(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            cp(d.t("r3")),
            libc::AT_FDCWD,
            cp(d.t("r3b")),
            0
        )?;
        sc!(
            libc::SYS_renameat2,
            dfd,
            cs("r1b"),
            dfd,
            cs("r1c"),
            libc::RENAME_NOREPLACE
        )?;
        sc!(
            libc::SYS_renameat2,
            dfd,
            cs("x1"),
            dfd,
            cs("x2"),
            libc::RENAME_EXCHANGE
        )?;
        // Replacing an existing name is one rename.
        sc!(libc::SYS_rename, cp(d.t("r2b")), cp(d.t("victim")))?;
        // Moves in and out of the tree.
        sc!(libc::SYS_rename, cp(d.o("in1")), cp(d.t("in1")))?;
        sc!(libc::SYS_rename, cp(d.t("out1")), cp(d.o("out1")))?;
        // A directory, and a move into a subdirectory.
        sc!(libc::SYS_rename, cp(d.t("rd")), cp(d.t("rd2")))?;
        sc!(libc::SYS_rename, cp(d.t("r3b")), cp(d.t("rd2/r3c")))?;
        // A symlink is renamed itself, not its target.
        sc!(libc::SYS_rename, cp(d.t("rsl")), cp(d.t("rsl2")))?;
        close(dfd);
        Ok(())
    });
    let e = |from: &str, to: &str| by.rename(from, to);
    assert_events(
        &evs,
        &[
            e("r1", "r1b"),
            e("r2", "r2b"),
            e("r3", "r3b"),
            e("r1b", "r1c"),
            e("x1", "x2").exchange(),
            e("r2b", "victim"),
            by.op("rename", d.o("in1")).new_path(d.t("in1")),
            by.op("rename", "out1").new_path(d.o("out1")),
            e("rd", "rd2"),
            e("r3b", "rd2/r3c"),
            e("rsl", "rsl2"),
        ],
        t,
    );
}

#[test]
fn root_unlink_rmdir_variants() {
    needs_root!();
    let d = TestDir::new("unlink");
    let t = &d.tree;
    for f in ["u1", "u2", "u3"] {
        make_file(d.t(f), b"");
    }
    for dd in ["dd1", "dd2", "sub"] {
        make_dir(d.t(dd));
    }
    make_file(d.t("sub/u4"), b"");
    make_file(d.o("target"), b"");
    std::os::unix::fs::symlink(d.o("target"), d.t("usl")).unwrap();
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(t)?;
        sc!(libc::SYS_unlink, cp(d.t("u1")))?;
        sc!(libc::SYS_unlinkat, dfd, cs("u2"), 0)?;
        sc!(libc::SYS_unlinkat, libc::AT_FDCWD, cp(d.t("u3")), 0)?;
        sc!(libc::SYS_rmdir, cp(d.t("dd1")))?;
        sc!(libc::SYS_unlinkat, dfd, cs("dd2"), libc::AT_REMOVEDIR)?;
        sc!(libc::SYS_unlink, cp(d.t("usl")))?;
        let sfd = dirfd(&d.t("sub"))?;
        sc!(libc::SYS_unlinkat, sfd, cs("u4"), 0)?;
        close(sfd);
        close(dfd);
        Ok(())
    });
    assert_events(
        &evs,
        &[
            by.op("unlink", "u1"),
            by.op("unlink", "u2"),
            by.op("unlink", "u3"),
            by.op("rmdir", "dd1"),
            by.op("rmdir", "dd2"),
            by.op("unlink", "usl"),
            by.op("unlink", "sub/u4"),
        ],
        t,
    );
    assert!(d.o("target").exists());
}

#[test]
fn root_chmod_variants() {
    needs_root!();
    let d = TestDir::new("chmod");
    let t = &d.tree;
    make_file(d.t("m"), b"");
    make_dir(d.t("md"));
    std::os::unix::fs::symlink("m", d.t("msl")).unwrap();
    let fchmodat2 = have_syscall(SYS_FCHMODAT2);
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(t)?;
        sc!(libc::SYS_chmod, cp(d.t("m")), 0o600)?;
        let fd = rdonly(&d.t("m"))?;
        sc!(libc::SYS_fchmod, fd, 0o640)?;
        sc!(libc::SYS_fchmodat, libc::AT_FDCWD, cp(d.t("m")), 0o604)?;
        sc!(libc::SYS_fchmodat, dfd, cs("m"), 0o660)?;
        sc!(libc::SYS_chmod, cp(d.t("msl")), 0o644)?; // follows: the target
        sc!(libc::SYS_chmod, cp(d.t("md")), 0o1777)?;
        sc!(libc::SYS_chmod, cp(d.t("m")), 0o4755)?;
        sc!(libc::SYS_chmod, cp(t), 0o777)?; // the watched root itself
        if fchmodat2 {
            sc!(SYS_FCHMODAT2, dfd, cs("m"), 0o640, 0)?;
            sc!(SYS_FCHMODAT2, fd, cs(""), 0o600, libc::AT_EMPTY_PATH)?;
            sc!(SYS_FCHMODAT2, dfd, cs("msl"), 0o644, 0)?;
        }
        close(fd);
        close(dfd);
        Ok(())
    });
    let e = |rel: &str, m: u32| by.op("chmod", rel).mode(m);
    let mut want = vec![
        e("m", 0o600),
        e("m", 0o640),
        e("m", 0o604),
        e("m", 0o660),
        e("m", 0o644),
        e("md", 0o1777),
        e("m", 0o4755),
        by.op("chmod", t).mode(0o777),
    ];
    if fchmodat2 {
        want.extend([e("m", 0o640), e("m", 0o600), e("m", 0o644)]);
    } else {
        eprintln!("root_chmod_variants: fchmodat2 not in this kernel, not tested");
    }
    assert_events(&evs, &want, t);
}

#[test]
fn root_chown_variants() {
    needs_root!();
    let d = TestDir::new("chown");
    let t = &d.tree;
    make_file(d.t("o"), b"");
    std::os::unix::fs::symlink("o", d.t("osl")).unwrap();
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(t)?;
        sc!(libc::SYS_chown, cp(d.t("o")), OTHER, OTHER)?;
        let fd = rdonly(&d.t("o"))?;
        sc!(libc::SYS_fchown, fd, OWNER, -1i32)?;
        sc!(libc::SYS_lchown, cp(d.t("osl")), OWNER, OWNER)?;
        sc!(libc::SYS_fchownat, dfd, cs("o"), -1i32, OTHER, 0)?;
        sc!(
            libc::SYS_fchownat,
            dfd,
            cs("osl"),
            0,
            0,
            libc::AT_SYMLINK_NOFOLLOW
        )?;
        sc!(libc::SYS_chown, cp(d.t("osl")), 0, 0)?; // follows: the target
        sc!(
            libc::SYS_fchownat,
            fd,
            cs(""),
            OWNER,
            OWNER,
            libc::AT_EMPTY_PATH
        )?;
        close(fd);
        close(dfd);
        Ok(())
    });
    let e = |rel: &str, u: Option<u32>, g: Option<u32>| by.op("chown", rel).owner(u, g);
    assert_events(
        &evs,
        &[
            e("o", Some(OTHER), Some(OTHER)),
            e("o", Some(OWNER), None),
            e("osl", Some(OWNER), Some(OWNER)),
            e("o", None, Some(OTHER)),
            e("osl", Some(0), Some(0)),
            e("o", Some(0), Some(0)),
            e("o", Some(OWNER), Some(OWNER)),
        ],
        t,
    );
}

#[test]
fn root_truncate_and_write_variants() {
    needs_root!();
    let d = TestDir::new("trunc");
    let t = &d.tree;
    make_file(d.t("w"), &[b'x'; 100]);
    std::os::unix::fs::symlink("w", d.t("wsl")).unwrap();
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(t)?;
        sc!(libc::SYS_truncate, cp(d.t("w")), 50)?;
        sc!(libc::SYS_truncate, cp(d.t("wsl")), 40)?; // follows
        let fd = sc!(libc::SYS_open, cp(d.t("w")), libc::O_WRONLY)?;
        sc!(libc::SYS_ftruncate, fd, 10)?;
        let b = b"more";
        sc!(libc::SYS_write, fd, b.as_ptr(), b.len())?; // write(2) itself: no extra event
        close(fd);
        let fd = sc!(
            libc::SYS_openat,
            dfd,
            cs("w"),
            libc::O_RDWR | libc::O_APPEND
        )?;
        close(fd);
        let fd = openat2(dfd, &cs("w"), libc::O_WRONLY, 0)?;
        close(fd);
        let fd = sc!(libc::SYS_open, cp(d.t("wsl")), libc::O_WRONLY)?; // follows
        close(fd);
        let fd = sc!(libc::SYS_open, cp(d.t("w")), libc::O_RDONLY)?; // nothing
        close(fd);
        // An existing file opened for writing with O_TRUNC, or by creat(2): "write".
        let fd = sc!(libc::SYS_open, cp(d.t("w")), libc::O_WRONLY | libc::O_TRUNC)?;
        close(fd);
        let fd = sc!(libc::SYS_creat, cp(d.t("w")), 0o600)?;
        close(fd);
        close(dfd);
        Ok(())
    });
    let e = |op: &str| by.op(op, d.t("w"));
    assert_events(
        &evs,
        &[
            e("truncate"),
            e("truncate"),
            e("write"),
            e("truncate"),
            e("write"),
            e("write"),
            e("write"),
            e("write"),
            e("write"),
        ],
        t,
    );
}

#[test]
fn root_xattr_variants() {
    needs_root!();
    let d = TestDir::new("xattr");
    let t = &d.tree;
    make_file(d.t("x"), b"");
    std::os::unix::fs::symlink("x", d.t("xsl")).unwrap();
    let (evs, by) = d.root_run(&[], || {
        let v = b"value";
        let (vp, vl) = (v.as_ptr(), v.len());
        sc!(libc::SYS_setxattr, cp(d.t("x")), cs("user.a"), vp, vl, 0)?;
        sc!(libc::SYS_lsetxattr, cp(d.t("x")), cs("user.b"), vp, vl, 0)?;
        let fd = rdonly(&d.t("x"))?;
        sc!(libc::SYS_fsetxattr, fd, cs("user.c"), vp, vl, 0)?;
        sc!(libc::SYS_setxattr, cp(d.t("xsl")), cs("user.d"), vp, vl, 0)?; // follows
        sc!(libc::SYS_setxattr, cp(t), cs("user.root"), vp, vl, 0)?; // the root itself
        sc!(libc::SYS_removexattr, cp(d.t("x")), cs("user.a"))?;
        sc!(libc::SYS_lremovexattr, cp(d.t("x")), cs("user.b"))?;
        sc!(libc::SYS_fremovexattr, fd, cs("user.c"))?;
        sc!(libc::SYS_removexattr, cp(d.t("xsl")), cs("user.d"))?; // follows
                                                                   // l*xattr on a symlink: the link itself (trusted.* is allowed on symlinks for root).
        sc!(
            libc::SYS_lsetxattr,
            cp(d.t("xsl")),
            cs("trusted.l"),
            vp,
            vl,
            0
        )?;
        sc!(libc::SYS_lremovexattr, cp(d.t("xsl")), cs("trusted.l"))?;
        close(fd);
        Ok(())
    });
    let e = |op: &str, x: &str| by.op(op, d.t("x")).xattr(x);
    assert_events(
        &evs,
        &[
            e("setxattr", "user.a"),
            e("setxattr", "user.b"),
            e("setxattr", "user.c"),
            e("setxattr", "user.d"),
            by.op("setxattr", t).xattr("user.root"),
            e("removexattr", "user.a"),
            e("removexattr", "user.b"),
            e("removexattr", "user.c"),
            e("removexattr", "user.d"),
            by.op("setxattr", "xsl").xattr("trusted.l"),
            by.op("removexattr", "xsl").xattr("trusted.l"),
        ],
        t,
    );
}

#[test]
fn root_xattrat_syscalls() {
    needs_root!();
    if !have_syscall(SYS_SETXATTRAT) {
        eprintln!("root_xattrat_syscalls: setxattrat not in this kernel (< 6.13), not tested");
        return;
    }
    let d = TestDir::new("xattrat");
    let t = &d.tree;
    make_file(d.t("x"), b"");
    std::os::unix::fs::symlink("x", d.t("xsl")).unwrap();
    let (evs, by) = d.root_run(&[], || {
        let v = b"value";
        let args = XattrArgs {
            value: v.as_ptr() as u64,
            size: v.len() as u32,
            flags: 0,
        };
        let ap = &args as *const XattrArgs;
        let asz = std::mem::size_of::<XattrArgs>();
        let dfd = dirfd(t)?;
        let fd = rdonly(&d.t("x"))?;
        sc!(SYS_SETXATTRAT, dfd, cs("x"), 0, cs("user.e"), ap, asz)?;
        sc!(
            SYS_SETXATTRAT,
            fd,
            cs(""),
            libc::AT_EMPTY_PATH,
            cs("user.f"),
            ap,
            asz
        )?;
        sc!(
            SYS_SETXATTRAT,
            libc::AT_FDCWD,
            cp(d.t("xsl")),
            0,
            cs("user.g"),
            ap,
            asz
        )?;
        sc!(SYS_REMOVEXATTRAT, dfd, cs("x"), 0, cs("user.e"))?;
        sc!(
            SYS_REMOVEXATTRAT,
            fd,
            cs(""),
            libc::AT_EMPTY_PATH,
            cs("user.f")
        )?;
        sc!(
            SYS_REMOVEXATTRAT,
            libc::AT_FDCWD,
            cp(d.t("xsl")),
            0,
            cs("user.g")
        )?;
        close(fd);
        close(dfd);
        Ok(())
    });
    let e = |op: &str, x: &str| by.op(op, d.t("x")).xattr(x);
    assert_events(
        &evs,
        &[
            e("setxattr", "user.e"),
            e("setxattr", "user.f"),
            e("setxattr", "user.g"),
            e("removexattr", "user.e"),
            e("removexattr", "user.f"),
            e("removexattr", "user.g"),
        ],
        t,
    );
}

/// One io_uring operation, waited for; its result (>= 0 or -errno).
fn uring(ring: &mut io_uring::IoUring, e: io_uring::squeue::Entry) -> Result<i32, String> {
    unsafe { ring.submission().push(&e) }.map_err(|e| format!("io_uring push: {e}"))?;
    ring.submit_and_wait(1)
        .map_err(|e| format!("io_uring_enter: {e}"))?;
    let cqe = ring.completion().next().ok_or("io_uring: no completion")?;
    Ok(cqe.result())
}

#[test]
fn io_uring_ops_are_reported() {
    needs_root!();
    use io_uring::{opcode, types::Fd};
    let d = TestDir::new("uring");
    let t = &d.tree;
    make_dir(d.t("exists"));
    let backend = expected_backend();
    let (evs, by) = d.root_run(&[], || {
        let mut ring = io_uring::IoUring::new(8).map_err(|e| format!("io_uring_setup: {e}"))?;
        let at = Fd(libc::AT_FDCWD);
        let ok = |what: &str, r: i32| {
            if r < 0 {
                Err(format!("io_uring {what}: errno {}", -r))
            } else {
                Ok(r)
            }
        };
        let (dir, f, g) = (cp(d.t("u_dir")), cp(d.t("u_file")), cp(d.t("u_moved")));
        ok(
            "mkdirat",
            uring(
                &mut ring,
                opcode::MkDirAt::new(at, dir.as_ptr()).mode(0o750).build(),
            )?,
        )?;
        let fd = ok(
            "openat",
            uring(
                &mut ring,
                opcode::OpenAt::new(at, f.as_ptr())
                    .flags(libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC)
                    .mode(0o640)
                    .build(),
            )?,
        )?;
        close(fd as c_long);
        ok(
            "renameat",
            uring(
                &mut ring,
                opcode::RenameAt::new(at, f.as_ptr(), at, g.as_ptr()).build(),
            )?,
        )?;
        ok(
            "unlinkat",
            uring(&mut ring, opcode::UnlinkAt::new(at, g.as_ptr()).build())?,
        )?;
        ok(
            "unlinkat AT_REMOVEDIR",
            uring(
                &mut ring,
                opcode::UnlinkAt::new(at, dir.as_ptr())
                    .flags(libc::AT_REMOVEDIR)
                    .build(),
            )?,
        )?;
        // Outside the tree: nothing.
        let out = cp(d.o("u_out"));
        ok(
            "mkdirat outside",
            uring(
                &mut ring,
                opcode::MkDirAt::new(at, out.as_ptr()).mode(0o755).build(),
            )?,
        )?;
        // A failed op is not reported where the backend knows the outcome (the tracepoint
        // backend sees only the submission).
        if backend != "tracepoint" {
            let ex = cp(d.t("exists"));
            let r = uring(
                &mut ring,
                opcode::MkDirAt::new(at, ex.as_ptr()).mode(0o755).build(),
            )?;
            if r != -libc::EEXIST {
                return Err(format!("mkdirat of an existing dir gave {r}, want -EEXIST"));
            }
        }
        Ok(())
    });
    let e = |op: &str, rel: &str| by.op(op, rel).io_uring();
    assert_events(
        &evs,
        &[
            e("mkdir", "u_dir").mode(0o750),
            e("create", "u_file").mode(0o640),
            e("rename", "u_file").new_path(d.t("u_moved")),
            e("unlink", "u_moved"),
            e("rmdir", "u_dir"),
        ],
        t,
    );
}
