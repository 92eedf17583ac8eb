//! `ownwatch scan` end to end: the real binary on real trees, exact JSON lines and exit codes,
//! `--fix` checked with lstat, and a race that swaps a directory of the tree for a symlink to
//! the outside while `scan --fix` runs. Needs root (to own files as other uids); in CI it must
//! run, elsewhere a non-root run is skipped with a printed reason.
//!
//! One test binary, `scan`, by topic: `report` (what is reported, and how) and `fix` (what
//! --fix changes and never changes). Below: running scan, the exact lines it must print, and
//! a tree with one wrongly owned entry of every kind.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod fix;
mod report;

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
    /// Exit `code` and exactly the stdout lines `want` (sorted, as `lines()` gives them).
    fn expect(&self, code: i32, want: Vec<String>) {
        assert_eq!((self.code, self.lines()), (code, want));
    }

    /// Exit 0 and nothing on stdout.
    fn expect_none(&self) {
        assert_eq!((self.code, self.stdout.len()), (0, 0));
    }

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

#[derive(Clone, Copy)]
enum Fix<'a> {
    No,
    Fixed,
    /// Fixed, and its setuid/setgid bits are gone.
    FixedSetid,
    Failed(&'a str),
}

/// The exact line scan must print for an entry: `entry(path, kind, mode, tree)` is root's
/// (uid and gid 0) and not fixed, unless `.ids()` or `.fix()` say otherwise.
struct Line<'a> {
    path: Vec<u8>,
    kind: &'a str,
    ids: (u32, u32),
    mode: &'a str,
    tree: &'a Path,
    fix: Fix<'a>,
}

fn entry<'a>(path: impl AsRef<Path>, kind: &'a str, mode: &'a str, tree: &'a Path) -> Line<'a> {
    Line {
        path: pb(path.as_ref()),
        kind,
        ids: (0, 0),
        mode,
        tree,
        fix: Fix::No,
    }
}

impl<'a> Line<'a> {
    fn ids(mut self, uid: u32, gid: u32) -> Self {
        self.ids = (uid, gid);
        self
    }

    fn fix(mut self, fix: Fix<'a>) -> Self {
        self.fix = fix;
        self
    }

    fn text(&self) -> String {
        let (kind, (uid, gid), mode) = (self.kind, self.ids, self.mode);
        let mut s = format!(
            "{{{},\"kind\":\"{kind}\",\"uid\":{uid},\"gid\":{gid},\"user\":{},\"group\":{},\
             \"mode\":\"{mode}\",\"mtime\":\"{T_STR}\",{}",
            bytes_field("path", &self.path),
            user(uid),
            group(gid),
            bytes_field("tree", self.tree.as_os_str().as_bytes())
        );
        match self.fix {
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
}

/// The lines of `want`, sorted as `Run::lines` are.
fn lines(want: Vec<Line>) -> Vec<String> {
    sorted(want.iter().map(Line::text).collect())
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
    let at = |p: &Path, kind, mode| entry(p, kind, mode, t).fix(f(None));
    let e = |rel: &str, kind, mode| at(&t.join(rel), kind, mode);
    lines(vec![
        e("root_file", "file", "0600"),
        e("grp_only", "file", "0640").ids(OWNER, OTHER),
        e("usr_only", "file", "4755").ids(OTHER, OWNER).fix(setid),
        e("bad_dir", "dir", "1777"),
        e("bad_dir/nobody", "file", "0644").ids(65534, 65534),
        e("link_out", "symlink", "0777"),
        e("fifo", "fifo", "0600"),
        e("sock", "socket", "0755"),
        e("chardev", "char", "0600").fix(f(Some(DEVICE))),
        at(&m.odd, "file", "0644"),
        at(&m.weird, "file", "0644").ids(0, OWNER),
    ])
}

/// The fix_error of a device node.
const DEVICE: &str = "device node: not given away (its owner could use the device)";
