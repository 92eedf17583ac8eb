//! Issue 10, `-o FILE`: the agent runs as root and appends command lines to FILE, so it must
//! never follow a symlink or reuse a file someone else planted there (nor block on a FIFO),
//! neither at start (exit 2 before anything is attached) nor on a SIGHUP reopen (the old file
//! is kept). On a full disk it keeps the events, retries, and writes them once space returns,
//! with an in-band `lost` line (`"reason":"output"`) for the whole lines it had to drop.

#[macro_use]
mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// What the agent keeps in memory while the output is full (src/output/sink/mod.rs KEEP_MAX).
const KEEP_MAX: usize = 4 << 20;

/// The refusal of a symlink at the output path itself.
const SYMLINK: &str = "is a symbolic link; refusing to follow it";

/// `ownwatch watch -o out TREE` must exit 2 at once with exactly one stderr line, "ownwatch:
/// OUT: REASON", never reaching the point where it attaches (no "watching" line). `case`
/// names the case in every message.
fn assert_refused(d: &TestDir, case: &str, out: &Path, reason: &str) {
    let args = watch_args(&["-o", s(out), s(&d.tree)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let (code, stdout, stderr) = run_once(&args);
    assert_eq!(
        stderr,
        format!("ownwatch: {}: {reason}\n", out.display()),
        "{case}: stderr"
    );
    assert_eq!(code, Some(2), "{case}: exit code; stderr: {stderr}");
    assert!(stdout.is_empty(), "{case}: stdout: {stdout:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{case}: took {took:?}");
}

/// A root-only file with known content at `p`, to check nothing was appended to it.
fn victim(p: PathBuf) -> PathBuf {
    make_file(&p, b"root only\n");
    chmod(&p, 0o600);
    p
}

fn assert_untouched(p: &Path) {
    assert_eq!(
        std::fs::read(p).unwrap(),
        b"root only\n",
        "{} was written to",
        p.display()
    );
}

/// A sticky world-writable directory in the test's base, like /tmp.
fn sticky_dir(d: &TestDir) -> PathBuf {
    let p = d.base.join("tmp");
    make_dir(&p);
    chmod(&p, 0o1777);
    p
}

/// A symlink at `link` to `target`, owned by OTHER (someone else planted it).
fn planted_symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
    chown(link, OTHER, OTHER);
}

fn wait_stderr(a: &Agent, needle: &str) {
    let deadline = Instant::now() + *TIMEOUT;
    while !a.stderr_text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} on stderr; stderr:\n{}",
            a.stderr_text()
        );
    }
}

#[test]
fn a_symlink_at_the_output_path_is_never_followed() {
    let d = root_dir!("o-symlink");
    let secret = victim(d.o("root-only"));
    // A user's symlink in a sticky world-writable directory, like /tmp/ow.jsonl.
    let link = sticky_dir(&d).join("ow.jsonl");
    planted_symlink(&secret, &link);
    assert_refused(&d, "symlink", &link, SYMLINK);
    assert_untouched(&secret);
    // Dangling: following it would create the file wherever it points.
    let dangling = link.with_file_name("new.jsonl");
    let target = d.o("created-through-a-link");
    planted_symlink(&target, &dangling);
    assert_refused(&d, "dangling symlink", &dangling, SYMLINK);
    assert!(!target.exists(), "the symlink's target was created");
}

#[test]
fn a_file_planted_by_someone_else_is_refused_and_left_as_it_is() {
    let d = root_dir!("o-planted");
    let drop_dir = sticky_dir(&d);
    // (uid, mode, size) of a planted file: none of it may change.
    let stat = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.mode() & 0o7777, m.len())
    };

    // Writable by everyone (root-owned or not): anyone could rewrite the events.
    let open = drop_dir.join("open.jsonl");
    make_file(&open, b"");
    chmod(&open, 0o666);
    let reason = "is writable by group or others (mode 0666); refusing to append to it \
                  (chmod go-w it first)";
    assert_refused(&d, "writable by others", &open, reason);
    assert_eq!(stat(&open), (0, 0o666, 0), "changed");

    // Made by another user, however tight its mode.
    let theirs = drop_dir.join("theirs.jsonl");
    make_file(&theirs, b"");
    chmod(&theirs, 0o600);
    chown(&theirs, OTHER, OTHER);
    let reason = format!(
        "is owned by uid {OTHER}, not by uid 0 (ownwatch itself); refusing to append to it"
    );
    assert_refused(&d, "another user's", &theirs, &reason);
    assert_eq!(stat(&theirs), (OTHER, 0o600, 0));

    // A hard link to a root-only file (possible where fs.protected_hardlinks is 0).
    let secret = victim(d.o("root-only"));
    let hard = d.o("hard.jsonl");
    std::fs::hard_link(&secret, &hard).unwrap();
    let reason = "has 2 hard links; refusing to append to it";
    assert_refused(&d, "hard link", &hard, reason);
    assert_untouched(&secret);

    // A FIFO: refused at once, never waited on.
    let fifo = drop_dir.join("fifo.jsonl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let reason = "is a FIFO, not a regular file; refusing it";
    assert_refused(&d, "FIFO", &fifo, reason);
}

#[test]
fn symlinked_and_open_directories_on_the_way() {
    let d = root_dir!("o-dirs");
    // A user's symlink to a directory (/tmp/evil -> /etc): refused, nothing created there.
    let evil = d.base.join("evil");
    planted_symlink(&d.outside, &evil);
    let secret = victim(d.o("passwd"));
    let reason = format!(
        "{} is a symbolic link owned by uid {OTHER}; refusing to follow it",
        evil.display()
    );
    assert_refused(&d, "existing file", &evil.join("passwd"), &reason);
    assert_untouched(&secret);
    assert_refused(&d, "new file", &evil.join("new.jsonl"), &reason);
    assert!(!d.o("new.jsonl").exists());

    // A directory anyone may write to, without the sticky bit: refused.
    let open = d.base.join("open");
    make_dir(&open);
    chmod(&open, 0o777);
    let out = open.join("ow.jsonl");
    let reason = format!(
        "directory {} is writable by others and not sticky (mode 0777); refusing it",
        open.display()
    );
    assert_refused(&d, "open directory", &out, &reason);
    assert!(!out.exists());

    // A symlink of root's (like /var/run -> /run) is followed: events arrive.
    let ok = d.base.join("ok");
    std::os::unix::fs::symlink(&d.outside, &ok).unwrap();
    let mut a = Agent::watch(&["-o", s(&ok.join("ow.jsonl")), s(&d.tree)]);
    std::fs::create_dir(d.t("through-root-link")).unwrap();
    let log = d.outside.join("ow.jsonl");
    wait_in_file(&log, "through-root-link");
    a.stop_with(libc::SIGINT);
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o7777, 0o640);
}

#[test]
fn a_sighup_reopen_refuses_what_was_planted_and_keeps_the_old_file() {
    let d = root_dir!("o-reopen");
    let secret = victim(d.o("root-only"));
    let log = d.outside.join("ow.jsonl");
    let mut a = Agent::watch(&["-o", s(&log), s(&d.tree)]);
    std::fs::create_dir(d.t("one")).unwrap();
    wait_in_file(&log, "one");
    // Rotated away, and a symlink in its place before the SIGHUP.
    let rotated = d.outside.join("ow.jsonl.1");
    std::fs::rename(&log, &rotated).unwrap();
    std::os::unix::fs::symlink(&secret, &log).unwrap();
    a.signal(libc::SIGHUP);
    let line = format!(
        "ownwatch: reopening the output file failed, keeping the old one: {}: {SYMLINK}\n",
        log.display()
    );
    wait_stderr(&a, &line);
    std::fs::create_dir(d.t("two")).unwrap();
    wait_in_file(&rotated, "two");
    assert_untouched(&secret);
    // A file of another user's, then a good path: the next reopen works.
    std::fs::remove_file(&log).unwrap();
    make_file(&log, b"");
    chown(&log, OTHER, OTHER);
    chmod(&log, 0o644);
    a.signal(libc::SIGHUP);
    wait_stderr(&a, &format!("{}: is owned by uid {OTHER}", log.display()));
    std::fs::remove_file(&log).unwrap();
    a.signal(libc::SIGHUP);
    wait_until("the new file", Duration::from_millis(20), || log.exists());
    std::fs::create_dir(d.t("three")).unwrap();
    wait_in_file(&log, "three");
    a.stop_with(libc::SIGINT);
    let err = a.stderr_text();
    assert_eq!(
        err.matches("reopening the output file failed").count(),
        2,
        "{err}"
    );
    let paths = |p: &Path| -> Vec<String> {
        json_lines(p)
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(paths(&rotated), [s(&d.t("one")), s(&d.t("two"))]);
    assert_eq!(paths(&log), [s(&d.t("three"))]);
    assert_untouched(&secret);
}

// ---------------------------------------------------------------------------------------------
// A full disk

/// A full-disk run: the agent writing `-o` to `log` on a small tmpfs of `size` (unmounted
/// when `d` goes), and one event ("before") already written there.
struct FullDisk {
    dir: PathBuf,
    log: PathBuf,
    /// The stderr line that starts an outage.
    start: String,
}

impl FullDisk {
    fn start(d: &TestDir, size: &str) -> (FullDisk, Agent) {
        let dir = d.outside.join("small");
        make_dir(&dir);
        d.mount_tmpfs(&dir, &format!("size={size}"));
        let log = dir.join("ow.jsonl");
        let a = Agent::watch(&["-o", s(&log), s(&d.tree)]);
        std::fs::create_dir(d.t("before")).unwrap();
        wait_in_file(&log, "before");
        let start = format!(
            "ownwatch: {}: No space left on device; keeping events and retrying\n",
            log.display()
        );
        (FullDisk { dir, log, start }, a)
    }

    /// Fills it up with a file of root's; returns the file.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let p = self.dir.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", p.display()),
            }
        }
        p
    }
}

/// Paths of the event lines, and the lost lines as (index among all lines, value).
fn split_lost(lines: &[Value]) -> (Vec<String>, Vec<(usize, Value)>) {
    let mut paths = Vec::new();
    let mut lost = Vec::new();
    for (i, e) in lines.iter().enumerate() {
        if e["op"] == "lost" {
            lost.push((i, e.clone()));
        } else {
            paths.push(e["path"].as_str().unwrap().to_string());
        }
    }
    (paths, lost)
}

#[test]
fn a_full_disk_keeps_the_events_and_writes_them_when_space_returns() {
    let d = root_dir!("o-full");
    let (fs, mut a) = FullDisk::start(&d, "256k");
    let (log, start) = (&fs.log, fs.start.as_str());
    let filler = fs.fill();
    // Some of these still fit in the file's last page; one is cut there by a short write.
    let n = 20;
    for i in 0..n {
        std::fs::create_dir(d.t(&format!("k{i:03}"))).unwrap();
    }
    wait_stderr(&a, start);
    // Let it retry a few times (every poll, 100 ms when idle) while the disk stays full.
    std::thread::sleep(Duration::from_millis(500));
    assert!(a.wait_exit(Duration::ZERO).is_none(), "the agent exited");
    std::fs::remove_file(&filler).unwrap();
    wait_stderr(
        &a,
        &format!(
            "ownwatch: {}: writing again; no events were lost\n",
            log.display()
        ),
    );
    std::fs::create_dir(d.t("zz-sentinel")).unwrap();
    wait_in_file(log, "zz-sentinel");
    a.stop_with(libc::SIGINT);
    let err = a.stderr_text();
    assert_eq!(
        err.matches(&start).count(),
        1,
        "one line per outage:\n{err}"
    );
    let (paths, lost) = split_lost(&json_lines(log));
    assert!(lost.is_empty(), "nothing was dropped: {lost:?}");
    let mut want = vec![d.t("before")];
    want.extend((0..n).map(|i| d.t(&format!("k{i:03}"))));
    want.push(d.t("zz-sentinel"));
    let want: Vec<&str> = want.iter().map(|p| s(p)).collect();
    assert_eq!(paths, want, "every event once, in order");
}

#[test]
fn a_long_full_disk_drops_whole_lines_and_counts_them_in_band() {
    let d = root_dir!("o-drop");
    // Room for what is kept once the filler goes.
    let (fs, mut a) = FullDisk::start(&d, "16m");
    let (log, start) = (&fs.log, fs.start.as_str());
    // Enough events for three times what the agent keeps, from a writer whose lines are
    // about as long.
    let line_len = std::fs::metadata(log).unwrap().len() as usize;
    let n = 3 * KEEP_MAX / line_len;
    let filler = fs.fill();
    let name = |i: usize| format!("k{i:06}");
    run_as(Creds::Root, || {
        for i in 0..n {
            std::fs::create_dir(d.t(&name(i))).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    wait_stderr(&a, start);
    wait_stderr(
        &a,
        &format!(
            "ownwatch: {}: 4 MiB of events waiting; dropping new ones (they will be counted \
             in a \"lost\" line) until it can be written again\n",
            log.display()
        ),
    );
    std::fs::remove_file(&filler).unwrap();
    wait_stderr(&a, &format!("ownwatch: {}: writing again; ", log.display()));
    std::fs::create_dir(d.t("zz-sentinel")).unwrap();
    wait_in_file(log, "zz-sentinel");
    a.stop_with(libc::SIGINT);

    let text = std::fs::read_to_string(log).unwrap();
    let lines = json_lines(log);
    let (paths, lost) = split_lost(&lines);
    assert_eq!(lost.len(), 1, "one lost line: {lost:?}");
    let (at, l) = &lost[0];
    assert_eq!(l["reason"], "output", "{l}");
    let count = l["count"].as_u64().unwrap() as usize;
    assert!(count > 0);
    // The lost line stands exactly where the lines are missing: before it `before` and
    // k0..k(kept-1), after it the rest of the storm (what came after space returned), then
    // the sentinel. kept + count + rest = n: every event is either in the file or counted.
    let kept = at - 1;
    eprintln!("{n} events of ~{line_len} bytes: {kept} kept, {count} dropped");
    let mut want: Vec<String> = vec![s(&d.t("before")).to_string()];
    want.extend((0..kept).map(|i| s(&d.t(&name(i))).to_string()));
    want.extend((kept + count..n).map(|i| s(&d.t(&name(i))).to_string()));
    want.push(s(&d.t("zz-sentinel")).to_string());
    assert_eq!(
        paths.len(),
        want.len(),
        "kept {kept} + lost {count} + the rest != {n} (+ before, sentinel)"
    );
    assert!(paths == want, "events out of order, repeated or miscounted");
    // What was kept is bounded: KEEP_MAX, plus what still fit in the file's last page.
    let kept_bytes: usize = text.lines().skip(1).take(kept).map(|l| l.len() + 1).sum();
    assert!(
        kept_bytes <= KEEP_MAX + 4096,
        "kept {kept_bytes} bytes in {kept} lines"
    );
    let err = a.stderr_text();
    assert!(
        err.contains(&format!(
            "ownwatch: {}: writing again; {count} events did not fit in memory and are \
             reported as lost\n",
            log.display()
        )),
        "{err}"
    );
    assert_eq!(err.matches(&start).count(), 1, "{err}");
}
