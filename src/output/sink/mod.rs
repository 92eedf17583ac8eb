//! Where event lines go: stdout, or a file that logrotate may move away (`-o FILE`).
//!
//! Lines are buffered and written with as few syscalls as possible; a buffer that grows past
//! [`Sink::FLUSH_AT`] is written out up to its last newline only, so a line is never split
//! between two files by a later [`Sink::reopen`]. The file is opened O_APPEND, so lines from
//! several writers (or a reopen racing with logrotate's `copytruncate`) never overwrite each
//! other.
//!
//! The agent runs as root, and the `-o` path may lie in a directory others can write to
//! (`/tmp`): [`open_output`] never follows a symlink planted by someone else, never appends to
//! a file someone else made or can write, and never blocks on a FIFO (see its rules).
//!
//! A full disk (ENOSPC, EDQUOT) does not stop the agent: the lines are kept in memory (up to
//! [`KEEP_MAX`] bytes; whole lines beyond that are dropped and counted), every flush retries,
//! and once writing works again the kept lines are written, then one
//! `{"time":…,"op":"lost","count":N,"reason":"output"}` line for the N dropped ones. One line on
//! stderr when the outage starts, one when dropping starts, one when it is over.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::sys;

mod open;
pub use open::open_dir_checked;
use open::open_output;

/// Bytes of whole lines kept in memory while the output cannot be written (full disk).
pub const KEEP_MAX: usize = 4 << 20;

enum Target {
    Stdout,
    File {
        path: PathBuf,
        file: File,
    },
    /// A scripted writer for the unit tests (short writes, ENOSPC on demand).
    #[cfg(test)]
    Test(Box<dyn io::Write>),
}

/// A buffered line sink. Write whole lines with [`Sink::write_all`]; call [`Sink::flush`] after
/// each batch of events and [`Sink::reopen`] between events when SIGHUP was seen.
pub struct Sink {
    target: Target,
    buf: Vec<u8>,
    /// While writes fail for lack of space: the errno. Lines are kept (bounded), not written,
    /// until a flush succeeds.
    outage: Option<i32>,
    /// Lines dropped during the outage because `keep_max` was reached; reported in-band (one
    /// `lost` line) once writing works again. While non-zero every new line is dropped, so the
    /// `lost` line sits exactly where the lines are missing.
    dropped: u64,
    /// The start of the line now arriving was dropped: drop the rest of it too.
    dropping_line: bool,
    /// `buf` starts with the rest of a line whose start is already in the file (a short write):
    /// it must go to the same file, never be dropped.
    head_torn: bool,
    /// Whether the lines are JSON (the first byte ever written was `{`): the form of the
    /// `lost` line.
    json: Option<bool>,
    keep_max: usize,
}

impl Sink {
    /// Buffered bytes beyond which `write_all` writes whole lines out by itself.
    pub const FLUSH_AT: usize = 64 * 1024;

    fn with_target(target: Target) -> Sink {
        Sink {
            target,
            buf: Vec::with_capacity(Self::FLUSH_AT + 4096),
            outage: None,
            dropped: 0,
            dropping_line: false,
            head_torn: false,
            json: None,
            keep_max: KEEP_MAX,
        }
    }

    /// Lines to standard output. `reopen` does nothing (beyond flushing).
    pub fn stdout() -> Sink {
        Sink::with_target(Target::Stdout)
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self.target, Target::Stdout)
    }

    /// Lines appended to `path`, created with mode 0640 (less what the umask removes) when it
    /// does not exist, under the rules of [`open_output`]. The error is one line naming the
    /// path and the reason.
    pub fn file(path: impl AsRef<Path>) -> Result<Sink> {
        let path = path.as_ref().to_path_buf();
        let file = open_output(&path)?;
        Ok(Sink::with_target(Target::File { path, file }))
    }

    /// Appends `buf` (one or more whole lines, normally) to the buffer; writes out the whole
    /// lines buffered so far once the buffer is large. While the output is full, keeps the
    /// lines (bounded) and returns Ok: [`Sink::flush`] retries.
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.json.is_none() {
            if let Some(&c) = buf.first() {
                self.json = Some(c == b'{');
            }
        }
        if self.outage.is_some() {
            self.keep(buf);
            return Ok(());
        }
        let buf = self.skip_dropped_rest(buf);
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= Self::FLUSH_AT {
            self.write_lines()?;
        }
        Ok(())
    }

    /// `write_all` of the line(s) `render` makes, rendered straight into the buffer where
    /// nothing else has to see them first (no outage, no line being dropped, the form known):
    /// one copy of each event's line fewer. `scratch` is where they are rendered otherwise.
    pub fn write_with(
        &mut self,
        scratch: &mut Vec<u8>,
        render: impl FnOnce(&mut Vec<u8>),
    ) -> io::Result<()> {
        if self.outage.is_some() || self.dropping_line || self.json.is_none() {
            scratch.clear();
            render(scratch);
            return self.write_all(scratch);
        }
        render(&mut self.buf);
        if self.buf.len() >= Self::FLUSH_AT {
            self.write_lines()?;
        }
        Ok(())
    }

    /// Writes out everything buffered, a trailing partial line included. During an outage
    /// this is the retry; it returns Ok while the output is still full.
    pub fn flush(&mut self) -> io::Result<()> {
        let n = self.buf.len();
        self.push(n)
    }

    /// After logrotate moved the file away: writes the buffered whole lines to the old file,
    /// then opens the path anew (under the rules of [`open_output`]) and continues there. A
    /// partial line still in the buffer (a caller that reopens mid-line) goes to the new file
    /// in one piece. If the path cannot be opened or is refused, the old file is kept (nothing
    /// is lost) and the error, naming the path and the reason, is returned. During an outage
    /// the kept lines go to the new file (the old one is full).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.write_lines()?;
        if let Target::File { path, file } = &mut self.target {
            *file = open_output(path)?;
            if self.outage.is_some() && self.head_torn {
                // The start of this line is in the old file, which stays torn; its rest would
                // be garbage in the new one.
                // It counts as a dropped line.
                let nl = self.buf.iter().position(|&c| c == b'\n');
                self.buf.drain(..nl.map_or(self.buf.len(), |i| i + 1));
                self.dropping_line = nl.is_none();
                self.dropped += 1;
                self.head_torn = false;
            }
        }
        Ok(())
    }

    /// What the outage messages call the output.
    fn name(&self) -> String {
        match &self.target {
            Target::Stdout => "standard output".into(),
            Target::File { path, .. } => path.display().to_string(),
            #[cfg(test)]
            Target::Test(_) => "test".into(),
        }
    }

    /// Drops the rest of a line whose start was dropped; returns what follows it.
    fn skip_dropped_rest<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        if !self.dropping_line {
            return data;
        }
        match data.iter().position(|&c| c == b'\n') {
            Some(i) => {
                self.dropping_line = false;
                &data[i + 1..]
            }
            None => &[],
        }
    }

    /// During an outage: appends whole lines while they fit in `keep_max`; beyond that drops
    /// whole lines (and every later one until the output works again) and counts them.
    fn keep(&mut self, mut data: &[u8]) {
        loop {
            data = self.skip_dropped_rest(data);
            if data.is_empty() || self.dropping_line {
                return;
            }
            let end = data
                .iter()
                .position(|&c| c == b'\n')
                .map_or(data.len(), |i| i + 1);
            let (piece, rest) = data.split_at(end);
            data = rest;
            // Where the line this piece belongs to starts in the buffer.
            let start = self
                .buf
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(0, |i| i + 1);
            let protected = start == 0 && self.head_torn;
            if !protected && (self.dropped > 0 || self.buf.len() + piece.len() > self.keep_max) {
                if self.dropped == 0 {
                    eprintln!(
                        "ownwatch: {}: {} MiB of events waiting; dropping new ones (they will \
                         be counted in a \"lost\" line) until it can be written again",
                        self.name(),
                        self.keep_max >> 20
                    );
                }
                self.buf.truncate(start);
                self.dropped += 1;
                self.dropping_line = !piece.ends_with(b"\n");
                continue;
            }
            self.buf.extend_from_slice(piece);
        }
    }

    fn write_lines(&mut self) -> io::Result<()> {
        match self.buf.iter().rposition(|&c| c == b'\n') {
            Some(i) => self.push(i + 1),
            None => Ok(()),
        }
    }

    /// Writes `buf[..n]`. A full disk starts (or continues) an outage and is not an error;
    /// the first write that works after one ends it: the `lost` line for what was dropped
    /// follows the kept lines.
    fn push(&mut self, n: usize) -> io::Result<()> {
        if let Err(e) = self.write_prefix(n) {
            let Some(errno) = e.raw_os_error().filter(|&c| is_full(c)) else {
                return Err(e);
            };
            if self.outage.is_none() {
                eprintln!(
                    "ownwatch: {}: {}; keeping events and retrying",
                    self.name(),
                    nix::errno::Errno::from_raw(errno).desc()
                );
                self.outage = Some(errno);
            }
            return Ok(());
        }
        if self.outage.take().is_some() {
            let dropped = std::mem::take(&mut self.dropped);
            eprintln!(
                "ownwatch: {}: writing again; {}",
                self.name(),
                if dropped == 0 {
                    "no events were lost".to_string()
                } else {
                    format!("{dropped} events did not fit in memory and are reported as lost")
                }
            );
            if dropped > 0 {
                let mut l = Vec::new();
                crate::output::lost_output_line(
                    &crate::output::timefmt::now_rfc3339(),
                    dropped,
                    self.json.unwrap_or(true),
                    &mut l,
                );
                // Nothing is left in the buffer here (every line was dropped while counting),
                // but a line must never be split: put it in front of whatever is.
                let k = l.len();
                self.buf.splice(0..0, l);
                return self.push(k);
            }
        }
        Ok(())
    }

    /// Writes `buf[..n]` and drops it from the buffer. On an error what was written is dropped
    /// and the rest kept, so a later call can retry.
    fn write_prefix(&mut self, n: usize) -> io::Result<()> {
        let target = &mut self.target;
        let (done, res) = sys::write_all_with(
            |b| match target {
                Target::Stdout => sys::write(sys::stdout(), b),
                Target::File { file, .. } => sys::write(file.as_fd(), b),
                #[cfg(test)]
                Target::Test(w) => io::Write::write(w, b),
            },
            &self.buf[..n],
        );
        if done > 0 {
            self.head_torn = self.buf[done - 1] != b'\n';
        }
        self.buf.drain(..done);
        res
    }
}

/// Errors that mean "no room now, maybe later": keep the lines and retry. EIO is not one of
/// them (a failing disk; exit and let the service manager tell someone).
fn is_full(errno: i32) -> bool {
    errno == libc::ENOSPC || errno == libc::EDQUOT
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.flush();
        if self.outage.is_some() {
            let kept = self.buf.iter().filter(|&&c| c == b'\n').count();
            eprintln!(
                "ownwatch: {}: still cannot be written at exit; {} kept and {} dropped events \
                 are lost",
                self.name(),
                kept,
                self.dropped
            );
        }
    }
}

#[cfg(test)]
mod tests;
