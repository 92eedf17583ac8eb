//! `ownwatch scan` end to end: the real binary on real trees, exact JSON lines and exit codes,
//! `--fix` checked with lstat, and a race that swaps a directory of the tree for a symlink to
//! the outside while `scan --fix` runs. Needs root (to own files as other uids); in CI it must
//! run, elsewhere a non-root run is skipped with a printed reason.

#[macro_use]
mod common;

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Owner of the files outside the trees that must never change.
const OUTSIDE: u32 = 5555;
/// Every mtime in the trees: 2026-11-25T13:42:15.123456789Z.
const T_SEC: i64 = 1_795_614_135;
const T_NSEC: i64 = 123_456_789;
const T_STR: &str = "2026-11-25T13:42:15.123456789Z";

/// Sets the mtime of `name` in `dirfd` (or of `dirfd` itself when `name` is empty) without
/// following a symlink.
fn set_mtime_at(dirfd: libc::c_int, name: &[u8]) {
    let ts = [
        libc::timespec {
            tv_sec: T_SEC,
            tv_nsec: T_NSEC,
        },
        libc::timespec {
            tv_sec: T_SEC,
            tv_nsec: T_NSEC,
        },
    ];
    let n = cs(name);
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: plain syscall with valid pointers.
    let r = unsafe { libc::utimensat(dirfd, n.as_ptr(), ts.as_ptr(), flags) };
    assert_eq!(r, 0, "utimensat: {}", std::io::Error::last_os_error());
}

/// The same mtime on every entry below `root` and on `root` itself (children first: setting
/// times never changes the parent's mtime, creating entries does).
fn set_all_mtimes(root: &Path) {
    fn walk(p: &Path) {
        if std::fs::symlink_metadata(p).unwrap().is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path());
            }
        }
        set_mtime_at(libc::AT_FDCWD, p.as_os_str().as_bytes());
    }
    walk(root);
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    /// stdout lines, sorted (threads print in any order).
    fn lines(&self) -> Vec<String> {
        let s = std::str::from_utf8(&self.stdout).expect("stdout is UTF-8");
        assert!(s.is_empty() || s.ends_with('\n'), "stdout ends mid-line");
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    }
}

fn scan(args: &[&OsStr]) -> Run {
    scan_as(args, None)
}

/// `ownwatch scan ARGS`, as root or as `uid` (then from a copy any uid can run: the checkout
/// may lie where `uid` cannot go, e.g. under /root).
fn scan_as(args: &[&OsStr], uid: Option<u32>) -> Run {
    let mut c = match uid {
        None => Command::new(bin()),
        Some(u) => {
            let mut c = Command::new(bin_any_user());
            c.uid(u).gid(u);
            c
        }
    };
    c.arg("scan").args(args);
    let o = c.output().expect("running ownwatch");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    Run {
        code: o.status.code().expect("exited, not killed"),
        stdout: o.stdout,
        stderr,
    }
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn json_name(n: Option<String>) -> String {
    n.map_or("null".into(), |n| serde_json::to_string(&n).unwrap())
}

fn user(uid: u32) -> String {
    json_name(
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .unwrap()
            .map(|u| u.name),
    )
}

fn group(gid: u32) -> String {
    json_name(
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .unwrap()
            .map(|g| g.name),
    )
}

/// `"key":"…"` plus `"key_b64"` for non-UTF-8 bytes.
fn bytes_field(key: &str, v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) => format!("\"{key}\":{}", serde_json::to_string(s).unwrap()),
        Err(_) => format!(
            "\"{key}\":{},\"{key}_b64\":\"{}\"",
            serde_json::to_string(&String::from_utf8_lossy(v)).unwrap(),
            base64(v)
        ),
    }
}

enum Fix<'a> {
    No,
    Fixed,
    /// Fixed, and its setuid/setgid bits are gone.
    FixedSetid,
    Failed(&'a str),
}

/// The exact line scan must print for an entry.
#[allow(clippy::too_many_arguments)]
fn line(path: &[u8], kind: &str, uid: u32, gid: u32, mode: &str, tree: &Path, fix: Fix) -> String {
    let mut s = format!(
        "{{{},\"kind\":\"{kind}\",\"uid\":{uid},\"gid\":{gid},\"user\":{},\"group\":{},\
         \"mode\":\"{mode}\",\"mtime\":\"{T_STR}\",{}",
        bytes_field("path", path),
        user(uid),
        group(gid),
        bytes_field("tree", tree.as_os_str().as_bytes())
    );
    match fix {
        Fix::No => {}
        Fix::Fixed => s.push_str(",\"fixed\":true"),
        Fix::FixedSetid => s.push_str(",\"fixed\":true,\"setid_cleared\":true"),
        Fix::Failed(e) => s.push_str(&format!(
            ",\"fixed\":false,\"fix_error\":{}",
            serde_json::to_string(e).unwrap()
        )),
    }
    s.push('}');
    s
}

fn pb(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A tree owned by OWNER:OWNER with one wrongly owned entry of every kind, next to correctly
/// owned ones, and an outside directory its symlinks point into.
struct Mixed {
    _tmp: TempDir,
    tree: PathBuf,
    outside: PathBuf,
    odd: PathBuf,
    weird: PathBuf,
}

fn mixed_tree() -> Mixed {
    let tmp = TempDir::new("mixed");
    let tree = tmp.join("tree");
    let outside = tmp.join("outside");
    for d in [
        "tree",
        "tree/ok_dir",
        "tree/bad_dir",
        "outside",
        "outside/sub",
    ] {
        std::fs::create_dir(tmp.join(d)).unwrap();
    }
    for f in [
        "tree/ok_file",
        "tree/ok_dir/inner",
        "tree/root_file",
        "tree/grp_only",
        "tree/usr_only",
        "tree/bad_dir/ok",
        "tree/bad_dir/nobody",
        "outside/target",
        "outside/sub/file",
    ] {
        std::fs::write(tmp.join(f), b"x").unwrap();
    }
    symlink(&outside, tree.join("link_out")).unwrap();
    symlink(outside.join("target"), tree.join("ok_link")).unwrap();
    nix::unistd::mkfifo(
        &tree.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(tree.join("sock")).unwrap());
    // SAFETY: plain mknod of /dev/null's numbers in our temp tree.
    let r = unsafe {
        libc::mknod(
            cp(tree.join("chardev")).as_ptr(),
            libc::S_IFCHR | 0o600,
            libc::makedev(1, 3),
        )
    };
    assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
    let odd = tree.join(OsStr::from_bytes(b"odd-\xff\xfe"));
    std::fs::write(&odd, b"x").unwrap();
    let weird = tree.join("we\"ird\nname\\");
    std::fs::write(&weird, b"x").unwrap();

    // Everything belongs to the owner, then the offenders are made.
    for e in walk_all(&tree) {
        chown(&e, OWNER, OWNER);
    }
    for (p, u, g) in [
        ("root_file", 0, 0),
        ("grp_only", OWNER, OTHER),
        ("usr_only", OTHER, OWNER),
        ("bad_dir", 0, 0),
        ("bad_dir/nobody", 65534, 65534),
        ("link_out", 0, 0),
        ("fifo", 0, 0),
        ("sock", 0, 0),
        ("chardev", 0, 0),
    ] {
        chown(tree.join(p), u, g);
    }
    chown(&odd, 0, 0);
    chown(&weird, 0, OWNER);
    for p in [
        &outside,
        &outside.join("target"),
        &outside.join("sub"),
        &outside.join("sub/file"),
    ] {
        chown(p, OUTSIDE, OUTSIDE);
    }
    for (p, m) in [
        ("", 0o755),
        ("ok_dir", 0o755),
        ("ok_file", 0o644),
        ("ok_dir/inner", 0o644),
        ("root_file", 0o600),
        ("grp_only", 0o640),
        ("usr_only", 0o4755), // after chown, which clears setuid
        ("bad_dir", 0o1777),
        ("bad_dir/ok", 0o644),
        ("bad_dir/nobody", 0o644),
        ("sock", 0o755),
    ] {
        chmod(tree.join(p), m);
    }
    chmod(&odd, 0o644);
    chmod(&weird, 0o644);
    set_all_mtimes(&tree);
    Mixed {
        _tmp: tmp,
        tree,
        outside,
        odd,
        weird,
    }
}

/// Every path below `root` and `root`, without following symlinks.
fn walk_all(root: &Path) -> Vec<PathBuf> {
    let mut v = vec![root.to_path_buf()];
    let mut i = 0;
    while i < v.len() {
        let p = v[i].clone();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                v.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    v
}

/// What scan must report on the mixed tree, with the given fix results.
fn mixed_expected(m: &Mixed, fixing: bool) -> Vec<String> {
    let t = &m.tree;
    let f = |failed: Option<&'static str>| match (fixing, failed) {
        (false, _) => Fix::No,
        (true, None) => Fix::Fixed,
        (true, Some(e)) => Fix::Failed(e),
    };
    let setid = if fixing { Fix::FixedSetid } else { Fix::No };
    sorted(vec![
        line(&pb(&t.join("root_file")), "file", 0, 0, "0600", t, f(None)),
        line(
            &pb(&t.join("grp_only")),
            "file",
            OWNER,
            OTHER,
            "0640",
            t,
            f(None),
        ),
        line(
            &pb(&t.join("usr_only")),
            "file",
            OTHER,
            OWNER,
            "4755",
            t,
            setid,
        ),
        line(&pb(&t.join("bad_dir")), "dir", 0, 0, "1777", t, f(None)),
        line(
            &pb(&t.join("bad_dir/nobody")),
            "file",
            65534,
            65534,
            "0644",
            t,
            f(None),
        ),
        line(
            &pb(&t.join("link_out")),
            "symlink",
            0,
            0,
            "0777",
            t,
            f(None),
        ),
        line(&pb(&t.join("fifo")), "fifo", 0, 0, "0600", t, f(None)),
        line(&pb(&t.join("sock")), "socket", 0, 0, "0755", t, f(None)),
        line(
            &pb(&t.join("chardev")),
            "char",
            0,
            0,
            "0600",
            t,
            f(Some(
                "device node: not given away (its owner could use the device)",
            )),
        ),
        line(&pb(&m.odd), "file", 0, 0, "0644", t, f(None)),
        line(&pb(&m.weird), "file", 0, OWNER, "0644", t, f(None)),
    ])
}

#[test]
fn reports_exactly_the_wrongly_owned_entries() {
    needs_root!();
    let m = mixed_tree();
    let r = scan(&[m.tree.as_os_str()]);
    assert_eq!(r.stderr, "");
    assert_eq!(r.lines(), mixed_expected(&m, false));
    assert_eq!(r.code, 1);
    // Names are exact: the odd one is lossless in path_b64, the weird one escaped on one line.
    assert!(r
        .lines()
        .iter()
        .any(|l| l.contains("\"path_b64\":\"") && l.contains("odd-\u{fffd}\u{fffd}")));
    // Nothing was changed by a plain scan, and the symlinks' targets were never entered.
    assert_eq!(owner_of(m.tree.join("root_file")), (0, 0));
    assert!(!String::from_utf8_lossy(&r.stdout).contains(m.outside.to_str().unwrap()));

    // The same tree given through a symlink to it: the tree is the real path.
    let via = m.tree.with_file_name("via-link");
    symlink(&m.tree, &via).unwrap();
    let r2 = scan(&[via.as_os_str()]);
    assert_eq!(r2.code, 1);
    assert_eq!(r2.lines(), r.lines());
}

#[test]
fn clean_tree_prints_nothing_and_exits_0() {
    needs_root!();
    let tmp = TempDir::new("clean");
    let tree = tmp.join("tree");
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    std::fs::write(tree.join("a/b/c/f"), b"x").unwrap();
    symlink("/etc/passwd", tree.join("a/ln")).unwrap();
    nix::unistd::mkfifo(
        &tree.join("a/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    for e in walk_all(&tree) {
        chown(&e, OWNER, OTHER);
    }
    let r = scan(&[tree.as_os_str()]);
    assert_eq!(
        (r.code, r.stdout.as_slice(), r.stderr.as_str()),
        (0, &b""[..], "")
    );
    // Explicitly the same owner, by number: still clean.
    let r = scan(&[os("--owner"), os("4242:4343"), tree.as_os_str()]);
    assert_eq!(
        (r.code, r.stdout.as_slice(), r.stderr.as_str()),
        (0, &b""[..], "")
    );
    // The same tree twice is scanned once.
    let r = scan(&[tree.as_os_str(), tree.join("a/..").as_os_str()]);
    assert_eq!((r.code, r.stdout.len()), (0, 0));
}

#[test]
fn owner_option_and_its_defaults() {
    needs_root!();
    let tmp = TempDir::new("owner");
    let t = tmp.join("tree");
    std::fs::create_dir(&t).unwrap();
    std::fs::write(t.join("a"), b"x").unwrap();
    std::fs::write(t.join("b"), b"x").unwrap();
    chown(&t, OWNER, OTHER);
    chown(t.join("a"), OWNER, OTHER);
    chown(t.join("b"), OWNER, OWNER);
    chmod(&t, 0o750);
    chmod(t.join("a"), 0o644);
    chmod(t.join("b"), 0o644);
    set_all_mtimes(&t);
    let tp = pb(&t);
    let a = || line(&pb(&t.join("a")), "file", OWNER, OTHER, "0644", &t, Fix::No);
    let b = || line(&pb(&t.join("b")), "file", OWNER, OWNER, "0644", &t, Fix::No);
    let root = || line(&tp, "dir", OWNER, OTHER, "0750", &t, Fix::No);

    // Default: the owner of DIR, 4242:4343.
    let r = scan(&[t.as_os_str()]);
    assert_eq!((r.code, r.lines()), (1, vec![b()]));
    // A uid without a passwd entry and no group: DIR's group.
    let r = scan(&[os("--owner"), os("4242"), t.as_os_str()]);
    assert_eq!((r.code, r.lines()), (1, vec![b()]));
    // Both given: DIR itself is reported too.
    let r = scan(&[os("--owner"), os("4242:4242"), t.as_os_str()]);
    assert_eq!((r.code, r.lines()), (1, sorted(vec![root(), a()])));
    // A named user without a group: its primary group (nobody -> 65534).
    let r = scan(&[os("--owner"), os("nobody"), t.as_os_str()]);
    assert_eq!((r.code, r.lines()), (1, sorted(vec![root(), a(), b()])));
    assert_eq!(r.stderr, "");

    for (owner, msg) in [
        (
            "no-such-user-ownwatch",
            "ownwatch: unknown user \"no-such-user-ownwatch\"\n",
        ),
        (
            "4242:no-such-group-ownwatch",
            "ownwatch: unknown group \"no-such-group-ownwatch\"\n",
        ),
        ("", "ownwatch: empty user name\n"),
    ] {
        let r = scan(&[os("--owner"), os(owner), t.as_os_str()]);
        assert_eq!(
            (r.code, r.stdout.len(), r.stderr.as_str()),
            (2, 0, msg),
            "{owner:?}"
        );
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let tmp = TempDir::new("bad");
    let file = tmp.join("file");
    std::fs::write(&file, b"x").unwrap();
    let missing = tmp.join("missing");
    let cases: Vec<(Vec<&OsStr>, String)> = vec![
        (
            vec![missing.as_os_str()],
            format!("ownwatch: {}: no such directory\n", missing.display()),
        ),
        (
            vec![file.as_os_str()],
            format!("ownwatch: {}: not a directory\n", file.display()),
        ),
        // A good tree first does not start the output: everything is checked up front.
        (
            vec![tmp.path.as_os_str(), missing.as_os_str()],
            format!("ownwatch: {}: no such directory\n", missing.display()),
        ),
    ];
    for (args, want) in cases {
        let r = scan(&args);
        assert_eq!(
            (r.code, r.stdout.len(), r.stderr.as_str()),
            (2, 0, want.as_str())
        );
    }
    for args in [vec![], vec![os("--frobnicate"), tmp.path.as_os_str()]] {
        let r = scan(&args);
        assert_eq!((r.code, r.stdout.len()), (2, 0), "{args:?}");
        assert!(r.stderr.starts_with("ownwatch: "), "{:?}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{:?}", r.stderr);
    }
}

#[test]
fn fix_gives_everything_back_and_never_follows_symlinks() {
    needs_root!();
    let m = mixed_tree();
    // A hard link to a file outside the tree must not be given away.
    std::fs::hard_link(m.outside.join("sub/file"), m.tree.join("hardlink")).unwrap();
    chmod(m.outside.join("sub/file"), 0o644);
    set_mtime_at(
        libc::AT_FDCWD,
        m.outside.join("sub/file").as_os_str().as_bytes(),
    );
    set_mtime_at(libc::AT_FDCWD, m.tree.as_os_str().as_bytes());
    let hl_err = "2 hard links: not changed (another name may lie outside the tree)";
    let mut want = mixed_expected(&m, true);
    want.push(line(
        &pb(&m.tree.join("hardlink")),
        "file",
        OUTSIDE,
        OUTSIDE,
        "0644",
        &m.tree,
        Fix::Failed(hl_err),
    ));
    let want = sorted(want);

    let r = scan(&[os("--fix"), m.tree.as_os_str()]);
    assert_eq!(r.stderr, "");
    assert_eq!(r.lines(), want);
    assert_eq!(r.code, 1);

    // lstat says: everything fixable belongs to the owner now, symlinks themselves included.
    for p in [
        "root_file",
        "grp_only",
        "usr_only",
        "bad_dir",
        "bad_dir/nobody",
        "link_out",
        "fifo",
        "sock",
    ] {
        assert_eq!(owner_of(m.tree.join(p)), (OWNER, OWNER), "{p}");
    }
    assert_eq!(owner_of(&m.odd), (OWNER, OWNER));
    assert_eq!(owner_of(&m.weird), (OWNER, OWNER));
    assert_eq!(owner_of(m.tree.join("chardev")), (0, 0));
    // Outside: untouched, whether reached by symlink or hard link.
    for p in ["", "target", "sub", "sub/file"] {
        assert_eq!(
            owner_of(m.outside.join(p)),
            (OUTSIDE, OUTSIDE),
            "outside/{p}"
        );
    }
    // Modes are left alone, except what the kernel itself drops on chown (setuid).
    let mode = |p: &str| mode_of(m.tree.join(p));
    assert_eq!(mode("bad_dir"), 0o1777);
    assert_eq!(mode("root_file"), 0o600);
    assert_eq!(mode("usr_only"), 0o755);

    // Second run: only what could not be fixed remains, still refused.
    let r = scan(&[os("--fix"), m.tree.as_os_str()]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.lines(),
        sorted(vec![
            line(
                &pb(&m.tree.join("chardev")),
                "char",
                0,
                0,
                "0600",
                &m.tree,
                Fix::Failed("device node: not given away (its owner could use the device)"),
            ),
            line(
                &pb(&m.tree.join("hardlink")),
                "file",
                OUTSIDE,
                OUTSIDE,
                "0644",
                &m.tree,
                Fix::Failed(hl_err),
            ),
        ])
    );
    // Without them the tree is clean.
    std::fs::remove_file(m.tree.join("chardev")).unwrap();
    std::fs::remove_file(m.tree.join("hardlink")).unwrap();
    let r = scan(&[os("--fix"), m.tree.as_os_str()]);
    assert_eq!((r.code, r.stdout.len(), r.stderr.as_str()), (0, 0, ""));
}

#[test]
fn fix_gives_back_the_root_itself() {
    needs_root!();
    let tmp = TempDir::new("fixroot");
    let t = tmp.join("tree");
    std::fs::create_dir(&t).unwrap();
    chmod(&t, 0o2775);
    set_all_mtimes(&t);
    let r = scan(&[os("--owner"), os("4242:4343"), os("--fix"), t.as_os_str()]);
    assert_eq!(
        (r.code, r.lines()),
        (1, vec![line(&pb(&t), "dir", 0, 0, "2775", &t, Fix::Fixed)])
    );
    assert_eq!(owner_of(&t), (OWNER, OTHER));
    let r = scan(&[t.as_os_str()]);
    assert_eq!((r.code, r.stdout.len()), (0, 0));
}

/// mkdirat/openat relative to fds: the test itself cannot use paths this long either.
fn mkdir_open(dir: libc::c_int, name: &[u8]) -> OwnedFd {
    let n = cs(name);
    // SAFETY: plain syscalls with valid pointers.
    unsafe {
        assert_eq!(libc::mkdirat(dir, n.as_ptr(), 0o755), 0);
        let fd = libc::openat(dir, n.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        assert!(fd >= 0);
        libc::fchownat(fd, c"".as_ptr(), OWNER, OWNER, libc::AT_EMPTY_PATH);
        OwnedFd::from_raw_fd(fd)
    }
}

#[test]
fn deep_tree_beyond_path_max() {
    needs_root!();
    const LEVELS: usize = 200;
    let tmp = TempDir::new("deep");
    let t = tmp.join("tree");
    std::fs::create_dir(&t).unwrap();
    chown(&t, OWNER, OWNER);
    let root = std::fs::File::open(&t).unwrap();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut path = pb(&t);
    for i in 0..LEVELS {
        let name = format!("{i:03}-{}", "d".repeat(196)).into_bytes();
        assert_eq!(name.len(), 200);
        let parent = fds.last().map_or(root.as_raw_fd(), |f| f.as_raw_fd());
        fds.push(mkdir_open(parent, &name));
        path.push(b'/');
        path.extend_from_slice(&name);
    }
    let bottom = fds.last().unwrap().as_raw_fd();
    // SAFETY: plain syscalls.
    unsafe {
        let fd = libc::openat(
            bottom,
            c"bottom".as_ptr(),
            libc::O_CREAT | libc::O_WRONLY,
            0o600,
        );
        assert!(fd >= 0);
        libc::close(fd);
    }
    set_mtime_at(bottom, b"bottom");
    path.extend_from_slice(b"/bottom");
    assert!(path.len() > 40_000);

    let want = line(&path, "file", 0, 0, "0600", &t, Fix::No);
    let r = scan(&[t.as_os_str()]);
    assert_eq!((r.code, r.lines(), r.stderr.as_str()), (1, vec![want], ""));

    let want = line(&path, "file", 0, 0, "0600", &t, Fix::Fixed);
    let r = scan(&[os("--fix"), t.as_os_str()]);
    assert_eq!((r.code, r.lines(), r.stderr.as_str()), (1, vec![want], ""));
    assert_eq!(owner_at(bottom, b"bottom"), (OWNER, OWNER));
    let r = scan(&[t.as_os_str()]);
    assert_eq!((r.code, r.stdout.len()), (0, 0));
}

#[test]
fn stays_on_the_filesystem_unless_cross_mounts() {
    needs_root!();
    let tmp = TempDir::new("mounts");
    let t = tmp.join("tree");
    let mnt = t.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    chown(&t, OWNER, OWNER);
    chown(&mnt, OWNER, OWNER);
    if let Err(e) = tmp.mount_tmpfs(&mnt, &format!("mode=0755,uid={OWNER},gid={OWNER}")) {
        if in_ci() {
            panic!("mount tmpfs: {e}");
        }
        eprintln!("SKIPPED stays_on_the_filesystem_unless_cross_mounts: cannot mount: {e}");
        return;
    }
    std::fs::write(mnt.join("inner"), b"x").unwrap(); // owned by root
    chmod(mnt.join("inner"), 0o644);
    set_mtime_at(libc::AT_FDCWD, mnt.join("inner").as_os_str().as_bytes());

    let r = scan(&[t.as_os_str()]);
    assert_eq!((r.code, r.stdout.len(), r.stderr.as_str()), (0, 0, ""));
    let r = scan(&[os("--cross-mounts"), os("--xdev"), t.as_os_str()]);
    assert_eq!((r.code, r.stdout.len()), (0, 0), "the last of the two wins");
    let r = scan(&[os("--cross-mounts"), t.as_os_str()]);
    let want = line(&pb(&mnt.join("inner")), "file", 0, 0, "0644", &t, Fix::No);
    assert_eq!((r.code, r.lines()), (1, vec![want]));
}

#[test]
fn unreadable_directories_are_reported_and_the_scan_goes_on() {
    needs_root!();
    let tmp = TempDir::new("unreadable");
    let t = tmp.join("tree");
    std::fs::create_dir_all(t.join("locked/sub")).unwrap();
    std::fs::create_dir_all(t.join("open")).unwrap();
    std::fs::write(t.join("open/rootfile"), b"x").unwrap();
    std::fs::write(t.join("locked/sub/hidden"), b"x").unwrap();
    for e in walk_all(&t) {
        chown(&e, OWNER, OWNER);
    }
    chown(t.join("open/rootfile"), 0, 0);
    chown(t.join("locked/sub/hidden"), 0, 0);
    chmod(t.join("open/rootfile"), 0o644);
    chmod(t.join("locked"), 0o311); // searchable, not readable
    set_all_mtimes(&t);

    // As the owner itself, which has no way past mode 0311.
    let r = scan_as(&[t.as_os_str()], Some(OWNER));
    assert_eq!(
        r.stderr,
        format!(
            "ownwatch: cannot read {}: Permission denied\n\
             ownwatch: 1 entry could not be read (see above); the scan is incomplete\n",
            t.join("locked").display()
        )
    );
    let want = line(
        &pb(&t.join("open/rootfile")),
        "file",
        0,
        0,
        "0644",
        &t,
        Fix::No,
    );
    assert_eq!((r.code, r.lines()), (1, vec![want]));

    // The root itself unreadable: nothing can be scanned, exit 2.
    chmod(&t, 0o311);
    let r = scan_as(&[t.as_os_str()], Some(OWNER));
    assert_eq!(
        (r.code, r.stdout.len(), r.stderr),
        (
            2,
            0,
            format!(
                "ownwatch: {}: cannot read: Permission denied\n",
                t.display()
            )
        )
    );
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    needs_root!();
    let tmp = TempDir::new("pipe");
    let t = tmp.join("tree");
    std::fs::create_dir(&t).unwrap();
    for i in 0..20_000 {
        std::fs::write(t.join(format!("f{i}")), b"").unwrap();
    }
    chown(&t, OWNER, OWNER);
    // `scan … | head -1`: the reader leaves after one line (20000 lines do not fit a pipe).
    let mut child = Command::new(bin())
        .arg("scan")
        .arg(&t)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("{\"path\":"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(1));
}

/// `scan --fix` many times while a thread keeps swapping `tree/sw` (a directory) with
/// `tree/swlink` (a symlink to a directory outside whose files belong to OUTSIDE): whatever
/// the interleaving, nothing outside may change owner and no outside path may be reported.
#[test]
fn race_scan_fix_with_symlink_swap_never_escapes() {
    needs_root!();
    let tmp = TempDir::new("race");
    let t = tmp.join("tree");
    let outside = tmp.join("outside-xxx");
    std::fs::create_dir_all(t.join("sw/sub")).unwrap();
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    for f in ["sw/f1", "sw/f2", "sw/sub/f3"] {
        std::fs::write(t.join(f), b"x").unwrap();
    }
    for f in ["f1", "f2", "sub/f3"] {
        std::fs::write(outside.join(f), b"x").unwrap();
    }
    for p in walk_all(&outside) {
        chown(&p, OUTSIDE, OUTSIDE);
    }
    symlink(&outside, t.join("swlink")).unwrap();

    let swapper = Swapper::start(&t.join("sw"), &t.join("swlink"));
    let outside_s = outside.to_str().unwrap().to_string();
    let mut fixed_inside = 0;
    for i in 0..300 {
        // Alternate owners so each run has everything to fix.
        let who = format!("{}:{}", 6000 + i % 2, 6000 + i % 2);
        let r = scan(&[os("--fix"), os("--owner"), os(&who), t.as_os_str()]);
        assert!(r.code == 1, "run {i}: {} {}", r.code, r.stderr);
        for l in r.lines() {
            assert!(!l.contains(&outside_s), "run {i} reported outside: {l}");
            if (l.contains("/sw/") || l.contains("/swlink/")) && l.contains("\"fixed\":true") {
                fixed_inside += 1;
            }
        }
        for p in walk_all(&outside) {
            assert_eq!(owner_of(&p), (OUTSIDE, OUTSIDE), "run {i}: {}", p.display());
        }
    }
    let swaps = swapper.finish();
    assert!(swaps > 1000, "only {swaps} swaps: no race was tested");
    assert!(fixed_inside > 0, "the swapped directory was never fixed");
}

/// Issue 10 item 2: a directory and a single file bind-mounted into the tree from outside, on
/// the same filesystem (same st_dev). They are mount points: reported, not entered (unless
/// --cross-mounts), and `--fix` never changes them or anything below them.
#[test]
fn fix_never_crosses_a_bind_mount_of_the_same_filesystem() {
    needs_root!();
    let tmp = TempDir::new("bind");
    let t = tmp.join("tree");
    let src = tmp.join("bindsrc");
    let single = tmp.join("single");
    for d in [&t, &t.join("bm"), &src, &src.join("sub")] {
        std::fs::create_dir(d).unwrap();
    }
    for f in [
        t.join("bmf"),
        t.join("plain"),
        src.join("secret"),
        src.join("sub/deep"),
        single.clone(),
    ] {
        std::fs::write(&f, b"x").unwrap();
    }
    for p in [&t, &t.join("bm"), &t.join("bmf")] {
        chown(p, OWNER, OWNER);
    }
    chmod(&t, 0o755);
    chmod(&src, 0o755);
    chmod(src.join("sub"), 0o755);
    for f in [
        t.join("plain"),
        src.join("secret"),
        src.join("sub/deep"),
        single.clone(),
    ] {
        chmod(&f, 0o644);
    }
    tmp.bind_mount(&src, &t.join("bm"));
    tmp.bind_mount(&single, &t.join("bmf"));
    let dev = std::fs::metadata(&t).unwrap().dev();
    assert_eq!(std::fs::metadata(t.join("bm")).unwrap().dev(), dev);
    set_all_mtimes(&t);
    set_all_mtimes(&single);

    let l = |p: &str, kind: &str, mode: &str, fix: Fix| {
        line(&pb(&t.join(p)), kind, 0, 0, mode, &t, fix)
    };
    // Reported as the entries they show, not entered.
    let r = scan(&[t.as_os_str()]);
    assert_eq!(r.stderr, "");
    assert_eq!(
        (r.code, r.lines()),
        (
            1,
            sorted(vec![
                l("bm", "dir", "0755", Fix::No),
                l("bmf", "file", "0644", Fix::No),
                l("plain", "file", "0644", Fix::No),
            ])
        )
    );
    // --cross-mounts: entered and reported.
    let all = |fix: &dyn Fn() -> Fix<'static>| {
        sorted(vec![
            l("bm", "dir", "0755", fix()),
            l("bm/secret", "file", "0644", fix()),
            l("bm/sub", "dir", "0755", fix()),
            l("bm/sub/deep", "file", "0644", fix()),
            l("bmf", "file", "0644", fix()),
        ])
    };
    let r = scan(&[os("--cross-mounts"), t.as_os_str()]);
    let mut want = all(&|| Fix::No);
    want.push(l("plain", "file", "0644", Fix::No));
    assert_eq!((r.code, r.lines()), (1, sorted(want)));

    // --fix: the mount points are not changed; the tree's own file is.
    let r = scan(&[os("--fix"), t.as_os_str()]);
    assert_eq!(r.stderr, "");
    assert_eq!(
        (r.code, r.lines()),
        (
            1,
            sorted(vec![
                l("bm", "dir", "0755", Fix::Failed(BEYOND_MOUNT)),
                l("bmf", "file", "0644", Fix::Failed(BEYOND_MOUNT)),
                l("plain", "file", "0644", Fix::Fixed),
            ])
        )
    );
    // --fix --cross-mounts: everything beyond the mount points is reported, nothing fixed.
    let r = scan(&[os("--fix"), os("--cross-mounts"), t.as_os_str()]);
    assert_eq!((r.code, r.lines()), (1, all(&|| Fix::Failed(BEYOND_MOUNT))));
    for p in [
        src.clone(),
        src.join("secret"),
        src.join("sub"),
        src.join("sub/deep"),
        single.clone(),
    ] {
        assert_eq!(owner_of(&p), (0, 0), "{}", p.display());
    }
    assert_eq!(owner_of(t.join("plain")), (OWNER, OWNER));
}

/// A wrongly owned file loses setuid and setgid when given back, also a setgid bit the kernel
/// keeps on a chown (no group execute), and the line says so; a directory keeps its setgid.
#[test]
fn fix_drops_setid_bits_of_files_not_of_directories() {
    needs_root!();
    let tmp = TempDir::new("setid");
    let t = tmp.join("tree");
    std::fs::create_dir_all(t.join("sgdir")).unwrap();
    for f in ["suid", "sgid_noexec", "plain"] {
        std::fs::write(t.join(f), b"x").unwrap();
    }
    chown(&t, OWNER, OWNER);
    chmod(&t, 0o755);
    chmod(t.join("suid"), 0o6755);
    chmod(t.join("sgid_noexec"), 0o2644);
    chmod(t.join("plain"), 0o644);
    chmod(t.join("sgdir"), 0o2775);
    set_all_mtimes(&t);
    let r = scan(&[os("--fix"), t.as_os_str()]);
    assert_eq!(r.stderr, "");
    let l = |p: &str, kind: &str, mode: &str, fix: Fix| {
        line(&pb(&t.join(p)), kind, 0, 0, mode, &t, fix)
    };
    assert_eq!(
        (r.code, r.lines()),
        (
            1,
            sorted(vec![
                l("suid", "file", "6755", Fix::FixedSetid),
                l("sgid_noexec", "file", "2644", Fix::FixedSetid),
                l("plain", "file", "0644", Fix::Fixed),
                l("sgdir", "dir", "2775", Fix::Fixed),
            ])
        )
    );
    let mode = |p: &str| mode_of(t.join(p));
    assert_eq!(
        [
            mode("suid"),
            mode("sgid_noexec"),
            mode("plain"),
            mode("sgdir")
        ],
        [0o755, 0o644, 0o644, 0o2775]
    );
    for p in ["suid", "sgid_noexec", "plain", "sgdir"] {
        assert_eq!(owner_of(t.join(p)), (OWNER, OWNER), "{p}");
    }
}

/// Issue 10 item 6: `scan /a /a/b` with different owners. Entries below /a/b are judged (and
/// fixed) by /a/b's owner only, whatever order the trees are given in.
#[test]
fn nested_trees_the_innermost_owner_decides() {
    needs_root!();
    let tmp = TempDir::new("nested");
    let a = tmp.join("a");
    let b = a.join("b");
    std::fs::create_dir_all(b.join("sub")).unwrap();
    for f in [
        a.join("a_own"),
        a.join("a_root"),
        b.join("b_own"),
        b.join("sub/b_root"),
    ] {
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o644);
    }
    for p in [a.clone(), a.join("a_own")] {
        chown(&p, OWNER, OWNER);
    }
    for p in [b.clone(), b.join("sub"), b.join("b_own")] {
        chown(&p, OTHER, OTHER);
    }
    chmod(&a, 0o755);
    chmod(&b, 0o755);
    chmod(b.join("sub"), 0o755);
    set_all_mtimes(&a);
    let want = |fix: &dyn Fn() -> Fix<'static>| {
        sorted(vec![
            line(&pb(&a.join("a_root")), "file", 0, 0, "0644", &a, fix()),
            line(&pb(&b.join("sub/b_root")), "file", 0, 0, "0644", &b, fix()),
        ])
    };
    for order in [[&a, &b], [&b, &a]] {
        let r = scan(&[order[0].as_os_str(), order[1].as_os_str()]);
        assert_eq!(r.stderr, "");
        assert_eq!((r.code, r.lines()), (1, want(&|| Fix::No)), "{order:?}");
    }
    let r = scan(&[os("--fix"), a.as_os_str(), b.as_os_str()]);
    assert_eq!((r.code, r.lines()), (1, want(&|| Fix::Fixed)));
    assert_eq!(owner_of(a.join("a_root")), (OWNER, OWNER));
    for p in ["", "sub", "b_own", "sub/b_root"] {
        assert_eq!(owner_of(b.join(p)), (OTHER, OTHER), "b/{p}");
    }
    let r = scan(&[a.as_os_str(), b.as_os_str()]);
    assert_eq!((r.code, r.stdout.len()), (0, 0));
    // Alone, /a still covers /a/b with its own owner: b is one of its entries then.
    let r = scan(&[a.as_os_str()]);
    assert_eq!(r.code, 1);
    assert_eq!(r.lines().len(), 4, "{:?}", r.lines());
}
