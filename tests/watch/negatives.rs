//! What must not be reported: failed operations, the owner's own writes, writes outside the
//! tree (also in a sibling whose name starts with the tree's), reads, allowed users, and ops
//! left out by --ops.

use std::path::{Path, PathBuf};

use super::*;

#[test]
fn failed_operations_are_not_reported() {
    let d = shared_dir!("failed");
    make_file(d.t("exists"), b"");
    make_file(d.t("e2"), b"");
    make_dir(d.t("dir"));
    make_file(d.t("dir/in"), b"");
    {
        let (p, n, v) = (cp(d.t("exists")), cs("user.a"), b"1");
        let r = unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), v.as_ptr() as _, 1, 0) };
        assert_eq!(r, 0, "setxattr: {}", std::io::Error::last_os_error());
    }
    let mut a = d.lease();
    let p = |n: &str| cp(d.t(n));
    let at = libc::AT_FDCWD;
    run_as(Creds::Root, || {
        let v = b"1";
        let wr = libc::O_WRONLY;
        fails!(libc::EEXIST, nr::SYS_mkdir, p("dir"), 0o755)?;
        fails!(libc::ENOENT, nr::SYS_mkdir, p("nodir/sub"), 0o755)?;
        let excl = libc::O_CREAT | libc::O_EXCL | wr;
        fails!(libc::EEXIST, nr::SYS_open, p("exists"), excl, 0o644)?;
        fails!(libc::EISDIR, nr::SYS_open, p("dir"), wr)?;
        fails!(libc::ENOENT, nr::SYS_unlink, p("missing"))?;
        fails!(libc::ENOTEMPTY, nr::SYS_rmdir, p("dir"))?;
        fails!(libc::ENOTDIR, nr::SYS_rmdir, p("exists"))?;
        let noreplace = libc::RENAME_NOREPLACE;
        let e2 = p("e2");
        fails!(
            libc::EEXIST,
            libc::SYS_renameat2,
            at,
            p("exists"),
            at,
            e2,
            noreplace
        )?;
        fails!(libc::ENOENT, nr::SYS_rename, p("missing"), p("m2"))?;
        fails!(libc::EEXIST, nr::SYS_link, p("exists"), p("e2"))?;
        fails!(libc::EEXIST, nr::SYS_symlink, cs("x"), p("e2"))?;
        let fifo = libc::S_IFIFO | 0o644;
        fails!(libc::EEXIST, nr::SYS_mknod, p("exists"), fifo, 0)?;
        fails!(libc::ENOENT, nr::SYS_chmod, p("missing"), 0o644)?;
        fails!(libc::ENOENT, nr::SYS_chown, p("missing"), 1, 1)?;
        fails!(libc::EISDIR, libc::SYS_truncate, p("dir"), 0)?;
        let (a, create) = (cs("user.a"), libc::XATTR_CREATE);
        fails!(
            libc::EEXIST,
            libc::SYS_setxattr,
            p("exists"),
            a,
            v.as_ptr(),
            1,
            create
        )?;
        fails!(
            libc::ENODATA,
            libc::SYS_removexattr,
            p("exists"),
            cs("user.nope")
        )?;
        Ok(())
    });
    // A non-owner without permission fails too.
    run_as(Creds::User(OTHER, OTHER), || {
        fails!(libc::EPERM, nr::SYS_chmod, p("exists"), 0o777)?;
        fails!(libc::EACCES, nr::SYS_unlink, p("dir/in"))?;
        fails!(libc::EACCES, nr::SYS_open, p("exists"), libc::O_WRONLY)?;
        fails!(libc::EPERM, nr::SYS_chown, p("exists"), OTHER, OTHER)?;
        Ok(())
    });
    a.expect(&[]);
}

/// Every op, as `creds`, inside `dir` (which `creds` may write); `side` is a directory
/// outside of `dir` that `creds` may write, for moves in and out.
fn every_op(dir: &Path, side: &Path, chown_to: u32) -> Result<(), String> {
    let p = |n: &str| dir.join(n);
    let v = b"v";
    let dfd = dirfd(dir)?;
    open_close(&p("f1"), libc::O_CREAT | libc::O_WRONLY, 0o644)?;
    openat_close(dfd, cs("f2"), libc::O_CREAT | libc::O_RDWR, 0o600)?;
    let fd = sc!(nr::SYS_creat, cp(p("f3")), 0o644)?;
    close(fd);
    let fd = openat2(dfd, &cs("f4"), libc::O_CREAT | libc::O_WRONLY, 0o644)?;
    close(fd);
    let fd = sc!(
        nr::SYS_open,
        cp(dir),
        libc::O_TMPFILE | libc::O_WRONLY,
        0o600
    )?;
    link_tmpfile(fd, dfd, "f5")?;
    sc!(nr::SYS_mknod, cp(p("f6")), libc::S_IFREG | 0o644, 0)?;
    sc!(libc::SYS_mknodat, dfd, cs("fifo"), libc::S_IFIFO | 0o644, 0)?;
    sc!(nr::SYS_mkdir, cp(p("d1")), 0o755)?;
    sc!(libc::SYS_mkdirat, dfd, cs("d2"), 0o755)?;
    sc!(nr::SYS_symlink, cs("f1"), cp(p("sl")))?;
    sc!(libc::SYS_symlinkat, cs("f2"), dfd, cs("sl2"))?;
    sc!(nr::SYS_link, cp(p("f1")), cp(p("l1")))?;
    sc!(libc::SYS_linkat, dfd, cs("f2"), dfd, cs("l2"), 0)?;
    sc!(nr::SYS_rename, cp(p("f3")), cp(p("f3b")))?;
    sc!(libc::SYS_renameat, dfd, cs("f4"), dfd, cs("f4b"))?;
    sc!(
        libc::SYS_renameat2,
        dfd,
        cs("f1"),
        dfd,
        cs("f2"),
        libc::RENAME_EXCHANGE
    )?;
    sc!(nr::SYS_rename, cp(side.join("in")), cp(p("in")))?;
    sc!(nr::SYS_rename, cp(p("f6")), cp(side.join("out")))?;
    sc!(nr::SYS_chmod, cp(p("f1")), 0o600)?;
    let fd = rdonly(&p("f1"))?;
    sc!(libc::SYS_fchmod, fd, 0o640)?;
    sc!(libc::SYS_fchmodat, dfd, cs("f1"), 0o644)?;
    sc!(nr::SYS_chown, cp(p("f1")), chown_to, chown_to)?;
    sc!(libc::SYS_fchown, fd, chown_to, -1i32)?;
    sc!(nr::SYS_lchown, cp(p("sl")), chown_to, chown_to)?;
    sc!(libc::SYS_fchownat, dfd, cs("f2"), chown_to, chown_to, 0)?;
    sc!(
        libc::SYS_setxattr,
        cp(p("f1")),
        cs("user.a"),
        v.as_ptr(),
        1,
        0
    )?;
    sc!(libc::SYS_fsetxattr, fd, cs("user.b"), v.as_ptr(), 1, 0)?;
    sc!(libc::SYS_removexattr, cp(p("f1")), cs("user.a"))?;
    sc!(libc::SYS_fremovexattr, fd, cs("user.b"))?;
    close(fd);
    sc!(libc::SYS_truncate, cp(p("f2")), 0)?;
    let fd = sc!(nr::SYS_open, cp(p("f2")), libc::O_WRONLY)?;
    sc!(libc::SYS_ftruncate, fd, 0)?;
    close(fd);
    sc!(nr::SYS_unlink, cp(p("l1")))?;
    sc!(libc::SYS_unlinkat, dfd, cs("l2"), 0)?;
    sc!(nr::SYS_rmdir, cp(p("d1")))?;
    sc!(libc::SYS_unlinkat, dfd, cs("d2"), libc::AT_REMOVEDIR)?;
    close(dfd);
    Ok(())
}

/// For `every_op` as `id`: `sub` in the tree and `side` (holding `in`) beside it, all `id`'s.
fn dirs_of(d: &TestDir, id: u32, sub: &str, side: &str) -> (PathBuf, PathBuf) {
    let (sub, side) = (d.t(sub), d.base.join(side));
    make_dir(&side);
    make_file(side.join("in"), b"");
    make_dir(&sub);
    for p in [&side, &side.join("in"), &sub] {
        chown(p, id, id);
    }
    (sub, side)
}

#[test]
fn owner_writes_are_not_reported() {
    let d = shared_dir!("ownerok");
    let (sub, side) = dirs_of(&d, OWNER, "work", "ownerside");
    let mut a = d.lease();
    run_as(Creds::User(OWNER, OWNER), || every_op(&sub, &side, OWNER));
    // The same as root outside the tree, right after, to show the agent was listening.
    let root = d.act(Creds::Root, || mkdir(&d.t("root_after"), 0o755));
    a.expect(&[root.mkdir("root_after", 0o755)]);
}

#[test]
fn root_writes_outside_the_tree_are_not_reported() {
    let d = ruled_dir!("outside", "");
    let t = &d.tree;
    // A sibling whose name has the tree's path as a string prefix.
    let sibling = PathBuf::from(format!("{}-sibling", t.display()));
    make_dir(&sibling);
    make_file(sibling.join("in"), b"");
    make_file(d.o("in"), b"");
    make_file(d.t("readme"), b"read me");
    make_dir(d.t("rdir"));
    let mut a = d.lease();
    run_as(Creds::Root, || {
        every_op(&d.outside, &sibling, 0)?;
        every_op(&sibling, &d.outside, 0)?;
        // The tree's parent itself.
        mkdir(&d.base.join("parent_mkdir"), 0o755)?;
        sc!(nr::SYS_chmod, cp(&d.base), 0o755)?;
        sc!(
            nr::SYS_rename,
            cp(d.base.join("parent_mkdir")),
            cp(d.base.join("parent_mkdir2"))
        )?;
        // Reads inside the tree.
        let fd = rdonly(&d.t("readme"))?;
        let mut buf = [0u8; 64];
        sc!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len())?;
        close(fd);
        let fd = dirfd(t)?;
        let mut dents = [0u8; 4096];
        sc!(libc::SYS_getdents64, fd, dents.as_mut_ptr(), dents.len())?;
        close(fd);
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        sc!(nr::SYS_stat, cp(d.t("readme")), &mut st as *mut libc::stat)?;
        sc!(nr::SYS_access, cp(d.t("readme")), libc::R_OK)?;
        open_close(&d.t("rdir"), libc::O_PATH, 0)?;
        Ok(())
    });
    let root = d.act(Creds::Root, || mkdir(&d.t("inside"), 0o700));
    a.expect(&[root.mkdir("inside", 0o700)]);
}

#[test]
fn allowed_users_are_not_reported() {
    let d = ruled_dir!("allow", &format!("allow = [\"{OTHER}\", \"nobody\"]"));
    let (sub, other_side) = dirs_of(&d, OTHER, "other", "otherside");
    let mut a = d.lease();
    run_as(Creds::User(OTHER, OTHER), || {
        every_op(&sub, &other_side, OTHER)
    });
    run_as(Creds::User(NOBODY, NOBODY), || {
        mkdir(&d.t("nobody_dir"), 0o755)?;
        create(&d.t("nobody_file"), 0o644)
    });
    run_as(Creds::User(OWNER, OWNER), || {
        mkdir(&d.t("owner_dir"), 0o755)
    });
    let root = d.act(Creds::Root, || mkdir(&d.t("root_dir"), 0o755));
    a.expect(&[root.mkdir("root_dir", 0o755)]);
}

#[test]
fn ops_mkdir_reports_only_mkdir() {
    let d = root_dir!("opsmkdir");
    let (evs, by) = d.root_run(&["--ops", "mkdir"], || {
        create(&d.t("f"), 0o644)?;
        mkdir(&d.t("d1"), 0o755)?;
        sc!(nr::SYS_chmod, cp(d.t("f")), 0o600)?;
        sc!(nr::SYS_chown, cp(d.t("f")), OWNER, OWNER)?;
        sc!(nr::SYS_symlink, cs("f"), cp(d.t("sl")))?;
        sc!(nr::SYS_link, cp(d.t("f")), cp(d.t("hl")))?;
        sc!(nr::SYS_rename, cp(d.t("f")), cp(d.t("g")))?;
        sc!(nr::SYS_mknod, cp(d.t("fifo")), libc::S_IFIFO | 0o644, 0)?;
        open_close(&d.t("g"), libc::O_WRONLY, 0)?;
        sc!(libc::SYS_truncate, cp(d.t("g")), 0)?;
        let v = b"v";
        sc!(
            libc::SYS_setxattr,
            cp(d.t("g")),
            cs("user.x"),
            v.as_ptr(),
            1,
            0
        )?;
        sc!(libc::SYS_removexattr, cp(d.t("g")), cs("user.x"))?;
        sc!(nr::SYS_unlink, cp(d.t("g")))?;
        sc!(libc::SYS_mkdirat, libc::AT_FDCWD, cp(d.t("d2")), 0o700)?;
        sc!(nr::SYS_rmdir, cp(d.t("d1")))?;
        Ok(())
    });
    d.expect(&evs, &[by.mkdir("d1", 0o755), by.mkdir("d2", 0o700)]);
}

#[test]
fn ops_list_reports_only_those_ops() {
    // (per tree, from the config file: the kernel hooks every op for the other trees, user
    // space leaves these out; --ops on the command line, hooking only mkdir, is the test above)
    let (d, mut a) = ruled!("opslist", r#"ops = "create,rename,unlink""#);
    let by = d.act(Creds::Root, || {
        mkdir(&d.t("d"), 0o755)?;
        create(&d.t("f"), 0o644)?;
        sc!(nr::SYS_chmod, cp(d.t("f")), 0o600)?;
        sc!(nr::SYS_rename, cp(d.t("f")), cp(d.t("g")))?;
        open_close(&d.t("g"), libc::O_WRONLY, 0)?;
        sc!(nr::SYS_symlink, cs("g"), cp(d.t("sl")))?;
        sc!(nr::SYS_unlink, cp(d.t("g")))?;
        sc!(nr::SYS_rmdir, cp(d.t("d")))?;
        Ok(())
    });
    a.expect(&[
        by.create("f", 0o644),
        by.rename("f", "g"),
        by.op("unlink", "g"),
    ]);
}

#[test]
fn ops_accepts_every_op_name() {
    let d = root_dir!("opsall");
    let all = "create,mkdir,mknod,symlink,link,rename,unlink,rmdir,chmod,chown,truncate,\
               setxattr,removexattr,write";
    let (evs, by) = d.root_run(&["--ops", all], || {
        create(&d.t("f"), 0o644)?;
        sc!(nr::SYS_chmod, cp(d.t("f")), 0o600)?;
        sc!(nr::SYS_unlink, cp(d.t("f")))?;
        Ok(())
    });
    d.expect(
        &evs,
        &[
            by.create("f", 0o644),
            by.op("chmod", "f").mode(0o600),
            by.op("unlink", "f"),
        ],
    );
}
