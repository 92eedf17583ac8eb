//! A scan worker: takes work from the shared queue, reads directories with getdents64, stats
//! every entry relative to its directory fd, queues subdirectories, and formats the lines of
//! the offenders (fixing them with `--fix`) into its own buffer.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use nix::errno::Errno;

use super::line::{entry_line, json_name};
use super::{Dir, Scan, ScanRoot, Work, OUT_FLUSH_AT};
use crate::fix;
use crate::paths::join;
use crate::sys::{self, Dents};
use crate::users::{group_name, user_name};

pub(super) struct Worker<'w, 't> {
    walk: &'w Scan<'t>,
    out: Vec<u8>,
    /// uid/gid -> the JSON value of its name (`"root"` or `null`), looked up once per worker.
    users: HashMap<u32, Box<[u8]>>,
    groups: HashMap<u32, Box<[u8]>>,
    dents: Option<Dents>,
    /// Subdirectories found in the current batch, queued after it.
    subdirs: Vec<CString>,
    /// Entries stat'ed and offenders found since the last update of the shared counters.
    scanned: u64,
    offenders: u64,
}

impl<'w, 't> Worker<'w, 't> {
    pub(super) fn new(walk: &'w Scan<'t>) -> Self {
        Worker {
            walk,
            out: Vec::with_capacity(OUT_FLUSH_AT + 64 * 1024),
            users: HashMap::new(),
            groups: HashMap::new(),
            dents: None,
            subdirs: Vec::new(),
            scanned: 0,
            offenders: 0,
        }
    }

    pub(super) fn run(mut self) {
        let walk = self.walk;
        let mut q = walk.queue.lock().unwrap();
        loop {
            if walk.stop.load(Ordering::Relaxed) {
                q.items.clear();
            }
            if let Some(w) = q.items.pop() {
                q.busy += 1;
                drop(q);
                let guard = PanicGuard(walk);
                self.process(w);
                std::mem::forget(guard);
                self.count();
                q = walk.queue.lock().unwrap();
                q.busy -= 1;
                continue;
            }
            if q.busy == 0 {
                walk.cv.notify_all();
                break;
            }
            walk.idle.fetch_add(1, Ordering::Relaxed);
            q = walk.cv.wait(q).unwrap();
            walk.idle.fetch_sub(1, Ordering::Relaxed);
        }
        drop(q);
        self.flush_out();
    }

    fn count(&mut self) {
        if self.scanned > 0 {
            self.walk.scanned.fetch_add(self.scanned, Ordering::Relaxed);
            self.scanned = 0;
        }
        if self.offenders > 0 {
            self.walk
                .offenders
                .fetch_add(self.offenders, Ordering::Relaxed);
            self.offenders = 0;
        }
    }

    fn process(&mut self, w: Work<'t>) {
        match w {
            Work::Root(tree) => {
                match sys::fstat(tree.fd.as_fd()) {
                    Ok(st) => {
                        self.scanned += 1;
                        if st.st_uid != tree.uid || st.st_gid != tree.gid {
                            self.offender(&tree.path, tree, tree.fd.as_fd(), c"", &st);
                        }
                    }
                    Err(e) => self.unreadable("cannot stat", &tree.path, e),
                }
                // The dir fd was opened for reading; a duplicate keeps `ScanRoot` the owner.
                match tree.fd.try_clone() {
                    Ok(fd) => self.read_dir(Arc::new(Dir {
                        fd,
                        path: tree.path.clone(),
                        tree,
                    })),
                    Err(e) => self.note(format_args!(
                        "cannot read {}: {e}",
                        String::from_utf8_lossy(&tree.path)
                    )),
                }
            }
            Work::Open { parent, name } => {
                let path = join(&parent.path, name.to_bytes());
                let fd = match sys::open_dir(parent.fd.as_fd(), &name) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => return, // removed since it was listed
                    Err(Errno::ELOOP | Errno::ENOTDIR) => {
                        // Replaced by a symlink or a file since it was stat'ed: not followed.
                        return self.note(format_args!(
                            "{}: replaced by a non-directory during the scan, not entered",
                            String::from_utf8_lossy(&path)
                        ));
                    }
                    Err(e) => return self.unreadable("cannot read", &path, e),
                };
                let tree = parent.tree;
                drop(parent);
                if self.walk.xdev {
                    // Something mounted there since it was stat'ed.
                    match sys::mnt_id(fd.as_fd()) {
                        Ok(m) if m == tree.mnt => {}
                        Ok(_) => return,
                        Err(e) => return self.unreadable("cannot stat", &path, e),
                    }
                }
                self.read_dir(Arc::new(Dir { fd, path, tree }));
            }
            Work::Names { dir, names } => {
                for name in names.split_inclusive(|&c| c == 0) {
                    let name = CStr::from_bytes_with_nul(name).expect("NUL-terminated names");
                    self.entry(&dir, name);
                }
                self.queue_subdirs(&dir);
            }
        }
    }

    fn read_dir(&mut self, dir: Arc<Dir<'t>>) {
        let mut dents = self.dents.take().unwrap_or_else(Dents::new);
        loop {
            if self.walk.stop.load(Ordering::Relaxed) {
                break;
            }
            match dents.fill(dir.fd.as_fd()) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.note(format_args!(
                        "cannot read {}: {e}",
                        String::from_utf8_lossy(&dir.path)
                    ));
                    break;
                }
            }
            if self.walk.idle.load(Ordering::Relaxed) > 0 {
                // Someone is waiting for work: hand this batch over and keep reading.
                let mut names = Vec::with_capacity(16 * 1024);
                while let Some(e) = dents.next_entry() {
                    names.extend_from_slice(e.name.to_bytes_with_nul());
                }
                if !names.is_empty() {
                    self.walk.push(std::iter::once(Work::Names {
                        dir: dir.clone(),
                        names,
                    }));
                }
                continue;
            }
            while let Some(e) = dents.next_entry() {
                self.entry(&dir, e.name);
            }
            self.queue_subdirs(&dir);
            self.count();
        }
        self.dents = Some(dents);
    }

    fn queue_subdirs(&mut self, dir: &Arc<Dir<'t>>) {
        if self.subdirs.is_empty() {
            return;
        }
        let items = self.subdirs.drain(..).map(|name| Work::Open {
            parent: dir.clone(),
            name,
        });
        self.walk.push(items);
    }

    fn entry(&mut self, dir: &Dir<'t>, name: &CStr) {
        let (st, mnt) = match sys::stat_at(dir.fd.as_fd(), name) {
            Ok(s) => s,
            Err(Errno::ENOENT) => return, // removed since it was listed
            Err(e) => {
                let path = join(&dir.path, name.to_bytes());
                return self.unreadable("cannot stat", &path, e);
            }
        };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir && self.walk.roots.contains(&(st.st_dev, st.st_ino)) {
            // The root of another (nested) tree: scanned, and judged, as that tree.
            return;
        }
        self.scanned += 1;
        let tree = dir.tree;
        if st.st_uid != tree.uid || st.st_gid != tree.gid {
            let path = join(&dir.path, name.to_bytes());
            self.offender(&path, tree, dir.fd.as_fd(), name, &st);
        }
        // A mount point is told by its mount id (a bind mount of the same filesystem has the
        // same st_dev); by st_dev only where the kernel gives no mount id (before 5.8).
        let same_mount = match mnt {
            Some(m) => m == tree.mnt,
            None => st.st_dev == tree.dev,
        };
        if is_dir && (!self.walk.xdev || same_mount) {
            self.subdirs.push(name.to_owned());
        }
    }

    fn unreadable(&mut self, what: &str, path: &[u8], e: Errno) {
        self.note(format_args!(
            "{what} {}: {}",
            String::from_utf8_lossy(path),
            e.desc()
        ));
    }

    /// Something in the tree that was not scanned: one stderr line, and counted.
    fn note(&mut self, msg: std::fmt::Arguments) {
        self.walk.unreadable.fetch_add(1, Ordering::Relaxed);
        self.walk.warn(msg);
    }

    /// `name` in `dir` (empty: `dir` itself) is owned by someone else: fix it if asked, and
    /// write its line.
    fn offender(
        &mut self,
        path: &[u8],
        tree: &ScanRoot,
        dir: BorrowedFd,
        name: &CStr,
        st: &libc::stat,
    ) {
        self.offenders += 1;
        let fixed = self.walk.fix.then(|| {
            fix::fix_at(
                dir,
                name,
                Some((st.st_dev, st.st_ino)),
                tree.mnt,
                tree.uid,
                tree.gid,
            )
        });
        if !matches!(fixed, Some(Ok(_))) {
            self.walk.remaining.fetch_add(1, Ordering::Relaxed);
        }
        let user = self
            .users
            .entry(st.st_uid)
            .or_insert_with(|| json_name(user_name(st.st_uid)));
        let group = self
            .groups
            .entry(st.st_gid)
            .or_insert_with(|| json_name(group_name(st.st_gid)));
        entry_line(
            &mut self.out,
            path,
            st,
            user,
            group,
            &tree.path,
            fixed.as_ref(),
        );
        if self.out.len() >= OUT_FLUSH_AT {
            self.flush_out();
        }
    }

    fn flush_out(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let mut err = self.walk.out.lock().unwrap();
        if err.is_none() {
            if let Err(e) = sys::write_all(sys::stdout(), &self.out) {
                *err = Some(e);
                self.walk.stop.store(true, Ordering::Relaxed);
            }
        }
        self.out.clear();
    }
}

/// A worker that panics (a bug) must not leave the others waiting for it forever: the scan
/// stops and the panic reaches `run`.
struct PanicGuard<'w, 't>(&'w Scan<'t>);

impl Drop for PanicGuard<'_, '_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        if let Ok(mut q) = self.0.queue.lock() {
            q.busy -= 1;
        }
        self.0.cv.notify_all();
    }
}
