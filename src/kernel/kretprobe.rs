//! Kretprobes with room for many calls at once. A kretprobe keeps one instance per call in
//! flight and misses the returns of calls beyond them; `register_kretprobe` gives it
//! `num_possible_cpus()` instances on kernels without CONFIG_PREEMPTION (Debian's 5.10: two in
//! a 2-CPU machine), so a few concurrent mkdirs lose their outcomes. libbpf's perf_kprobe
//! attachment cannot ask for more; a kprobe event made through tracefs can ("r128:..."). So a
//! `kr_done_*` program is attached to such an event (`ownwatch_<pid>/<program>_<n>`) through a
//! perf event, the way libbpf attaches legacy kprobes, and the event is removed once its perf
//! event is closed (`Events::remove`, from `Links`' drop). Without a writable tracefs, or when
//! the event cannot be made, the program is attached as libbpf does it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::{Link, ProgramMut};

use super::caps::TRACING_DIRS;

/// Instances per kretprobe, at least: calls in flight at once, across all CPUs.
const MAXACTIVE_MIN: usize = 128;
/// The kernel refuses more (KRETPROBE_MAXACTIVE_MAX).
const MAXACTIVE_MAX: usize = 4096;
const GROUP_PREFIX: &str = "ownwatch_";
const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const PERF_ATTR_SIZE_VER0: u32 = 64;

/// `struct perf_event_attr` up to its first published size, all we set (type and config).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    rest: [u64; 6],
}

/// The kprobe events this process made, to remove once their perf events are closed.
#[derive(Default)]
pub struct Events {
    /// The tracefs directory, once looked for: None when there is none to write to.
    tracing: Option<Option<PathBuf>>,
    /// "group/event" of each event made and not yet removed.
    made: Vec<String>,
}

/// Tells events of different starts in one process apart.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// The function a kretprobe program returns from (`SEC("?kretprobe/<fn>")`), if it is one.
pub fn func_of<'a>(prog: &'a ProgramMut) -> Option<&'a str> {
    prog.section().to_str()?.strip_prefix("kretprobe/")
}

impl Events {
    pub fn is_empty(&self) -> bool {
        self.made.is_empty()
    }

    /// Attaches a kretprobe program to `func`'s return through a tracefs event with many
    /// instances, else as libbpf attaches it.
    pub fn attach(&mut self, prog: &ProgramMut, func: &str) -> Result<Link> {
        let name = prog.name().to_string_lossy().into_owned();
        if let Some(dir) = self.tracing_dir() {
            if let Ok(link) = self.attach_maxactive(&dir, prog, &name, func) {
                return Ok(link);
            }
        }
        prog.attach().with_context(|| format!("attaching {name}"))
    }

    /// Returns of calls the events missed (no instance was free, or the probe hit while
    /// another ran on the CPU): their programs did not run. Read from kprobe_profile, which
    /// lists every kprobe event as "name hits misses".
    pub fn missed(&self) -> u64 {
        let Some(Some(dir)) = &self.tracing else {
            return 0;
        };
        if self.made.is_empty() {
            return 0;
        }
        std::fs::read_to_string(dir.join("kprobe_profile"))
            .map_or(0, |text| profile_misses(&text, &self.made))
    }

    /// Removes the events; their perf events must be closed by now (the kernel keeps an
    /// event that is in use).
    /// An event whose last perf event another process closes may be busy a moment longer:
    /// tried again for up to a second.
    pub fn remove(&mut self) {
        let Some(Some(dir)) = &self.tracing else {
            return;
        };
        let file = dir.join("kprobe_events");
        for ev in self.made.drain(..) {
            for _ in 0..50 {
                match append(&file, &format!("-:{ev}")) {
                    Err(e) if busy(&e) => std::thread::sleep(Duration::from_millis(20)),
                    _ => break,
                }
            }
        }
    }

    /// The tracefs directory whose kprobe_events we can write; at the first look, stale
    /// events of ownwatch processes that are gone are removed.
    fn tracing_dir(&mut self) -> Option<PathBuf> {
        if self.tracing.is_none() {
            let dir = TRACING_DIRS.iter().map(PathBuf::from).find(|d| {
                OpenOptions::new()
                    .append(true)
                    .open(d.join("kprobe_events"))
                    .is_ok()
            });
            if let Some(d) = &dir {
                remove_stale(d);
            }
            self.tracing = Some(dir);
        }
        self.tracing.clone().flatten()
    }

    fn attach_maxactive(
        &mut self,
        dir: &Path,
        prog: &ProgramMut,
        name: &str,
        func: &str,
    ) -> Result<Link> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        // (the pid in the event's name too: kprobe_profile names events without their group)
        let pid = std::process::id();
        let ev = format!("{GROUP_PREFIX}{pid}/{name}_{pid}_{seq}");
        let maxactive = maxactive();
        let events = dir.join("kprobe_events");
        append(&events, &format!("r{maxactive}:{ev} {func}"))?;
        let opened = std::fs::read_to_string(dir.join("events").join(&ev).join("id"))
            .context("reading the event's id")
            .and_then(|id| Ok(id.trim().parse::<u64>()?))
            .and_then(perf_event_open);
        let link = opened.and_then(|pfd| {
            let link = prog.attach_perf_event(pfd).inspect_err(|_| {
                // SAFETY: our fd, not handed to libbpf (it failed).
                unsafe { libc::close(pfd) };
            })?;
            Ok(link)
        });
        match link {
            Ok(link) => {
                self.made.push(ev);
                Ok(link)
            }
            Err(e) => {
                let _ = append(&events, &format!("-:{ev}"));
                Err(e.context(format!("attaching {name} to kretprobe event {ev}")))
            }
        }
    }
}

/// The misses kprobe_profile's `text` gives for the events `made` ("group/event").
fn profile_misses(text: &str, made: &[String]) -> u64 {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (name, _hits, missed) = (f.next()?, f.next()?, f.next()?);
            made.iter()
                .any(|m| m.rsplit_once('/').is_some_and(|(_, e)| e == name))
                .then(|| missed.parse::<u64>().ok())?
        })
        .sum()
}

/// Instances per kretprobe: twice the CPUs, at least MAXACTIVE_MIN. OWNWATCH_KRETPROBE_MAXACTIVE
/// sets it instead (tests: with 1, concurrent writers make the kernel miss returns).
fn maxactive() -> usize {
    if let Some(n) = std::env::var("OWNWATCH_KRETPROBE_MAXACTIVE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n.clamp(1, MAXACTIVE_MAX);
    }
    libbpf_rs::num_possible_cpus()
        .map_or(0, |n| 2 * n)
        .clamp(MAXACTIVE_MIN, MAXACTIVE_MAX)
}

/// A perf event of a tracefs event (a tracepoint, as the kernel sees it), as libbpf opens one
/// for a legacy kprobe: any process, CPU 0 (a BPF program runs on every CPU regardless).
fn perf_event_open(id: u64) -> Result<i32> {
    let attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
        size: PERF_ATTR_SIZE_VER0,
        config: id,
        ..Default::default()
    };
    let (pid, cpu, group): (libc::pid_t, libc::c_int, libc::c_int) = (-1, 0, -1);
    // SAFETY: a valid attr of the size it claims, plain integers otherwise.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            pid,
            cpu,
            group,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        bail!("perf_event_open: {}", std::io::Error::last_os_error());
    }
    Ok(fd as i32)
}

/// One command to kprobe_events, in one write (the kernel parses a write at a time).
fn append(file: &Path, line: &str) -> Result<()> {
    OpenOptions::new()
        .append(true)
        .open(file)?
        .write_all(format!("{line}\n").as_bytes())
        .with_context(|| format!("writing {line:?} to {}", file.display()))
}

fn busy(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
        == Some(libc::EBUSY)
}

/// Removes the events of `ownwatch_<pid>` groups whose process is gone. An event still in
/// use (its process's detaching child still holds it) stays: the kernel refuses.
fn remove_stale(dir: &Path) {
    let Ok(list) = std::fs::read_to_string(dir.join("kprobe_events")) else {
        return;
    };
    for ev in stale_events(&list, |pid| Path::new(&format!("/proc/{pid}")).exists()) {
        let _ = append(&dir.join("kprobe_events"), &format!("-:{ev}"));
    }
}

/// "group/event" of each listed event (`r128:ownwatch_12/kr_done_vfs_mkdir_12_0 vfs_mkdir`)
/// whose group is ownwatch's and whose pid is not alive.
fn stale_events(list: &str, alive: impl Fn(u32) -> bool) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.split_whitespace().next()?.split_once(':'))
        .map(|(_, ev)| ev)
        .filter(|ev| {
            ev.split_once('/')
                .and_then(|(g, _)| g.strip_prefix(GROUP_PREFIX)?.parse::<u32>().ok())
                .is_some_and(|pid| !alive(pid))
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_events_are_ownwatchs_of_dead_pids() {
        let list = "r128:ownwatch_12/kr_done_vfs_mkdir_0 vfs_mkdir\n\
                    r128:ownwatch_13/kr_done_vfs_unlink_1 vfs_unlink\n\
                    p:kprobes/ownwatch_12 vfs_mkdir\n\
                    r:ownwatch_x/a b\n";
        assert_eq!(
            stale_events(list, |pid| pid == 13),
            ["ownwatch_12/kr_done_vfs_mkdir_0"]
        );
    }

    #[test]
    fn profile_misses_are_ours_only() {
        let text = "  kr_done_vfs_mkdir_7_0                     12    3\n\
                      kr_done_vfs_mkdir_8_0                     40    5\n\
                      kr_done_vfs_unlink_7_1                     9    1\n\
                      garbage\n";
        let made = [
            "ownwatch_7/kr_done_vfs_mkdir_7_0".to_string(),
            "ownwatch_7/kr_done_vfs_unlink_7_1".to_string(),
        ];
        assert_eq!(profile_misses(text, &made), 4);
        assert_eq!(profile_misses(text, &[]), 0);
    }

    #[test]
    fn perf_event_attr_has_its_first_size() {
        assert_eq!(
            std::mem::size_of::<PerfEventAttr>(),
            PERF_ATTR_SIZE_VER0 as usize
        );
    }
}
