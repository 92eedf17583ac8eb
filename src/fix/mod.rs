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

use crate::sys::{self, chmod_handle, fstat, fstatat, mnt_id, open_handle, openat, stat_mnt};

mod tree;

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
    /// The named object as it was found: (st_dev, st_ino), and whether it is a kind whose
    /// set-id bits are dropped (not a directory or symlink).
    pub target: Option<(u64, u64, bool)>,
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
    out.target = Some((st.st_dev, st.st_ino, setid_kind(st.st_mode)));
    out.count(give_handle(target, &st, mnt, root_mnt, uid, gid)?);
    if recurse && is_dir(&st) {
        tree::fix_below(target, root_mnt, uid, gid, skip, &mut out);
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

/// The set-id bits --fix drops.
pub const SETID_BITS: u32 = libc::S_ISUID | libc::S_ISGID;

/// A kind of object whose set-id bits --fix drops: not a directory (its setgid bit is
/// inheritance, not privilege), not a symlink.
fn setid_kind(mode: u32) -> bool {
    !matches!(mode & libc::S_IFMT, libc::S_IFDIR | libc::S_IFLNK)
}

/// A non-directory, non-symlink with S_ISUID or S_ISGID.
fn has_setid(mode: u32) -> bool {
    setid_kind(mode) && mode & SETID_BITS != 0
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
            let mode = now.st_mode & 0o7777 & !SETID_BITS;
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

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

#[cfg(test)]
mod tests;
