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

use std::ffi::CString;
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use nix::errno::Errno;

use crate::cli::ScanArgs;
use crate::sys;
use crate::users::parse_owner;

mod line;
mod worker;

use worker::Worker;

/// A root to scan, opened and validated before any output.
struct ScanRoot {
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
    tree: &'t ScanRoot,
}

enum Work<'t> {
    /// A root: report it, then read it.
    Root(&'t ScanRoot),
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
struct Scan<'t> {
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
    /// Offenders left as they were: all of them without --fix, those it could not fix with it.
    remaining: AtomicU64,
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
    let walk = Scan {
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
        remaining: AtomicU64::new(0),
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
    // 1: something is still wrongly owned (found; with --fix, not given back).
    Ok(if walk.remaining.load(Ordering::Relaxed) > 0 {
        1
    } else {
        0
    })
}

fn open_trees(args: &ScanArgs) -> Result<Vec<ScanRoot>> {
    let owner = args.owner.as_deref().map(parse_owner).transpose()?;
    let mut trees: Vec<ScanRoot> = Vec::new();
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
        trees.push(ScanRoot {
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

impl<'t> Scan<'t> {
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
