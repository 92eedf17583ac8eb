//! Turning what the kernel sent into absolute host paths.
//!
//! A kernel walk gives names within one superblock (plus mount crossings); the host's mount
//! table maps them to the path the host sees, whatever mount, namespace or chroot the writer
//! used. A string from the caller (tracepoint backend) is resolved here, relative to the
//! directory the kernel walked, the way the kernel resolved it: symlinks followed, `..`
//! handled, absolute symlinks kept inside the caller's root.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::watch::decode::Walk;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Kernel encoding (major << 20 | minor), as in `super_block.s_dev`.
    pub dev: u32,
    pub root: Vec<u8>,
    pub point: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct MountTable {
    pub mounts: Vec<Mount>,
}

pub fn kernel_dev(major: u64, minor: u64) -> u32 {
    ((major << 20) | minor) as u32
}

/// `st_dev` (user-space encoding) -> the kernel's `s_dev`.
pub fn kernel_dev_of(st_dev: u64) -> u32 {
    kernel_dev(libc::major(st_dev) as u64, libc::minor(st_dev) as u64)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 4 <= field.len() {
            let oct = &field[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

impl MountTable {
    pub fn parse(text: &[u8]) -> Self {
        let mut mounts = Vec::new();
        for line in text.split(|&c| c == b'\n') {
            let f: Vec<&[u8]> = line.split(|&c| c == b' ').collect();
            if f.len() < 5 {
                continue;
            }
            let Some((maj, min)) = std::str::from_utf8(f[2])
                .ok()
                .and_then(|s| s.split_once(':'))
            else {
                continue;
            };
            let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
                continue;
            };
            mounts.push(Mount {
                dev: kernel_dev(maj, min),
                root: unescape(f[3]),
                point: unescape(f[4]),
            });
        }
        MountTable { mounts }
    }

    pub fn load() -> Self {
        Self::parse(&fs::read("/proc/self/mountinfo").unwrap_or_default())
    }

    /// The host path of `path` (absolute within the superblock `dev`). A superblock can be
    /// mounted several times (bind mounts): prefer the view under a watched root, then the
    /// fullest view (shortest mount root), then the first mounted.
    pub fn map(&self, dev: u32, path: &[u8], roots: &[Vec<u8>]) -> Option<Vec<u8>> {
        let mut best: Option<(bool, usize, Vec<u8>)> = None;
        for m in self
            .mounts
            .iter()
            .filter(|m| m.dev == dev && is_under(path, &m.root))
        {
            let rest = if m.root == b"/" {
                path
            } else {
                &path[m.root.len()..]
            };
            let p = join(&m.point, rest);
            let watched = roots.iter().any(|r| is_under(&p, r));
            let better = match &best {
                None => true,
                Some((bw, bl, _)) => (watched && !bw) || (watched == *bw && m.root.len() < *bl),
            };
            if better {
                best = Some((watched, m.root.len(), p));
            }
        }
        best.map(|(_, _, p)| p)
    }
}

impl MountTable {
    /// `path` (in our mount namespace, through whatever mount) as seen through a watched
    /// root when one holds the same directory: a bind mount of a tree, or of a directory in
    /// it, names the tree's files under another path. None when no watched view exists.
    pub fn watched_view(&self, path: &[u8], roots: &[Vec<u8>]) -> Option<Vec<u8>> {
        // The mount `path` lies in: the deepest mount point above it, the last mounted on top.
        let m = self
            .mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| is_under(path, &m.point))
            .max_by_key(|(i, m)| (m.point.len(), *i))
            .map(|(_, m)| m)?;
        let rest = if m.point == b"/" {
            path
        } else {
            &path[m.point.len()..]
        };
        let in_fs = join(&m.root, rest);
        let p = self.map(m.dev, &in_fs, roots)?;
        roots.iter().any(|r| is_under(&p, r)).then_some(p)
    }
}

/// For the kernel's `devs` map: 2 for superblocks with a mount strictly inside a watched root
/// (a walk within them cannot see the tree above), 1 for every other superblock we know.
pub fn dev_flags(mt: &MountTable, roots: &[Vec<u8>]) -> std::collections::HashMap<u32, u32> {
    let mut flags = std::collections::HashMap::new();
    for m in &mt.mounts {
        let inside = roots.iter().any(|r| m.point != *r && is_under(&m.point, r));
        let f = flags.entry(m.dev).or_insert(1);
        if inside {
            *f = 2;
        }
    }
    flags
}

/// `path` equals `dir` or lies below it (component-wise).
/// A `dir` that is not absolute (the empty path of a root given up) holds nothing.
pub fn is_under(path: &[u8], dir: &[u8]) -> bool {
    if dir.first() != Some(&b'/') {
        return false;
    }
    if dir == b"/" {
        return path.first() == Some(&b'/');
    }
    path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/')
}

/// Joins an absolute directory and a path below it ("" or "/x/y" or "x/y").
pub fn join(dir: &[u8], rest: &[u8]) -> Vec<u8> {
    let rest = trim_leading_slashes(rest);
    let mut out = dir.to_vec();
    if rest.is_empty() {
        return out;
    }
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(rest);
    out
}

fn trim_leading_slashes(mut p: &[u8]) -> &[u8] {
    while let Some(rest) = p.strip_prefix(b"/") {
        p = rest;
    }
    p
}

/// "/" followed by the names root-first.
pub fn names_path(names: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in names.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(n);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Host path of a kernel walk.
pub fn walk_path(walk: &Walk, mt: &MountTable, roots: &[Vec<u8>]) -> Option<Vec<u8>> {
    walk_path_from(walk, 0, mt, roots)
}

fn walk_path_from(walk: &Walk, i: usize, mt: &MountTable, roots: &[Vec<u8>]) -> Option<Vec<u8>> {
    let seg = walk.segs.get(i)?;
    if let Some(p) = mt.map(seg.dev, &names_path(&seg.names), roots) {
        return Some(p);
    }
    if i + 1 < walk.segs.len() {
        // Not mounted in our namespace: place it where the writer's mount sat.
        let below = seg.below_mnt_root.unwrap_or(seg.names.len());
        let base = walk_path_from(walk, i + 1, mt, roots)?;
        return Some(join(&base, &names_path(&seg.names[..below])));
    }
    None
}

/// Like `walk_path`, and when the superblock is mounted nowhere we can see, its path within
/// the superblock: something true to show rather than nothing.
pub fn walk_path_or_raw(walk: &Walk, mt: &MountTable, roots: &[Vec<u8>]) -> Vec<u8> {
    walk_path(walk, mt, roots).unwrap_or_else(|| {
        walk.segs
            .first()
            .map(|s| names_path(&s.names))
            .unwrap_or_else(|| b"/".to_vec())
    })
}

/// Lexical normalisation: ".", "..", repeated slashes. Used only when nothing is left on disk
/// to resolve against.
pub fn normalize(p: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.split(|&c| c == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

fn cstr(p: &[u8]) -> Option<CString> {
    CString::new(p).ok()
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_IN_ROOT: u64 = 0x10;

fn openat2(dirfd: i32, path: &[u8], flags: i32, resolve: u64) -> Option<OwnedFd> {
    let c = cstr(if path.is_empty() { b"." } else { path })?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: valid C string and struct for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new fd we own.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens a directory by its path, also one longer than PATH_MAX (a deep tree), a part of
/// at most `CHUNK` bytes at a time.
fn open_dir(path: &[u8]) -> Option<OwnedFd> {
    const CHUNK: usize = 3072;
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    let mut fd: Option<OwnedFd> = None;
    let mut rest = path;
    loop {
        let (part, next) = if rest.len() <= CHUNK {
            (rest, &b""[..])
        } else {
            // cut at the last '/' within CHUNK; a name is at most 255 bytes
            let cut = rest[..CHUNK].iter().rposition(|&c| c == b'/')?.max(1);
            (&rest[..cut], &rest[cut..])
        };
        let dfd = fd.as_ref().map_or(libc::AT_FDCWD, |f| f.as_raw_fd());
        let part = if fd.is_some() {
            trim_leading_slashes(part)
        } else {
            part
        };
        fd = Some(openat2(
            dfd,
            if part.is_empty() { b"." } else { part },
            flags,
            0,
        )?);
        if next.is_empty() {
            return fd;
        }
        rest = next;
    }
}

/// The path of an open fd as the host sees it.
pub fn fd_path(fd: &OwnedFd) -> Option<Vec<u8>> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let p = fs::read_link(link).ok()?;
    let b = p.as_os_str().as_bytes();
    if b.first() != Some(&b'/') {
        return None;
    }
    Some(b.to_vec())
}

/// A path string from the caller, relative to what the kernel walked.
pub struct StrPath<'a> {
    /// Host path of the caller's root (absolute strings) or of the dirfd/cwd (relative).
    pub base: &'a [u8],
    pub string: &'a [u8],
    pub absolute: bool,
    /// The op acts on a final symlink itself (unlink, rename, lchown, mkdir...).
    pub nofollow: bool,
    /// Host path of the caller's cwd, sent along with "/proc/..." strings.
    pub cwd: Option<&'a [u8]>,
    pub pid: u32,
    pub tid: u32,
}

/// Rewrites "/proc/self/...", "/proc/thread-self/..." and "/proc/<own pid>/..." so that they
/// mean the writer, not us. Returns (base, string, absolute).
fn proc_rewrite(sp: &StrPath) -> Option<(Vec<u8>, Vec<u8>, bool)> {
    let rest = sp.string.strip_prefix(b"/proc/")?;
    let (who, rest) = match rest.iter().position(|&c| c == b'/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &b""[..]),
    };
    let me = sp.pid.to_string();
    let prefix = match who {
        b"self" => format!("/proc/{}", sp.pid),
        b"thread-self" => format!("/proc/{}/task/{}", sp.pid, sp.tid),
        w if w == me.as_bytes() => format!("/proc/{}", sp.pid),
        _ => return None,
    };
    if let (Some(cwd), Some(after)) = (sp.cwd, rest.strip_prefix(b"/cwd")) {
        if after.is_empty() || after[0] == b'/' {
            return Some((cwd.to_vec(), trim_leading_slashes(after).to_vec(), false));
        }
    }
    // "/proc/self/root/x" is "x" in the caller's root, which the kernel walked for us: no
    // need for the caller to still be alive.
    if let (true, Some(after)) = (sp.absolute, rest.strip_prefix(b"/root")) {
        if after.is_empty() || after[0] == b'/' {
            let after = if after.is_empty() { &b"/"[..] } else { after };
            return Some((sp.base.to_vec(), after.to_vec(), true));
        }
    }
    let mut s = prefix.into_bytes();
    s.extend_from_slice(rest);
    Some((b"/".to_vec(), s, true))
}

/// Resolves a caller's string to an absolute host path. Returns the path and whether it was
/// resolved on disk (false: lexical guess, the directory was gone by the time we looked).
pub fn resolve_str(sp: &StrPath) -> (Vec<u8>, bool) {
    let (base, string, absolute) = match proc_rewrite(sp) {
        Some(t) => t,
        None => (sp.base.to_vec(), sp.string.to_vec(), sp.absolute),
    };
    let resolve = if absolute && base != b"/" {
        RESOLVE_IN_ROOT
    } else {
        0
    };
    let rel: &[u8] = if absolute {
        trim_leading_slashes(&string)
    } else {
        &string
    };
    let lexical = || normalize(&join(&base, rel));
    // One plain name in the directory the kernel walked, for an op on the name itself
    // (unlink, rmdir, mkdir, rename...): exact even when that directory is gone by now
    // (`rm -r` removes it right after).
    let single = !rel.contains(&b'/') && !matches!(rel, b"" | b"." | b"..");
    let Some(dirfd) = open_dir(&base) else {
        return (lexical(), !absolute && sp.nofollow && single);
    };
    let dfd = dirfd.as_raw_fd();
    // A path longer than PATH_MAX has no name /proc can give: one plain name in the
    // directory the kernel walked is exact when the op acts on the name itself, or on what it
    // names and that is no symlink (or is gone: as below, the name stands).
    if base.len() + rel.len() >= 4000 {
        let no_link = || {
            let Ok(name) = std::ffi::CString::new(rel) else {
                return false;
            };
            crate::sys::fstatat(dirfd.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW)
                .map_or(true, |st| st.st_mode & libc::S_IFMT != libc::S_IFLNK)
        };
        return (lexical(), single && (sp.nofollow || no_link()));
    }
    if !sp.nofollow {
        if let Some(p) = openat2(dfd, rel, libc::O_PATH, resolve).and_then(|fd| fd_path(&fd)) {
            return (p, true);
        }
    }
    // The name itself, in its resolved parent directory.
    let mut trimmed = rel;
    while trimmed.len() > 1 && trimmed.last() == Some(&b'/') {
        trimmed = &trimmed[..trimmed.len() - 1];
    }
    let (parent, name): (&[u8], &[u8]) = match trimmed.iter().rposition(|&c| c == b'/') {
        Some(0) => (b"/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (b".", trimmed),
    };
    if matches!(name, b"" | b"." | b"..") {
        return match openat2(dfd, trimmed, libc::O_PATH, resolve).and_then(|fd| fd_path(&fd)) {
            Some(p) => (p, true),
            None => (lexical(), false),
        };
    }
    match openat2(dfd, parent, libc::O_PATH | libc::O_DIRECTORY, resolve)
        .and_then(|fd| fd_path(&fd))
    {
        Some(p) => (join(&p, name), true),
        None => (lexical(), false),
    }
}

/// Index of the innermost watched root that holds `path`.
pub fn tree_of(path: &[u8], roots: &[Vec<u8>]) -> Option<usize> {
    roots
        .iter()
        .enumerate()
        .filter(|(_, r)| is_under(path, r))
        .max_by_key(|(_, r)| r.len())
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::decode::Seg;

    const INFO: &[u8] = b"22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
30 22 0:25 / /tmp rw - tmpfs tmpfs rw\n\
31 22 254:0 /srv/app /mnt/bind\\040x rw - ext4 /dev/vda rw\n\
32 22 0:40 /sub /data rw - tmpfs tmpfs rw\n";

    fn seg(dev: u32, names: &[&str]) -> Seg {
        Seg {
            dev,
            names: names.iter().map(|n| n.as_bytes().to_vec()).collect(),
            below_mnt_root: None,
        }
    }

    #[test]
    fn mountinfo_parse_and_unescape() {
        let mt = MountTable::parse(INFO);
        assert_eq!(mt.mounts.len(), 4);
        assert_eq!(mt.mounts[0].dev, kernel_dev(254, 0));
        assert_eq!(mt.mounts[2].point, b"/mnt/bind x");
    }

    #[test]
    fn superblock_paths_map_to_host_paths() {
        let mt = MountTable::parse(INFO);
        let none: &[Vec<u8>] = &[];
        let dev = kernel_dev(254, 0);
        // Same superblock reached through a bind mount: the fullest view wins...
        assert_eq!(mt.map(dev, b"/srv/app/f", none).unwrap(), b"/srv/app/f");
        // ...unless the other view is the watched one.
        let bind_watched = [b"/mnt/bind x".to_vec()];
        assert_eq!(
            mt.map(dev, b"/srv/app/f", &bind_watched).unwrap(),
            b"/mnt/bind x/f"
        );
        assert_eq!(mt.map(dev, b"/etc/x", none).unwrap(), b"/etc/x");
        assert_eq!(mt.map(kernel_dev(0, 25), b"/", none).unwrap(), b"/tmp");
        assert_eq!(
            mt.map(kernel_dev(0, 25), b"/a/b", none).unwrap(),
            b"/tmp/a/b"
        );
        assert_eq!(
            mt.map(kernel_dev(0, 40), b"/sub/k", none).unwrap(),
            b"/data/k"
        );
        assert!(mt.map(kernel_dev(0, 40), b"/other", none).is_none());
        assert!(mt.map(kernel_dev(7, 7), b"/", none).is_none());
    }

    #[test]
    fn walk_through_a_private_mount() {
        let mt = MountTable::parse(INFO);
        // tmpfs 0:99 is mounted nowhere we can see, at /tmp/w/m in the writer's namespace.
        let w = Walk {
            segs: vec![
                seg(kernel_dev(0, 99), &["f", "d"]),
                seg(kernel_dev(0, 25), &["m", "w"]),
            ],
            tree: None,
            truncated: false,
            mode: 0,
            tree_depth: 0,
        };
        assert_eq!(walk_path(&w, &mt, &[]).unwrap(), b"/tmp/w/m/d/f");
        // A bind of a subdirectory: only the names below the mount root count.
        let mut s0 = seg(kernel_dev(0, 99), &["f", "d", "hidden"]);
        s0.below_mnt_root = Some(2);
        let w = Walk {
            segs: vec![s0, seg(kernel_dev(0, 25), &["m"])],
            tree: None,
            truncated: false,
            mode: 0,
            tree_depth: 0,
        };
        assert_eq!(walk_path(&w, &mt, &[]).unwrap(), b"/tmp/m/d/f");
    }

    #[test]
    fn superblocks_mounted_inside_a_tree() {
        let mt = MountTable::parse(INFO);
        let f = dev_flags(&mt, &[b"/mnt".to_vec()]);
        assert_eq!(
            f[&kernel_dev(254, 0)],
            2,
            "bind at /mnt/bind x is inside /mnt"
        );
        assert_eq!(f[&kernel_dev(0, 25)], 1);
        let f = dev_flags(&mt, &[b"/tmp".to_vec()]);
        assert_eq!(
            f[&kernel_dev(0, 25)],
            1,
            "the root's own mount is not inside it"
        );
        assert_eq!(f[&kernel_dev(254, 0)], 1);
    }

    #[test]
    fn lexical_helpers() {
        assert_eq!(normalize(b"/a/./b/../c//d/"), b"/a/c/d");
        assert_eq!(normalize(b"/../.."), b"/");
        assert_eq!(join(b"/", b"x"), b"/x");
        assert_eq!(join(b"/a", b"/x/y"), b"/a/x/y");
        assert_eq!(join(b"/a", b""), b"/a");
        assert!(is_under(b"/srv/app", b"/srv/app"));
        assert!(is_under(b"/srv/app/x", b"/srv/app"));
        assert!(!is_under(b"/srv/apple", b"/srv/app"));
        assert!(is_under(b"/x", b"/"));
        let roots = vec![b"/srv".to_vec(), b"/srv/app".to_vec()];
        assert_eq!(tree_of(b"/srv/app/x", &roots), Some(1));
        assert_eq!(tree_of(b"/srv/x", &roots), Some(0));
        assert_eq!(tree_of(b"/etc", &roots), None);
    }

    #[test]
    fn bind_mount_paths_are_named_as_in_the_tree() {
        let mt = MountTable::parse(INFO);
        let roots = [b"/srv/app".to_vec()];
        // /mnt/bind x is a bind of /srv/app: its files are the tree's.
        assert_eq!(
            mt.watched_view(b"/mnt/bind x/d/f", &roots).unwrap(),
            b"/srv/app/d/f"
        );
        assert_eq!(
            mt.watched_view(b"/mnt/bind x", &roots).unwrap(),
            b"/srv/app"
        );
        // Not a view of any tree.
        assert!(mt.watched_view(b"/tmp/x", &roots).is_none());
        assert!(mt.watched_view(b"/etc/passwd", &roots).is_none());
        // The tree itself through its own mount.
        assert_eq!(
            mt.watched_view(b"/srv/app/x", &roots).unwrap(),
            b"/srv/app/x"
        );
    }

    #[test]
    fn proc_self_root_needs_no_live_writer() {
        let sp = StrPath {
            base: b"/var/lib/ct/rootfs",
            string: b"/proc/self/root/srv/app/x",
            absolute: true,
            nofollow: true,
            cwd: None,
            pid: 77,
            tid: 78,
        };
        assert_eq!(
            proc_rewrite(&sp).unwrap(),
            (b"/var/lib/ct/rootfs".to_vec(), b"/srv/app/x".to_vec(), true)
        );
        let sp = StrPath {
            string: b"/proc/self/rootfs/x",
            ..sp
        };
        assert_eq!(proc_rewrite(&sp).unwrap().1, b"/proc/77/rootfs/x");
    }

    #[test]
    fn proc_self_is_the_writer() {
        let sp = StrPath {
            base: b"/",
            string: b"/proc/self/cwd/a/b",
            absolute: true,
            nofollow: true,
            cwd: Some(b"/srv/app"),
            pid: 77,
            tid: 78,
        };
        assert_eq!(
            proc_rewrite(&sp).unwrap(),
            (b"/srv/app".to_vec(), b"a/b".to_vec(), false)
        );
        let sp = StrPath {
            string: b"/proc/thread-self/fd/3",
            cwd: None,
            ..sp
        };
        assert_eq!(proc_rewrite(&sp).unwrap().1, b"/proc/77/task/78/fd/3");
        let sp = StrPath {
            string: b"/proc/1/cwd",
            ..sp
        };
        assert!(proc_rewrite(&sp).is_none());
    }

    #[test]
    fn resolves_through_symlinks_on_disk() {
        let d = std::env::temp_dir().join(format!("ownwatch-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("real/sub")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        let base = d.as_os_str().as_bytes();
        let real = fs::canonicalize(d.join("real")).unwrap();
        let real = real.as_os_str().as_bytes();
        let sp = StrPath {
            base,
            string: b"link/sub/../new",
            absolute: false,
            nofollow: true,
            cwd: None,
            pid: 1,
            tid: 1,
        };
        let (p, exact) = resolve_str(&sp);
        assert!(exact);
        assert_eq!(p, join(real, b"new"));
        // nofollow on the link itself keeps its name; follow goes to the target.
        let sp = StrPath {
            string: b"link",
            ..sp
        };
        assert_eq!(
            resolve_str(&sp).0,
            join(
                fs::canonicalize(&d).unwrap().as_os_str().as_bytes(),
                b"link"
            )
        );
        let sp = StrPath {
            nofollow: false,
            ..sp
        };
        assert_eq!(resolve_str(&sp).0, real);
        fs::remove_dir_all(&d).unwrap();
    }
}
