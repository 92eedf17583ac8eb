//! `--metrics FILE`: the agent's counts as a Prometheus text-exposition file, for
//! node_exporter's textfile collector (no listening socket: the hardened units allow local
//! sockets only). [`Counts`] is kept by the processor as events go out, [`render`] writes the
//! exposition text (sorted, so the same counts always give the same bytes), and
//! [`MetricsFile`] replaces FILE atomically: the text goes to `FILE.tmp` in the same
//! directory, which is then renamed over FILE, so a reader never sees half a file.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Result};
use nix::errno::Errno;

use super::Event;
use crate::sys;

/// What the metrics count, kept as events are written. Per (tree, op, writer) without
/// allocating for an event whose series exists already: by tree path, then (op, fsuid).
#[derive(Default)]
pub struct Counts {
    events: HashMap<Vec<u8>, HashMap<(&'static str, u32), u64>>,
    /// The writer's name as the first of its events named it (None: no passwd entry).
    names: HashMap<u32, Option<String>>,
    /// Records the kernel could not deliver (the in-band `lost` lines without a reason).
    pub lost: u64,
    /// --fix: events whose object was given back (`"fixed":true`), and those where it could
    /// not be (`"fixed":false`).
    pub fixed: u64,
    pub fix_errors: u64,
    /// When the last event was written, in seconds since the epoch.
    pub last_event: Option<f64>,
}

impl Counts {
    /// One event written (after --fix acted on it).
    pub fn event(&mut self, ev: &Event) {
        let per_tree = match self.events.get_mut(&ev.tree[..]) {
            Some(m) => m,
            None => self.events.entry(ev.tree.to_vec()).or_default(),
        };
        *per_tree.entry((ev.op, ev.fsuid)).or_default() += 1;
        self.names
            .entry(ev.fsuid)
            .or_insert_with(|| ev.user.as_deref().map(str::to_string));
        match ev.fixed {
            Some(true) => self.fixed += 1,
            Some(false) => self.fix_errors += 1,
            None => {}
        }
        self.last_event = Some(epoch_secs(SystemTime::now()));
    }

    /// The event series as their labels read: (tree, op, user) -> count, sorted. Paths that
    /// are not UTF-8 are shown with U+FFFD; two that then read the same are one series (an
    /// exposition must not repeat a series).
    fn series(&self) -> BTreeMap<(String, &'static str, String), u64> {
        let mut out = BTreeMap::new();
        for (tree, per) in &self.events {
            let tree = String::from_utf8_lossy(tree);
            for (&(op, uid), &n) in per {
                let user = match self.names.get(&uid) {
                    Some(Some(name)) => name.clone(),
                    _ => uid.to_string(),
                };
                *out.entry((tree.to_string(), op, user)).or_default() += n;
            }
        }
        out
    }
}

/// What does not change during a run.
pub struct Info {
    pub backend: &'static str,
    pub version: &'static str,
    /// When the agent started, in seconds since the epoch.
    pub start_time: f64,
}

/// Seconds since the epoch, as a float (0 before it).
pub fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The exposition text: every family with its `# HELP` and `# TYPE` lines, always in the same
/// order; the event series sorted by tree, op and user. `trees`: the trees still watched.
pub fn render(c: &Counts, info: &Info, trees: usize) -> String {
    let mut out = String::with_capacity(1024);
    family(
        &mut out,
        "ownwatch_events_total",
        "counter",
        "Offending writes reported, by watched tree (its root), op and writer (the event's \
         user, or its fsuid when it has no name).",
    );
    for ((tree, op, user), n) in c.series() {
        let _ = writeln!(
            out,
            "ownwatch_events_total{{tree=\"{}\",op=\"{}\",user=\"{}\"}} {n}",
            label_value(&tree),
            label_value(op),
            label_value(&user)
        );
    }
    let scalar = |out: &mut String, name: &str, kind: &str, help: &str, value: &str| {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    };
    scalar(
        &mut out,
        "ownwatch_lost_events_total",
        "counter",
        "Events the kernel could not deliver to ownwatch (reported in-band as \"lost\").",
        &c.lost.to_string(),
    );
    scalar(
        &mut out,
        "ownwatch_fixed_total",
        "counter",
        "Events whose object --fix gave back to the owner (\"fixed\":true).",
        &c.fixed.to_string(),
    );
    scalar(
        &mut out,
        "ownwatch_fix_errors_total",
        "counter",
        "Events whose object --fix could not give back (\"fixed\":false).",
        &c.fix_errors.to_string(),
    );
    family(
        &mut out,
        "ownwatch_info",
        "gauge",
        "The running ownwatch: its version and the backend it hooks the kernel with.",
    );
    let _ = writeln!(
        out,
        "ownwatch_info{{backend=\"{}\",version=\"{}\"}} 1",
        label_value(info.backend),
        label_value(info.version)
    );
    scalar(
        &mut out,
        "ownwatch_trees",
        "gauge",
        "Directory trees watched (a tree given up no longer counts).",
        &trees.to_string(),
    );
    scalar(
        &mut out,
        "ownwatch_start_time_seconds",
        "gauge",
        "When ownwatch started, in seconds since the epoch.",
        &seconds(info.start_time),
    );
    scalar(
        &mut out,
        "ownwatch_last_event_timestamp_seconds",
        "gauge",
        "When the last event was reported, in seconds since the epoch (0: none yet).",
        &c.last_event.map_or_else(|| "0".into(), seconds),
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", help_text(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Seconds with millisecond precision.
fn seconds(t: f64) -> String {
    format!("{t:.3}")
}

/// A label value as the text format wants it: `\`, `"` and newline escaped.
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: `\` and newline escaped.
fn help_text(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `--metrics FILE --metrics-interval DUR`: FILE, what it says, and when it is due.
pub struct Metrics {
    file: MetricsFile,
    info: Info,
    every: Duration,
    due: Instant,
}

impl Metrics {
    pub fn new(file: MetricsFile, every: Duration, info: Info) -> Metrics {
        Metrics {
            file,
            info,
            every,
            due: Instant::now(),
        }
    }

    /// Whether the interval since the last write is over.
    pub fn due(&self) -> bool {
        Instant::now() >= self.due
    }

    /// Rewrites FILE with `counts` and `trees` (the trees still watched), now; the next
    /// write is due one interval later.
    pub fn write(&mut self, counts: &Counts, trees: usize) {
        self.file
            .write(render(counts, &self.info, trees).as_bytes());
        self.due = Instant::now() + self.every;
    }
}

/// FILE, replaced as a whole each time (see the module's comment). The directory was checked
/// at start (it must exist; never through a symlink someone else planted: the rules of `-o`);
/// a write that fails is said once on stderr (again only when the reason changes) and tried
/// again at the next interval, and the agent goes on.
pub struct MetricsFile {
    path: PathBuf,
    dir_path: PathBuf,
    dir: Option<OwnedFd>,
    name: CString,
    tmp: CString,
    /// The reason the last write failed, as said on stderr; None while writes work.
    failing: Option<String>,
}

impl MetricsFile {
    /// Checks FILE for `--metrics` before anything is attached: a file name in a directory
    /// that exists, and not a directory itself. The error is one line.
    pub fn new(path: &Path) -> Result<MetricsFile> {
        let name = match path.components().next_back() {
            Some(Component::Normal(n)) => n.to_os_string(),
            _ => bail!("--metrics {}: not a file name", path.display()),
        };
        let dir_path = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = super::sink::open_dir_checked(&dir_path)
            .map_err(|why| anyhow::anyhow!("--metrics {}: {why}", path.display()))?;
        let mut tmp = name.as_bytes().to_vec();
        tmp.extend_from_slice(b".tmp");
        let (Ok(name), Ok(tmp)) = (CString::new(name.as_bytes()), CString::new(tmp)) else {
            bail!("--metrics {}: contains a NUL byte", path.display());
        };
        if let Ok(st) = sys::fstatat(dir.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW) {
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                bail!(
                    "--metrics {}: is a directory; give a file name in it (e.g. {}/ownwatch.prom)",
                    path.display(),
                    path.display()
                );
            }
        }
        Ok(MetricsFile {
            path: path.to_path_buf(),
            dir_path,
            dir: Some(dir),
            name,
            tmp,
            failing: None,
        })
    }

    /// Replaces FILE with `text`; a failure is said on stderr (once per reason), never
    /// returned.
    pub fn write(&mut self, text: &[u8]) {
        let mut res = self.replace(text);
        if res.is_err() && self.dir.is_some() {
            // The directory may have been removed or recreated: look it up again, once.
            self.dir = None;
            res = self.replace(text);
        }
        match res {
            Ok(()) => {
                if self.failing.take().is_some() {
                    eprintln!("ownwatch: metrics {}: written again", self.path.display());
                }
            }
            Err(why) => {
                self.dir = None;
                if self.failing.as_deref() != Some(why.as_str()) {
                    eprintln!(
                        "ownwatch: metrics {}: {why}; not updated, retrying every interval \
                         (said again only if the reason changes)",
                        self.path.display()
                    );
                    self.failing = Some(why);
                }
            }
        }
    }

    fn replace(&mut self, text: &[u8]) -> Result<(), String> {
        if self.dir.is_none() {
            let dir = super::sink::open_dir_checked(&self.dir_path)?;
            self.dir = Some(dir);
        }
        let dir = self.dir.as_ref().expect("set above").as_fd();
        let tmp_shown = || format!("{}.tmp", self.path.display());
        let desc = |e: Errno| e.desc().to_string();
        // A FILE.tmp left by a crash, or planted: removed, never written through (a symlink
        // or a hard link to something else is replaced by a file of our own).
        // SAFETY: a valid NUL-terminated name relative to our directory fd.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), self.tmp.as_ptr(), 0) } != 0 {
            let e = Errno::last();
            if e != Errno::ENOENT {
                return Err(format!("cannot remove {}: {}", tmp_shown(), desc(e)));
            }
        }
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = sys::openat_mode(dir, &self.tmp, flags, 0o644)
            .map_err(|e| format!("cannot create {}: {}", tmp_shown(), desc(e)))?;
        let res = (|| -> io::Result<()> {
            // Readable by the collector's user whatever our umask.
            // SAFETY: our fd.
            if unsafe { libc::fchmod(fd.as_raw_fd(), 0o644) } != 0 {
                return Err(io::Error::last_os_error());
            }
            sys::write_all(fd.as_fd(), text)
        })();
        drop(fd);
        let res = res
            .map_err(|e| format!("writing {}: {}", tmp_shown(), os_desc(&e)))
            .and_then(|()| {
                // SAFETY: valid names relative to our directory fd.
                let rc = unsafe {
                    libc::renameat(
                        dir.as_raw_fd(),
                        self.tmp.as_ptr(),
                        dir.as_raw_fd(),
                        self.name.as_ptr(),
                    )
                };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "renaming {} to it: {}",
                        tmp_shown(),
                        desc(Errno::last())
                    ))
                }
            });
        if res.is_err() {
            // SAFETY: as above.
            unsafe { libc::unlinkat(dir.as_raw_fd(), self.tmp.as_ptr(), 0) };
        }
        res
    }
}

fn os_desc(e: &io::Error) -> String {
    e.raw_os_error()
        .map(|c| Errno::from_raw(c).desc().to_string())
        .unwrap_or_else(|| e.to_string())
}

#[cfg(test)]
mod tests;
