//! `fix_path` with `recurse`: everything below a directory, depth first, through directory
//! fds opened from O_PATH handles, never following a symlink nor entering another mount.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use super::{give_handle, is_dir, FixOutcome};
use crate::sys::{open_dir_of, open_handle, stat_mnt, Dents};

/// One open directory of the walk.
struct Level {
    fd: OwnedFd,
    dents: Dents,
    /// Length of `Below::rel` before this level's name was appended.
    rel_len: usize,
}

/// What every entry of the walk is judged by, and where the outcome goes.
struct Below<'a> {
    mnt: u64,
    uid: u32,
    gid: u32,
    skip: &'a [(u64, u64)],
    out: &'a mut FixOutcome,
    /// The entry at hand, relative to the top, for messages.
    rel: Vec<u8>,
}

/// Everything below the directory handle `top`, which lies on mount `mnt` (depth first, one
/// open directory per level). Other mounts are neither changed nor entered; nor are the
/// directories in `skip`.
pub(super) fn fix_below(
    top: BorrowedFd,
    mnt: u64,
    uid: u32,
    gid: u32,
    skip: &[(u64, u64)],
    out: &mut FixOutcome,
) {
    let mut b = Below {
        mnt,
        uid,
        gid,
        skip,
        out,
        rel: Vec::new(),
    };
    let mut stack = match open_dir_of(top) {
        Ok(fd) => vec![Level {
            fd,
            dents: Dents::new(),
            rel_len: 0,
        }],
        Err(e) => return b.out.fail(b".", format!("cannot read: {e}")),
    };
    while let Some(level) = stack.last_mut() {
        if level.dents.is_drained() {
            match level.dents.fill(level.fd.as_fd()) {
                Ok(true) => {}
                Ok(false) => {
                    b.rel.truncate(level.rel_len);
                    stack.pop();
                    continue;
                }
                Err(e) => {
                    let here: &[u8] = if b.rel.is_empty() { b"." } else { &b.rel };
                    b.out.fail(here, format!("reading: {e}"));
                    b.rel.truncate(level.rel_len);
                    stack.pop();
                    continue;
                }
            }
        }
        let Some(ent) = level.dents.next_entry() else {
            continue;
        };
        let base = b.rel.len();
        if !b.rel.is_empty() {
            b.rel.push(b'/');
        }
        b.rel.extend_from_slice(ent.name.to_bytes());
        match b.entry(level.fd.as_fd(), ent.name) {
            // `rel` keeps this directory's name while inside it.
            Some(fd) => stack.push(Level {
                fd,
                dents: Dents::new(),
                rel_len: base,
            }),
            None => b.rel.truncate(base),
        }
    }
}

impl Below<'_> {
    /// Gives the entry `name` of `dir` (`self.rel`) to uid:gid. Some(a readable fd of it) when
    /// it is a directory to walk next.
    fn entry(&mut self, dir: BorrowedFd, name: &CStr) -> Option<OwnedFd> {
        let h = match open_handle(dir, name) {
            Ok(h) => h,
            Err(Errno::ENOENT) => return None, // removed meanwhile: nothing left to fix
            Err(e) => return self.fail(e.to_string()),
        };
        let (st, h_mnt) = match stat_mnt(h.as_fd()) {
            Ok(s) => s,
            Err(e) => return self.fail(e.to_string()),
        };
        if is_dir(&st) && self.skip.contains(&(st.st_dev, st.st_ino)) {
            return None; // the root of a nested tree: its own owner decides there
        }
        if h_mnt != self.mnt {
            // A mount point (another filesystem or a bind mount): neither changed nor entered,
            // and so not everything below the object is known to be given back.
            return self.fail("mount point: another mount, not changed or entered".into());
        }
        match give_handle(h.as_fd(), &st, h_mnt, self.mnt, self.uid, self.gid) {
            Ok(g) => self.out.count(g),
            Err(e) => self.out.fail(&self.rel, e),
        }
        if !is_dir(&st) {
            return None;
        }
        match open_dir_of(h.as_fd()) {
            Ok(fd) => Some(fd),
            Err(e) => self.fail(format!("cannot read: {e}")),
        }
    }

    fn fail(&mut self, msg: String) -> Option<OwnedFd> {
        self.out.fail(&self.rel, msg);
        None
    }
}
