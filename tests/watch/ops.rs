//! The ops that make, name and remove, through every syscall variant that makes them, as
//! root (fsuid 0): open/openat/openat2/creat/O_TMPFILE/mknod creates, mkdir, mknod, symlink,
//! link, rename, unlink and rmdir. The ops on what is there: `attrs`; through io_uring:
//! `uring`.

use std::os::unix::ffi::OsStrExt;

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

/// A unix socket bound to `name` (relative to the working directory): Ok, or the errno.
fn bind_unix(kind: i32, name: &[u8]) -> Result<(), i32> {
    let fd = unsafe { libc::socket(libc::AF_UNIX, kind, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sa.sun_path.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // (the family alone: autobind)
    let len = std::mem::size_of::<libc::sa_family_t>() + name.len();
    let r = unsafe { libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len as u32) };
    let e = errno();
    close(fd as i64);
    if r == 0 {
        Ok(())
    } else {
        Err(e)
    }
}

/// `open_by_handle_at` of `path`'s handle with `flags`, closed again.
fn open_by_handle(path: &Path, flags: i32) -> Result<(), String> {
    // struct file_handle: handle_bytes, handle_type, f_handle[handle_bytes]
    let mut h = [0u32; 2 + 32];
    h[0] = 128;
    let mut mount_id = 0i32;
    let at = libc::AT_FDCWD;
    let (hp, mp) = (h.as_mut_ptr(), &mut mount_id as *mut i32);
    sc!(libc::SYS_name_to_handle_at, at, cp(path), hp, mp, 0)?;
    let mfd = dirfd(path.parent().unwrap())?;
    let fd = sc!(libc::SYS_open_by_handle_at, mfd, hp, flags);
    close(mfd);
    close(fd?);
    Ok(())
}

/// Two ways into a tree besides the path syscalls: a unix socket bound to a name there (the
/// kernel makes the socket's inode: a mknod, as `mknod(S_IFSOCK)` is), and a file opened by
/// its handle (`open_by_handle_at`, as user-space NFS servers and backup tools open files),
/// for writing. Not events: names that make no inode (abstract, autobind), other families,
/// a bind that fails, one outside the tree, a read-only open by handle, and the owner's own
/// bind.
#[test]
fn root_socket_binds_and_opens_by_handle() {
    let d = shared_dir!("bind");
    make_file(d.t("f"), b"data");
    make_file(d.o("g"), b"outside");
    let mut a = d.lease();
    let (stream, dgram) = (libc::SOCK_STREAM, libc::SOCK_DGRAM);
    let owner = d.act(Creds::User(OWNER, OWNER), || {
        std::env::set_current_dir(&d.tree).map_err(|e| e.to_string())?;
        bind_unix(stream, b"s_own").map_err(|e| format!("owner's bind: errno {e}"))
    });
    let by = d.act(Creds::Root, || {
        let fail = |what: &str, e| format!("{what}: errno {e}");
        std::env::set_current_dir(&d.outside).map_err(|e| e.to_string())?;
        bind_unix(stream, b"s_out").map_err(|e| fail("bind outside", e))?;
        std::env::set_current_dir(&d.tree).map_err(|e| e.to_string())?;
        bind_unix(stream, b"s_stream").map_err(|e| fail("bind", e))?;
        let abs = d.t("s_dgram");
        bind_unix(dgram, abs.as_os_str().as_bytes()).map_err(|e| fail("bind abs", e))?;
        bind_unix(stream, b"\0s_abstract").map_err(|e| fail("abstract bind", e))?;
        bind_unix(stream, b"").map_err(|e| fail("autobind", e))?;
        match bind_unix(stream, b"s_stream") {
            Err(libc::EADDRINUSE) => {}
            r => return Err(format!("a second bind to s_stream: {r:?}")),
        }
        let inet = unsafe { libc::socket(libc::AF_INET, stream, 0) };
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        let sa = &sin as *const _ as *const libc::sockaddr;
        if unsafe { libc::bind(inet, sa, len) } != 0 {
            return Err(format!("inet bind: errno {}", errno()));
        }
        close(inet as i64);
        open_by_handle(&d.t("f"), libc::O_RDONLY)?;
        open_by_handle(&d.t("f"), libc::O_WRONLY)?;
        open_by_handle(&d.t("f"), libc::O_RDWR | libc::O_TRUNC)?;
        open_by_handle(&d.o("g"), libc::O_WRONLY)
    });
    let evs = a.finish();
    assert!(d.t("s_own").exists() && owner.fsuid == OWNER);
    d.expect(
        &evs,
        &[
            by.op("mknod", "s_stream").mode(0o777),
            by.op("mknod", "s_dgram").mode(0o777),
            by.op("write", "f"),
            by.op("write", "f"),
        ],
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

/// Process accounting off again (acct(NULL)) when a test that turned it on ends, however.
struct AcctOff;

impl Drop for AcctOff {
    fn drop(&mut self) {
        unsafe { libc::syscall(libc::SYS_acct, 0usize) };
    }
}

/// acct(2) of a file in a tree: the kernel opens it for writing, a `write` as every open for
/// writing is, and appends a record to it for each process that ends (not ops of anyone's).
/// Not reported: acct of a file outside the tree, acct(NULL).
#[test]
fn process_accounting_into_a_tree_is_a_write() {
    let d = shared_dir!("acct");
    make_file(d.t("pacct"), b"");
    make_file(d.o("pacct"), b"");
    let _off = AcctOff;
    let (evs, by) = d.root_run(&[], || {
        sc!(libc::SYS_acct, cp(d.t("pacct")))?;
        sc!(libc::SYS_acct, cp(d.o("pacct")))?;
        sc!(libc::SYS_acct, 0usize)?;
        Ok(())
    });
    d.expect(&evs, &[by.op("write", "pacct")]);
}
