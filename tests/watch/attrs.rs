//! The ops that change what is there, through every syscall variant, as root (fsuid 0):
//! chmod, chown, truncate and writes, xattrs (also the *xattrat syscalls).

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

/// An empty file `name` in the tree and a symlink `link` to it.
fn file_and_link(d: &TestDir, name: &str, link: &str) {
    make_file(d.t(name), b"");
    std::os::unix::fs::symlink(name, d.t(link)).unwrap();
}

#[test]
fn root_chmod_variants() {
    let d = shared_dir!("chmod");
    let t = &d.tree;
    file_and_link(&d, "m", "msl");
    make_dir(d.t("md"));
    let fchmodat2 = have_syscall(SYS_FCHMODAT2);
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(t)?;
        sc!(nr::SYS_chmod, cp(d.t("m")), 0o600)?;
        let fd = rdonly(&d.t("m"))?;
        sc!(libc::SYS_fchmod, fd, 0o640)?;
        sc!(libc::SYS_fchmodat, libc::AT_FDCWD, cp(d.t("m")), 0o604)?;
        sc!(libc::SYS_fchmodat, dfd, cs("m"), 0o660)?;
        sc!(nr::SYS_chmod, cp(d.t("msl")), 0o644)?; // follows: the target
        sc!(nr::SYS_chmod, cp(d.t("md")), 0o1777)?;
        sc!(nr::SYS_chmod, cp(d.t("m")), 0o4755)?;
        sc!(nr::SYS_chmod, cp(t), 0o777)?; // the watched root itself
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
    d.expect(&evs, &want);
}

/// A chmod says the mode the file got: the kernel drops setgid for a caller outside the
/// file's group without CAP_FSETID. The VFS backends read it at the outcome, under the inode
/// lock; the tracepoint backend works it out from the caller's groups and capabilities and
/// the file's group, read before the op (fchmod) or under the lock (the ctime tracepoints,
/// 6.13+), not at the syscall's exit, where the file may hold another change already (e.g.
/// --fix's chown dropping set-id bits). A path chmod on a kernel before 6.13 says the mode
/// asked for there: the file is known only to user space, after the fact.
#[test]
fn chmod_says_the_mode_the_file_gets() {
    let d = shared_dir!("chmod-sgid");
    make_file(d.t("g"), b"");
    chown(d.t("g"), OTHER, OWNER);
    make_file(d.t("k"), b"");
    chown(d.t("k"), OTHER, OTHER);
    let mut a = d.lease();
    let other = d.act(Creds::User(OTHER, OTHER), || {
        sc!(nr::SYS_chmod, cp(d.t("g")), 0o2775)?;
        let fd = rdonly(&d.t("g"))?;
        sc!(libc::SYS_fchmod, fd, 0o2755)?;
        close(fd);
        sc!(nr::SYS_chmod, cp(d.t("k")), 0o2770)?; // its group: kept
        Ok(())
    });
    // The file's group among the caller's supplementary groups (not its fsgid): kept.
    let grouped = By::of(
        &d.tree,
        Creds::User(OTHER, OTHER),
        run_as(Creds::Root, || {
            let groups = [7, OWNER, OWNER + 1, 60000];
            check("setgroups", unsafe { libc::setgroups(4, groups.as_ptr()) }
                as _)?;
            check("setresgid", unsafe { libc::setresgid(OTHER, OTHER, OTHER) }
                as _)?;
            check("setresuid", unsafe { libc::setresuid(OTHER, OTHER, OTHER) }
                as _)?;
            sc!(nr::SYS_chmod, cp(d.t("g")), 0o2750)?;
            let fd = rdonly(&d.t("g"))?;
            sc!(libc::SYS_fchmod, fd, 0o2705)?;
            close(fd);
            Ok(())
        }),
    );
    let root = d.act(Creds::Root, || {
        sc!(nr::SYS_chmod, cp(d.t("g")), 0o2775).map(|_| ()) // CAP_FSETID: kept
    });
    let evs = a.finish();
    let path_exact = expected_backend() != "tracepoint" || kernel_decides_string_paths();
    let by_path = |asked: u32| if path_exact { asked & !0o2000 } else { asked };
    d.expect(
        &evs,
        &[
            other.op("chmod", "g").mode(by_path(0o2775)),
            other.op("chmod", "g").mode(0o755),
            other.op("chmod", "k").mode(0o2770),
            grouped.op("chmod", "g").mode(0o2750),
            grouped.op("chmod", "g").mode(0o2705),
            root.op("chmod", "g").mode(0o2775),
        ],
    );
}

/// A file with hard links changes its attributes under every name: the event names the one
/// the op went through (the kernel's ctime hooks see the inode, whose first cached name may
/// be another, even one outside the tree; 6.13+ tracepoint backend).
#[test]
fn attribute_ops_on_a_hard_link_name_the_link_used() {
    let d = shared_dir!("hardlinks");
    make_dir(d.t("sub"));
    make_file(d.t("h1"), b"x");
    std::fs::hard_link(d.t("h1"), d.t("sub/h2")).unwrap();
    std::fs::hard_link(d.t("h1"), d.t("h3")).unwrap();
    // made last: the first of the inode's names in the cache
    let out = d.outside.join("h-out");
    std::fs::hard_link(d.t("h1"), &out).unwrap();
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(&d.tree)?;
        sc!(nr::SYS_chmod, cp(d.t("h1")), 0o600)?;
        sc!(nr::SYS_chmod, cp(d.t("sub/h2")), 0o640)?;
        sc!(libc::SYS_fchmodat, dfd, cs("h3"), 0o604, 0)?;
        sc!(nr::SYS_chown, cp(d.t("h1")), OTHER, OTHER)?;
        sc!(libc::SYS_fchownat, dfd, cs("sub/h2"), OWNER, -1i32, 0)?;
        sc!(libc::SYS_truncate, cp(d.t("h3")), 0)?;
        // through the name outside the tree: not in it (as the other backends see it)
        sc!(nr::SYS_chmod, cp(&out), 0o644)?;
        close(dfd);
        Ok(())
    });
    d.expect(
        &evs,
        &[
            by.op("chmod", "h1").mode(0o600),
            by.op("chmod", "sub/h2").mode(0o640),
            by.op("chmod", "h3").mode(0o604),
            by.op("chown", "h1").owner(Some(OTHER), Some(OTHER)),
            by.op("chown", "sub/h2").owner(Some(OWNER), None),
            by.op("truncate", "h3"),
        ],
    );
}

/// Enter a new user namespace in which this process (uid and gid `id` outside) is root:
/// what a rootless container's root is.
fn be_root_of_a_user_namespace(id: u32) -> Result<(), String> {
    // (its credentials were changed from root's: /proc/self is root's until it is dumpable)
    sc!(libc::SYS_prctl, libc::PR_SET_DUMPABLE, 1)?;
    sc!(libc::SYS_unshare, libc::CLONE_NEWUSER)?;
    for (file, text) in [
        ("setgroups", "deny".to_string()),
        ("uid_map", format!("0 {id} 1")),
        ("gid_map", format!("0 {id} 1")),
    ] {
        std::fs::write(format!("/proc/self/{file}"), text)
            .map_err(|e| format!("/proc/self/{file}: {e}"))?;
    }
    Ok(())
}

/// chown from a user namespace (a rootless container's root, its volume a tree here): the
/// event says the ids the file gets, as the host sees them and as the VFS hooks are given
/// them, not the numbers the caller passed. Root of a namespace that maps 0 to OTHER chowns
/// to 0:0, and the file (and the event) gets OTHER:OTHER; by path, by fd and by dirfd.
#[test]
fn chown_from_a_user_namespace_says_the_ids_the_file_gets() {
    let d = shared_dir!("userns-chown");
    make_file(d.t("o"), b"");
    chown(d.t("o"), OWNER, OWNER);
    let mut a = d.lease();
    let by = d.act(Creds::User(OTHER, OTHER), || {
        let fd = sc!(
            nr::SYS_open,
            cp(d.t("mine")),
            libc::O_CREAT | libc::O_WRONLY,
            0o640
        )?;
        be_root_of_a_user_namespace(OTHER)?;
        sc!(nr::SYS_chown, cp(d.t("mine")), 0, 0)?;
        sc!(libc::SYS_fchown, fd, 0, -1i32)?;
        let dfd = dirfd(&d.tree)?;
        sc!(libc::SYS_fchownat, dfd, cs("mine"), -1i32, 0, 0)?;
        close(dfd);
        close(fd);
        // Not its own: refused (EPERM), nothing to report.
        fails!(libc::EPERM, nr::SYS_chown, cp(d.t("o")), 0, 0)
    });
    let evs = a.finish();
    let e = |u: Option<u32>, g: Option<u32>| by.op("chown", "mine").owner(u, g);
    d.expect(
        &evs,
        &[
            by.create("mine", 0o640),
            e(Some(OTHER), Some(OTHER)),
            e(Some(OTHER), None),
            e(None, Some(OTHER)),
        ],
    );
}

#[test]
fn root_chown_variants() {
    let d = shared_dir!("chown");
    file_and_link(&d, "o", "osl");
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(&d.tree)?;
        sc!(nr::SYS_chown, cp(d.t("o")), OTHER, OTHER)?;
        let fd = rdonly(&d.t("o"))?;
        sc!(libc::SYS_fchown, fd, OWNER, -1i32)?;
        sc!(nr::SYS_lchown, cp(d.t("osl")), OWNER, OWNER)?;
        sc!(libc::SYS_fchownat, dfd, cs("o"), -1i32, OTHER, 0)?;
        sc!(
            libc::SYS_fchownat,
            dfd,
            cs("osl"),
            0,
            0,
            libc::AT_SYMLINK_NOFOLLOW
        )?;
        sc!(nr::SYS_chown, cp(d.t("osl")), 0, 0)?; // follows: the target
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
    d.expect(
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
    );
}

#[test]
fn root_truncate_and_write_variants() {
    let d = shared_dir!("trunc");
    let t = &d.tree;
    make_file(d.t("w"), &[b'x'; 100]);
    std::os::unix::fs::symlink("w", d.t("wsl")).unwrap();
    let (evs, by) = d.root_run(&[], || {
        let dfd = dirfd(t)?;
        sc!(libc::SYS_truncate, cp(d.t("w")), 50)?;
        sc!(libc::SYS_truncate, cp(d.t("wsl")), 40)?; // follows
        let fd = sc!(nr::SYS_open, cp(d.t("w")), libc::O_WRONLY)?;
        sc!(libc::SYS_ftruncate, fd, 10)?;
        let b = b"more";
        sc!(libc::SYS_write, fd, b.as_ptr(), b.len())?; // write(2) itself: no extra event
        close(fd);
        openat_close(dfd, cs("w"), libc::O_RDWR | libc::O_APPEND, 0)?;
        let fd = openat2(dfd, &cs("w"), libc::O_WRONLY, 0)?;
        close(fd);
        open_close(&d.t("wsl"), libc::O_WRONLY, 0)?; // follows
        open_close(&d.t("w"), libc::O_RDONLY, 0)?; // nothing

        // An existing file opened for writing with O_TRUNC, or by creat(2): "write".
        open_close(&d.t("w"), libc::O_WRONLY | libc::O_TRUNC, 0)?;
        let fd = sc!(nr::SYS_creat, cp(d.t("w")), 0o600)?;
        close(fd);
        close(dfd);
        Ok(())
    });
    let e = |op: &str| by.op(op, d.t("w"));
    d.expect(
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
    );
}

#[test]
fn root_xattr_variants() {
    let d = shared_dir!("xattr");
    let t = &d.tree;
    file_and_link(&d, "x", "xsl");
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
    d.expect(
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
    );
}

#[test]
fn root_xattrat_syscalls() {
    needs_root!();
    if !have_syscall(SYS_SETXATTRAT) {
        eprintln!("root_xattrat_syscalls: setxattrat not in this kernel (< 6.13), not tested");
        return;
    }
    let d = TestDir::shared("xattrat");
    let t = &d.tree;
    file_and_link(&d, "x", "xsl");
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
    d.expect(
        &evs,
        &[
            e("setxattr", "user.e"),
            e("setxattr", "user.f"),
            e("setxattr", "user.g"),
            e("removexattr", "user.e"),
            e("removexattr", "user.f"),
            e("removexattr", "user.g"),
        ],
    );
}

/// Ops on one open file name it as it is named at each op, whatever happened to it and to
/// the names above it in between: tar's create, fchown and fchmod of a file go through one fd,
/// and the kernel sends the walk of the file's names once for them (tracepoint backend; the
/// writer kept on one CPU, where it does that). Here the names change between the ops: the
/// directory and the file renamed, then both gone and a new pair made, whose dentries the
/// kernel may well put where the old ones were.
#[test]
fn fd_ops_name_the_file_as_it_is_named_at_each_op() {
    let d = shared_dir!("fdwalks");
    make_dir(d.t("d"));
    let out = d.outside.join("fdwalks-out");
    let (evs, by) = d.root_run(&[], || {
        pin_to_cpu(0)?;
        let open = |p: &Path, flags: i32| open_fd(p, flags | libc::O_WRONLY);
        let creat = libc::O_CREAT | libc::O_EXCL;
        let fd = open(&d.t("d/f"), creat)?;
        sc!(libc::SYS_fchown, fd, OTHER, OTHER)?;
        sc!(libc::SYS_fchmod, fd, 0o644)?;
        sc!(nr::SYS_rename, cp(d.t("d")), cp(d.t("d2")))?;
        sc!(libc::SYS_fchmod, fd, 0o640)?;
        sc!(nr::SYS_rename, cp(d.t("d2/f")), cp(d.t("d2/g")))?;
        sc!(libc::SYS_fchown, fd, OWNER, -1i32)?;
        sc!(libc::SYS_ftruncate, fd, 0)?;
        close(fd);
        sc!(nr::SYS_unlink, cp(d.t("d2/g")))?;
        sc!(nr::SYS_rmdir, cp(d.t("d2")))?;
        sc!(nr::SYS_mkdir, cp(d.t("e")), 0o755)?;
        let fd = open(&d.t("e/g"), creat)?;
        sc!(libc::SYS_fchmod, fd, 0o604)?;
        close(fd);
        // outside every tree: nothing, and nothing kept of it
        let fd = open(&out, creat)?;
        sc!(libc::SYS_fchmod, fd, 0o600)?;
        close(fd);
        let fd = open(&d.t("e/g"), 0)?;
        sc!(libc::SYS_fchmod, fd, 0o600)?;
        close(fd);
        Ok(())
    });
    d.expect(
        &evs,
        &[
            by.create("d/f", 0o600),
            by.op("chown", "d/f").owner(Some(OTHER), Some(OTHER)),
            by.op("chmod", "d/f").mode(0o644),
            by.rename("d", "d2"),
            by.op("chmod", "d2/f").mode(0o640),
            by.rename("d2/f", "d2/g"),
            by.op("chown", "d2/g").owner(Some(OWNER), None),
            by.op("truncate", "d2/g"),
            by.op("unlink", "d2/g"),
            by.op("rmdir", "d2"),
            by.op("mkdir", "e").mode(0o755),
            by.create("e/g", 0o600),
            by.op("chmod", "e/g").mode(0o604),
            by.op("write", "e/g"),
            by.op("chmod", "e/g").mode(0o600),
        ],
    );
}
