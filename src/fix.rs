//! Giving objects back to their owner (`--fix`) without following a symlink or leaving the tree.
//!
//! Nothing here resolves a path string in one go. An object is reached from the watched root's
//! file descriptor one component at a time, each step an `openat(…, O_PATH|O_NOFOLLOW)` relative
//! to the handle of the previous step, and the owner is changed on the final handle with
//! `fchownat(fd, "", …, AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW)`. So a component that is (or is
//! swapped into) a symlink is refused instead of followed, `..` is refused, and a symlink that is
//! itself the offending object is changed, never its target. Trees below an object are walked
//! through directory fds opened from the handles themselves (`openat(handle, ".")`), so no name
//! is ever looked up twice.
//!
//! What is deliberately *not* changed, and reported as an error instead:
//! - anything on another mount than the tree's root: a mount point inside the tree and all
//!   below it, also a bind mount of the same filesystem (same `st_dev`: `mount --bind /etc
//!   /srv/app/etc` must not hand /etc/shadow over). Mounts are told apart by mount id (statx
//!   `STX_MNT_ID`, 5.8+; else /proc/self/fdinfo), checked on every handle before it is used,
//!   for each step from the root to the object and for each entry of a recursive walk;
//! - a non-directory with more than one hard link: another name of it may lie outside the tree
//!   (`ln /etc/shadow /srv/app/x` by root must not hand /etc/shadow to the service user);
//! - character and block devices: owning one grants access to the device itself.
//!
//! Set-id bits: an object given back (or found already owned) that is not a directory loses
//! S_ISUID and S_ISGID (`install -m 4755` by root must not leave a setuid binary of the
//! service user). Directories keep theirs (setgid on a directory only makes new entries
//! inherit its group). The bits are cleared through the handle (`fchmodat2(fd, "",
//! AT_EMPTY_PATH)`, else `/proc/self/fd/N`), so no name is looked up again; the mode is
//! otherwise left alone.
//!
//! A directory that someone with write access to its parent renames out of the tree while a
//! walk holds it is still changed: the fd follows the inode, and that inode was in the tree.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use crate::sys::{
    self, chmod_handle, fstat, fstatat, mnt_id, open_dir_of, open_handle, openat, stat_mnt, Dents,
};

/// What [`fix_path`] did. The object named by the path is counted too.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FixOutcome {
    /// Objects whose owner was changed.
    pub changed: u64,
    /// Objects that already belonged to uid:gid.
    pub unchanged: u64,
    /// Objects below the named one (with `recurse`) that could not be changed or read.
    pub failed: u64,
    /// Objects whose setuid/setgid bits were dropped (by the kernel on the chown, or here).
    pub setid_cleared: u64,
    /// The first of those failures: `sub/path: reason`, the path relative to the named object.
    pub first_error: Option<String>,
}

impl FixOutcome {
    /// True when everything reached is now owned by uid:gid.
    pub fn ok(&self) -> bool {
        self.failed == 0
    }

    fn count(&mut self, g: Given) {
        if g.chowned {
            self.changed += 1;
        } else {
            self.unchanged += 1;
        }
        if g.setid_cleared {
            self.setid_cleared += 1;
        }
    }

    fn fail(&mut self, rel: &[u8], msg: String) {
        self.failed += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{}: {msg}", String::from_utf8_lossy(rel)));
        }
    }
}

/// `path` relative to the tree root `tree` (both absolute, as the kernel or `realpath` gives
/// them): `Some(b"")` for the root itself, `None` when `path` is not below `tree`. Purely
/// lexical: "/srv/application" is not under "/srv/app", and `..` components make it `None`.
pub fn rel_path<'a>(tree: &[u8], path: &'a [u8]) -> Option<&'a [u8]> {
    let tree = match tree.iter().rposition(|&c| c != b'/') {
        Some(i) => &tree[..=i],
        None => b"" as &[u8], // "/" (or "//")
    };
    if !path.starts_with(b"/") || !path.starts_with(tree) {
        return None;
    }
    let rest = &path[tree.len()..];
    if !rest.is_empty() && rest[0] != b'/' {
        return None;
    }
    let rest = trim_slashes(rest);
    if rest.split(|&c| c == b'/').any(|c| c == b"..") {
        return None;
    }
    Some(rest)
}

fn trim_slashes(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| c != b'/').unwrap_or(s.len());
    let end = s.iter().rposition(|&c| c != b'/').map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// What was done to one object.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Given {
    /// Its owner was changed (else it already belonged to uid:gid).
    pub chowned: bool,
    /// It had S_ISUID or S_ISGID (a non-directory) and has them no more.
    pub setid_cleared: bool,
}

/// The error for an object on another mount than the tree's root.
pub const BEYOND_MOUNT: &str =
    "on another mount than the tree (a mount point or below one): not changed";

/// Gives the object at `rel` below the tree root `root` to `uid:gid`.
///
/// `root` is any fd of the root directory (O_PATH is enough). `rel` is relative to it,
/// components separated by `/`; empty components and `.` are skipped, an empty `rel` names the
/// root itself. Refused with an error: a leading `/`, any `..`, an intermediate component that
/// is a symlink or not a directory (also when swapped into one during the walk), a component
/// on another mount than the root's (a mount point, bind mounts of the same filesystem
/// included), and the objects listed in the module comment.
///
/// With `recurse` and a directory, everything below it is given to uid:gid too, through
/// directory fds, never following a symlink and never entering another mount; a mount point
/// below is a failure (not changed, not entered), and a directory whose (st_dev, st_ino) is in
/// `skip` (the root of another, nested tree with its own owner) is left alone and not entered.
/// Failures below are counted in the outcome, not returned as `Err`.
///
/// `Err` means the named object itself was not (or not certainly) given back.
pub fn fix_path(
    root: BorrowedFd,
    rel: &[u8],
    uid: u32,
    gid: u32,
    recurse: bool,
    skip: &[(u64, u64)],
) -> Result<FixOutcome, String> {
    if rel.first() == Some(&b'/') {
        return Err("absolute path refused: it must be relative to the tree".into());
    }
    let comps: Vec<&[u8]> = rel
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if comps.iter().any(|c| *c == b"..") {
        return Err("\"..\" in the path refused".into());
    }
    let mut out = FixOutcome::default();
    let root_mnt = mnt_id(root).map_err(|e| format!("mount id of the tree root: {e}"))?;
    // `cur` is None while we are still at the root.
    let mut cur: Option<OwnedFd> = None;
    for (i, comp) in comps.iter().enumerate() {
        let name = CString::new(*comp).map_err(|_| "NUL byte in the path".to_string())?;
        let last = i + 1 == comps.len();
        let parent = cur.as_ref().map_or(root, |f| f.as_fd());
        let flags = libc::O_PATH
            | libc::O_NOFOLLOW
            | libc::O_CLOEXEC
            | if last { 0 } else { libc::O_DIRECTORY };
        let next = match openat(parent, &name, flags) {
            Ok(fd) => fd,
            Err(Errno::ENOTDIR) if !last => {
                // O_NOFOLLOW|O_DIRECTORY on a symlink: ENOTDIR. Say which it was (the answer is
                // only for the message; nothing is opened through it).
                let what = match fstatat(parent, &name, libc::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                        "a symlink (not followed)"
                    }
                    _ => "not a directory",
                };
                return Err(format!(
                    "path component \"{}\" is {what}",
                    String::from_utf8_lossy(comp)
                ));
            }
            Err(e) => {
                return Err(format!(
                    "opening \"{}\": {e}",
                    String::from_utf8_lossy(&comps[..=i].join(&b'/'))
                ))
            }
        };
        if !last {
            // The step that reached another mount crossed a mount point: stop there, whether
            // it is a filesystem of its own or a bind mount of the root's.
            match mnt_id(next.as_fd()) {
                Ok(m) if m == root_mnt => {}
                Ok(_) => {
                    return Err(format!(
                        "path component \"{}\" is a mount point: nothing on another mount \
                         is changed",
                        String::from_utf8_lossy(comp)
                    ))
                }
                Err(e) => return Err(format!("mount id: {e}")),
            }
        }
        cur = Some(next);
    }
    let target = cur.as_ref().map_or(root, |f| f.as_fd());
    let (st, mnt) = stat_mnt(target).map_err(|e| e.to_string())?;
    out.count(give_handle(target, &st, mnt, root_mnt, uid, gid)?);
    if recurse && is_dir(&st) {
        fix_below(target, root_mnt, uid, gid, skip, &mut out);
    }
    Ok(out)
}

/// Gives the entry `name` of the open directory `dir` to uid:gid; an empty `name` means `dir`
/// itself. With `expect = Some((dev, ino))` the entry must still be that inode (what the caller
/// stat'ed and reported), else nothing is changed. It must lie on the mount `mnt` (the tree
/// root's), else nothing is changed either: a mount point (the name crosses into it) and all
/// below it belong to another mount.
pub fn fix_at(
    dir: BorrowedFd,
    name: &CStr,
    expect: Option<(u64, u64)>,
    mnt: u64,
    uid: u32,
    gid: u32,
) -> Result<Given, String> {
    let owned;
    let fd = if name.is_empty() {
        dir
    } else {
        owned = open_handle(dir, name).map_err(|e| e.to_string())?;
        owned.as_fd()
    };
    let (st, fd_mnt) = stat_mnt(fd).map_err(|e| e.to_string())?;
    if let Some((dev, ino)) = expect {
        if st.st_dev != dev || st.st_ino != ino {
            return Err("replaced by another object while being fixed; not changed".into());
        }
    }
    give_handle(fd, &st, fd_mnt, mnt, uid, gid)
}

/// A non-directory, non-symlink with S_ISUID or S_ISGID.
fn has_setid(mode: u32) -> bool {
    !matches!(mode & libc::S_IFMT, libc::S_IFDIR | libc::S_IFLNK)
        && mode & (libc::S_ISUID | libc::S_ISGID) != 0
}

/// The one place an owner or a mode is changed. `st` and `fd_mnt` are the stat and mount id
/// of `fd` itself; `want_mnt` the tree root's mount.
fn give_handle(
    fd: BorrowedFd,
    st: &libc::stat,
    fd_mnt: u64,
    want_mnt: u64,
    uid: u32,
    gid: u32,
) -> Result<Given, String> {
    if fd_mnt != want_mnt {
        return Err(BEYOND_MOUNT.into());
    }
    let chowned = chown_handle(fd, st, uid, gid)?;
    let mut g = Given {
        chowned,
        setid_cleared: false,
    };
    if has_setid(st.st_mode) {
        // The kernel drops set-id bits on a chown of a regular file (S_ISGID only with group
        // execute): what is left is cleared here.
        let now = if chowned {
            fstat(fd).map_err(|e| format!("owner changed, then: {e}"))?
        } else {
            *st
        };
        if has_setid(now.st_mode) {
            let mode = now.st_mode & 0o7777 & !(libc::S_ISUID | libc::S_ISGID);
            chmod_handle(fd, mode).map_err(|e| {
                if chowned {
                    format!("owner changed, but the setuid/setgid bits were not cleared: {e}")
                } else {
                    format!("setuid/setgid bits not cleared: {e}")
                }
            })?;
        }
        g.setid_cleared = true;
    }
    Ok(g)
}

/// The owner change of `give_handle`. Ok(false): it already belonged to uid:gid.
fn chown_handle(fd: BorrowedFd, st: &libc::stat, uid: u32, gid: u32) -> Result<bool, String> {
    if st.st_uid == uid && st.st_gid == gid {
        return Ok(false);
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFCHR | libc::S_IFBLK => {
            return Err("device node: not given away (its owner could use the device)".into())
        }
        libc::S_IFDIR => {}
        _ if st.st_nlink > 1 => {
            return Err(format!(
                "{} hard links: not changed (another name may lie outside the tree)",
                st.st_nlink
            ))
        }
        _ => {}
    }
    sys::chown_handle(fd, uid, gid).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Everything below the directory handle `top`, which lies on mount `mnt` (depth first, one
/// open directory per level). Other mounts are neither changed nor entered; nor are the
/// directories in `skip`.
fn fix_below(
    top: BorrowedFd,
    mnt: u64,
    uid: u32,
    gid: u32,
    skip: &[(u64, u64)],
    out: &mut FixOutcome,
) {
    struct Level {
        fd: OwnedFd,
        dents: Dents,
        /// Length of `rel` before this level's name was appended.
        rel_len: usize,
    }
    let mut rel: Vec<u8> = Vec::new();
    let mut stack: Vec<Level> = Vec::new();
    match open_dir_of(top) {
        Ok(fd) => stack.push(Level {
            fd,
            dents: Dents::new(),
            rel_len: 0,
        }),
        Err(e) => {
            out.fail(b".", format!("cannot read: {e}"));
            return;
        }
    }
    while let Some(level) = stack.last_mut() {
        if level.dents.is_drained() {
            match level.dents.fill(level.fd.as_fd()) {
                Ok(true) => {}
                Ok(false) => {
                    let l = stack.pop().expect("non-empty");
                    rel.truncate(l.rel_len);
                    continue;
                }
                Err(e) => {
                    out.fail(
                        if rel.is_empty() { b"." } else { &rel },
                        format!("reading: {e}"),
                    );
                    let l = stack.pop().expect("non-empty");
                    rel.truncate(l.rel_len);
                    continue;
                }
            }
        }
        let Some(ent) = level.dents.next_entry() else {
            continue;
        };
        let dirfd = level.fd.as_fd();
        let name = ent.name;
        let base = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.to_bytes());
        let h = match open_handle(dirfd, name) {
            Ok(h) => h,
            Err(Errno::ENOENT) => {
                rel.truncate(base);
                continue; // removed meanwhile: nothing left to fix
            }
            Err(e) => {
                out.fail(&rel, e.to_string());
                rel.truncate(base);
                continue;
            }
        };
        let (st, h_mnt) = match stat_mnt(h.as_fd()) {
            Ok(s) => s,
            Err(e) => {
                out.fail(&rel, e.to_string());
                rel.truncate(base);
                continue;
            }
        };
        if is_dir(&st) && skip.contains(&(st.st_dev, st.st_ino)) {
            // The root of a nested tree: its own owner decides there.
            rel.truncate(base);
            continue;
        }
        if h_mnt != mnt {
            // A mount point (another filesystem or a bind mount): neither changed nor entered,
            // and so not everything below the object is known to be given back.
            out.fail(
                &rel,
                "mount point: another mount, not changed or entered".into(),
            );
            rel.truncate(base);
            continue;
        }
        match give_handle(h.as_fd(), &st, h_mnt, mnt, uid, gid) {
            Ok(g) => out.count(g),
            Err(e) => out.fail(&rel, e),
        }
        if is_dir(&st) {
            match open_dir_of(h.as_fd()) {
                Ok(fd) => {
                    stack.push(Level {
                        fd,
                        dents: Dents::new(),
                        rel_len: base,
                    });
                    continue; // `rel` keeps this directory's name while inside it
                }
                Err(e) => out.fail(&rel, format!("cannot read: {e}")),
            }
        }
        rel.truncate(base);
    }
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{symlink, MetadataExt};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn rel_paths() {
        assert_eq!(rel_path(b"/srv/app", b"/srv/app"), Some(&b""[..]));
        assert_eq!(rel_path(b"/srv/app/", b"/srv/app"), Some(&b""[..]));
        assert_eq!(rel_path(b"/srv/app", b"/srv/app/"), Some(&b""[..]));
        assert_eq!(rel_path(b"/srv/app", b"/srv/app/a/b"), Some(&b"a/b"[..]));
        assert_eq!(rel_path(b"/srv/app", b"/srv/app//a/b/"), Some(&b"a/b"[..]));
        assert_eq!(rel_path(b"/", b"/etc/x"), Some(&b"etc/x"[..]));
        assert_eq!(rel_path(b"/", b"/"), Some(&b""[..]));
        assert_eq!(rel_path(b"/srv/app", b"/srv/application"), None);
        assert_eq!(rel_path(b"/srv/app", b"/srv"), None);
        assert_eq!(rel_path(b"/srv/app", b"/srv/app/../etc"), None);
        assert_eq!(rel_path(b"/srv/app", b"/srv/app/a/.."), None);
        assert_eq!(rel_path(b"/srv/app", b"srv/app/a"), None);
        assert_eq!(rel_path(b"/srv/app", b"/srv/app/a..b"), Some(&b"a..b"[..]));
    }

    use crate::testutil::temp_dir;

    /// Root is needed to chown to other uids.
    fn root_or_skip(test: &str) -> bool {
        crate::testutil::root_or_skip(test, "it changes owners to other uids")
    }

    fn dirfd(p: &Path) -> OwnedFd {
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        openat(sys::cwd(), &c, libc::O_PATH | libc::O_DIRECTORY)
            .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
    }

    fn owner(p: &Path) -> (u32, u32) {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    }

    fn lchown(p: &Path, u: u32, g: u32) {
        std::os::unix::fs::lchown(p, Some(u), Some(g)).unwrap();
    }

    #[test]
    fn fixes_file_symlink_and_tree_below() {
        if !root_or_skip("fixes_file_symlink_and_tree_below") {
            return;
        }
        let t = temp_dir("basic");
        let out = temp_dir("basic-outside");
        let root = t.path().join("tree");
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/f"), b"x").unwrap();
        std::fs::write(root.join("a/b/c/g"), b"x").unwrap();
        std::fs::write(out.path().join("secret"), b"x").unwrap();
        lchown(&out.path().join("secret"), 5555, 5555);
        symlink(out.path().join("secret"), root.join("a/b/ln")).unwrap();
        symlink(&out.path(), root.join("a/b/lndir")).unwrap();
        let rfd = dirfd(&root);

        // A single file.
        let o = fix_path(rfd.as_fd(), b"a/f", 4242, 4343, false, &[]).unwrap();
        assert_eq!((o.changed, o.unchanged, o.failed), (1, 0, 0));
        assert_eq!(owner(&root.join("a/f")), (4242, 4343));
        // Again: nothing to do.
        let o = fix_path(rfd.as_fd(), b"./a//f", 4242, 4343, false, &[]).unwrap();
        assert_eq!((o.changed, o.unchanged), (0, 1));

        // A symlink is changed itself, its target is not.
        let o = fix_path(rfd.as_fd(), b"a/b/ln", 4242, 4343, true, &[]).unwrap();
        assert_eq!(o.changed, 1);
        assert_eq!(owner(&root.join("a/b/ln")), (4242, 4343));
        assert_eq!(owner(&out.path().join("secret")), (5555, 5555));

        // Through a symlinked directory: refused.
        let e = fix_path(rfd.as_fd(), b"a/b/lndir/secret", 4242, 4343, false, &[]).unwrap_err();
        assert_eq!(e, "path component \"lndir\" is a symlink (not followed)");
        let e = fix_path(rfd.as_fd(), b"a/f/x", 4242, 4343, false, &[]).unwrap_err();
        assert_eq!(e, "path component \"f\" is not a directory");
        let e = fix_path(rfd.as_fd(), b"a/../a/f", 4242, 4343, false, &[]).unwrap_err();
        assert_eq!(e, "\"..\" in the path refused");
        let e = fix_path(rfd.as_fd(), b"/etc/passwd", 4242, 4343, false, &[]).unwrap_err();
        assert!(e.starts_with("absolute path refused"), "{e}");
        let e = fix_path(rfd.as_fd(), b"a/nothere", 4242, 4343, false, &[]).unwrap_err();
        assert_eq!(
            e,
            "opening \"a/nothere\": ENOENT: No such file or directory"
        );
        assert_eq!(owner(&out.path().join("secret")), (5555, 5555));

        // The whole tree below a, with recurse: a, b, c, g, lndir (f and ln already done).
        let o = fix_path(rfd.as_fd(), b"a", 4242, 4343, true, &[]).unwrap();
        assert_eq!((o.changed, o.unchanged, o.failed), (5, 2, 0), "{o:?}");
        for p in ["a", "a/b", "a/b/c", "a/b/c/g", "a/b/lndir", "a/f", "a/b/ln"] {
            assert_eq!(owner(&root.join(p)), (4242, 4343), "{p}");
        }
        assert_eq!(owner(&out.path()), (0, 0));
        assert_eq!(owner(&out.path().join("secret")), (5555, 5555));
        // The root itself, by an empty path; without recurse nothing below is touched.
        lchown(&root.join("a/f"), 0, 0);
        let o = fix_path(rfd.as_fd(), b"", 4242, 4343, false, &[]).unwrap();
        assert_eq!((o.changed, o.unchanged), (1, 0));
        assert_eq!(owner(&root), (4242, 4343));
        assert_eq!(owner(&root.join("a/f")), (0, 0));
    }

    #[test]
    fn refuses_hard_links_and_devices_and_stays_on_the_filesystem() {
        if !root_or_skip("refuses_hard_links_and_devices_and_stays_on_the_filesystem") {
            return;
        }
        let t = temp_dir("links");
        let root = t.path().join("tree");
        std::fs::create_dir_all(root.join("d/mnt")).unwrap();
        std::fs::write(t.path().join("outside"), b"x").unwrap();
        std::fs::hard_link(t.path().join("outside"), root.join("d/hl")).unwrap();
        let rfd = dirfd(&root);
        let e = fix_path(rfd.as_fd(), b"d/hl", 4242, 4242, false, &[]).unwrap_err();
        assert_eq!(
            e,
            "2 hard links: not changed (another name may lie outside the tree)"
        );
        assert_eq!(owner(&t.path().join("outside")), (0, 0));

        let dev = CString::new(root.join("d/null").as_os_str().as_bytes()).unwrap();
        // SAFETY: plain mknod.
        let r = unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
        let have_dev = r == 0;
        if have_dev {
            let e = fix_path(rfd.as_fd(), b"d/null", 4242, 4242, false, &[]).unwrap_err();
            assert!(e.starts_with("device node: not given away"), "{e}");
        }

        // A filesystem mounted inside: recursion does not enter it.
        let mnt = CString::new(root.join("d/mnt").as_os_str().as_bytes()).unwrap();
        // SAFETY: plain mount of a fresh tmpfs on our own temp dir.
        let mounted = unsafe {
            libc::mount(
                c"none".as_ptr(),
                mnt.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )
        } == 0;
        if mounted {
            std::fs::write(root.join("d/mnt/inner"), b"x").unwrap();
        }
        let o = fix_path(rfd.as_fd(), b"d", 4242, 4242, true, &[]).unwrap();
        // d itself changed; hl (and null) failed; mnt failed too: not changed, not entered.
        assert_eq!(o.changed, if mounted { 1 } else { 2 }, "{o:?}");
        assert_eq!(
            o.failed,
            if have_dev { 2 } else { 1 } + u64::from(mounted),
            "{o:?}"
        );
        assert!(o.first_error.as_deref().unwrap().contains("hard links") || have_dev);
        if mounted {
            assert_eq!(owner(&root.join("d/mnt/inner")), (0, 0));
            assert_eq!(owner(&root.join("d/mnt")), (0, 0));
            // SAFETY: unmount what we mounted.
            unsafe { libc::umount2(mnt.as_ptr(), libc::MNT_DETACH) };
        }
        assert_eq!(owner(&t.path().join("outside")), (0, 0));
    }

    #[test]
    fn recursion_leaves_nested_roots_and_bind_mounts_alone() {
        if !root_or_skip("recursion_leaves_nested_roots_and_bind_mounts_alone") {
            return;
        }
        let t = temp_dir("nested");
        let src = temp_dir("nested-bindsrc");
        let root = t.path().join("tree");
        std::fs::create_dir_all(root.join("d/inner/sub")).unwrap();
        std::fs::create_dir_all(root.join("d/bm")).unwrap();
        std::fs::write(root.join("d/f"), b"x").unwrap();
        std::fs::write(root.join("d/inner/sub/g"), b"x").unwrap();
        std::fs::write(src.path().join("secret"), b"x").unwrap();
        let m = std::fs::metadata(root.join("d/inner")).unwrap();
        let inner = (m.dev(), m.ino());
        let bm = CString::new(root.join("d/bm").as_os_str().as_bytes()).unwrap();
        let s = CString::new(src.path().as_os_str().as_bytes()).unwrap();
        // SAFETY: a bind mount between two of our temp dirs (same filesystem).
        let r = unsafe {
            libc::mount(
                s.as_ptr(),
                bm.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "mount --bind: {}", io::Error::last_os_error());
        let rfd = dirfd(&root);
        let o = fix_path(rfd.as_fd(), b"d", 4242, 4242, true, &[inner]).unwrap();
        // SAFETY: unmount what we mounted.
        unsafe { libc::umount2(bm.as_ptr(), libc::MNT_DETACH) };
        // d and f changed; inner skipped; bm failed (a mount point), not entered.
        assert_eq!((o.changed, o.failed), (2, 1), "{o:?}");
        assert_eq!(
            o.first_error.as_deref(),
            Some("bm: mount point: another mount, not changed or entered")
        );
        for p in ["d/inner", "d/inner/sub", "d/inner/sub/g"] {
            assert_eq!(owner(&root.join(p)), (0, 0), "{p}");
        }
        assert_eq!(owner(&src.path()), (0, 0));
        assert_eq!(owner(&src.path().join("secret")), (0, 0));
    }

    /// Many fixes while a thread keeps swapping a directory of the tree with a symlink to a
    /// directory outside it: nothing outside may ever change owner.
    #[test]
    fn race_with_symlink_swap_never_escapes() {
        if !root_or_skip("race_with_symlink_swap_never_escapes") {
            return;
        }
        let t = temp_dir("race");
        let outside = temp_dir("race-outside");
        let root = t.path().join("tree");
        std::fs::create_dir_all(root.join("sw/sub")).unwrap();
        std::fs::write(root.join("sw/file"), b"x").unwrap();
        std::fs::write(root.join("sw/sub/file"), b"x").unwrap();
        std::fs::create_dir(outside.path().join("sub")).unwrap();
        std::fs::write(outside.path().join("file"), b"x").unwrap();
        std::fs::write(outside.path().join("sub/file"), b"x").unwrap();
        for p in ["", "file", "sub", "sub/file"] {
            lchown(&outside.path().join(p), 5555, 5555);
        }
        symlink(&outside.path(), root.join("swlink")).unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let stop = stop.clone();
            let root = root.clone();
            std::thread::spawn(move || {
                let a = CString::new(root.join("sw").as_os_str().as_bytes()).unwrap();
                let b = CString::new(root.join("swlink").as_os_str().as_bytes()).unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: renameat2(RENAME_EXCHANGE) of two names in our temp dir.
                    let r = unsafe {
                        libc::syscall(
                            libc::SYS_renameat2,
                            libc::AT_FDCWD,
                            a.as_ptr(),
                            libc::AT_FDCWD,
                            b.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                    assert_eq!(r, 0, "renameat2: {}", io::Error::last_os_error());
                    n += 1;
                }
                n
            })
        };
        let rfd = dirfd(&root);
        let (mut ok, mut refused) = (0, 0);
        for i in 0..5_000u32 {
            // Alternate owners so every successful call really changes something.
            let id = 6000 + (i % 2);
            for (rel, recurse) in [
                (&b"sw/file"[..], false),
                (b"sw/sub/file", false),
                (b"sw", true),
                (b"sw/sub", true),
            ] {
                match fix_path(rfd.as_fd(), rel, id, id, recurse, &[]) {
                    Ok(_) => ok += 1,
                    Err(_) => refused += 1,
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        for p in ["", "file", "sub", "sub/file"] {
            assert_eq!(
                owner(&outside.path().join(p)),
                (5555, 5555),
                "outside/{p} changed"
            );
        }
        // The race was real: both outcomes happened, and the swapper kept swapping.
        assert!(ok > 0 && refused > 0, "ok {ok} refused {refused}");
        assert!(swaps > 1000, "only {swaps} swaps");
    }
}
