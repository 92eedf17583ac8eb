//! The agent under test: `ownwatch watch` running with its output read line by line, the
//! sentinel that tells when every event is in, and one-shot runs (`probe`, usage errors).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{abbrev_json, assert_events, check_event, chmod, copy_exe, next_id, Exp, TIMEOUT};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ownwatch")
}

/// The binary under test, copied where every user can run it, for tests that start it as
/// another uid: `target/` lies wherever the checkout is, e.g. under /root (mode 0700), which
/// no other uid can enter ("running ownwatch: Permission denied"). The copy sits in a fresh
/// root-owned 0755 directory under /tmp, made once per test process and removed when the
/// process exits.
pub fn bin_any_user() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        extern "C" fn remove_copy() {
            if let Some(p) = P.get().and_then(|p| p.parent()) {
                let _ = std::fs::remove_dir_all(p);
            }
        }
        let dir = (0..100)
            .map(|i| {
                PathBuf::from(format!(
                    "/tmp/ownwatch-testbin-{}-{}-{i}",
                    std::process::id(),
                    next_id()
                ))
            })
            // A fresh directory of ours (mkdir fails on anything already there).
            .find(|d| std::fs::create_dir(d).is_ok())
            .expect("a fresh directory under /tmp for the test binary");
        let dst = dir.join("ownwatch");
        copy_exe(bin(), &dst);
        chmod(&dst, 0o755);
        chmod(&dir, 0o755);
        unsafe { libc::atexit(remove_copy) };
        dst
    })
}

/// A running `ownwatch` process. Killed on drop if still running.
pub struct Agent {
    child: Child,
    lines: Option<Receiver<String>>,
    stderr: Arc<Mutex<String>>,
    /// Disconnected once the stderr reader has read the end (it said "ready" on it before).
    stderr_end: Option<Receiver<()>>,
    /// `wait_exit` saw the agent end: its stderr is whole once the reader reaches the end.
    exited: bool,
    pub args: Vec<String>,
    /// The tree of `watch_tree`: where `expect` puts its sentinel.
    pub tree: Option<PathBuf>,
    /// Runs the agent said the kernel skipped (its `"reason":"skipped"` notes), so far.
    pub skipped: u64,
}

/// How the agent's stdout is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StdoutMode {
    /// A thread reads every line into a channel.
    Lines,
    /// A thread reads one line, passes it on, then closes the pipe (like `| head -1`).
    HeadOne,
}

/// `watch` arguments: `--backend` OWNWATCH_TEST_BACKEND if set, `--ring-size`
/// OWNWATCH_TEST_RING_SIZE if set, then `extra`.
pub fn watch_args(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["watch".into()];
    if let Ok(b) = std::env::var("OWNWATCH_TEST_BACKEND") {
        if !b.is_empty() {
            v.push("--backend".into());
            v.push(b);
        }
    }
    // The kernel matrix runs ~50x slower under emulation while other tests write: a larger
    // ring there (OWNWATCH_TEST_RING_SIZE) keeps an agent that falls behind from losing records.
    if let Ok(r) = std::env::var("OWNWATCH_TEST_RING_SIZE") {
        if !r.is_empty() && !extra.contains(&"--ring-size") {
            v.push("--ring-size".into());
            v.push(r);
        }
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

impl Agent {
    /// `ownwatch watch <extra...>`, waiting for the ready line.
    pub fn watch(extra: &[&str]) -> Agent {
        Agent::spawn(watch_args(extra), StdoutMode::Lines)
    }

    /// Watch one tree with default options plus `opts`.
    pub fn watch_tree(tree: &Path, opts: &[&str]) -> Agent {
        let t = tree.to_str().expect("utf-8 tree path").to_string();
        let mut v: Vec<&str> = opts.to_vec();
        v.push(&t);
        let mut a = Agent::watch(&v);
        a.tree = Some(tree.to_path_buf());
        a
    }

    pub fn spawn(args: Vec<String>, mode: StdoutMode) -> Agent {
        Agent::spawn_in(args, mode, None)
    }

    /// `spawn` with the agent's working directory set to `cwd`.
    pub fn spawn_in(args: Vec<String>, mode: StdoutMode, cwd: Option<&Path>) -> Agent {
        Agent::spawn_with(args, mode, cwd, &[])
    }

    /// `spawn_in` with more environment variables for the agent.
    pub fn spawn_with(
        args: Vec<String>,
        mode: StdoutMode,
        cwd: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Agent {
        let mut cmd = Command::new(bin());
        if let Some(c) = cwd {
            cmd.current_dir(c);
        }
        cmd.envs(env.iter().copied());
        cmd.args(&args);
        Agent::spawn_command(cmd, args, mode)
    }

    /// `cmd` (which runs ownwatch watch `args`, e.g. through a wrapper script: its stdout and
    /// stderr are the agent's), waiting for the ready line.
    pub fn spawn_command(mut cmd: Command, args: Vec<String>, mode: StdoutMode) -> Agent {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        read_stderr(child.stderr.take().unwrap(), stderr.clone(), ready_tx);
        let (tx, rx) = mpsc::channel::<String>();
        read_lines(child.stdout.take().unwrap(), move |line| {
            let s = match std::str::from_utf8(line) {
                Ok(s) => s.trim_end_matches('\n').to_string(),
                Err(_) => format!(
                    "<<stdout line is not UTF-8: {:?}>>",
                    String::from_utf8_lossy(line)
                ),
            };
            // HeadOne: drops the pipe after one line; the agent's next write gets EPIPE.
            tx.send(s).is_ok() && mode != StdoutMode::HeadOne
        });
        let mut agent = Agent {
            child,
            lines: Some(rx),
            stderr,
            stderr_end: None,
            exited: false,
            args,
            tree: None,
            skipped: 0,
        };
        match ready_rx.recv_timeout(*TIMEOUT) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                let _ = agent.child.kill();
                let _ = agent.child.wait();
                panic!(
                    "ownwatch {:?}: no 'ownwatch: watching ' line on stderr within {:?}; stderr:\n{}",
                    agent.args,
                    *TIMEOUT,
                    agent.stderr_text()
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let st = agent.wait_exit(*TIMEOUT);
                panic!(
                    "ownwatch {:?}: exited ({st:?}) before the ready line; stderr:\n{}",
                    agent.args,
                    agent.stderr_text()
                );
            }
        }
        agent.stderr_end = Some(ready_rx);
        agent
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr_text(&self) -> String {
        match &self.stderr_end {
            // Ended: all of it, once the reader thread has read to the end (the agent's
            // detaching child closes its copy at once).
            Some(end) if self.exited => while end.recv_timeout(*TIMEOUT).is_ok() {},
            // Give the reader thread a moment to catch the last lines.
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
        self.stderr.lock().unwrap().clone()
    }

    /// The next stdout line, or None on timeout / end of stdout.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.as_ref().unwrap().recv_timeout(timeout).ok()
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Wait up to `timeout` for the process to end; None if it did not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    self.exited = true;
                    return Some(st);
                }
                Ok(None) => {}
                Err(e) => panic!("wait for ownwatch: {e}"),
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send `sig` and require a clean exit 0 within *TIMEOUT, without a panic on stderr.
    pub fn stop_with(&mut self, sig: i32) {
        self.signal(sig);
        let st = self.wait_exit(*TIMEOUT);
        let err = self.stderr_text();
        match st {
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "ownwatch {:?} did not exit within {:?} after signal {sig}; stderr:\n{err}",
                    self.args, *TIMEOUT
                );
            }
            Some(st) => assert_eq!(
                st.code(),
                Some(0),
                "ownwatch {:?} after signal {sig}: {st:?} (want exit 0); stderr:\n{err}",
                self.args
            ),
        }
        assert!(
            !err.contains("panicked"),
            "ownwatch {:?} panicked; stderr:\n{err}",
            self.args
        );
    }

    /// All remaining stdout lines up to EOF (after the process ended).
    pub fn drain(&self) -> Vec<String> {
        let mut v = Vec::new();
        let rx = self.lines.as_ref().unwrap();
        loop {
            match rx.recv_timeout(*TIMEOUT) {
                Ok(l) => v.push(l),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("stdout of ownwatch not closed {:?} after exit", *TIMEOUT)
                }
            }
        }
        v
    }

    /// Make a sentinel offending op as root in `tree` (mkdir or create of `.sentinel-N`),
    /// read stdout until its line, SIGINT the agent, require exit 0 and nothing after the
    /// sentinel. Returns the raw lines before the sentinel and the sentinel line.
    pub fn finish_lines_with(&mut self, tree: &Path, kind: Sentinel) -> (Vec<String>, String) {
        let (before, sentinel, _) = self.finish_lines_inner(tree, kind);
        (before, sentinel)
    }

    fn finish_lines_inner(&mut self, tree: &Path, kind: Sentinel) -> (Vec<String>, String, String) {
        let name = format!(".sentinel-{}-{}", std::process::id(), next_id());
        let sp = tree.join(&name);
        match kind {
            Sentinel::Mkdir => std::fs::create_dir(&sp),
            Sentinel::Create => std::fs::write(&sp, b""),
        }
        .unwrap_or_else(|e| panic!("sentinel {}: {e}", sp.display()));
        let deadline = Instant::now() + *TIMEOUT;
        let mut before = Vec::new();
        let sentinel = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.as_ref().unwrap().recv_timeout(left) {
                Ok(l) if l.contains(&name) => break l,
                Ok(l) if is_skipped_note(&l) => {
                    eprintln!("(agent said: {l})");
                    self.skipped += note_count(&l);
                }
                Ok(l) => before.push(l),
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "ownwatch {:?}: sentinel {} not reported within {:?}.\n\
                         lines so far:\n{}\nstderr:\n{}",
                        self.args,
                        sp.display(),
                        *TIMEOUT,
                        before.join("\n"),
                        self.stderr_text()
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let st = self.wait_exit(*TIMEOUT);
                    panic!(
                        "ownwatch {:?}: stdout closed ({st:?}) before sentinel {}.\n\
                         lines so far:\n{}\nstderr:\n{}",
                        self.args,
                        sp.display(),
                        before.join("\n"),
                        self.stderr_text()
                    );
                }
            }
        };
        let mut after = self.stop_and_drain();
        let sentinel = sentinel_without_outcome(sentinel, &mut after);
        assert!(
            after.is_empty(),
            "ownwatch {:?}: lines after the sentinel:\n{}",
            self.args,
            after.join("\n")
        );
        (before, sentinel, name)
    }

    /// SIGINT, exit 0, and the lines the agent still wrote, its skipped notes counted.
    fn stop_and_drain(&mut self) -> Vec<String> {
        self.stop_with(libc::SIGINT);
        let (skipped, after): (Vec<String>, Vec<String>) =
            self.drain().into_iter().partition(|l| is_skipped_note(l));
        for l in skipped {
            eprintln!("(agent said after the sentinel: {l})");
            self.skipped += note_count(&l);
        }
        after
    }

    /// For writers whose outcomes may not all come: the sentinel as `finish`, then every
    /// event, those the agent wrote when stopping included (an event still waiting for its
    /// outcome then comes without "ret"). The skipped runs are in `self.skipped`.
    pub fn finish_all(&mut self, tree: &Path) -> Vec<Value> {
        let name = format!(".sentinel-{}-{}", std::process::id(), next_id());
        std::fs::create_dir(tree.join(&name)).expect("sentinel");
        let mut lines = Vec::new();
        let deadline = Instant::now() + *TIMEOUT;
        let sentinel = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.as_ref().unwrap().recv_timeout(left) {
                Ok(l) if l.contains(&name) => break l,
                Ok(l) if is_skipped_note(&l) => self.skipped += note_count(&l),
                Ok(l) => lines.push(l),
                Err(e) => panic!("ownwatch {:?}: no sentinel: {e:?}", self.args),
            }
        };
        let mut after = self.stop_and_drain();
        sentinel_without_outcome(sentinel, &mut after);
        lines.extend(after);
        lines.iter().map(|l| parse_event(l)).collect()
    }

    /// `finish_lines_with` for JSON output: every line must be one JSON object; the sentinel
    /// must be a correct root event. Returns the events before the sentinel.
    pub fn finish_with(&mut self, tree: &Path, kind: Sentinel) -> Vec<Value> {
        let (before, sentinel, name) = self.finish_lines_inner(tree, kind);
        let events: Vec<Value> = before.iter().map(|l| parse_event(l)).collect();
        let s = parse_event(&sentinel);
        let op = match kind {
            Sentinel::Mkdir => "mkdir",
            Sentinel::Create => "create",
        };
        let want = Exp::new(op, tree.join(&name), 0).any_comm();
        let errs = check_event(&s, &want, tree);
        if !errs.is_empty() {
            let all: Vec<String> = events.iter().map(abbrev_json).collect();
            panic!(
                "sentinel event (root {op} {}) wrong:\n  got  {}\n  - {}\nevents before it:\n  {}",
                tree.join(&name).display(),
                abbrev_json(&s),
                errs.join("\n  - "),
                all.join("\n  ")
            );
        }
        events
    }

    /// `finish_with(tree, Sentinel::Mkdir)`.
    pub fn finish(&mut self, tree: &Path) -> Vec<Value> {
        self.finish_with(tree, Sentinel::Mkdir)
    }

    /// `finish_with(tree, kind)`: the events before the sentinel must be exactly `want`.
    pub fn expect_in(&mut self, tree: &Path, kind: Sentinel, want: &[Exp]) {
        let evs = self.finish_with(tree, kind);
        assert_events(&evs, want, tree);
    }

    /// `expect_in` on the tree of `watch_tree`, with a mkdir sentinel.
    pub fn expect(&mut self, want: &[Exp]) {
        self.expect_with(Sentinel::Mkdir, want);
    }

    /// `expect_in` on the tree of `watch_tree`, with a `kind` sentinel.
    pub fn expect_with(&mut self, kind: Sentinel, want: &[Exp]) {
        let tree = self
            .tree
            .clone()
            .expect("expect: an agent of Agent::watch_tree");
        self.expect_in(&tree, kind, want);
    }
}

/// A thread that keeps the agent's stderr `r` in `buf` and says on `ready` when the agent
/// is watching (its "ownwatch: watching " line).
pub fn read_stderr(r: impl Read + Send + 'static, buf: Arc<Mutex<String>>, ready: Sender<()>) {
    read_lines(r, move |line| {
        let s = String::from_utf8_lossy(line).into_owned();
        let is_ready = s.starts_with("ownwatch: watching ");
        buf.lock().unwrap().push_str(&s);
        if is_ready {
            let _ = ready.send(());
        }
        true
    });
}

/// A thread that reads `r` line by line (raw bytes, the newline included) and hands each line
/// to `f`, until the end, a read error, or `f` returns false.
pub fn read_lines(
    r: impl Read + Send + 'static,
    mut f: impl FnMut(&[u8]) -> bool + Send + 'static,
) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if !f(&line) {
                break;
            }
        }
    });
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Sentinel {
    Mkdir,
    Create,
}

pub fn parse_event(line: &str) -> Value {
    match serde_json::from_str::<Value>(line) {
        Ok(v) if v.is_object() => v,
        Ok(v) => panic!("stdout line is JSON but not an object: {v}"),
        Err(e) => panic!("stdout line is not JSON ({e}): {line:?}"),
    }
}

/// Run ownwatch to completion with a timeout: (exit code, stdout, stderr).
pub fn run_once(args: &[&str]) -> (Option<i32>, String, String) {
    run_within(args, *TIMEOUT)
}

/// `run_once` with its own timeout.
pub fn run_within(args: &[&str], timeout: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {} {args:?}: {e}", bin()));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut s);
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ownwatch {args:?} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = String::from_utf8_lossy(&to.join().unwrap()).into_owned();
    let err = String::from_utf8_lossy(&te.join().unwrap()).into_owned();
    (status.code(), out, err)
}

/// Wait until `f` holds, asking every `poll`; panics after *TIMEOUT, saying it waited for `what`.
pub fn wait_until(what: &str, poll: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + *TIMEOUT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(poll);
    }
}

/// Does the file at `p` (an output file) contain `needle`? False while it cannot be read.
pub fn file_has(p: &Path, needle: &str) -> bool {
    std::fs::read_to_string(p)
        .map(|t| t.contains(needle))
        .unwrap_or(false)
}

/// Wait until the output file `p` has `needle` in it.
pub fn wait_in_file(p: &Path, needle: &str) {
    wait_until(
        &format!("{needle:?} in {}", p.display()),
        Duration::from_millis(20),
        || file_has(p, needle),
    );
}

/// Every line of an output file, parsed; the file must end with a newline (no torn line).
pub fn json_lines(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends in a torn line",
        p.display()
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}")))
        .collect()
}

/// `ownwatch probe`, parsed (cached). Probe loads and trial-attaches every backend: four
/// agents' start-up. Under emulation, with other tests loading programs at the same time, that
/// took more than an agent's timeout (over 120 s in a 6.12 guest of the CI matrix while a
/// single start took 10-30 s): it gets three. In the kernel matrix the guest job has run this
/// binary's probe on this kernel already (~20 s on 7.3): its output, exit 0, is read from
/// OWNWATCH_TEST_PROBE_JSON instead.
pub fn probe() -> &'static Value {
    static P: OnceLock<Value> = OnceLock::new();
    P.get_or_init(|| {
        if let Some(f) = std::env::var_os("OWNWATCH_TEST_PROBE_JSON").filter(|f| !f.is_empty()) {
            let out = std::fs::read_to_string(&f)
                .unwrap_or_else(|e| panic!("OWNWATCH_TEST_PROBE_JSON {f:?}: {e}"));
            return serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("{f:?}: probe's output is not JSON ({e}):\n{out}"));
        }
        let (code, out, err) = run_within(&["probe"], *TIMEOUT * 3);
        assert_eq!(
            code,
            Some(0),
            "ownwatch probe: exit {code:?}; stderr:\n{err}"
        );
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ownwatch probe: not JSON ({e}):\n{out}\nstderr:\n{err}"))
    })
}

/// Whether the kprobe backend attaches kprobe sessions here (6.10+ with CONFIG_FPROBE:
/// Debian's 6.12 and 7.3 but arm64 6.12), as probe says: the completing functions' outcomes
/// and the file_open hook's verdict.
pub fn kprobe_sessions() -> bool {
    probe()["kernel"]["features"]["kprobe_session"]["present"] == true
        && std::env::var("OWNWATCH_KPROBE_SESSION").as_deref() != Ok("0")
}

/// A normal start's stderr (no -v): one line, `ownwatch: watching 1 tree with backend B (…`.
/// `ctx` says whose stderr it is.
pub fn assert_normal_start(err: &str, backend: &str, ctx: &str) {
    assert_eq!(err.lines().count(), 1, "stderr not one line; {ctx}");
    let want = format!("ownwatch: watching 1 tree with backend {backend} (");
    assert!(err.starts_with(&want), "want {want:?}; {ctx}");
    // kprobe: the outcomes from a kprobe session where the kernel has them (6.10+) and can
    // attach one (CONFIG_FPROBE: Debian's 6.12 and 7.3 but arm64 6.12), as probe says
    let session = backend == "kprobe" && kprobe_sessions();
    assert_eq!(
        err.contains(" hooks, one a kprobe session, attached in "),
        session,
        "a kprobe session expected: {session}; {ctx}"
    );
}

/// The count of an in-band note, a skipped or an outcome one (JSON; a text note counts as one).
pub fn note_count(line: &str) -> u64 {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["count"].as_u64())
        .unwrap_or(1)
}

/// The agent's in-band note that the kernel skipped runs of its programs (`"op":"lost",
/// "reason":"skipped"`): each may or may not have been an event of this test. Not an event:
/// a test whose events all came is not failed by it, and one whose event is missing shows it.
pub fn is_skipped_note(line: &str) -> bool {
    (line.contains("\"op\":\"lost\"") && line.contains("\"reason\":\"skipped\""))
        || (line.contains(" lost ") && line.ends_with(" events (skipped)"))
}

/// The harness's own sentinel may come without its outcome, said in-band after it as any
/// other such event (the kernel skipped its outcome program: another test's agent replaced
/// that function's trampoline meanwhile). That count is the sentinel's, not the test's: it is
/// taken off the first outcome note after the sentinel (the note goes when it counted only
/// the sentinel), and the sentinel line is returned with `"ret":0`, its op having been seen
/// done. Without that note a sentinel without "ret" stays as it came (and fails its check).
/// Before this, a test counting events without their outcome against the notes (6.1 kprobe,
/// `concurrent_writers_lose_nothing_silently`) read "0 without their outcome, 1 said".
fn sentinel_without_outcome(sentinel: String, after: &mut Vec<String>) -> String {
    let Ok(mut s) = serde_json::from_str::<Value>(&sentinel) else {
        return sentinel;
    };
    if s.get("ret").is_some() {
        return sentinel;
    }
    let Some(i) = after.iter().position(|l| is_outcome_note(l)) else {
        return sentinel;
    };
    let mut note: Value = serde_json::from_str(&after[i]).expect("an outcome note");
    match note["count"].as_u64() {
        Some(1) => {
            after.remove(i);
        }
        Some(n) => {
            note["count"] = (n - 1).into();
            after[i] = note.to_string();
        }
        None => return sentinel,
    }
    eprintln!("(the sentinel came without its outcome, said in-band: {sentinel})");
    s["ret"] = 0.into();
    s.to_string()
}

/// An in-band line counting the events just before it that went without "ret" (their
/// outcome did not come).
pub fn is_outcome_note(line: &str) -> bool {
    line.contains("\"op\":\"lost\"") && line.contains("\"reason\":\"outcome\"")
}
