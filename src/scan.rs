//! `ownwatch scan`: one JSON line for every entry of the trees whose owner is not the expected
//! one, optionally giving it back (`--fix`).
//!
//! The walk never uses path strings below the roots: each directory is opened relative to its
//! parent's fd with O_NOFOLLOW|O_DIRECTORY, read with getdents64 into one buffer, and every
//! entry is statx'ed (AT_SYMLINK_NOFOLLOW) relative to it. So symlinks are never followed,
//! paths longer than PATH_MAX are no problem, and a directory swapped for a symlink mid-walk is
//! refused rather than followed.
//!
//! Work is shared by a few threads through one LIFO queue (depth first, which bounds the open
//! directory fds): a subdirectory is queued as (parent fd, name) and opened by whoever takes it;
//! a reader that sees idle workers hands them whole getdents batches of names to stat, so a
//! single huge directory is scanned in parallel too. Each worker formats lines into its own
//! buffer and writes whole buffers to stdout under a lock: lines come in any order, each whole.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use nix::errno::Errno;

use crate::cli::ScanArgs;
use crate::fix;
use crate::output::json::{self, Obj};
use crate::output::mode_str;
use crate::output::timefmt::rfc3339;
use crate::sys::{self, Dents};
use crate::users::{group_name, parse_owner, user_name};

/// A root to scan, opened and validated before any output.
struct Tree {
    path: Vec<u8>,
    fd: OwnedFd,
    dev: u64,
    ino: u64,
    /// The mount the root lies on: nothing on another one is entered (without
    /// --cross-mounts) or fixed (ever).
    mnt: u64,
    uid: u32,
    gid: u32,
}

/// An open directory of a tree. Children queued for opening hold it (their parent) alive.
struct Dir<'t> {
    fd: OwnedFd,
    path: Vec<u8>,
    tree: &'t Tree,
}

enum Work<'t> {
    /// A root: report it, then read it.
    Root(&'t Tree),
    /// A subdirectory to open from its parent, then read.
    Open { parent: Arc<Dir<'t>>, name: CString },
    /// Names read from `dir` by a busy worker: NUL-terminated, back to back, to stat.
    Names { dir: Arc<Dir<'t>>, names: Vec<u8> },
}

struct Queue<'t> {
    items: Vec<Work<'t>>,
    /// Items taken and still being processed.
    busy: usize,
}

/// Everything the workers share.
struct Walk<'t> {
    queue: Mutex<Queue<'t>>,
    cv: Condvar,
    idle: AtomicUsize,
    fix: bool,
    xdev: bool,
    /// (st_dev, st_ino) of every root when there are several: a walk that meets another
    /// tree's root leaves it, and all below it, to that tree (the innermost owner decides).
    roots: Vec<(u64, u64)>,
    /// Serialises writes to stdout; holds the first write error.
    out: Mutex<Option<io::Error>>,
    /// Set on a write error (a closed pipe included): stop early.
    stop: AtomicBool,
    scanned: AtomicU64,
    offenders: AtomicU64,
    unreadable: AtomicU64,
    /// Serialises stderr; true while a progress line is displayed.
    err: Mutex<bool>,
    progress: bool,
}

const OUT_FLUSH_AT: usize = 256 * 1024;

pub fn run(args: ScanArgs) -> Result<u8> {
    let trees = open_trees(&args)?;
    // Deep trees keep one fd per level open while their children wait in the queue.
    sys::raise_nofile_limit();
    let threads = std::env::var("OWNWATCH_SCAN_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .clamp(1, 16)
        });
    let walk = Walk {
        queue: Mutex::new(Queue {
            items: trees.iter().rev().map(Work::Root).collect(),
            busy: 0,
        }),
        cv: Condvar::new(),
        idle: AtomicUsize::new(0),
        fix: args.fix,
        xdev: !args.cross_mounts,
        roots: if trees.len() > 1 {
            trees.iter().map(|t| (t.dev, t.ino)).collect()
        } else {
            Vec::new()
        },
        out: Mutex::new(None),
        stop: AtomicBool::new(false),
        scanned: AtomicU64::new(0),
        offenders: AtomicU64::new(0),
        unreadable: AtomicU64::new(0),
        err: Mutex::new(false),
        progress: io::stderr().is_terminal(),
    };
    let start = Instant::now();
    let done = (Mutex::new(false), Condvar::new());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| Worker::new(&walk).run()))
            .collect();
        if walk.progress {
            s.spawn(|| walk.show_progress(start, &done));
        }
        for w in workers {
            // A panicking worker is a bug; surface it rather than report a partial scan.
            if let Err(p) = w.join() {
                std::panic::resume_unwind(p);
            }
        }
        *done.0.lock().unwrap() = true;
        done.1.notify_all();
    });
    if walk.progress {
        let _ = io::stderr().write_all(b"\r\x1b[K");
    }
    let unreadable = walk.unreadable.load(Ordering::Relaxed);
    if unreadable > 0 {
        let what = if unreadable == 1 { "entry" } else { "entries" };
        eprintln!(
            "ownwatch: {unreadable} {what} could not be read (see above); the scan is incomplete"
        );
    }
    if let Some(e) = walk.out.lock().unwrap().take() {
        if e.kind() != io::ErrorKind::BrokenPipe {
            bail!("writing results: {e}");
        }
    }
    Ok(if walk.offenders.load(Ordering::Relaxed) > 0 {
        1
    } else {
        0
    })
}

fn open_trees(args: &ScanArgs) -> Result<Vec<Tree>> {
    let owner = args.owner.as_deref().map(parse_owner).transpose()?;
    let mut trees: Vec<Tree> = Vec::new();
    let mut seen = Vec::new();
    for dir in &args.dirs {
        let shown = dir.display();
        let md = std::fs::metadata(dir).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => anyhow!("{shown}: no such directory"),
            _ => anyhow!("{shown}: {e}"),
        })?;
        if !md.is_dir() {
            bail!("{shown}: not a directory");
        }
        let path = std::fs::canonicalize(dir).map_err(|e| anyhow!("{shown}: {e}"))?;
        let fd = open_root(&path).map_err(|e| anyhow!("{shown}: cannot read: {}", e.desc()))?;
        let (st, mnt) = sys::stat_mnt(fd.as_fd()).map_err(|e| anyhow!("{shown}: {}", e.desc()))?;
        if seen.contains(&(st.st_dev, st.st_ino)) {
            continue;
        }
        seen.push((st.st_dev, st.st_ino));
        let (uid, gid) = match owner {
            Some((u, g)) => (u, g.unwrap_or(st.st_gid)),
            None => (st.st_uid, st.st_gid),
        };
        trees.push(Tree {
            path: path.as_os_str().as_bytes().to_vec(),
            fd,
            dev: st.st_dev,
            ino: st.st_ino,
            mnt,
            uid,
            gid,
        });
    }
    Ok(trees)
}

fn open_root(path: &Path) -> Result<OwnedFd, Errno> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    sys::openat(
        sys::cwd(),
        &c,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
}

impl<'t> Walk<'t> {
    fn push(&self, items: impl Iterator<Item = Work<'t>>) {
        let mut q = self.queue.lock().unwrap();
        let before = q.items.len();
        q.items.extend(items);
        let added = q.items.len() - before;
        drop(q);
        if added > 1 {
            self.cv.notify_all();
        } else if added == 1 {
            self.cv.notify_one();
        }
    }

    /// One line on stderr, clearing a progress line first.
    fn warn(&self, msg: std::fmt::Arguments) {
        let mut shown = self.err.lock().unwrap();
        let mut e = io::stderr().lock();
        if *shown {
            let _ = e.write_all(b"\r\x1b[K");
            *shown = false;
        }
        let _ = writeln!(e, "ownwatch: {msg}");
    }

    fn show_progress(&self, start: Instant, done: &(Mutex<bool>, Condvar)) {
        let mut finished = done.0.lock().unwrap();
        loop {
            let (f, _) = done
                .1
                .wait_timeout(finished, Duration::from_millis(200))
                .unwrap();
            finished = f;
            if *finished {
                return;
            }
            let n = self.scanned.load(Ordering::Relaxed);
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            let mut shown = self.err.lock().unwrap();
            let _ = write!(
                io::stderr().lock(),
                "\r\x1b[Kownwatch: {n} entries scanned, {:.0}/s, {} offending",
                n as f64 / secs,
                self.offenders.load(Ordering::Relaxed)
            );
            *shown = true;
        }
    }
}

struct Worker<'w, 't> {
    walk: &'w Walk<'t>,
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
    fn new(walk: &'w Walk<'t>) -> Self {
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

    fn run(mut self) {
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
                // The dir fd was opened for reading; a duplicate keeps `Tree` the owner.
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
        tree: &Tree,
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
struct PanicGuard<'w, 't>(&'w Walk<'t>);

impl Drop for PanicGuard<'_, '_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        if let Ok(mut q) = self.0.queue.lock() {
            q.busy -= 1;
        }
        self.0.cv.notify_all();
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    if !dir.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

fn kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "dir",
        libc::S_IFLNK => "symlink",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "char",
        libc::S_IFBLK => "block",
        _ => "unknown",
    }
}

/// A name as a JSON value: a string, or null when there is none.
fn json_name(name: Option<String>) -> Box<[u8]> {
    let mut v = Vec::new();
    json::opt_str(name.as_deref(), &mut v);
    v.into_boxed_slice()
}

/// One offender line, fields in the documented order.
fn entry_line(
    out: &mut Vec<u8>,
    path: &[u8],
    st: &libc::stat,
    user_json: &[u8],
    group_json: &[u8],
    tree: &[u8],
    fixed: Option<&Result<fix::Given, String>>,
) {
    let mut o = Obj::new(out);
    o.bytes("path", path);
    o.str("kind", kind(st.st_mode));
    o.num("uid", st.st_uid);
    o.num("gid", st.st_gid);
    o.raw("user", user_json);
    o.raw("group", group_json);
    o.str("mode", &mode_str(st.st_mode));
    let mtime = st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128;
    o.str("mtime", &rfc3339(mtime));
    o.bytes("tree", tree);
    match fixed {
        None => {}
        Some(Ok(g)) => {
            o.bool("fixed", true);
            if g.setid_cleared {
                o.bool("setid_cleared", true);
            }
        }
        Some(Err(e)) => {
            o.bool("fixed", false);
            o.str("fix_error", e);
        }
    }
    o.end();
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_of(mode: u32, uid: u32, gid: u32, mtime: i64, nsec: i64) -> libc::stat {
        // SAFETY: all-zero is a valid libc::stat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_mode = mode;
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_mtime = mtime;
        st.st_mtime_nsec = nsec;
        st
    }

    #[test]
    fn line_fields_in_order() {
        let mut out = Vec::new();
        let st = stat_of(libc::S_IFREG | 0o4755, 0, 4343, 1_795_614_135, 123_456_789);
        entry_line(
            &mut out,
            b"/srv/app/x",
            &st,
            b"\"root\"",
            b"null",
            b"/srv/app",
            None,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"path\":\"/srv/app/x\",\"kind\":\"file\",\"uid\":0,\"gid\":4343,\"user\":\"root\",\
             \"group\":null,\"mode\":\"4755\",\"mtime\":\"2026-11-25T13:42:15.123456789Z\",\
             \"tree\":\"/srv/app\"}\n"
        );
    }

    #[test]
    fn fix_fields_and_odd_bytes() {
        let mut out = Vec::new();
        let st = stat_of(libc::S_IFLNK | 0o777, 1, 2, 0, 0);
        entry_line(
            &mut out,
            b"/t/a\"\n\xff",
            &st,
            b"null",
            &json_name(Some("g".into())),
            b"/t",
            Some(&Err("EPERM: Operation not permitted".into())),
        );
        entry_line(
            &mut out,
            b"/t/b",
            &st,
            b"null",
            &json_name(None),
            b"/t",
            Some(&Ok(fix::Given {
                chowned: true,
                setid_cleared: true,
            })),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"path\":\"/t/a\\\"\\n\u{fffd}\",\"path_b64\":\"L3QvYSIK/w==\",\"kind\":\"symlink\",\
             \"uid\":1,\"gid\":2,\"user\":null,\"group\":\"g\",\"mode\":\"0777\",\
             \"mtime\":\"1970-01-01T00:00:00.000000000Z\",\"tree\":\"/t\",\"fixed\":false,\
             \"fix_error\":\"EPERM: Operation not permitted\"}\n\
             {\"path\":\"/t/b\",\"kind\":\"symlink\",\"uid\":1,\"gid\":2,\"user\":null,\
             \"group\":null,\"mode\":\"0777\",\"mtime\":\"1970-01-01T00:00:00.000000000Z\",\
             \"tree\":\"/t\",\"fixed\":true,\"setid_cleared\":true}\n"
        );
    }

    #[test]
    fn kinds_and_joins() {
        assert_eq!(kind(libc::S_IFIFO), "fifo");
        assert_eq!(kind(libc::S_IFSOCK), "socket");
        assert_eq!(kind(libc::S_IFCHR), "char");
        assert_eq!(kind(libc::S_IFBLK), "block");
        assert_eq!(kind(libc::S_IFDIR), "dir");
        assert_eq!(join(b"/", b"etc"), b"/etc");
        assert_eq!(join(b"/srv", b"app"), b"/srv/app");
    }
}
