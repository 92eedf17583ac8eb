//! Issue 6, loss under overload: with a deliberately small ring buffer and a burst of offending
//! ops from several threads, every op is accounted for — the events delivered plus the counts
//! of the in-band `{"op":"lost"}` lines equal the ops performed, exactly.
//!
//! The in-band count is of records the kernel could not deliver, and the kernel also sends
//! records it cannot place itself (a write through a mount it does not know, e.g. in another
//! mount namespace) for user space to decide: other tests running on the machine at the same
//! time make such writes. So the agent here sees chmod only, and the users other tests write
//! as (root, 4343, 65534) are allowed; the burst comes from a uid of its own, WRITER. The
//! kernel cannot place every one of WRITER's chmods outside a tree either (when the op leaves
//! no ctime trace it sends the record for user space to decide), so the two bursts below do
//! not overlap: one agent's lost count would include the other burst's records.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const THREADS: usize = 4;
/// One burst at a time (see above).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// A real numeric user that no other test writes as.
const WRITER: u32 = 4747;

/// The agent on `tree`: a 64 KiB ring, chmod only, the other tests' users allowed.
fn agent(tree: &Path) -> Agent {
    let opts = [
        "--ring-size",
        "64K",
        "--ops",
        "chmod",
        "--allow",
        "0",
        "--allow",
        "4343",
        "--allow",
        "65534",
    ];
    Agent::watch_tree(tree, &opts)
}

/// One file per thread in the tree and a sentinel, owned by WRITER (so WRITER may chmod
/// them), made before the agent starts so that making them is not part of what it sees.
fn files(d: &TestDir) -> (Vec<PathBuf>, PathBuf) {
    let mk = |name: &str| {
        let p = d.t(name);
        make_file(&p, b"");
        chown(&p, WRITER, WRITER);
        p
    };
    (
        (0..THREADS).map(|i| mk(&format!("f{i}"))).collect(),
        mk("sentinel"),
    )
}

/// `per_thread` chmods on each file, one thread per file, as the real numeric user WRITER
/// (neither the tree's owner nor allowed: every op is offending).
fn burst(files: &[PathBuf], per_thread: usize) {
    let files = files.to_vec();
    run_as(Creds::User(WRITER, WRITER), move || {
        let handles: Vec<_> = files
            .into_iter()
            .map(|p| {
                std::thread::spawn(move || -> Result<(), String> {
                    let c = cp(&p);
                    for i in 0..per_thread {
                        let mode = if i % 2 == 0 { 0o600 } else { 0o644 };
                        check("chmod", unsafe { libc::chmod(c.as_ptr(), mode) } as _)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| "burst thread panicked".to_string())??;
        }
        Ok(())
    });
}

fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// After the burst: a chmod of the sentinel (once the ring has drained, so that it is not lost
/// itself), every line up to its event, then a clean stop with nothing after it.
fn finish(mut agent: Agent, sentinel: &Path) -> Vec<String> {
    let mut lines = read_until_quiet(&agent, Duration::from_millis(500));
    let s = sentinel.to_path_buf();
    run_as(Creds::User(WRITER, WRITER), move || {
        check("chmod", unsafe { libc::chmod(cp(&s).as_ptr(), 0o640) } as _).map(|_| ())
    });
    let want = format!("\"path\":\"{}\"", sentinel.display());
    let deadline = Instant::now() + *TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "sentinel chmod of {} not reported; lines:\n{}",
            sentinel.display(),
            lines.join("\n")
        );
        match agent.next_line(Duration::from_millis(100)) {
            Some(l) if l.contains(&want) => break,
            Some(l) => lines.push(l),
            None => {}
        }
    }
    agent.stop_with(libc::SIGINT);
    let after = agent.drain();
    assert!(after.is_empty(), "lines after the sentinel: {after:?}");
    lines
}

/// Lines from the agent until none came for `quiet` (the ring is drained).
fn read_until_quiet(agent: &Agent, quiet: Duration) -> Vec<String> {
    let mut v = Vec::new();
    let deadline = Instant::now() + *TIMEOUT;
    while Instant::now() < deadline {
        match agent.next_line(quiet) {
            Some(l) => v.push(l),
            None => return v,
        }
    }
    panic!(
        "ownwatch {:?} did not go quiet within {:?}",
        agent.args, *TIMEOUT
    );
}

/// (events for `files`, sum of the in-band lost counts, lost lines); anything else fails.
fn tally(lines: &[String], files: &[PathBuf], tree: &Path) -> (usize, u64, usize) {
    let (mut events, mut lost, mut lost_lines) = (0, 0, 0);
    for l in lines {
        let v: Value = parse_event(l);
        if v["op"] == "lost" {
            let n = v["count"]
                .as_u64()
                .unwrap_or_else(|| panic!("lost line without a count: {l}"));
            assert!(n > 0, "lost line with count 0: {l}");
            assert!(v["time"].is_string(), "lost line without a time: {l}");
            lost += n;
            lost_lines += 1;
            continue;
        }
        let path = v["path"].as_str().unwrap_or_default();
        assert!(
            files.iter().any(|f| f.to_str() == Some(path)),
            "unexpected event: {l}"
        );
        assert_eq!(v["op"], "chmod", "{l}");
        assert_eq!(v["fsuid"], WRITER, "{l}");
        assert_eq!(v["tree"], tree.to_str().unwrap(), "{l}");
        events += 1;
    }
    (events, lost, lost_lines)
}

/// One burst of `per_thread` chmods per thread at the agent on a fresh tree, with `around`
/// making the burst (given the agent and the burst to run); then every line up to the
/// sentinel. Delivered plus lost must be exactly the ops performed. Returns (delivered, lost,
/// ops).
fn burst_tally(
    tag: &str,
    per_thread: usize,
    around: impl FnOnce(&Agent, &dyn Fn()),
) -> (usize, u64, usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TestDir::new(tag);
    let (files, sentinel) = files(&d);
    let agent = agent(&d.tree);
    let n = THREADS * per_thread;
    around(&agent, &|| burst(&files, per_thread));
    let lines = finish(agent, &sentinel);
    let (events, lost, lost_lines) = tally(&lines, &files, &d.tree);
    eprintln!("{tag}: {events} delivered, {lost} lost in {lost_lines} lines, of {n}");
    assert_eq!(
        events as u64 + lost,
        n as u64,
        "delivered {events} + lost {lost} (in {lost_lines} lost lines) != {n} ops performed"
    );
    (events, lost, n)
}

/// The agent is stopped (SIGSTOP) during the burst: the 64 KiB ring takes what fits, the rest
/// is counted in the kernel and reported in-band once the agent runs again (it drains the ring
/// and then reports the count).
#[test]
fn stopped_reader_small_ring_delivered_plus_lost_is_exact() {
    needs_root!();
    let (events, lost, n) = burst_tally("loss-stopped", 2500, |agent, burst| {
        agent.signal(libc::SIGSTOP);
        let deadline = Instant::now() + *TIMEOUT;
        while process_state(agent.pid()) != Some('T') {
            assert!(Instant::now() < deadline, "agent did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
        burst();
        agent.signal(libc::SIGCONT);
    });
    assert!(
        lost > 0 && events > 0,
        "a 64K ring with a stopped reader must both deliver and lose some of {n} ops: \
         {events} delivered, {lost} lost"
    );
    assert!(
        events < n / 4,
        "{events} of {n} events delivered through a 64K ring with the reader stopped"
    );
}

/// The agent runs while four threads storm a 64 KiB ring: whatever it cannot keep up with is
/// lost and counted; delivered + lost is exact either way.
#[test]
fn live_reader_small_ring_delivered_plus_lost_is_exact() {
    needs_root!();
    let (events, _, n) = burst_tally("loss-live", 5000, |_, burst| burst());
    assert!(events > 0, "no event delivered of {n}");
}

/// A ring size the kernel cannot take is a usage error: one line, exit 2, nothing loaded.
#[test]
fn bad_ring_sizes_exit_2_with_one_line() {
    let d = root_dir!("loss-usage");
    let tree = d.tree.to_str().unwrap();
    // README "Usage": 64K..1G; 4K and 32K are powers of two the kernel would take, but below
    // the documented range.
    for bad in ["1000", "3M", "2K", "4K", "32K", "32768", "2G", "lots"] {
        let (code, out, err) = run_once(&["watch", "--ring-size", bad, tree]);
        assert_eq!(code, Some(2), "--ring-size {bad}: {err}");
        assert!(out.is_empty(), "--ring-size {bad}: stdout {out:?}");
        assert_eq!(err.lines().count(), 1, "--ring-size {bad}: {err:?}");
        assert!(
            err.starts_with("ownwatch: bad --ring-size")
                && err.contains("a power of two from 64K to 1G"),
            "--ring-size {bad}: {err:?}"
        );
    }
}
