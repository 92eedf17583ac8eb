//! The ops that make, name and remove, through every syscall variant that makes them, as
//! root (fsuid 0): open/openat/openat2/creat/O_TMPFILE/mknod creates, mkdir, mknod, symlink,
//! link, rename, unlink and rmdir. The ops on what is there: `attrs`; through io_uring:
//! `uring`.

use super::*;

/// The shared agent's start (this cell's backend, or auto's choice): one line on stderr,
/// naming the backend, as every normal start (`kernel_wide::a_normal_start_...`, which leaves
/// the backends with a cell of their own to this test).
#[test]
fn the_shared_agent_started_with_one_line() {
    needs_root!();
    let a = Arena::get();
    let backend = match std::env::var("OWNWATCH_TEST_BACKEND") {
        Ok(b) if !b.is_empty() => b,
        _ => expected_choice(),
    };
    let ctx = format!("the shared agent said:\n{}", a.started);
    assert_normal_start(&a.started, &backend, &ctx);
}

#[test]
fn root_create_variants() {
    let d = shared_dir!("create");
    let t = &d.tree;
    let (evs, by) = d.root_run(&[], || {
        let (wr, excl) = (libc::O_CREAT | libc::O_WRONLY, libc::O_EXCL);
        open_close(&d.t("c_open"), wr, 0o640)?;
        openat_close(
            libc::AT_FDCWD,
            cp(d.t("c_openat")),
            libc::O_CREAT | libc::O_RDWR,
            0o600,
        )?;
        let dfd = dirfd(t)?; // reading a directory: nothing
        openat_close(dfd, cs("c_openat_dirfd"), wr | excl, 0o644)?;
        let fd = openat2(dfd, &cs("c_openat2"), wr, 0o640)?;
        close(fd);
        let fd = sc!(nr::SYS_creat, cp(d.t("c_creat")), 0o604)?;
        close(fd);
        let tmp = libc::O_TMPFILE;
        // O_TMPFILE, named by linkat(fd, "", AT_EMPTY_PATH)
        let fd = sc!(nr::SYS_open, cp(t), tmp | libc::O_WRONLY, 0o600)?;
        let empty = libc::AT_EMPTY_PATH;
        sc!(
            libc::SYS_linkat,
            fd,
            cs(""),
            libc::AT_FDCWD,
            cp(d.t("c_tmp_empty")),
            empty
        )?;
        close(fd);
        // O_TMPFILE, named by linkat("/proc/self/fd/N", AT_SYMLINK_FOLLOW)
        let fd = sc!(libc::SYS_openat, dfd, cs("."), tmp | libc::O_RDWR, 0o640)?;
        link_tmpfile(fd, dfd, "c_tmp_proc")?;
        sc!(nr::SYS_mknod, cp(d.t("c_mknod")), libc::S_IFREG | 0o644, 0)?;
        sc!(
            libc::SYS_mknodat,
            dfd,
            cs("c_mknodat"),
            libc::S_IFREG | 0o600,
            0
        )?;
        sc!(nr::SYS_mknod, cp(d.t("c_mknod_notype")), 0o620, 0)?; // type 0 = regular

        // Existing file: O_CREAT without O_EXCL opens it -> write, not create.
        open_close(&d.t("c_open"), wr, 0o777)?;
        // Read-only opens of an existing file: nothing.
        open_close(&d.t("c_open"), libc::O_RDONLY, 0)?;
        open_close(&d.t("c_open"), libc::O_CREAT | libc::O_RDONLY, 0o600)?;
        close(dfd);
        Ok(())
    });
    let mut want = by.modes(
        "create",
        &[
            ("c_open", 0o640),
            ("c_openat", 0o600),
            ("c_openat_dirfd", 0o644),
            ("c_openat2", 0o640),
            ("c_creat", 0o604),
            ("c_tmp_empty", 0o600),
            ("c_tmp_proc", 0o640),
            ("c_mknod", 0o644),
            ("c_mknodat", 0o600),
            ("c_mknod_notype", 0o620),
        ],
    );
    want.push(by.op("write", "c_open"));
    d.expect(&evs, &want);
}

#[test]
fn root_mkdir_mknod_symlink_link_variants() {
    let d = shared_dir!("mkdir");
    make_file(d.t("f"), b"data");
    make_file(d.o("src_in"), b"outside");
    let (p, at) = (|n: &str| cp(d.t(n)), libc::AT_FDCWD);
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(&d.tree)?;
        sc!(nr::SYS_mkdir, p("d_mkdir"), 0o755)?;
        sc!(libc::SYS_mkdirat, at, p("d_mkdirat"), 0o700)?;
        sc!(libc::SYS_mkdirat, dfd, cs("d_fd"), 0o750)?;
        sc!(nr::SYS_mkdir, p("d_sticky"), 0o1777)?;
        sc!(nr::SYS_mknod, p("n_fifo"), libc::S_IFIFO | 0o644, 0)?;
        sc!(
            libc::SYS_mknodat,
            dfd,
            cs("n_fifo2"),
            libc::S_IFIFO | 0o600,
            0
        )?;
        sc!(nr::SYS_mknod, p("n_sock"), libc::S_IFSOCK | 0o640, 0)?;
        let chr = (libc::S_IFCHR | 0o600, libc::makedev(1, 3));
        sc!(nr::SYS_mknod, p("n_chr"), chr.0, chr.1)?;
        sc!(nr::SYS_symlink, cs("f"), p("s_rel"))?;
        let abs = cs("/nonexistent/abs target");
        sc!(libc::SYS_symlinkat, abs, dfd, cs("s_abs"))?;
        sc!(nr::SYS_link, p("f"), p("l_link"))?;
        sc!(libc::SYS_linkat, dfd, cs("f"), dfd, cs("l_linkat"), 0)?;
        // Without AT_SYMLINK_FOLLOW the symlink itself gets the new name.
        sc!(libc::SYS_linkat, at, p("s_rel"), at, p("l_sym"), 0)?;
        // With it, the target object does.
        let follow = libc::AT_SYMLINK_FOLLOW;
        sc!(libc::SYS_linkat, at, p("s_rel"), at, p("l_follow"), follow)?;
        // AT_EMPTY_PATH of an ordinary (named) file is a link, not a create.
        let fd = rdonly(&d.t("f"))?;
        let empty = libc::AT_EMPTY_PATH;
        sc!(libc::SYS_linkat, fd, cs(""), dfd, cs("l_empty"), empty)?;
        close(fd);
        // A new name in the tree for a file from outside.
        sc!(nr::SYS_link, cp(d.o("src_in")), p("l_in"))?;
        close(dfd);
        Ok(())
    });
    let link = |from, to: &str| by.op("link", from).new_path(d.t(to));
    let dirs = [
        ("d_mkdir", 0o755),
        ("d_mkdirat", 0o700),
        ("d_fd", 0o750),
        ("d_sticky", 0o1777),
    ];
    let nodes = [
        ("n_fifo", 0o644),
        ("n_fifo2", 0o600),
        ("n_sock", 0o640),
        ("n_chr", 0o600),
    ];
    let names = vec![
        by.op("symlink", "s_rel").target("f"),
        by.op("symlink", "s_abs").target("/nonexistent/abs target"),
        link(d.t("f"), "l_link"),
        link(d.t("f"), "l_linkat"),
        link(d.t("s_rel"), "l_sym"),
        link(d.t("f"), "l_follow"),
        link(d.t("f"), "l_empty"),
        link(d.o("src_in"), "l_in"),
    ];
    d.expect(
        &evs,
        &[by.modes("mkdir", &dirs), by.modes("mknod", &nodes), names].concat(),
    );
}

#[test]
fn root_rename_variants() {
    let d = shared_dir!("rename");
    let t = &d.tree;
    for f in ["r1", "r2", "r3", "x1", "x2", "victim", "out1"] {
        make_file(d.t(f), f.as_bytes());
    }
    make_dir(d.t("rd"));
    make_file(d.t("rd/inner"), b"");
    std::os::unix::fs::symlink("r3", d.t("rsl")).unwrap();
    make_file(d.o("in1"), b"in");
    let (p, at) = (|n: &str| cp(d.t(n)), libc::AT_FDCWD);
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(t)?;
        sc!(nr::SYS_rename, p("r1"), p("r1b"))?;
        sc!(libc::SYS_renameat, dfd, cs("r2"), dfd, cs("r2b"))?;
        sc!(libc::SYS_renameat2, at, p("r3"), at, p("r3b"), 0)?;
        let (noreplace, exchange) = (libc::RENAME_NOREPLACE, libc::RENAME_EXCHANGE);
        sc!(
            libc::SYS_renameat2,
            dfd,
            cs("r1b"),
            dfd,
            cs("r1c"),
            noreplace
        )?;
        sc!(libc::SYS_renameat2, dfd, cs("x1"), dfd, cs("x2"), exchange)?;
        // Replacing an existing name is one rename.
        sc!(nr::SYS_rename, cp(d.t("r2b")), cp(d.t("victim")))?;
        // Moves in and out of the tree.
        sc!(nr::SYS_rename, cp(d.o("in1")), cp(d.t("in1")))?;
        sc!(nr::SYS_rename, cp(d.t("out1")), cp(d.o("out1")))?;
        // A directory, and a move into a subdirectory.
        sc!(nr::SYS_rename, cp(d.t("rd")), cp(d.t("rd2")))?;
        sc!(nr::SYS_rename, cp(d.t("r3b")), cp(d.t("rd2/r3c")))?;
        // A symlink is renamed itself, not its target.
        sc!(nr::SYS_rename, cp(d.t("rsl")), cp(d.t("rsl2")))?;
        close(dfd);
        Ok(())
    });
    let e = |from: &str, to: &str| by.rename(from, to);
    d.expect(
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
    );
}

#[test]
fn root_unlink_rmdir_variants() {
    let d = shared_dir!("unlink");
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
        sc!(nr::SYS_unlink, cp(d.t("u1")))?;
        sc!(libc::SYS_unlinkat, dfd, cs("u2"), 0)?;
        sc!(libc::SYS_unlinkat, libc::AT_FDCWD, cp(d.t("u3")), 0)?;
        sc!(nr::SYS_rmdir, cp(d.t("dd1")))?;
        sc!(libc::SYS_unlinkat, dfd, cs("dd2"), libc::AT_REMOVEDIR)?;
        sc!(nr::SYS_unlink, cp(d.t("usl")))?;
        let sfd = dirfd(&d.t("sub"))?;
        sc!(libc::SYS_unlinkat, sfd, cs("u4"), 0)?;
        close(sfd);
        close(dfd);
        Ok(())
    });
    d.expect(
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
    );
    assert!(d.o("target").exists());
}
