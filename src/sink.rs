//! Where event lines go: stdout, or a file that logrotate may move away (`-o FILE`).
//!
//! Lines are buffered and written with as few syscalls as possible; a buffer that grows past
//! [`Sink::FLUSH_AT`] is written out up to its last newline only, so a line is never split
//! between two files by a later [`Sink::reopen`]. The file is opened O_APPEND, so lines from
//! several writers (or a reopen racing with logrotate's `copytruncate`) never overwrite each
//! other.

// Used by `watch -o` (wired separately); until then only the tests use it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use anyhow::{Context, Result};

enum Target {
    Stdout,
    File { path: PathBuf, file: File },
}

/// A buffered line sink. Write whole lines with [`Sink::write_all`]; call [`Sink::flush`] after
/// each batch of events and [`Sink::reopen`] between events when SIGHUP was seen.
pub struct Sink {
    target: Target,
    buf: Vec<u8>,
}

impl Sink {
    /// Buffered bytes beyond which `write_all` writes whole lines out by itself.
    pub const FLUSH_AT: usize = 64 * 1024;

    /// Lines to standard output. `reopen` does nothing (beyond flushing).
    pub fn stdout() -> Sink {
        Sink {
            target: Target::Stdout,
            buf: Vec::with_capacity(Self::FLUSH_AT + 4096),
        }
    }

    /// Lines appended to `path`, created with mode 0640 (less what the umask removes) when it
    /// does not exist. The error names the path.
    pub fn file(path: impl AsRef<Path>) -> Result<Sink> {
        let path = path.as_ref().to_path_buf();
        let file =
            open_append(&path).with_context(|| format!("{}: cannot open", path.display()))?;
        Ok(Sink {
            target: Target::File { path, file },
            buf: Vec::with_capacity(Self::FLUSH_AT + 4096),
        })
    }

    /// Appends `buf` (one or more whole lines, normally) to the buffer; writes out the whole
    /// lines buffered so far once the buffer is large.
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= Self::FLUSH_AT {
            self.write_lines()?;
        }
        Ok(())
    }

    /// Writes out everything buffered, a trailing partial line included.
    pub fn flush(&mut self) -> io::Result<()> {
        let n = self.buf.len();
        self.write_prefix(n)
    }

    /// After logrotate moved the file away: writes the buffered whole lines to the old file,
    /// then opens the path anew and continues there. A partial line still in the buffer (a
    /// caller that reopens mid-line) goes to the new file in one piece. If the path cannot be
    /// opened the old file is kept (nothing is lost) and the error is returned.
    pub fn reopen(&mut self) -> io::Result<()> {
        self.write_lines()?;
        if let Target::File { path, file } = &mut self.target {
            *file = open_append(path)?;
        }
        Ok(())
    }

    fn write_lines(&mut self) -> io::Result<()> {
        match self.buf.iter().rposition(|&c| c == b'\n') {
            Some(i) => self.write_prefix(i + 1),
            None => Ok(()),
        }
    }

    /// Writes `buf[..n]` and drops it from the buffer. On an error what was written is dropped
    /// and the rest kept, so a later call can retry.
    fn write_prefix(&mut self, n: usize) -> io::Result<()> {
        let mut done = 0;
        let res = loop {
            if done == n {
                break Ok(());
            }
            let r = match &mut self.target {
                Target::Stdout => write_fd(stdout_fd(), &self.buf[done..n]),
                Target::File { file, .. } => file.write(&self.buf[done..n]),
            };
            match r {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.buf.drain(..done);
        res
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

fn stdout_fd() -> BorrowedFd<'static> {
    // SAFETY: fd 1 stays open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// One write(2), bypassing std's line-buffered Stdout (our buffer already batches lines).
fn write_fd(fd: BorrowedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: writes from a valid slice.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

static SIGHUP_FLAG: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_sighup(_: libc::c_int) {
    let p = SIGHUP_FLAG.load(Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: the pointer came from a &'static AtomicBool.
        unsafe { (*p).store(true, Ordering::SeqCst) };
    }
}

/// Sets `flag` on each SIGHUP. No SA_RESTART, so a blocking poll returns (EINTR) and the loop
/// can reopen promptly; the caller clears the flag, then calls [`Sink::reopen`].
pub fn install_sighup(flag: &'static AtomicBool) -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    SIGHUP_FLAG.store(
        flag as *const AtomicBool as *mut AtomicBool,
        Ordering::SeqCst,
    );
    let sa = SigAction::new(
        SigHandler::Handler(on_sighup),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe { sigaction(Signal::SIGHUP, &sa) }.context("installing the SIGHUP handler")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    static N: AtomicU32 = AtomicU32::new(0);

    struct TempDir(PathBuf);
    impl TempDir {
        fn new() -> Self {
            let p = std::env::temp_dir().join(format!(
                "ownwatch-sink-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn line(i: usize) -> Vec<u8> {
        // Lengths vary from 20 to ~3000 bytes so lines straddle the flush threshold.
        format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i * 37 % 3000)).into_bytes()
    }

    fn lines_of(data: &[u8]) -> Vec<Vec<u8>> {
        assert!(data.is_empty() || data.ends_with(b"\n"), "ends mid-line");
        data.split_inclusive(|&c| c == b'\n')
            .map(|l| l.to_vec())
            .collect()
    }

    #[test]
    fn creates_0640_and_appends() {
        let t = TempDir::new();
        let p = t.0.join("out.jsonl");
        let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(umask);
        {
            let mut s = Sink::file(&p).unwrap();
            s.write_all(b"one\n").unwrap();
        }
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640 & !umask.bits());
        {
            let mut s = Sink::file(&p).unwrap();
            s.write_all(b"two\n").unwrap();
            s.flush().unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\n");
            s.write_all(b"three\n").unwrap();
            // Buffered until flushed.
            assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\n");
        }
        assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\nthree\n");
        let e = Sink::file(t.0.join("no/such/dir/x")).err().unwrap();
        assert!(format!("{e:#}").contains("no/such/dir/x: cannot open: No such file"));
    }

    #[test]
    fn large_buffers_are_written_in_whole_lines() {
        let t = TempDir::new();
        let p = t.0.join("out.jsonl");
        let mut s = Sink::file(&p).unwrap();
        let mut written = 0;
        for i in 0..200 {
            let l = line(i);
            // Each line in two pieces, as a careless caller might.
            let (a, b) = l.split_at(l.len() / 2);
            s.write_all(a).unwrap();
            let on_disk = std::fs::read(&p).unwrap();
            assert!(on_disk.is_empty() || on_disk.ends_with(b"\n"));
            s.write_all(b).unwrap();
            written += l.len();
        }
        let on_disk = std::fs::read(&p).unwrap().len();
        assert!(on_disk > 0 && on_disk < written, "{on_disk} of {written}");
        s.flush().unwrap();
        let want: Vec<_> = (0..200).map(line).collect();
        assert_eq!(lines_of(&std::fs::read(&p).unwrap()), want);
    }

    #[test]
    fn rename_then_reopen_splits_at_a_line() {
        let t = TempDir::new();
        let p = t.0.join("out.jsonl");
        let old = t.0.join("out.jsonl.1");
        let mut s = Sink::file(&p).unwrap();
        for i in 0..500 {
            s.write_all(&line(i)).unwrap();
        }
        // logrotate: rename, then signal. Lines written before the reopen still belong to the
        // old file, whether or not they were buffered at the time of the rename.
        std::fs::rename(&p, &old).unwrap();
        for i in 500..600 {
            s.write_all(&line(i)).unwrap();
        }
        // A partial line at reopen time moves to the new file whole.
        s.write_all(b"{\"partial\":").unwrap();
        s.reopen().unwrap();
        s.write_all(b"true}\n").unwrap();
        for i in 600..1000 {
            s.write_all(&line(i)).unwrap();
        }
        drop(s);
        let want_old: Vec<_> = (0..600).map(line).collect();
        let mut want_new = vec![b"{\"partial\":true}\n".to_vec()];
        want_new.extend((600..1000).map(line));
        assert_eq!(lines_of(&std::fs::read(&old).unwrap()), want_old);
        assert_eq!(lines_of(&std::fs::read(&p).unwrap()), want_new);
    }

    #[test]
    fn reopen_failure_keeps_the_old_file() {
        let t = TempDir::new();
        let sub = t.0.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let p = sub.join("out.jsonl");
        let moved = t.0.join("moved");
        let mut s = Sink::file(&p).unwrap();
        s.write_all(b"a\n").unwrap();
        std::fs::rename(&sub, &moved).unwrap(); // the path's directory is gone
        assert!(s.reopen().is_err());
        s.write_all(b"b\n").unwrap();
        s.flush().unwrap();
        assert_eq!(std::fs::read(moved.join("out.jsonl")).unwrap(), b"a\nb\n");
    }

    /// A writer storm with a real SIGHUP: another thread renames the file and signals while
    /// lines keep coming; the writer reopens between lines when it sees the flag. Every line
    /// lands exactly once, whole, in order, the old file's lines before the new file's.
    #[test]
    fn sighup_reopen_under_a_write_storm() {
        static HUP: AtomicBool = AtomicBool::new(false);
        install_sighup(&HUP).unwrap();
        let t = TempDir::new();
        let p = t.0.join("out.jsonl");
        let rotated: Arc<Vec<PathBuf>> = Arc::new(
            (1..=3)
                .map(|k| t.0.join(format!("out.jsonl.{k}")))
                .collect(),
        );
        let mut s = Sink::file(&p).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let rotator = {
            let (p, rotated, done) = (p.clone(), rotated.clone(), done.clone());
            std::thread::spawn(move || {
                for r in rotated.iter() {
                    std::thread::sleep(std::time::Duration::from_millis(30));
                    std::fs::rename(&p, r).unwrap();
                    nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGHUP)
                        .unwrap();
                    // Wait for the writer to have reopened before the next rotation.
                    while !p.exists() {
                        std::thread::yield_now();
                    }
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let mut i = 0;
        let mut reopens = 0;
        while !done.load(Ordering::SeqCst) || i < 1000 {
            if HUP.swap(false, Ordering::SeqCst) {
                s.reopen().unwrap();
                reopens += 1;
            }
            s.write_all(format!("{{\"n\":{i}}}\n").as_bytes()).unwrap();
            if i % 97 == 0 {
                s.flush().unwrap();
            }
            i += 1;
        }
        rotator.join().unwrap();
        drop(s);
        assert_eq!(reopens, 3);
        let mut all = Vec::new();
        for f in rotated.iter().chain(std::iter::once(&p)) {
            let data = std::fs::read(f).unwrap();
            let ls = lines_of(&data);
            assert!(!ls.is_empty(), "{} is empty", f.display());
            all.extend(ls);
        }
        let want: Vec<Vec<u8>> = (0..i)
            .map(|k| format!("{{\"n\":{k}}}\n").into_bytes())
            .collect();
        assert_eq!(all.len(), want.len());
        assert!(all == want, "lines lost, duplicated, torn or out of order");
    }
}
