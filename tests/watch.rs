//! Integration tests for `ownwatch watch` and `ownwatch probe`: the real binary, real BPF,
//! real syscalls made by forked actors with chosen credentials. Run as root:
//! `cargo test --test watch`. Environment:
//! - CI=true: never skip (a non-root run fails).
//! - OWNWATCH_TEST_BACKEND=lsm|fentry|kprobe|tracepoint: pass `--backend` and expect it in events.
//! - OWNWATCH_EXPECT_CHOICE: what `probe` must choose here (default "tracepoint", the dev/CI
//!   machine; the qemu matrix sets it per kernel).

#[macro_use]
mod common;

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use libc::c_long;
use serde_json::Value;

const SYS_FCHMODAT2: c_long = 452;
const SYS_SETXATTRAT: c_long = 463;
const SYS_REMOVEXATTRAT: c_long = 466;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

fn dirfd(p: &Path) -> Result<c_long, String> {
    sc!(
        libc::SYS_open,
        cp(p),
        libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC
    )
}

fn rdonly(p: &Path) -> Result<c_long, String> {
    sc!(libc::SYS_open, cp(p), libc::O_RDONLY | libc::O_CLOEXEC)
}

/// openat(AT_FDCWD, p, O_CREAT|O_WRONLY, mode) + close: one `create`.
fn create(p: &Path, mode: u32) -> Result<(), String> {
    let fd = sc!(
        libc::SYS_openat,
        libc::AT_FDCWD,
        cp(p),
        libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL | libc::O_CLOEXEC,
        mode
    )?;
    close(fd);
    Ok(())
}

fn openat2(dfd: c_long, path: &CString, flags: i32, mode: u32) -> Result<c_long, String> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve: 0,
    };
    sc!(
        libc::SYS_openat2,
        dfd,
        path,
        &how as *const OpenHow,
        std::mem::size_of::<OpenHow>()
    )
}

fn mkdir(p: &Path, mode: u32) -> Result<(), String> {
    sc!(libc::SYS_mkdir, cp(p), mode)?;
    Ok(())
}

fn chdir(p: &Path) -> Result<(), String> {
    sc!(libc::SYS_chdir, cp(p))?;
    Ok(())
}

/// Does this kernel have syscall `nr`? (Called with arguments that fail harmlessly.)
fn have_syscall(nr: c_long) -> bool {
    let r = unsafe { libc::syscall(nr, -1i64, 0i64, 0i64, 0i64, 0i64, 0i64) };
    !(r < 0 && errno() == libc::ENOSYS)
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

// =============================================================================================
// 1. Every op through every syscall variant, as root (fsuid 0)

#[test]
fn root_create_variants() {
    needs_root!();
    let d = TestDir::new("create");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |op: &str, rel: &str| Exp::new(op, d.t(rel), 0).pid(pid);
    assert_events(
        &evs,
        &[
            e("create", "c_open").mode(0o640),
            e("create", "c_openat").mode(0o600),
            e("create", "c_openat_dirfd").mode(0o644),
            e("create", "c_openat2").mode(0o640),
            e("create", "c_creat").mode(0o604),
            e("create", "c_tmp_empty").mode(0o600),
            e("create", "c_tmp_proc").mode(0o640),
            e("create", "c_mknod").mode(0o644),
            e("create", "c_mknodat").mode(0o600),
            e("create", "c_mknod_notype").mode(0o620),
            e("write", "c_open"),
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
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |op: &str, rel: &str| Exp::new(op, d.t(rel), 0).pid(pid);
    assert_events(
        &evs,
        &[
            e("mkdir", "d_mkdir").mode(0o755),
            e("mkdir", "d_mkdirat").mode(0o700),
            e("mkdir", "d_fd").mode(0o750),
            e("mkdir", "d_sticky").mode(0o1777),
            e("mknod", "n_fifo").mode(0o644),
            e("mknod", "n_fifo2").mode(0o600),
            e("mknod", "n_sock").mode(0o640),
            e("mknod", "n_chr").mode(0o600),
            e("symlink", "s_rel").target("f"),
            e("symlink", "s_abs").target("/nonexistent/abs target"),
            e("link", "f").new_path(d.t("l_link")),
            e("link", "f").new_path(d.t("l_linkat")),
            e("link", "s_rel").new_path(d.t("l_sym")),
            e("link", "f").new_path(d.t("l_follow")),
            e("link", "f").new_path(d.t("l_empty")),
            Exp::new("link", d.o("src_in"), 0)
                .pid(pid)
                .new_path(d.t("l_in")),
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
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |from: &str, to: &str| Exp::new("rename", d.t(from), 0).pid(pid).new_path(d.t(to));
    assert_events(
        &evs,
        &[
            e("r1", "r1b"),
            e("r2", "r2b"),
            e("r3", "r3b"),
            e("r1b", "r1c"),
            e("x1", "x2").exchange(),
            e("r2b", "victim"),
            Exp::new("rename", d.o("in1"), 0)
                .pid(pid)
                .new_path(d.t("in1")),
            Exp::new("rename", d.t("out1"), 0)
                .pid(pid)
                .new_path(d.o("out1")),
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
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |op: &str, rel: &str| Exp::new(op, d.t(rel), 0).pid(pid);
    assert_events(
        &evs,
        &[
            e("unlink", "u1"),
            e("unlink", "u2"),
            e("unlink", "u3"),
            e("rmdir", "dd1"),
            e("rmdir", "dd2"),
            e("unlink", "usl"),
            e("unlink", "sub/u4"),
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
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |rel: &str, m: u32| Exp::new("chmod", d.t(rel), 0).pid(pid).mode(m);
    let mut want = vec![
        e("m", 0o600),
        e("m", 0o640),
        e("m", 0o604),
        e("m", 0o660),
        e("m", 0o644),
        e("md", 0o1777),
        e("m", 0o4755),
        Exp::new("chmod", t, 0).pid(pid).mode(0o777),
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
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |rel: &str, u: Option<u32>, g: Option<u32>| {
        Exp::new("chown", d.t(rel), 0).pid(pid).owner(u, g)
    };
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
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |op: &str| Exp::new(op, d.t("w"), 0).pid(pid);
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
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |op: &str, x: &str| Exp::new(op, d.t("x"), 0).pid(pid).xattr(x);
    assert_events(
        &evs,
        &[
            e("setxattr", "user.a"),
            e("setxattr", "user.b"),
            e("setxattr", "user.c"),
            e("setxattr", "user.d"),
            Exp::new("setxattr", t, 0).pid(pid).xattr("user.root"),
            e("removexattr", "user.a"),
            e("removexattr", "user.b"),
            e("removexattr", "user.c"),
            e("removexattr", "user.d"),
            Exp::new("setxattr", d.t("xsl"), 0)
                .pid(pid)
                .xattr("trusted.l"),
            Exp::new("removexattr", d.t("xsl"), 0)
                .pid(pid)
                .xattr("trusted.l"),
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
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |op: &str, x: &str| Exp::new(op, d.t("x"), 0).pid(pid).xattr(x);
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
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
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
    let evs = a.finish(t);
    let e = |op: &str, rel: &str| Exp::new(op, d.t(rel), 0).pid(pid).io_uring();
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

#[test]
fn failed_operations_are_not_reported() {
    needs_root!();
    let d = TestDir::new("failed");
    let t = &d.tree;
    make_file(d.t("exists"), b"");
    make_file(d.t("e2"), b"");
    make_dir(d.t("dir"));
    make_file(d.t("dir/in"), b"");
    {
        let (p, n, v) = (cp(d.t("exists")), cs("user.a"), b"1");
        let r = unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), v.as_ptr() as _, 1, 0) };
        assert_eq!(r, 0, "setxattr: {}", std::io::Error::last_os_error());
    }
    let mut a = Agent::watch_tree(t, &[]);
    run_as(Creds::Root, || {
        let v = b"1";
        fails!(libc::EEXIST, libc::SYS_mkdir, cp(d.t("dir")), 0o755)?;
        fails!(libc::ENOENT, libc::SYS_mkdir, cp(d.t("nodir/sub")), 0o755)?;
        fails!(
            libc::EEXIST,
            libc::SYS_open,
            cp(d.t("exists")),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
            0o644
        )?;
        fails!(libc::EISDIR, libc::SYS_open, cp(d.t("dir")), libc::O_WRONLY)?;
        fails!(libc::ENOENT, libc::SYS_unlink, cp(d.t("missing")))?;
        fails!(libc::ENOTEMPTY, libc::SYS_rmdir, cp(d.t("dir")))?;
        fails!(libc::ENOTDIR, libc::SYS_rmdir, cp(d.t("exists")))?;
        fails!(
            libc::EEXIST,
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            cp(d.t("exists")),
            libc::AT_FDCWD,
            cp(d.t("e2")),
            libc::RENAME_NOREPLACE
        )?;
        fails!(
            libc::ENOENT,
            libc::SYS_rename,
            cp(d.t("missing")),
            cp(d.t("m2"))
        )?;
        fails!(
            libc::EEXIST,
            libc::SYS_link,
            cp(d.t("exists")),
            cp(d.t("e2"))
        )?;
        fails!(libc::EEXIST, libc::SYS_symlink, cs("x"), cp(d.t("e2")))?;
        fails!(
            libc::EEXIST,
            libc::SYS_mknod,
            cp(d.t("exists")),
            libc::S_IFIFO | 0o644,
            0
        )?;
        fails!(libc::ENOENT, libc::SYS_chmod, cp(d.t("missing")), 0o644)?;
        fails!(libc::ENOENT, libc::SYS_chown, cp(d.t("missing")), 1, 1)?;
        fails!(libc::EISDIR, libc::SYS_truncate, cp(d.t("dir")), 0)?;
        fails!(
            libc::EEXIST,
            libc::SYS_setxattr,
            cp(d.t("exists")),
            cs("user.a"),
            v.as_ptr(),
            1,
            libc::XATTR_CREATE
        )?;
        fails!(
            libc::ENODATA,
            libc::SYS_removexattr,
            cp(d.t("exists")),
            cs("user.nope")
        )?;
        Ok(())
    });
    // A non-owner without permission fails too.
    run_as(Creds::User(OTHER, OTHER), || {
        fails!(libc::EPERM, libc::SYS_chmod, cp(d.t("exists")), 0o777)?;
        fails!(libc::EACCES, libc::SYS_unlink, cp(d.t("dir/in")))?;
        fails!(
            libc::EACCES,
            libc::SYS_open,
            cp(d.t("exists")),
            libc::O_WRONLY
        )?;
        fails!(
            libc::EPERM,
            libc::SYS_chown,
            cp(d.t("exists")),
            OTHER,
            OTHER
        )?;
        Ok(())
    });
    let evs = a.finish(t);
    assert_events(&evs, &[], t);
}

// =============================================================================================
// 2. The actor is the fsuid

#[test]
fn actor_is_the_fsuid() {
    needs_root!();
    let d = TestDir::new("fsuid");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &[]);
    // real uid = owner, effective/fs uid 0 (a setuid-root program run by the owner): reported.
    let p1 = run_as(Creds::RealUser(OWNER, OWNER), || {
        mkdir(&d.t("a1"), 0o755)?;
        create(&d.t("a1f"), 0o644)
    });
    // real uid 0, fsuid = owner: not reported (and the files really are the owner's).
    run_as(Creds::FsUser(OWNER, OWNER), || {
        mkdir(&d.t("a2"), 0o755)?;
        create(&d.t("a2f"), 0o644)
    });
    assert_eq!(owner_of(d.t("a2")), (OWNER, OWNER));
    assert_eq!(owner_of(d.t("a2f")), (OWNER, OWNER));
    // another uid: reported with its fsuid.
    let p3 = run_as(Creds::User(OTHER, OTHER), || {
        mkdir(&d.t("a3"), 0o755)?;
        create(&d.t("a3f"), 0o644)
    });
    // the owner itself: not reported.
    run_as(Creds::User(OWNER, OWNER), || mkdir(&d.t("a4"), 0o755));
    // a second thread of a non-owner process: pid is the process, tid the thread.
    let p5 = run_as(Creds::User(OTHER, OTHER), || {
        let dir = d.t("threads");
        mkdir(&dir, 0o777)?;
        std::thread::spawn(move || {
            let tid = unsafe { libc::syscall(libc::SYS_gettid) };
            mkdir(&dir.join(format!("tid-{tid}")), 0o755)
        })
        .join()
        .map_err(|_| "thread panicked".to_string())?
    });
    let tid: i32 = std::fs::read_dir(d.t("threads"))
        .unwrap()
        .next()
        .expect("the thread's directory")
        .unwrap()
        .file_name()
        .to_str()
        .unwrap()
        .strip_prefix("tid-")
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(tid, p5);
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("a1"), 0)
                .pid(p1)
                .ids(OWNER, OWNER, 0, 0)
                .mode(0o755),
            Exp::new("create", d.t("a1f"), 0)
                .pid(p1)
                .ids(OWNER, OWNER, 0, 0)
                .mode(0o644),
            Exp::new("mkdir", d.t("a3"), OTHER).pid(p3).mode(0o755),
            Exp::new("create", d.t("a3f"), OTHER).pid(p3).mode(0o644),
            Exp::new("mkdir", d.t("threads"), OTHER).pid(p5).mode(0o777),
            Exp::new("mkdir", d.t(&format!("threads/tid-{tid}")), OTHER)
                .pid(p5)
                .tid(tid)
                .mode(0o755),
        ],
        t,
    );
}

// =============================================================================================
// 3. What must not be reported

/// Every op, as `creds`, inside `dir` (which `creds` may write); `side` is a directory
/// outside of `dir` that `creds` may write, for moves in and out.
fn every_op(dir: &Path, side: &Path, chown_to: u32) -> Result<(), String> {
    let p = |n: &str| dir.join(n);
    let v = b"v";
    let dfd = dirfd(dir)?;
    let fd = sc!(
        libc::SYS_open,
        cp(p("f1")),
        libc::O_CREAT | libc::O_WRONLY,
        0o644
    )?;
    close(fd);
    let fd = sc!(
        libc::SYS_openat,
        dfd,
        cs("f2"),
        libc::O_CREAT | libc::O_RDWR,
        0o600
    )?;
    close(fd);
    let fd = sc!(libc::SYS_creat, cp(p("f3")), 0o644)?;
    close(fd);
    let fd = openat2(dfd, &cs("f4"), libc::O_CREAT | libc::O_WRONLY, 0o644)?;
    close(fd);
    let fd = sc!(
        libc::SYS_open,
        cp(dir),
        libc::O_TMPFILE | libc::O_WRONLY,
        0o600
    )?;
    sc!(
        libc::SYS_linkat,
        libc::AT_FDCWD,
        cs(format!("/proc/self/fd/{fd}")),
        dfd,
        cs("f5"),
        libc::AT_SYMLINK_FOLLOW
    )?;
    close(fd);
    sc!(libc::SYS_mknod, cp(p("f6")), libc::S_IFREG | 0o644, 0)?;
    sc!(libc::SYS_mknodat, dfd, cs("fifo"), libc::S_IFIFO | 0o644, 0)?;
    sc!(libc::SYS_mkdir, cp(p("d1")), 0o755)?;
    sc!(libc::SYS_mkdirat, dfd, cs("d2"), 0o755)?;
    sc!(libc::SYS_symlink, cs("f1"), cp(p("sl")))?;
    sc!(libc::SYS_symlinkat, cs("f2"), dfd, cs("sl2"))?;
    sc!(libc::SYS_link, cp(p("f1")), cp(p("l1")))?;
    sc!(libc::SYS_linkat, dfd, cs("f2"), dfd, cs("l2"), 0)?;
    sc!(libc::SYS_rename, cp(p("f3")), cp(p("f3b")))?;
    sc!(libc::SYS_renameat, dfd, cs("f4"), dfd, cs("f4b"))?;
    sc!(
        libc::SYS_renameat2,
        dfd,
        cs("f1"),
        dfd,
        cs("f2"),
        libc::RENAME_EXCHANGE
    )?;
    sc!(libc::SYS_rename, cp(side.join("in")), cp(p("in")))?;
    sc!(libc::SYS_rename, cp(p("f6")), cp(side.join("out")))?;
    sc!(libc::SYS_chmod, cp(p("f1")), 0o600)?;
    let fd = rdonly(&p("f1"))?;
    sc!(libc::SYS_fchmod, fd, 0o640)?;
    sc!(libc::SYS_fchmodat, dfd, cs("f1"), 0o644)?;
    sc!(libc::SYS_chown, cp(p("f1")), chown_to, chown_to)?;
    sc!(libc::SYS_fchown, fd, chown_to, -1i32)?;
    sc!(libc::SYS_lchown, cp(p("sl")), chown_to, chown_to)?;
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
    let fd = sc!(libc::SYS_open, cp(p("f2")), libc::O_WRONLY)?;
    sc!(libc::SYS_ftruncate, fd, 0)?;
    close(fd);
    sc!(libc::SYS_unlink, cp(p("l1")))?;
    sc!(libc::SYS_unlinkat, dfd, cs("l2"), 0)?;
    sc!(libc::SYS_rmdir, cp(p("d1")))?;
    sc!(libc::SYS_unlinkat, dfd, cs("d2"), libc::AT_REMOVEDIR)?;
    close(dfd);
    Ok(())
}

#[test]
fn owner_writes_are_not_reported() {
    needs_root!();
    let d = TestDir::new("ownerok");
    let t = &d.tree;
    let side = d.base.join("ownerside");
    make_dir(&side);
    make_file(side.join("in"), b"");
    chown(&side, OWNER, OWNER);
    chown(side.join("in"), OWNER, OWNER);
    let sub = d.t("work");
    make_dir(&sub);
    chown(&sub, OWNER, OWNER);
    let mut a = Agent::watch_tree(t, &[]);
    run_as(Creds::User(OWNER, OWNER), || every_op(&sub, &side, OWNER));
    // The same as root outside the tree, right after, to show the agent was listening.
    let pid = run_as(Creds::Root, || mkdir(&d.t("root_after"), 0o755));
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[Exp::new("mkdir", d.t("root_after"), 0).pid(pid).mode(0o755)],
        t,
    );
}

#[test]
fn root_writes_outside_the_tree_are_not_reported() {
    needs_root!();
    let d = TestDir::new("outside");
    let t = &d.tree;
    // A sibling whose name has the tree's path as a string prefix.
    let sibling = PathBuf::from(format!("{}-sibling", t.display()));
    make_dir(&sibling);
    make_file(sibling.join("in"), b"");
    make_file(d.o("in"), b"");
    make_file(d.t("readme"), b"read me");
    make_dir(d.t("rdir"));
    let mut a = Agent::watch_tree(t, &[]);
    run_as(Creds::Root, || {
        every_op(&d.outside, &sibling, 0)?;
        every_op(&sibling, &d.outside, 0)?;
        // The tree's parent itself.
        mkdir(&d.base.join("parent_mkdir"), 0o755)?;
        sc!(libc::SYS_chmod, cp(&d.base), 0o755)?;
        sc!(
            libc::SYS_rename,
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
        sc!(
            libc::SYS_stat,
            cp(d.t("readme")),
            &mut st as *mut libc::stat
        )?;
        sc!(libc::SYS_access, cp(d.t("readme")), libc::R_OK)?;
        let fd = sc!(libc::SYS_open, cp(d.t("rdir")), libc::O_PATH)?;
        close(fd);
        Ok(())
    });
    let pid = run_as(Creds::Root, || mkdir(&d.t("inside"), 0o700));
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[Exp::new("mkdir", d.t("inside"), 0).pid(pid).mode(0o700)],
        t,
    );
}

#[test]
fn allowed_users_are_not_reported() {
    needs_root!();
    let d = TestDir::new("allow");
    let t = &d.tree;
    let other_side = d.base.join("otherside");
    make_dir(&other_side);
    make_file(other_side.join("in"), b"");
    chown(&other_side, OTHER, OTHER);
    chown(other_side.join("in"), OTHER, OTHER);
    let sub = d.t("other");
    make_dir(&sub);
    chown(&sub, OTHER, OTHER);
    let other = OTHER.to_string();
    let mut a = Agent::watch_tree(t, &["--allow", &other, "--allow", "nobody"]);
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
    let pid = run_as(Creds::Root, || mkdir(&d.t("root_dir"), 0o755));
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[Exp::new("mkdir", d.t("root_dir"), 0).pid(pid).mode(0o755)],
        t,
    );
}

#[test]
fn ops_mkdir_reports_only_mkdir() {
    needs_root!();
    let d = TestDir::new("opsmkdir");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &["--ops", "mkdir"]);
    let pid = run_as(Creds::Root, || {
        create(&d.t("f"), 0o644)?;
        mkdir(&d.t("d1"), 0o755)?;
        sc!(libc::SYS_chmod, cp(d.t("f")), 0o600)?;
        sc!(libc::SYS_chown, cp(d.t("f")), OWNER, OWNER)?;
        sc!(libc::SYS_symlink, cs("f"), cp(d.t("sl")))?;
        sc!(libc::SYS_link, cp(d.t("f")), cp(d.t("hl")))?;
        sc!(libc::SYS_rename, cp(d.t("f")), cp(d.t("g")))?;
        sc!(libc::SYS_mknod, cp(d.t("fifo")), libc::S_IFIFO | 0o644, 0)?;
        let fd = sc!(libc::SYS_open, cp(d.t("g")), libc::O_WRONLY)?;
        close(fd);
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
        sc!(libc::SYS_unlink, cp(d.t("g")))?;
        sc!(libc::SYS_mkdirat, libc::AT_FDCWD, cp(d.t("d2")), 0o700)?;
        sc!(libc::SYS_rmdir, cp(d.t("d1")))?;
        Ok(())
    });
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("d1"), 0).pid(pid).mode(0o755),
            Exp::new("mkdir", d.t("d2"), 0).pid(pid).mode(0o700),
        ],
        t,
    );
}

#[test]
fn ops_list_reports_only_those_ops() {
    needs_root!();
    let d = TestDir::new("opslist");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &["--ops", "create,rename,unlink"]);
    let pid = run_as(Creds::Root, || {
        mkdir(&d.t("d"), 0o755)?;
        create(&d.t("f"), 0o644)?;
        sc!(libc::SYS_chmod, cp(d.t("f")), 0o600)?;
        sc!(libc::SYS_rename, cp(d.t("f")), cp(d.t("g")))?;
        let fd = sc!(libc::SYS_open, cp(d.t("g")), libc::O_WRONLY)?;
        close(fd);
        sc!(libc::SYS_symlink, cs("g"), cp(d.t("sl")))?;
        sc!(libc::SYS_unlink, cp(d.t("g")))?;
        sc!(libc::SYS_rmdir, cp(d.t("d")))?;
        Ok(())
    });
    let evs = a.finish_with(t, Sentinel::Create);
    assert_events(
        &evs,
        &[
            Exp::new("create", d.t("f"), 0).pid(pid).mode(0o644),
            Exp::new("rename", d.t("f"), 0).pid(pid).new_path(d.t("g")),
            Exp::new("unlink", d.t("g"), 0).pid(pid),
        ],
        t,
    );
}

#[test]
fn owner_option_overrides_the_directory_owner() {
    needs_root!();
    let d = TestDir::new("ownerflag");
    let t = &d.tree;
    let o = format!("{OTHER}:{OTHER}");
    let mut a = Agent::watch_tree(t, &["--owner", &o]);
    run_as(Creds::User(OTHER, OTHER), || {
        mkdir(&d.t("by_new_owner"), 0o755)
    });
    let p1 = run_as(Creds::User(OWNER, OWNER), || {
        mkdir(&d.t("by_dir_owner"), 0o755)
    });
    let p2 = run_as(Creds::Root, || mkdir(&d.t("by_root"), 0o755));
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("by_dir_owner"), OWNER)
                .pid(p1)
                .mode(0o755),
            Exp::new("mkdir", d.t("by_root"), 0).pid(p2).mode(0o755),
        ],
        t,
    );
}

#[test]
fn owner_option_by_name() {
    needs_root!();
    let d = TestDir::new("ownername");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &["--owner", "nobody"]);
    run_as(Creds::User(NOBODY, NOBODY), || {
        mkdir(&d.t("by_nobody"), 0o755)
    });
    let p1 = run_as(Creds::User(OWNER, OWNER), || {
        mkdir(&d.t("by_dir_owner"), 0o755)
    });
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[Exp::new("mkdir", d.t("by_dir_owner"), OWNER)
            .pid(p1)
            .mode(0o755)],
        t,
    );
}

#[test]
fn each_tree_has_its_own_default_owner() {
    needs_root!();
    let d1 = TestDir::new("two-a");
    let d2 = TestDir::new("two-b");
    chown(&d2.tree, OTHER, OTHER);
    let mut a = Agent::watch(&[&s(&d1.tree), &s(&d2.tree)]);
    let p1 = run_as(Creds::User(OWNER, OWNER), || {
        mkdir(&d1.t("owner_in_own"), 0o755)?;
        mkdir(&d2.t("owner_in_other"), 0o755)
    });
    let p2 = run_as(Creds::User(OTHER, OTHER), || {
        mkdir(&d2.t("other_in_own"), 0o755)?;
        mkdir(&d1.t("other_in_other"), 0o755)
    });
    let p3 = run_as(Creds::Root, || {
        mkdir(&d1.t("root1"), 0o755)?;
        mkdir(&d2.t("root2"), 0o755)
    });
    let evs = a.finish(&d1.tree);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d2.t("owner_in_other"), OWNER)
                .pid(p1)
                .mode(0o755)
                .tree(&d2.tree),
            Exp::new("mkdir", d1.t("other_in_other"), OTHER)
                .pid(p2)
                .mode(0o755),
            Exp::new("mkdir", d1.t("root1"), 0).pid(p3).mode(0o755),
            Exp::new("mkdir", d2.t("root2"), 0)
                .pid(p3)
                .mode(0o755)
                .tree(&d2.tree),
        ],
        &d1.tree,
    );
}

#[test]
fn ops_accepts_every_op_name() {
    needs_root!();
    let d = TestDir::new("opsall");
    let t = &d.tree;
    let all = "create,mkdir,mknod,symlink,link,rename,unlink,rmdir,chmod,chown,truncate,\
               setxattr,removexattr,write";
    let mut a = Agent::watch_tree(t, &["--ops", all]);
    let pid = run_as(Creds::Root, || {
        create(&d.t("f"), 0o644)?;
        sc!(libc::SYS_chmod, cp(d.t("f")), 0o600)?;
        sc!(libc::SYS_unlink, cp(d.t("f")))?;
        Ok(())
    });
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("create", d.t("f"), 0).pid(pid).mode(0o644),
            Exp::new("chmod", d.t("f"), 0).pid(pid).mode(0o600),
            Exp::new("unlink", d.t("f"), 0).pid(pid),
        ],
        t,
    );
}

/// DIR given relative to the agent's cwd, with a trailing slash, and through a symlink:
/// `tree` is still the root's canonical absolute path.
#[test]
fn dir_argument_forms_give_the_canonical_tree() {
    needs_root!();
    let d1 = TestDir::new("dirarg-rel");
    let d2 = TestDir::new("dirarg-link");
    let link = d2.base.join("link-to-tree");
    std::os::unix::fs::symlink(&d2.tree, &link).unwrap();
    let mut a = Agent::spawn_in(
        watch_args(&["./tree/", &s(&link)]),
        StdoutMode::Lines,
        Some(&d1.base),
    );
    let pid = run_as(Creds::Root, || {
        mkdir(&d1.t("x"), 0o755)?;
        mkdir(&d2.t("y"), 0o755)
    });
    let evs = a.finish(&d1.tree);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d1.t("x"), 0).pid(pid).mode(0o755),
            Exp::new("mkdir", d2.t("y"), 0)
                .pid(pid)
                .mode(0o755)
                .tree(&d2.tree),
        ],
        &d1.tree,
    );
}

// =============================================================================================
// 4. Path forms

#[test]
fn path_forms() {
    needs_root!();
    let d = TestDir::new("paths");
    let t = &d.tree;
    make_dir(d.t("sub"));
    make_file(d.t("sub/file_u"), b"");
    make_file(d.t("sub/ren_a"), b"");
    let outlink = d.base.join("outlink");
    std::os::unix::fs::symlink(t, &outlink).unwrap();
    std::os::unix::fs::symlink("sub", d.t("sublink")).unwrap();
    // the writer's fd table is gone when user space resolves without the kernel's view
    let proc_fd = string_paths_promised("path_forms: /proc/self/fd/N/name");
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
        mkdir(&d.t("abs"), 0o755)?;
        chdir(t)?;
        sc!(libc::SYS_mkdir, cs("rel"), 0o755)?;
        chdir(&d.t("sub"))?;
        sc!(libc::SYS_mkdir, cs("../dotdot"), 0o755)?;
        sc!(libc::SYS_mkdir, cp(d.t("sub/../dotdot_abs")), 0o755)?;
        chdir(&d.outside)?;
        sc!(libc::SYS_mkdir, cs("../tree/from_outside_cwd"), 0o755)?;
        let dfd = dirfd(&d.t("sub"))?;
        sc!(libc::SYS_mkdirat, dfd, cs("dirfd"), 0o755)?;
        let pfd = sc!(
            libc::SYS_open,
            cp(d.t("sub")),
            libc::O_PATH | libc::O_DIRECTORY
        )?;
        sc!(libc::SYS_mkdirat, pfd, cs("opath"), 0o755)?;
        close(pfd);
        let bfd = dirfd(&d.base)?;
        sc!(libc::SYS_mkdirat, bfd, cs("tree/via_base_fd"), 0o755)?;
        close(bfd);
        mkdir(&outlink.join("via_outlink"), 0o755)?;
        mkdir(&d.t("sublink/via_sublink"), 0o755)?;
        chdir(&outlink)?;
        sc!(libc::SYS_mkdir, cs("cwd_via_link"), 0o755)?;
        chdir(t)?;
        sc!(libc::SYS_mkdir, cs("/proc/self/cwd/proc_cwd"), 0o755)?;
        sc!(
            libc::SYS_mkdir,
            cs(format!("/proc/self/root{}/proc_root", t.display())),
            0o755
        )?;
        if proc_fd {
            sc!(
                libc::SYS_mkdir,
                cs(format!("/proc/self/fd/{dfd}/proc_fd")),
                0o755
            )?;
        }
        sc!(
            libc::SYS_mkdir,
            cs(format!("{}//./slashes/", t.display())),
            0o755
        )?;
        let fd = sc!(
            libc::SYS_openat,
            dfd,
            cs("../dotdot_file"),
            libc::O_CREAT | libc::O_WRONLY,
            0o644
        )?;
        close(fd);
        sc!(libc::SYS_unlink, cp(outlink.join("sub/file_u")))?;
        sc!(
            libc::SYS_rename,
            cp(outlink.join("sub/ren_a")),
            cp(d.t("sublink/ren_b"))
        )?;
        close(dfd);
        Ok(())
    });
    let evs = a.finish(t);
    let m = |rel: &str| Exp::new("mkdir", d.t(rel), 0).pid(pid).mode(0o755);
    let mut want = vec![
        m("abs"),
        m("rel"),
        m("dotdot"),
        m("dotdot_abs"),
        m("from_outside_cwd"),
        m("sub/dirfd"),
        m("sub/opath"),
        m("via_base_fd"),
        m("via_outlink"),
        m("sub/via_sublink"),
        m("cwd_via_link"),
        m("proc_cwd"),
        m("proc_root"),
        m("sub/proc_fd"),
        m("slashes"),
        Exp::new("create", d.t("dotdot_file"), 0)
            .pid(pid)
            .mode(0o644),
        Exp::new("unlink", d.t("sub/file_u"), 0).pid(pid),
        Exp::new("rename", d.t("sub/ren_a"), 0)
            .pid(pid)
            .new_path(d.t("sub/ren_b")),
    ];
    if !proc_fd {
        want.retain(|w| !w.path.ends_with(b"/proc_fd"));
    }
    assert_events(&evs, &want, t);
}

/// Paths are what they were when the operation ran, even when a directory or symlink on
/// the way is renamed, replaced or removed right after (before the agent gets to the event).
#[test]
fn paths_are_as_at_the_time_of_the_operation() {
    needs_root!();
    if !string_paths_promised("paths_are_as_at_the_time_of_the_operation: names re-pointed, removed or moved right after the op") {
        return;
    }
    let d = TestDir::new("racepath");
    let t = &d.tree;
    for dd in ["sub", "mv", "gone", "own"] {
        make_dir(d.t(dd));
    }
    chown(d.t("own"), OWNER, OWNER);
    let outlink = d.base.join("outlink");
    std::os::unix::fs::symlink(t, &outlink).unwrap();
    std::os::unix::fs::symlink("sub", d.t("sublink")).unwrap();
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
        // A symlinked parent outside the tree, re-pointed elsewhere right after.
        mkdir(&outlink.join("via_outlink"), 0o755)?;
        sc!(libc::SYS_unlink, cp(&outlink))?;
        sc!(libc::SYS_symlink, cp(&d.outside), cp(&outlink))?;
        // A symlinked parent inside the tree, removed right after.
        mkdir(&d.t("sublink/via_sublink"), 0o755)?;
        sc!(libc::SYS_unlink, cp(d.t("sublink")))?;
        // The parent moved out of the tree right after.
        mkdir(&d.t("mv/in_mv"), 0o755)?;
        sc!(libc::SYS_rename, cp(d.t("mv")), cp(d.o("mv")))?;
        // The parent removed right after.
        create(&d.t("gone/f"), 0o644)?;
        sc!(libc::SYS_unlink, cp(d.t("gone/f")))?;
        sc!(libc::SYS_rmdir, cp(d.t("gone")))?;
        // A new directory renamed right after something was made in it.
        mkdir(&d.t("a"), 0o755)?;
        mkdir(&d.t("a/b"), 0o755)?;
        sc!(libc::SYS_rename, cp(d.t("a")), cp(d.t("a2")))?;
        Ok(())
    });
    // The owner renames its directory right after root wrote in it (silent itself).
    let p2 = run_as(Creds::Root, || mkdir(&d.t("own/by_root"), 0o755));
    run_as(Creds::User(OWNER, OWNER), || {
        sc!(libc::SYS_rename, cp(d.t("own")), cp(d.t("own2")))?;
        Ok(())
    });
    let evs = a.finish(t);
    let m = |rel: &str| Exp::new("mkdir", d.t(rel), 0).pid(pid).mode(0o755);
    assert_events(
        &evs,
        &[
            m("via_outlink"),
            m("sub/via_sublink"),
            Exp::new("unlink", d.t("sublink"), 0).pid(pid),
            m("mv/in_mv"),
            Exp::new("rename", d.t("mv"), 0)
                .pid(pid)
                .new_path(d.o("mv")),
            Exp::new("create", d.t("gone/f"), 0).pid(pid).mode(0o644),
            Exp::new("unlink", d.t("gone/f"), 0).pid(pid),
            Exp::new("rmdir", d.t("gone"), 0).pid(pid),
            m("a"),
            m("a/b"),
            Exp::new("rename", d.t("a"), 0).pid(pid).new_path(d.t("a2")),
            Exp::new("mkdir", d.t("own/by_root"), 0).pid(p2).mode(0o755),
        ],
        t,
    );
}

#[test]
fn path_through_bind_mount_on_host() {
    needs_root!();
    let d = TestDir::new("hostbind");
    let t = &d.tree;
    make_dir(d.t("sub"));
    let bind = d.base.join("bind");
    let bind_sub = d.base.join("bind_sub");
    make_dir(&bind);
    make_dir(&bind_sub);
    d.bind_mount(t, &bind);
    d.bind_mount(&d.t("sub"), &bind_sub);
    let mut a = Agent::watch_tree(t, &[]);
    // One more, made while the agent runs.
    let late = d.base.join("late_bind");
    make_dir(&late);
    d.bind_mount(t, &late);
    let pid = run_as(Creds::Root, || {
        mkdir(&bind.join("hb"), 0o755)?;
        create(&bind.join("hbf"), 0o644)?;
        sc!(libc::SYS_rename, cp(bind.join("hbf")), cp(bind.join("hbg")))?;
        mkdir(&bind_sub.join("in_sub"), 0o755)?;
        mkdir(&late.join("via_late_bind"), 0o755)?;
        mkdir(&d.t("via_tree_path"), 0o755)?;
        Ok(())
    });
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("hb"), 0).pid(pid).mode(0o755),
            Exp::new("create", d.t("hbf"), 0).pid(pid).mode(0o644),
            Exp::new("rename", d.t("hbf"), 0)
                .pid(pid)
                .new_path(d.t("hbg")),
            Exp::new("mkdir", d.t("sub/in_sub"), 0).pid(pid).mode(0o755),
            Exp::new("mkdir", d.t("via_late_bind"), 0)
                .pid(pid)
                .mode(0o755),
            Exp::new("mkdir", d.t("via_tree_path"), 0)
                .pid(pid)
                .mode(0o755),
        ],
        t,
    );
}

/// In the calling (forked) process: a new mount namespace whose mounts do not propagate.
fn private_mount_ns() -> Result<(), String> {
    sc!(libc::SYS_unshare, libc::CLONE_NEWNS)?;
    let root = cs("/");
    sc!(
        libc::SYS_mount,
        std::ptr::null::<u8>(),
        root,
        std::ptr::null::<u8>(),
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null::<u8>()
    )?;
    Ok(())
}

fn bind(src: &Path, dst: &Path) -> Result<(), String> {
    sc!(
        libc::SYS_mount,
        cp(src),
        cp(dst),
        std::ptr::null::<u8>(),
        libc::MS_BIND,
        std::ptr::null::<u8>()
    )?;
    Ok(())
}

#[test]
fn path_through_bind_mount_in_private_namespace() {
    needs_root!();
    if !string_paths_promised(
        "path_through_bind_mount_in_private_namespace: a mount only another namespace had",
    ) {
        return;
    }
    let d = TestDir::new("nsbind");
    let t = &d.tree;
    make_dir(d.t("sub"));
    let b1 = d.base.join("nsbind");
    let b2 = d.base.join("nsbind_sub");
    make_dir(&b1);
    make_dir(&b2);
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
        private_mount_ns()?;
        bind(t, &b1)?;
        bind(&d.t("sub"), &b2)?;
        mkdir(&b1.join("via_ns_bind"), 0o755)?;
        sc!(
            libc::SYS_rename,
            cp(b1.join("via_ns_bind")),
            cp(b1.join("via_ns_bind2"))
        )?;
        create(&b2.join("via_ns_bind_sub"), 0o600)?;
        Ok(())
    });
    // Nothing leaked into the host namespace.
    assert!(
        std::fs::read_dir(&b1).unwrap().next().is_none(),
        "bind mount leaked to the host"
    );
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("via_ns_bind"), 0)
                .pid(pid)
                .mode(0o755),
            Exp::new("rename", d.t("via_ns_bind"), 0)
                .pid(pid)
                .new_path(d.t("via_ns_bind2")),
            Exp::new("create", d.t("sub/via_ns_bind_sub"), 0)
                .pid(pid)
                .mode(0o600),
        ],
        t,
    );
}

#[test]
fn path_from_another_mount_namespace() {
    needs_root!();
    let d = TestDir::new("mntns");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
        private_mount_ns()?;
        // Make the namespace differ: a tmpfs over the unwatched sibling.
        sc!(
            libc::SYS_mount,
            cs("tmpfs"),
            cp(&d.outside),
            cs("tmpfs"),
            0,
            std::ptr::null::<u8>()
        )?;
        mkdir(&d.t("in_ns"), 0o755)?;
        create(&d.t("in_ns/file"), 0o644)?;
        mkdir(&d.o("on_tmpfs"), 0o755)?; // outside the tree: nothing
        Ok(())
    });
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("in_ns"), 0).pid(pid).mode(0o755),
            Exp::new("create", d.t("in_ns/file"), 0)
                .pid(pid)
                .mode(0o644),
        ],
        t,
    );
}

#[test]
fn path_from_inside_a_chroot() {
    needs_root!();
    let d = TestDir::new("chroot");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
        sc!(libc::SYS_chroot, cp(&d.base))?;
        sc!(libc::SYS_chdir, cs("/"))?;
        sc!(libc::SYS_mkdir, cs("/tree/in_chroot"), 0o755)?;
        sc!(libc::SYS_chdir, cs("/tree"))?;
        sc!(libc::SYS_mkdir, cs("rel_in_chroot"), 0o755)?;
        sc!(libc::SYS_mkdir, cs("/../../tree/dotdot_at_root"), 0o755)?;
        sc!(
            libc::SYS_symlink,
            cs("/tree/in_chroot"),
            cs("/tree/chroot_link")
        )?;
        sc!(libc::SYS_mkdir, cs("/tree/chroot_link/through_link"), 0o755)?;
        sc!(
            libc::SYS_rename,
            cs("/tree/rel_in_chroot"),
            cs("/outside/moved_out")
        )?;
        Ok(())
    });
    let evs = a.finish(t);
    let m = |rel: &str| Exp::new("mkdir", d.t(rel), 0).pid(pid).mode(0o755);
    assert_events(
        &evs,
        &[
            m("in_chroot"),
            m("rel_in_chroot"),
            m("dotdot_at_root"),
            Exp::new("symlink", d.t("chroot_link"), 0)
                .pid(pid)
                .target("/tree/in_chroot"),
            m("in_chroot/through_link"),
            Exp::new("rename", d.t("rel_in_chroot"), 0)
                .pid(pid)
                .new_path(d.o("moved_out")),
        ],
        t,
    );
}

fn deep_chain(tree: &Path, names: &[Vec<u8>]) -> Result<(), String> {
    let mut dfd = dirfd(tree)?;
    for n in names {
        sc!(libc::SYS_mkdirat, dfd, cs(n), 0o755)?;
        let next = sc!(
            libc::SYS_openat,
            dfd,
            cs(n),
            libc::O_DIRECTORY | libc::O_RDONLY
        )?;
        close(dfd);
        dfd = next;
    }
    let fd = sc!(
        libc::SYS_openat,
        dfd,
        cs("leaf"),
        libc::O_CREAT | libc::O_WRONLY,
        0o644
    )?;
    close(fd);
    close(dfd);
    Ok(())
}

fn deep_expect(tree: &Path, names: &[Vec<u8>], pid: i32) -> Vec<Exp> {
    let mut want = Vec::new();
    let mut p = tree.to_path_buf();
    for n in names {
        p = join_bytes(&p, n);
        want.push(Exp::new("mkdir", &p, 0).pid(pid).mode(0o755));
    }
    want.push(Exp::new("create", p.join("leaf"), 0).pid(pid).mode(0o644));
    want
}

#[test]
fn path_120_levels_deep() {
    needs_root!();
    let d = TestDir::new("deep");
    let t = &d.tree;
    let names: Vec<Vec<u8>> = (0..120)
        .map(|i| format!("level{i:03}").into_bytes())
        .collect();
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || deep_chain(t, &names));
    let evs = a.finish(t);
    let want = deep_expect(t, &names, pid);
    // The 120th mkdir: exactly 120 components below the tree.
    let last = evs.get(119).and_then(|e| e["path"].as_str()).unwrap_or("");
    let below = last
        .strip_prefix(&format!("{}/", t.display()))
        .unwrap_or("");
    assert_eq!(
        below.split('/').count(),
        120,
        "120th event's path {last:?} is not 120 levels below the tree"
    );
    assert_events(&evs, &want, t);
}

#[test]
fn path_120_levels_of_255_byte_names() {
    needs_root!();
    let d = TestDir::new("deeplong");
    let t = &d.tree;
    let names: Vec<Vec<u8>> = (0..120)
        .map(|i| {
            let mut n = format!("{i:03}").into_bytes();
            n.resize(255, b'n');
            n
        })
        .collect();
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || deep_chain(t, &names));
    let evs = a.finish(t);
    let want = deep_expect(t, &names, pid);
    assert_events(&evs, &want, t);
}

/// 300 levels of 255-byte names: a path (~77 KB) longer than the kernel side can carry.
/// Every event must still come; a path that could not be carried whole has
/// "truncated": true, one that is not marked must be exact.
#[test]
fn path_deeper_than_the_kernel_buffer_is_never_dropped() {
    needs_root!();
    let d = TestDir::new("deeper");
    let t = &d.tree;
    let names: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            let mut n = format!("{i:03}").into_bytes();
            n.resize(255, b'n');
            n
        })
        .collect();
    // (each record carries a ~75 KB path: a burst of 300 outgrows the default ring while
    // other tests run)
    let mut a = Agent::watch_tree(t, &["--ring-size", "64M"]);
    let pid = run_as(Creds::Root, || deep_chain(t, &names));
    let evs = a.finish(t);
    let mut want = deep_expect(t, &names, pid);
    // Up to 64 KiB a path always arrives whole, and is not marked (README).
    for (e, w) in evs.iter().zip(&want) {
        if w.path.len() <= 64 * 1024 {
            assert_ne!(
                e.get("truncated"),
                Some(&Value::Bool(true)),
                "a path of {} bytes was cut: {}",
                w.path.len(),
                e
            );
        }
    }
    for (e, w) in evs.iter().zip(want.iter_mut()) {
        if e.get("truncated") == Some(&Value::Bool(true)) {
            // Cut: only the path itself cannot be compared.
            w.truncated = true;
            w.path = e["path"].as_str().unwrap_or("").as_bytes().to_vec();
        }
    }
    assert_events(&evs, &want, t);
}

/// Every op on a file ~36 KB deep, by names relative to the working directory: whole paths,
/// none marked "truncated" (the walks of the directories the op changed take room too).
#[test]
fn ops_36_kb_deep_are_whole() {
    needs_root!();
    let d = TestDir::new("deepops");
    let t = &d.tree;
    let names: Vec<Vec<u8>> = (0..140)
        .map(|i| {
            let mut n = format!("{i:03}").into_bytes();
            n.resize(255, b'n');
            n
        })
        .collect();
    let deep = names.iter().fold(t.clone(), |p, n| join_bytes(&p, n));
    let mut a = Agent::watch_tree(t, &["--ops", "create,chmod,rename,link,symlink,unlink"]);
    let pid = run_as(Creds::Root, || {
        deep_chain(t, &names)?;
        chdir(t)?;
        for n in &names {
            sc!(libc::SYS_chdir, cs(n))?;
        }
        sc!(libc::SYS_chmod, cs("leaf"), 0o600)?;
        sc!(libc::SYS_rename, cs("leaf"), cs("leaf2"))?;
        sc!(libc::SYS_link, cs("leaf2"), cs("leaf3"))?;
        sc!(libc::SYS_symlink, cs("leaf2"), cs("sl"))?;
        sc!(libc::SYS_unlink, cs("leaf3"))?;
        Ok(())
    });
    let evs = a.finish_with(t, Sentinel::Create);
    let p = |n: &str| deep.join(n);
    assert_events(
        &evs,
        &[
            Exp::new("create", p("leaf"), 0).pid(pid).mode(0o644),
            Exp::new("chmod", p("leaf"), 0).pid(pid).mode(0o600),
            Exp::new("rename", p("leaf"), 0)
                .pid(pid)
                .new_path(p("leaf2")),
            Exp::new("link", p("leaf2"), 0)
                .pid(pid)
                .new_path(p("leaf3")),
            Exp::new("symlink", p("sl"), 0).pid(pid).target("leaf2"),
            Exp::new("unlink", p("leaf3"), 0).pid(pid),
        ],
        t,
    );
}

#[test]
fn names_of_255_bytes_and_long_symlink_targets() {
    needs_root!();
    let d = TestDir::new("longname");
    let t = &d.tree;
    let n = |c: char| c.to_string().repeat(255);
    let long_target = format!("/{}", "t/".repeat(2000)); // 4001 bytes
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
        create(&d.t(&n('a')), 0o644)?;
        mkdir(&d.t(&n('b')), 0o755)?;
        sc!(libc::SYS_symlink, cs(n('c')), cp(d.t(&n('d'))))?;
        sc!(libc::SYS_symlink, cs(&long_target), cp(d.t("long_target")))?;
        sc!(libc::SYS_rename, cp(d.t(&n('a'))), cp(d.t(&n('e'))))?;
        create(&d.t(&format!("{}/{}", n('b'), n('f'))), 0o600)?;
        Ok(())
    });
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("create", d.t(&n('a')), 0).pid(pid).mode(0o644),
            Exp::new("mkdir", d.t(&n('b')), 0).pid(pid).mode(0o755),
            Exp::new("symlink", d.t(&n('d')), 0).pid(pid).target(n('c')),
            Exp::new("symlink", d.t("long_target"), 0)
                .pid(pid)
                .target(&long_target),
            Exp::new("rename", d.t(&n('a')), 0)
                .pid(pid)
                .new_path(d.t(&n('e'))),
            Exp::new("create", d.t(&format!("{}/{}", n('b'), n('f'))), 0)
                .pid(pid)
                .mode(0o600),
        ],
        t,
    );
}

#[test]
fn odd_names_are_exact_and_one_line_each() {
    needs_root!();
    let d = TestDir::new("oddnames");
    let t = &d.tree;
    let names: Vec<&[u8]> = vec![
        b"new\nline",
        b"carriage\rreturn",
        b"quote\"d",
        b"back\\slash",
        b"ctl\x01\x02\x1b[31m\x7f",
        b"tab\there and space",
        b"\xff\xfe not utf-8 \x80",
        b"caf\xc3\xa9 \xe2\x9c\x93",
        b"cut\xe2\x82",
        b"{\"op\":\"fake\"}",
        b"-leading-dash",
    ];
    let odd_dir: &[u8] = b"dir\xff\n";
    let odd_target: &[u8] = b"target\xfe\n\"\\";
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
        let dfd = dirfd(t)?;
        for n in &names {
            let fd = sc!(
                libc::SYS_openat,
                dfd,
                cs(n),
                libc::O_CREAT | libc::O_WRONLY,
                0o644
            )?;
            close(fd);
        }
        sc!(libc::SYS_mkdirat, dfd, cs(odd_dir), 0o755)?;
        let mut inner = odd_dir.to_vec();
        inner.extend_from_slice(b"/in\xfe");
        let fd = sc!(
            libc::SYS_openat,
            dfd,
            cs(&inner),
            libc::O_CREAT | libc::O_WRONLY,
            0o600
        )?;
        close(fd);
        sc!(libc::SYS_symlinkat, cs(odd_target), dfd, cs("odd_link"))?;
        sc!(
            libc::SYS_renameat,
            dfd,
            cs(names[6]),
            dfd,
            cs(b"renamed\xfe\x01")
        )?;
        close(dfd);
        Ok(())
    });
    let evs = a.finish(t);
    let mut want: Vec<Exp> = names
        .iter()
        .map(|n| Exp::new("create", join_bytes(t, n), 0).pid(pid).mode(0o644))
        .collect();
    let dir = join_bytes(t, odd_dir);
    want.push(Exp::new("mkdir", &dir, 0).pid(pid).mode(0o755));
    want.push(
        Exp::new("create", join_bytes(&dir, b"in\xfe"), 0)
            .pid(pid)
            .mode(0o600),
    );
    want.push(
        Exp::new("symlink", d.t("odd_link"), 0)
            .pid(pid)
            .target(odd_target),
    );
    want.push(
        Exp::new("rename", join_bytes(t, names[6]), 0)
            .pid(pid)
            .new_path(join_bytes(t, b"renamed\xfe\x01")),
    );
    assert_events(&evs, &want, t);
}

#[test]
fn renamed_watched_root_stays_watched() {
    needs_root!();
    let d = TestDir::new("rootrename");
    // base/holder (owner's) / tree
    let holder = d.base.join("holder");
    make_dir(&holder);
    chown(&holder, OWNER, OWNER);
    let t0 = holder.join("tree");
    std::fs::rename(&d.tree, &t0).unwrap();
    let mut a = Agent::watch_tree(&t0, &[]);
    // The owner renames the root (allowed: silent).
    let t1 = holder.join("tree-moved");
    run_as(Creds::User(OWNER, OWNER), || {
        sc!(libc::SYS_rename, cp(&t0), cp(&t1))?;
        Ok(())
    });
    let p1 = run_as(Creds::Root, || mkdir(&t1.join("after1"), 0o755));
    // Root renames the root's parent (outside the tree: silent).
    let holder2 = d.base.join("holder2");
    let t2 = holder2.join("tree-moved");
    run_as(Creds::Root, || {
        sc!(libc::SYS_rename, cp(&holder), cp(&holder2))?;
        Ok(())
    });
    let p2 = run_as(Creds::Root, || {
        create(&t2.join("after2"), 0o644)?;
        mkdir(&t2.join("after2dir"), 0o700)
    });
    let mut evs = a.finish(&t2);
    // Made just before its tree moved: the path at the time of the op needs the kernel's view.
    let before_move = t1.join("after1");
    if !string_paths_promised("renamed_watched_root_stays_watched: an op just before the move") {
        evs.retain(|e| e["pid"].as_i64() != Some(p1 as i64));
    }
    let mut want = vec![Exp::new("mkdir", &before_move, 0)
        .pid(p1)
        .mode(0o755)
        .tree(&t1)];
    if !kernel_decides_string_paths() {
        want.clear();
    }
    assert_events(
        &evs,
        &[
            want,
            vec![
                Exp::new("create", t2.join("after2"), 0)
                    .pid(p2)
                    .mode(0o644)
                    .tree(&t2),
                Exp::new("mkdir", t2.join("after2dir"), 0)
                    .pid(p2)
                    .mode(0o700)
                    .tree(&t2),
            ],
        ]
        .concat(),
        &t2,
    );
}

// =============================================================================================
// 5. --any-user, --format text, -v, signals

#[test]
fn any_user_reports_the_owner_too() {
    needs_root!();
    let d = TestDir::new("anyuser");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &["--any-user"]);
    let p1 = run_as(Creds::User(OWNER, OWNER), || mkdir(&d.t("by_owner"), 0o755));
    let p2 = run_as(Creds::User(OTHER, OTHER), || {
        create(&d.t("by_other"), 0o644)
    });
    let p3 = run_as(Creds::User(NOBODY, NOBODY), || {
        mkdir(&d.t("by_nobody"), 0o700)
    });
    let p4 = run_as(Creds::Root, || mkdir(&d.t("by_root"), 0o755));
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("by_owner"), OWNER)
                .pid(p1)
                .mode(0o755),
            Exp::new("create", d.t("by_other"), OTHER)
                .pid(p2)
                .mode(0o644),
            Exp::new("mkdir", d.t("by_nobody"), NOBODY)
                .pid(p3)
                .mode(0o700)
                .field("user", Value::from("nobody")),
            Exp::new("mkdir", d.t("by_root"), 0).pid(p4).mode(0o755),
        ],
        t,
    );
}

#[test]
fn format_text_is_one_readable_line_per_event() {
    needs_root!();
    let d = TestDir::new("text");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &["--format", "text"]);
    run_as(Creds::Root, || {
        mkdir(&d.t("text_dir"), 0o755)?;
        create(&d.t("text_file"), 0o644)?;
        sc!(
            libc::SYS_rename,
            cp(d.t("text_file")),
            cp(d.t("text_file2"))
        )?;
        create(&d.t("new\nline\u{1b}[2J"), 0o644)?;
        Ok(())
    });
    let (lines, sentinel) = a.finish_lines_with(t, Sentinel::Mkdir);
    assert_eq!(lines.len(), 4, "want 4 lines, got {lines:#?}");
    assert!(lines[3].contains("create"), "{}", lines[3]);
    assert!(
        !lines[3].contains('\u{1b}'),
        "control character printed raw: {:?}",
        lines[3]
    );
    let checks = [
        ("mkdir", s(&d.t("text_dir"))),
        ("create", s(&d.t("text_file"))),
        ("rename", s(&d.t("text_file"))),
    ];
    for (line, (op, path)) in lines.iter().chain([&sentinel]).zip(checks.iter()) {
        assert!(
            serde_json::from_str::<Value>(line).is_err(),
            "--format text printed JSON: {line}"
        );
        assert!(line.contains(op), "line lacks op {op:?}: {line}");
        assert!(
            line.contains(path.as_str()),
            "line lacks path {path:?}: {line}"
        );
    }
    assert!(
        lines[2].contains(&s(&d.t("text_file2"))),
        "rename line lacks the new path: {}",
        lines[2]
    );
    assert!(sentinel.contains("mkdir"));
}

#[test]
fn verbose_keeps_stdout_for_events() {
    needs_root!();
    let d = TestDir::new("verbose");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &["-v"]);
    let pid = run_as(Creds::Root, || mkdir(&d.t("v"), 0o755));
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[Exp::new("mkdir", d.t("v"), 0).pid(pid).mode(0o755)],
        t,
    );
}

fn signal_flushes(sig: i32, name: &str) {
    let d = TestDir::new(name);
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
        for i in 0..50 {
            mkdir(&d.t(&format!("s{i:02}")), 0o755)?;
        }
        Ok(())
    });
    // Signal at once, without waiting for the events: they must all come out before exit.
    a.stop_with(sig);
    let lines = a.drain();
    let evs: Vec<Value> = lines.iter().map(|l| parse_event(l)).collect();
    let want: Vec<Exp> = (0..50)
        .map(|i| {
            Exp::new("mkdir", d.t(&format!("s{i:02}")), 0)
                .pid(pid)
                .mode(0o755)
        })
        .collect();
    assert_events(&evs, &want, t);
}

#[test]
fn sigterm_flushes_and_exits_0() {
    needs_root!();
    signal_flushes(libc::SIGTERM, "sigterm");
}

#[test]
fn sigint_flushes_and_exits_0() {
    needs_root!();
    signal_flushes(libc::SIGINT, "sigint");
}

// =============================================================================================
// 6. Bad input, closed stdout

fn assert_usage_error(args: &[&str]) {
    let (code, out, err) = run_once(args);
    let ctx = format!("ownwatch {args:?}: exit {code:?}\nstdout: {out:?}\nstderr: {err:?}");
    assert_eq!(code, Some(2), "{ctx}");
    assert!(out.is_empty(), "stdout not empty; {ctx}");
    assert!(err.ends_with('\n'), "stderr not one line; {ctx}");
    assert_eq!(err.lines().count(), 1, "stderr not exactly one line; {ctx}");
    assert!(
        err.starts_with("ownwatch: "),
        "stderr not 'ownwatch: ...'; {ctx}"
    );
    assert!(!err.contains("panicked"), "{ctx}");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    needs_root!();
    let d = TestDir::new("badinput");
    let t = s(&d.tree);
    let file = d.o("a_file");
    make_file(&file, b"");
    let file = s(&file);
    let missing = s(&d.base.join("does-not-exist"));
    let cases: Vec<Vec<&str>> = vec![
        vec!["watch", &missing],
        vec!["watch", &t, &missing],
        vec!["watch", &file],
        vec!["watch", "--owner", "no-such-user-ownwatch", &t],
        vec!["watch", "--owner", "4242:no-such-group-ownwatch", &t],
        vec!["watch", "--allow", "no-such-user-ownwatch", &t],
        vec!["watch", "--ops", "mkdir,frobnicate", &t],
        vec!["watch", "--ops", "", &t],
        vec!["watch", "--backend", "magic", &t],
        vec!["watch", "--format", "yaml", &t],
        vec!["watch", "--duration", "0", &t],
        vec!["watch", "--duration", "00", &t],
        vec!["watch", "--duration", "0s", &t],
        vec!["watch", "--duration", "10x", &t],
        vec!["watch", "--duration", "9223372036854775807", &t],
        vec!["watch", "--duration", "99999999999999999999999h", &t],
    ];
    for c in &cases {
        assert_usage_error(c);
    }
    // Backends this machine cannot use.
    let unusable: Vec<String> = probe()["backends"]
        .as_array()
        .expect("probe backends")
        .iter()
        .filter(|b| b["usable"] == Value::Bool(false))
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    if expected_choice() == "tracepoint" {
        for b in ["lsm", "fentry", "kprobe"] {
            assert!(
                unusable.iter().any(|u| u == b),
                "probe says {b} is usable here"
            );
        }
    }
    for b in &unusable {
        assert_usage_error(&["watch", "--backend", b, &t]);
    }
}

/// Usage errors (DESIGN: "one clear line on stderr, never a panic").
#[test]
fn usage_errors_exit_2_with_one_line() {
    needs_root!();
    let d = TestDir::new("usage");
    let t = s(&d.tree);
    for args in [
        vec!["watch"],
        vec!["frobnicate"],
        vec![],
        vec!["watch", "--no-such-flag", &t],
        vec!["watch", "--owner"],
    ] {
        assert_usage_error(&args);
    }
}

#[test]
fn closed_stdout_ends_cleanly() {
    needs_root!();
    let d = TestDir::new("headone");
    let t = &d.tree;
    let mut a = Agent::spawn(watch_args(&[&s(t)]), StdoutMode::HeadOne);
    std::fs::create_dir(d.t("h0")).unwrap();
    let first = a
        .next_line(*TIMEOUT)
        .unwrap_or_else(|| panic!("no first event; stderr:\n{}", a.stderr_text()));
    let ev = parse_event(&first);
    assert_eq!(ev["path"], Value::from(s(&d.t("h0"))), "{first}");
    // The reader has closed the pipe. More events: the agent must notice and end cleanly.
    let deadline = Instant::now() + *TIMEOUT;
    let mut i = 1;
    let status = loop {
        if let Some(st) = a.wait_exit(Duration::from_millis(100)) {
            break Some(st);
        }
        if Instant::now() >= deadline {
            break None;
        }
        let _ = std::fs::create_dir(d.t(&format!("h{i}")));
        i += 1;
    };
    let err = a.stderr_text();
    let st = status.unwrap_or_else(|| {
        panic!(
            "ownwatch still running {:?} after its stdout was closed; stderr:\n{err}",
            *TIMEOUT
        )
    });
    assert_eq!(st.code(), Some(0), "{st:?}; stderr:\n{err}");
    assert!(!err.contains("panicked"), "stderr:\n{err}");
}

// =============================================================================================
// 7. probe

#[test]
fn probe_reports_every_backend_and_the_choice() {
    needs_root!();
    let p = probe();
    assert!(p["kernel"].is_object(), "kernel: {}", p["kernel"]);
    let backends = p["backends"].as_array().expect("backends array");
    let names: Vec<&str> = backends
        .iter()
        .map(|b| b["name"].as_str().expect("backend name"))
        .collect();
    assert_eq!(names.len(), 4, "backends: {names:?}");
    for n in ["lsm", "fentry", "kprobe", "tracepoint"] {
        assert!(names.contains(&n), "backend {n} missing: {names:?}");
    }
    for b in backends {
        let usable = b["usable"]
            .as_bool()
            .unwrap_or_else(|| panic!("usable not a bool: {b}"));
        if !usable {
            let reason = b["reason"].as_str().unwrap_or("");
            assert!(
                !reason.trim().is_empty(),
                "unusable backend without reason: {b}"
            );
        }
    }
    let choice = expected_choice();
    assert_eq!(p["choice"], Value::from(choice.as_str()), "probe: {p:#}");
    let chosen = backends.iter().find(|b| b["name"] == p["choice"]).unwrap();
    assert_eq!(
        chosen["usable"],
        Value::Bool(true),
        "chosen backend not usable: {p:#}"
    );
    if choice == "tracepoint" {
        for n in ["lsm", "fentry", "kprobe"] {
            let b = backends.iter().find(|b| b["name"] == n).unwrap();
            assert_eq!(b["usable"], Value::Bool(false), "{n} usable here? {b}");
        }
    }
}

// =============================================================================================
// Watched roots that go away

/// The in-band line for a root given up, with its path and reason.
fn expect_tree_gone(a: &Agent, root: &Path, reason: &str) {
    let line = a
        .next_line(*TIMEOUT)
        .unwrap_or_else(|| panic!("no tree_gone line; stderr:\n{}", a.stderr_text()));
    let v = parse_event(&line);
    assert_eq!(v["op"], "tree_gone", "{line}");
    assert_eq!(v["tree"].as_str(), Some(s(root).as_str()), "{line}");
    assert_eq!(v["reason"], reason, "{line}");
    assert!(v["time"].is_string(), "{line}");
    let err = a.stderr_text();
    assert!(
        err.contains(&format!(
            "{}: watched tree {reason}; no longer watched",
            s(root)
        )),
        "stderr:\n{err}"
    );
}

#[test]
fn a_deleted_root_is_said_once_and_the_last_one_stops_the_agent() {
    needs_root!();
    let d = TestDir::new("rootgone");
    let mut a = Agent::watch_tree(&d.tree, &[]);
    let pid = run_as(Creds::Root, || {
        sc!(libc::SYS_rmdir, cp(&d.tree))?;
        Ok(())
    });
    // Its removal is the tree's last offending write, then the tree is given up.
    let line = a.next_line(*TIMEOUT).expect("the rmdir event");
    assert_events(
        &[parse_event(&line)],
        &[Exp::new("rmdir", &d.tree, 0).pid(pid)],
        &d.tree,
    );
    expect_tree_gone(&a, &d.tree, "was deleted");
    let st = a.wait_exit(*TIMEOUT).expect("the agent stops");
    assert_eq!(st.code(), Some(2), "stderr:\n{}", a.stderr_text());
    assert!(
        a.stderr_text()
            .contains("ownwatch: every watched tree is gone; stopping"),
        "stderr:\n{}",
        a.stderr_text()
    );
    assert!(a.drain().is_empty());
}

#[test]
fn a_lazily_unmounted_root_never_widens_the_watch() {
    needs_root!();
    let d = TestDir::new("lazyumount");
    let mnt = d.o("mnt");
    make_dir(&mnt);
    let m = cp(&mnt);
    let r = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            m.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            c"mode=0777".as_ptr().cast(),
        )
    };
    assert_eq!(r, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
    chown(&mnt, OWNER, OWNER);
    make_dir(mnt.join("sub"));
    // A writer whose cwd stays in the detached filesystem.
    let held = std::fs::File::open(mnt.join("sub")).unwrap();
    let mut a = Agent::watch(&["--owner", &OWNER.to_string(), &s(&d.tree), &s(&mnt)]);
    // While it is watched, a plain umount is refused: the agent holds the root.
    assert_ne!(unsafe { libc::umount(m.as_ptr()) }, 0);
    assert_eq!(errno(), libc::EBUSY);
    assert_eq!(unsafe { libc::umount2(m.as_ptr(), libc::MNT_DETACH) }, 0);
    expect_tree_gone(&a, &mnt, "was unmounted or moved out of reach");
    // and the agent no longer pins the detached filesystem (its root reads back as "/")
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", a.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.display().to_string())
        .collect();
    assert!(!fds.iter().any(|l| l == "/"), "agent fds: {fds:?}");
    let pid = run_as(Creds::Root, || {
        // Elsewhere on the machine (this used to come out with "tree": "/") ...
        mkdir(&d.o("unrelated"), 0o755)?;
        create(&d.o("unrelated/f"), 0o644)?;
        // ... in the detached filesystem, through an fd that still reaches it ...
        sc!(
            libc::SYS_mkdirat,
            held.as_raw_fd() as c_long,
            cs("d"),
            0o755
        )?;
        // ... and in the tree that is still watched.
        mkdir(&d.t("still"), 0o755)?;
        Ok(())
    });
    let evs = a.finish(&d.tree);
    assert_events(
        &evs,
        &[Exp::new("mkdir", d.t("still"), 0).pid(pid).mode(0o755)],
        &d.tree,
    );
}

/// SIGHUP (logrotate, a closing terminal) never kills the agent: with or without -o, also while
/// it is still starting.
#[test]
fn sighup_never_kills_the_agent() {
    needs_root!();
    use std::io::{BufRead, BufReader};
    let d = TestDir::new("sighup");
    let mut child = std::process::Command::new(bin())
        .args(watch_args(&[&s(&d.tree)]))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for r in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
    }
    // As soon as the handler is there (SigCgt in /proc), which is before anything else:
    // the agent has not attached yet.
    let hup_caught = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|st| {
                let l = st.lines().find(|l| l.starts_with("SigCgt:"))?.to_string();
                u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok()
            })
            .is_some_and(|m| m & (1 << (libc::SIGHUP - 1)) != 0)
    };
    let deadline = Instant::now() + *TIMEOUT;
    while !hup_caught() {
        assert!(Instant::now() < deadline, "SIGHUP is never caught");
        assert!(child.try_wait().unwrap().is_none(), "the agent died");
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut seen = Vec::new();
    while let Ok(l) = rx.try_recv() {
        seen.push(l);
    }
    assert!(
        !seen.iter().any(|l| l.starts_with("ownwatch: watching")),
        "SIGHUP is caught only after attaching: {seen:?}"
    );
    for _ in 0..3 {
        unsafe { libc::kill(pid, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(5));
    }
    let next = |want: &dyn Fn(&str) -> bool, what: &str, seen: &mut Vec<String>| loop {
        match rx.recv_timeout(*TIMEOUT) {
            Ok(l) if want(&l) => break l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no {what}; output: {seen:?}"),
        }
    };
    next(
        &|l| l.starts_with("ownwatch: watching"),
        "ready line",
        &mut seen,
    );
    unsafe { libc::kill(pid, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(100));
    std::fs::create_dir(d.t("after-hup")).unwrap();
    let l = next(
        &|l| l.contains("after-hup"),
        "event after SIGHUP",
        &mut seen,
    );
    assert_eq!(parse_event(&l)["op"], "mkdir");
    unsafe { libc::kill(pid, libc::SIGINT) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "{st}; output: {seen:?}");
}
