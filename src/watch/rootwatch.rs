//! Whether a watched root may have moved since it was last looked at, told by the kernel
//! instead of asked every round.
//!
//! Where a root is now is a readlink of its handle (roots.rs), and the reader used to do it for
//! every root at every round: with records coming one at a time, each woke the reader, and 30
//! roots cost it 270–430 µs of CPU per event (~55 µs without the readlinks; this 6.18 machine).
//! A root's path changes only when it or a directory above it is renamed or removed, or the
//! mounts change: inotify says the first (IN_MOVE_SELF, IN_DELETE_SELF on the root and each
//! directory above it, none on what happens inside them), /proc/self/mountinfo the second
//! (POLLPRI). One poll(2) of both per round then replaces the readlinks. What neither can say
//! (a rename on a remote filesystem's server, a watch the kernel refused) is caught by looking
//! anyway once a second, as `Roots::refresh` does, and at every round for a root whose
//! directories could not all be watched.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// inotify events of a root or a directory above it that can change where the root is.
const MASK: u32 = libc::IN_MOVE_SELF | libc::IN_DELETE_SELF | libc::IN_UNMOUNT | libc::IN_ONLYDIR;

pub struct RootWatch {
    inotify: OwnedFd,
    /// /proc/self/mountinfo, polled for POLLPRI: the mount table changed
    mountinfo: Option<File>,
}

impl RootWatch {
    /// None where inotify cannot be had (then every round looks, as without this).
    pub fn new() -> Option<RootWatch> {
        // SAFETY: plain syscall; the result is a new fd we own.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        Some(RootWatch {
            // SAFETY: fresh fd from the kernel.
            inotify: unsafe { OwnedFd::from_raw_fd(fd) },
            mountinfo: File::open("/proc/self/mountinfo").ok(),
        })
    }

    /// Watches `path` (a root's canonical path) and every directory above it. False when one
    /// could not be watched (the inotify limit, a directory already gone): that root must be
    /// looked at every round.
    pub fn watch(&self, path: &[u8]) -> bool {
        if path.first() != Some(&b'/') {
            return false;
        }
        let mut ok = true;
        let mut end = 1;
        loop {
            let dir = &path[..end];
            ok &= self.add(dir);
            if end >= path.len() {
                return ok;
            }
            end = match path[end + 1..].iter().position(|&c| c == b'/') {
                Some(k) => end + 1 + k,
                None => path.len(),
            };
        }
    }

    fn add(&self, dir: &[u8]) -> bool {
        let Ok(c) = CString::new(dir) else {
            return false;
        };
        // SAFETY: a NUL-terminated path; the watch descriptor is not kept (the events of all
        // of them mean the same).
        unsafe { libc::inotify_add_watch(self.inotify.as_raw_fd(), c.as_ptr(), MASK) >= 0 }
    }

    /// Whether a root may have moved since the last call: a watched directory was renamed or
    /// removed, its filesystem unmounted, or the mount table changed. Reads what inotify
    /// queued, so each change is said once.
    pub fn changed(&mut self) -> bool {
        let mut fds = [
            libc::pollfd {
                fd: self.inotify.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.mountinfo.as_ref().map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLPRI,
                revents: 0,
            },
        ];
        // SAFETY: two pollfds in a live array; a negative fd is ignored.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, 0) } <= 0 {
            return false;
        }
        // (mountinfo says POLLPRI|POLLERR once per change of the table: the poll took it)
        if fds[0].revents != 0 {
            self.drain();
        }
        true
    }

    fn drain(&self) {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a live buffer of its length.
            let n =
                unsafe { libc::read(self.inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                let e = io::Error::last_os_error();
                if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn a_mount_is_said() {
        if !crate::testutil::root_or_skip("a_mount_is_said", "mounts a tmpfs") {
            return;
        }
        let base = crate::testutil::temp_dir("rootwatch-mount");
        let mut w = RootWatch::new().unwrap();
        while w.changed() {} // (other tests' mounts)
        nix::mount::mount(
            Some("tmpfs"),
            base.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        let said = w.changed();
        nix::mount::umount(base.path()).unwrap();
        assert!(said);
    }

    #[test]
    fn renames_and_removals_above_a_root_are_said_once_and_inside_it_never() {
        let base = crate::testutil::temp_dir("rootwatch");
        let root = base.path().join("a/b/root");
        std::fs::create_dir_all(&root).unwrap();
        let mut w = RootWatch::new().unwrap();
        // (other tests mount and unmount meanwhile: the mount table's part is left out here)
        w.mountinfo = None;
        assert!(w.watch(root.as_os_str().as_bytes()));
        assert!(!w.changed());
        // what happens inside the root or beside its directories says nothing
        std::fs::create_dir(root.join("x")).unwrap();
        std::fs::rename(root.join("x"), root.join("y")).unwrap();
        std::fs::create_dir(base.path().join("a/other")).unwrap();
        std::fs::remove_dir(base.path().join("a/other")).unwrap();
        assert!(!w.changed());
        // a directory above it renamed: said once
        std::fs::rename(base.path().join("a/b"), base.path().join("a/c")).unwrap();
        assert!(w.changed());
        assert!(!w.changed());
        // the root itself removed
        let root = base.path().join("a/c/root");
        std::fs::remove_dir(root.join("y")).unwrap();
        std::fs::remove_dir(&root).unwrap();
        assert!(w.changed());
        // a path not absolute, or one that is not there, cannot be watched
        assert!(!w.watch(b"rel/dir"));
        assert!(!w.watch(root.as_os_str().as_bytes()));
    }
}
