//! Helpers for the integration tests: temp trees, the agent under test, acting as other users
//! in forked children with raw syscalls, the sentinel that tells when every event is in, and
//! exact comparison of the JSON events.
#![allow(dead_code)]

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The uid:gid that owns every test tree. Not in /etc/passwd: `user` is null.
pub const OWNER: u32 = 4242;
/// Another uid:gid that is neither root nor the owner. Not in /etc/passwd either.
pub const OTHER: u32 = 4343;
/// A named user that exists on Debian systems.
pub const NOBODY: u32 = 65534;
/// How long to wait for the ready line, the sentinel and the exit.
/// How long the agent may take to start, report, stop. 20 s; more where everything is slow
/// (the kernel matrix runs under emulation): OWNWATCH_TEST_TIMEOUT=seconds.
pub static TIMEOUT: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    let s = std::env::var("OWNWATCH_TEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(s)
});
/// The comm every forked actor sets, so events can be checked to come from it.
pub const ACTOR_COMM: &str = "owt-actor";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

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
        std::fs::copy(bin(), &dst)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", bin(), dst.display()));
        chmod(&dst, 0o755);
        chmod(&dir, 0o755);
        unsafe { libc::atexit(remove_copy) };
        dst
    })
}

fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"),
        Err(_) => false,
    }
}

/// True when the test can run. Outside CI a non-root run is skipped with a printed reason;
/// in CI (CI=true) a non-root run is a failure, never a skip.
pub fn require_root(test: &str) -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if in_ci() {
        panic!("{test}: integration tests must run as root in CI (they load BPF and switch uids)");
    }
    eprintln!(
        "SKIPPED {test}: not root; these tests load BPF programs and act as other uids \
         (run as root, e.g. `sudo -E cargo test --test watch`)"
    );
    false
}

/// Whether paths given as strings are decided by the kernel: always with lsm, fentry and
/// kprobe; with the tracepoint backend only where the kernel has the ctime tracepoints
/// (6.13+). Without them (the matrix's 6.1 and 6.12) user space resolves the string after
/// the fact (README "Backends"): a path through a process's private fd table or mount
/// namespace, gone by then, or a symlink swapped since, cannot be known. Tests of exactly
/// those forms check them where they are promised and say so where they are not.
pub fn kernel_decides_string_paths() -> bool {
    if expected_backend() != "tracepoint" {
        return true;
    }
    if std::env::var_os("OWNWATCH_NO_CTIME_HOOKS").is_some() {
        return false;
    }
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|d| {
            Path::new(d)
                .join("events/timestamp/inode_set_ctime_to_ts")
                .exists()
        })
}

/// `kernel_decides_string_paths()`, printing why a case is left out when it is false.
pub fn string_paths_promised(what: &str) -> bool {
    let yes = kernel_decides_string_paths();
    if !yes {
        eprintln!(
            "NOT CHECKED {what}: the tracepoint backend on a kernel without the ctime \
             tracepoints (< 6.13) resolves such paths in user space after the fact"
        );
    }
    yes
}

/// The backend the events must carry: OWNWATCH_TEST_BACKEND (also passed as --backend),
/// else OWNWATCH_EXPECT_CHOICE, else "tracepoint" (what `auto` picks on the dev/CI machine).
pub fn expected_backend() -> String {
    if let Ok(b) = std::env::var("OWNWATCH_TEST_BACKEND") {
        if !b.is_empty() {
            return b;
        }
    }
    expected_choice()
}

/// What `ownwatch probe` must choose on the machine running the tests.
pub fn expected_choice() -> String {
    match std::env::var("OWNWATCH_EXPECT_CHOICE") {
        Ok(c) if !c.is_empty() => c,
        _ => "tracepoint".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Paths and C strings

pub fn bytes(p: impl AsRef<Path>) -> Vec<u8> {
    p.as_ref().as_os_str().as_bytes().to_vec()
}

/// A C string from a path or from raw bytes.
pub fn cs(p: impl AsRef<[u8]>) -> CString {
    CString::new(p.as_ref().to_vec()).expect("no NUL in test paths")
}

/// A C string of a path.
pub fn cp(p: impl AsRef<Path>) -> CString {
    cs(bytes(p))
}

/// `dir` joined with raw name bytes (which may be non-UTF-8).
pub fn join_bytes(dir: impl AsRef<Path>, name: &[u8]) -> PathBuf {
    dir.as_ref().join(std::ffi::OsStr::from_bytes(name))
}

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Turn a raw syscall result into a Result with a readable error.
pub fn check(what: &str, r: libc::c_long) -> Result<libc::c_long, String> {
    if r < 0 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(r)
    }
}

/// A syscall argument: integers as they are, C strings and raw pointers as addresses.
pub trait SysArg {
    fn arg(&self) -> libc::c_long;
}
macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl SysArg for $t {
            fn arg(&self) -> libc::c_long {
                *self as libc::c_long
            }
        }
    )*};
}
int_arg!(i32, u32, i64, u64, usize, isize, u16, i16);
impl SysArg for CString {
    fn arg(&self) -> libc::c_long {
        self.as_ptr() as libc::c_long
    }
}
impl SysArg for std::ffi::CStr {
    fn arg(&self) -> libc::c_long {
        self.as_ptr() as libc::c_long
    }
}
impl<T> SysArg for *const T {
    fn arg(&self) -> libc::c_long {
        *self as libc::c_long
    }
}
impl<T> SysArg for *mut T {
    fn arg(&self) -> libc::c_long {
        *self as libc::c_long
    }
}
impl<T: SysArg + ?Sized> SysArg for &T {
    fn arg(&self) -> libc::c_long {
        (**self).arg()
    }
}

/// syscall(nr, args...) with up to six arguments (missing ones are 0).
pub fn raw_syscall(nr: libc::c_long, a: &[libc::c_long]) -> libc::c_long {
    assert!(a.len() <= 6);
    let g = |i: usize| a.get(i).copied().unwrap_or(0);
    unsafe { libc::syscall(nr, g(0), g(1), g(2), g(3), g(4), g(5)) }
}

/// `sc!(libc::SYS_x, args...)`: exactly that syscall, every argument passed as a long
/// (`cp(path)` temporaries live to the end of the statement); `?`-able Result.
#[macro_export]
macro_rules! sc {
    ($nr:expr $(, $a:expr)* $(,)?) => {
        // The scrutinee's temporaries (C strings) live until the call has returned.
        match [$($crate::common::SysArg::arg(&($a))),*] {
            args => $crate::common::check(
                concat!(stringify!($nr), "(", stringify!($($a),*), ")"),
                $crate::common::raw_syscall($nr, &args),
            ),
        }
    };
}

/// `fails!(errno, libc::SYS_x, args...)`: the syscall must fail with that errno.
#[macro_export]
macro_rules! fails {
    ($err:expr, $nr:expr $(, $a:expr)* $(,)?) => {{
        let r = match [$($crate::common::SysArg::arg(&($a))),*] {
            args => $crate::common::raw_syscall($nr, &args),
        };
        let e = $crate::common::errno();
        let what = concat!(stringify!($nr), "(", stringify!($($a),*), ")");
        if r >= 0 {
            Err(format!("{what} succeeded, expected errno {}", $err))
        } else if e != $err {
            Err(format!(
                "{what} failed with errno {e} ({}), expected errno {}",
                std::io::Error::from_raw_os_error(e),
                $err
            ))
        } else {
            Ok(())
        }
    }};
}

pub fn close(fd: libc::c_long) {
    unsafe {
        libc::close(fd as i32);
    }
}

/// Create a regular file (root, test process) with some content.
pub fn make_file(p: impl AsRef<Path>, content: &[u8]) {
    std::fs::write(p.as_ref(), content)
        .unwrap_or_else(|e| panic!("create {}: {e}", p.as_ref().display()));
}

pub fn make_dir(p: impl AsRef<Path>) {
    std::fs::create_dir(p.as_ref())
        .unwrap_or_else(|e| panic!("mkdir {}: {e}", p.as_ref().display()));
}

pub fn chown(p: impl AsRef<Path>, uid: u32, gid: u32) {
    let c = cp(p.as_ref());
    let r = unsafe { libc::lchown(c.as_ptr(), uid, gid) };
    assert_eq!(
        r,
        0,
        "chown {}: {}",
        p.as_ref().display(),
        std::io::Error::last_os_error()
    );
}

pub fn chmod(p: impl AsRef<Path>, mode: u32) {
    std::fs::set_permissions(p.as_ref(), std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.as_ref().display()));
}

// ---------------------------------------------------------------------------------------------
// Test directories

/// A unique directory under /tmp (root-owned, 0755) holding:
/// - `tree`: the watched tree, owned by OWNER:OWNER, mode 0777 (so OTHER can write in it too);
/// - `outside`: a root-owned sibling directory that is not watched.
///
/// Everything (and every host mount registered with `bind_mount`) is removed on drop.
pub struct TestDir {
    pub base: PathBuf,
    pub tree: PathBuf,
    pub outside: PathBuf,
    mounts: Mutex<Vec<PathBuf>>,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let base = PathBuf::from(format!(
            "/tmp/ownwatch-it-{name}-{}-{}",
            std::process::id(),
            next_id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        make_dir(&base);
        chmod(&base, 0o755);
        let base = std::fs::canonicalize(&base).expect("canonicalize base");
        let tree = base.join("tree");
        make_dir(&tree);
        chown(&tree, OWNER, OWNER);
        chmod(&tree, 0o777);
        let outside = base.join("outside");
        make_dir(&outside);
        chmod(&outside, 0o755);
        TestDir {
            base,
            tree,
            outside,
            mounts: Mutex::new(Vec::new()),
        }
    }

    /// A path inside the tree.
    pub fn t(&self, rel: &str) -> PathBuf {
        self.tree.join(rel)
    }

    /// A path in the unwatched sibling directory.
    pub fn o(&self, rel: &str) -> PathBuf {
        self.outside.join(rel)
    }

    /// Bind-mount `src` on `dst` in the host mount namespace; unmounted on drop.
    pub fn bind_mount(&self, src: &Path, dst: &Path) {
        bind_mount(src, dst);
        self.mounts.lock().unwrap().push(dst.to_path_buf());
    }
}

/// `mount --bind src dst` in the host mount namespace; panics with the reason if refused.
pub fn bind_mount(src: &Path, dst: &Path) {
    let s = cp(src);
    let d = cp(dst);
    // SAFETY: NUL-terminated paths; no data argument.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(
        r,
        0,
        "mount --bind {} {}: {}",
        src.display(),
        dst.display(),
        std::io::Error::last_os_error()
    );
}

impl Drop for TestDir {
    fn drop(&mut self) {
        for m in self.mounts.lock().unwrap().drain(..).rev() {
            let c = cp(&m);
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.base) {
            eprintln!("cleanup {}: {e}", self.base.display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The agent

/// A running `ownwatch` process. Killed on drop if still running.
pub struct Agent {
    child: Child,
    lines: Option<Receiver<String>>,
    stderr: Arc<Mutex<String>>,
    pub args: Vec<String>,
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
        Agent::watch(&v)
    }

    pub fn spawn(args: Vec<String>, mode: StdoutMode) -> Agent {
        Agent::spawn_in(args, mode, None)
    }

    /// `spawn` with the agent's working directory set to `cwd`.
    pub fn spawn_in(args: Vec<String>, mode: StdoutMode, cwd: Option<&Path>) -> Agent {
        let mut cmd = Command::new(bin());
        if let Some(c) = cwd {
            cmd.current_dir(c);
        }
        let mut child = cmd
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} {args:?}: {e}", bin()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        {
            let err = child.stderr.take().unwrap();
            let buf = stderr.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(err);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match r.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let s = String::from_utf8_lossy(&line).into_owned();
                    let ready = s.starts_with("ownwatch: watching ");
                    buf.lock().unwrap().push_str(&s);
                    if ready {
                        let _ = ready_tx.send(());
                    }
                }
            });
        }
        let (tx, rx) = mpsc::channel::<String>();
        {
            let out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                let mut r = BufReader::new(out);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match r.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let s = match std::str::from_utf8(&line) {
                        Ok(s) => s.trim_end_matches('\n').to_string(),
                        Err(_) => format!(
                            "<<stdout line is not UTF-8: {:?}>>",
                            String::from_utf8_lossy(&line)
                        ),
                    };
                    if tx.send(s).is_err() {
                        break;
                    }
                    if mode == StdoutMode::HeadOne {
                        break; // drops the pipe: the agent's next write gets EPIPE
                    }
                }
            });
        }
        let mut agent = Agent {
            child,
            lines: Some(rx),
            stderr,
            args,
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
        agent
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr_text(&self) -> String {
        // Give the reader thread a moment to catch the last lines.
        std::thread::sleep(Duration::from_millis(50));
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
                Ok(Some(st)) => return Some(st),
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
        self.stop_with(libc::SIGINT);
        let after = self.drain();
        assert!(
            after.is_empty(),
            "ownwatch {:?}: lines after the sentinel:\n{}",
            self.args,
            after.join("\n")
        );
        (before, sentinel, name)
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
    let deadline = Instant::now() + *TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ownwatch {args:?} did not exit within {:?}", *TIMEOUT);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = String::from_utf8_lossy(&to.join().unwrap()).into_owned();
    let err = String::from_utf8_lossy(&te.join().unwrap()).into_owned();
    (status.code(), out, err)
}

/// `ownwatch probe`, parsed (cached).
pub fn probe() -> &'static Value {
    static P: OnceLock<Value> = OnceLock::new();
    P.get_or_init(|| {
        let (code, out, err) = run_once(&["probe"]);
        assert_eq!(
            code,
            Some(0),
            "ownwatch probe: exit {code:?}; stderr:\n{err}"
        );
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ownwatch probe: not JSON ({e}):\n{out}\nstderr:\n{err}"))
    })
}

// ---------------------------------------------------------------------------------------------
// Acting as other users

/// Credentials of a forked actor.
#[derive(Clone, Copy, Debug)]
pub enum Creds {
    /// Unchanged: uid 0, fsuid 0.
    Root,
    /// All of real/effective/saved/fs uid and gid set; no supplementary groups.
    User(u32, u32),
    /// Real uid/gid set, effective, saved and fs ids stay 0 (a setuid-root program).
    RealUser(u32, u32),
    /// Real/effective/saved stay 0; only fsuid/fsgid set (setfsuid).
    FsUser(u32, u32),
}

fn apply_creds(c: Creds) -> Result<(), String> {
    unsafe {
        match c {
            Creds::Root => {}
            Creds::User(u, g) => {
                check("setgroups", libc::setgroups(0, std::ptr::null()) as _)?;
                check("setresgid", libc::setresgid(g, g, g) as _)?;
                check("setresuid", libc::setresuid(u, u, u) as _)?;
            }
            Creds::RealUser(u, g) => {
                check("setgroups", libc::setgroups(0, std::ptr::null()) as _)?;
                check("setresgid", libc::setresgid(g, 0, 0) as _)?;
                check("setresuid", libc::setresuid(u, 0, 0) as _)?;
            }
            Creds::FsUser(u, g) => {
                libc::setfsgid(g);
                libc::setfsuid(u);
                // setfsuid returns the previous value: asking again must return the new one.
                if libc::setfsgid(g) as u32 != g || libc::setfsuid(u) as u32 != u {
                    return Err("setfsuid/setfsgid did not take".into());
                }
            }
        }
        let name = CString::new(ACTOR_COMM).unwrap();
        libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
        libc::umask(0);
    }
    Ok(())
}

/// Fork; in the child set `creds` (and comm = ACTOR_COMM, umask 0), run `f`, `_exit(0)` on
/// Ok, `_exit(1)` on Err or panic. The parent waits and panics with the child's error.
/// Returns the child's pid (the `pid`/`tid` of the events it caused).
pub fn run_as<F: FnOnce() -> Result<(), String>>(creds: Creds, f: F) -> i32 {
    let mut fds = [0i32; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        unsafe { libc::close(fds[0]) };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply_creds(creds)?;
            f()
        }));
        let msg = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(p) => Some(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
            ),
        };
        unsafe {
            if let Some(m) = msg {
                libc::write(fds[1], m.as_ptr() as *const libc::c_void, m.len());
                libc::_exit(1);
            }
            libc::_exit(0);
        }
    }
    unsafe { libc::close(fds[1]) };
    let mut status = 0;
    loop {
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        assert!(
            r < 0 && errno() == libc::EINTR,
            "waitpid: {}",
            std::io::Error::last_os_error()
        );
    }
    // The child is gone: whatever it wrote is in the pipe. Read without waiting for EOF (a
    // concurrently forked child of another test may hold a copy of the write end).
    unsafe { libc::fcntl(fds[0], libc::F_SETFL, libc::O_NONBLOCK) };
    let mut msg = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n <= 0 {
            break;
        }
        msg.extend_from_slice(&buf[..n as usize]);
    }
    unsafe { libc::close(fds[0]) };
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(
        ok,
        "actor {creds:?} (pid {pid}) failed (status {status:#x}): {}",
        String::from_utf8_lossy(&msg)
    );
    pid
}

/// Owner uid:gid of a path (not following a final symlink).
pub fn owner_of(p: impl AsRef<Path>) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p.as_ref())
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.as_ref().display()));
    (m.uid(), m.gid())
}

// ---------------------------------------------------------------------------------------------
// Expected events

/// One expected event. Fields not set here are checked against defaults:
/// new_path/target/new_uid/new_gid/xattr absent, exchange/truncated absent or false, mode
/// present (octal) exactly for create/mkdir/mknod/chmod, uid/euid = fsuid, gid/fsgid =
/// fsuid's group (same number), ret 0, backend as expected, tree = the watched tree.
#[derive(Clone, Debug)]
pub struct Exp {
    pub op: String,
    pub path: Vec<u8>,
    pub fsuid: u32,
    pub new_path: Option<Vec<u8>>,
    pub target: Option<Vec<u8>>,
    pub mode: Option<u32>,
    pub new_uid: Option<u32>,
    pub new_gid: Option<u32>,
    pub xattr: Option<String>,
    pub exchange: bool,
    pub truncated: bool,
    pub pid: Option<i32>,
    /// Defaults to `pid`.
    pub tid: Option<i32>,
    pub comm: Option<String>,
    pub tree: Option<PathBuf>,
    /// Done through io_uring: by any thread of `pid` (an io-wq worker, "iou-wrk-N", or the
    /// submitter); the tracepoint backend sees only the submission, so no "ret".
    pub io_uring: bool,
    /// (uid, gid, euid, fsgid)
    pub ids: (u32, u32, u32, u32),
    pub fields: Vec<(String, Value)>,
}

impl Exp {
    pub fn new(op: &str, path: impl AsRef<Path>, fsuid: u32) -> Exp {
        Exp {
            op: op.to_string(),
            path: bytes(path),
            fsuid,
            new_path: None,
            target: None,
            mode: None,
            new_uid: None,
            new_gid: None,
            xattr: None,
            exchange: false,
            truncated: false,
            pid: None,
            tid: None,
            comm: Some(ACTOR_COMM.to_string()),
            tree: None,
            io_uring: false,
            ids: (fsuid, fsuid, fsuid, fsuid),
            fields: Vec::new(),
        }
    }
    pub fn new_path(mut self, p: impl AsRef<Path>) -> Exp {
        self.new_path = Some(bytes(p));
        self
    }
    pub fn target(mut self, t: impl AsRef<[u8]>) -> Exp {
        self.target = Some(t.as_ref().to_vec());
        self
    }
    pub fn mode(mut self, m: u32) -> Exp {
        self.mode = Some(m);
        self
    }
    pub fn owner(mut self, uid: Option<u32>, gid: Option<u32>) -> Exp {
        self.new_uid = uid;
        self.new_gid = gid;
        self
    }
    pub fn xattr(mut self, name: &str) -> Exp {
        self.xattr = Some(name.to_string());
        self
    }
    pub fn exchange(mut self) -> Exp {
        self.exchange = true;
        self
    }
    pub fn pid(mut self, pid: i32) -> Exp {
        self.pid = Some(pid);
        self
    }
    pub fn tid(mut self, tid: i32) -> Exp {
        self.tid = Some(tid);
        self
    }
    pub fn io_uring(mut self) -> Exp {
        self.io_uring = true;
        self
    }
    pub fn any_comm(mut self) -> Exp {
        self.comm = None;
        self
    }
    pub fn tree(mut self, t: impl AsRef<Path>) -> Exp {
        self.tree = Some(t.as_ref().to_path_buf());
        self
    }
    /// uid, gid, euid, fsgid (fsuid is given to `new`).
    pub fn ids(mut self, uid: u32, gid: u32, euid: u32, fsgid: u32) -> Exp {
        self.ids = (uid, gid, euid, fsgid);
        self
    }
    pub fn field(mut self, k: &str, v: Value) -> Exp {
        self.fields.push((k.to_string(), v));
        self
    }
}

/// Event fields of schema version 1.
const KNOWN_FIELDS: &[&str] = &[
    "time",
    "op",
    "path",
    "path_b64",
    "new_path",
    "new_path_b64",
    "target",
    "target_b64",
    "tree",
    "tree_b64",
    "uid",
    "gid",
    "euid",
    "fsuid",
    "fsgid",
    "user",
    "group",
    "loginuid",
    "login_user",
    "sessionid",
    "tty",
    "pid",
    "tid",
    "ppid",
    "comm",
    "exe",
    "argv",
    "argv_b64",
    "argv_truncated",
    "parents",
    "cgroup",
    "container_id",
    "mode",
    "new_uid",
    "new_gid",
    "xattr",
    "ret",
    "backend",
    "exchange",
    "truncated",
    "fixed",
    "setid_cleared",
    "fix_error",
    "count",
];

pub fn b64decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    }
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn check_path_field(ev: &Value, key: &str, want: &Option<Vec<u8>>, errs: &mut Vec<String>) {
    let b64key = format!("{key}_b64");
    match want {
        None => {
            if ev.get(key).is_some() {
                errs.push(format!("{key} present ({}) but not expected", ev[key]));
            }
            if ev.get(&b64key).is_some() {
                errs.push(format!("{b64key} present but not expected"));
            }
        }
        Some(w) => {
            let lossy = String::from_utf8_lossy(w);
            match ev.get(key).and_then(Value::as_str) {
                Some(s) if s == lossy => {}
                Some(s) => errs.push(format!("{key} = {s:?}, want {lossy:?}")),
                None => errs.push(format!("{key} missing or not a string, want {lossy:?}")),
            }
            let valid = std::str::from_utf8(w).is_ok();
            match ev.get(&b64key) {
                None if valid => {}
                None => errs.push(format!("{b64key} missing for non-UTF-8 {key} {lossy:?}")),
                Some(v) => match v.as_str().and_then(b64decode) {
                    Some(d) if &d == w => {}
                    Some(d) => errs.push(format!(
                        "{b64key} decodes to {:?}, want {:?}",
                        String::from_utf8_lossy(&d),
                        lossy
                    )),
                    None => errs.push(format!("{b64key} = {v} is not base64")),
                },
            }
        }
    }
}

fn want_num(ev: &Value, key: &str, want: u64, errs: &mut Vec<String>) {
    match ev.get(key).and_then(Value::as_u64) {
        Some(v) if v == want => {}
        _ => errs.push(format!(
            "{key} = {}, want {want}",
            ev.get(key).unwrap_or(&Value::Null)
        )),
    }
}

fn want_absent_or_false(ev: &Value, key: &str, errs: &mut Vec<String>) {
    match ev.get(key) {
        None | Some(Value::Bool(false)) => {}
        Some(v) => errs.push(format!("{key} = {v}, want absent")),
    }
}

/// Names as the agent should print them: "root" for 0, a name from /etc/passwd for a few
/// known ids, null for the test ids that do not exist.
fn expected_name(id: u32) -> Option<Value> {
    match id {
        0 => Some(Value::from("root")),
        OWNER | OTHER => Some(Value::Null),
        _ => None,
    }
}

/// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.fraction]Z".
pub fn parse_time(t: &str) -> Option<f64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !t.ends_with('Z') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = match &t[19..t.len() - 1] {
        "" => 0.0,
        f if f.starts_with('.') && f.len() > 1 && f[1..].bytes().all(|c| c.is_ascii_digit()) => {
            format!("0{f}").parse::<f64>().ok()?
        }
        _ => return None,
    };
    // days from civil (Howard Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + mi * 60 + sec) as f64 + frac)
}

/// Compare one event with an expectation; returns the list of differences.
pub fn check_event(ev: &Value, w: &Exp, tree: &Path) -> Vec<String> {
    let mut errs = Vec::new();
    if ev.get("op").and_then(Value::as_str) != Some(w.op.as_str()) {
        errs.push(format!(
            "op = {}, want {:?}",
            ev.get("op").unwrap_or(&Value::Null),
            w.op
        ));
    }
    check_path_field(ev, "path", &Some(w.path.clone()), &mut errs);
    check_path_field(ev, "new_path", &w.new_path, &mut errs);
    check_path_field(ev, "target", &w.target, &mut errs);
    want_num(ev, "fsuid", w.fsuid as u64, &mut errs);
    let (uid, gid, euid, fsgid) = w.ids;
    want_num(ev, "uid", uid as u64, &mut errs);
    want_num(ev, "gid", gid as u64, &mut errs);
    want_num(ev, "euid", euid as u64, &mut errs);
    want_num(ev, "fsgid", fsgid as u64, &mut errs);
    if let Some(n) = expected_name(w.fsuid) {
        if ev.get("user") != Some(&n) {
            errs.push(format!("user = {:?}, want {n}", ev.get("user")));
        }
    }
    if let Some(n) = expected_name(fsgid) {
        if ev.get("group") != Some(&n) {
            errs.push(format!("group = {:?}, want {n}", ev.get("group")));
        }
    }
    // mode
    let mode_ops = ["create", "mkdir", "mknod", "chmod"];
    if mode_ops.contains(&w.op.as_str()) {
        match ev.get("mode").and_then(Value::as_str) {
            Some(s) if !s.is_empty() && s.bytes().all(|c| (b'0'..=b'7').contains(&c)) => {
                let m = u32::from_str_radix(s, 8).unwrap_or(u32::MAX);
                if let Some(want) = w.mode {
                    if m & 0o7777 != want {
                        errs.push(format!("mode = {s:?}, want {want:04o}"));
                    }
                }
                if s.len() < 4 {
                    errs.push(format!("mode = {s:?} does not look like \"0755\""));
                }
            }
            _ => errs.push(format!(
                "mode = {}, want an octal string{}",
                ev.get("mode").unwrap_or(&Value::Null),
                w.mode.map(|m| format!(" {m:04o}")).unwrap_or_default()
            )),
        }
    } else if ev.get("mode").is_some() {
        errs.push(format!("mode = {} present for op {}", ev["mode"], w.op));
    }
    for (key, want) in [("new_uid", w.new_uid), ("new_gid", w.new_gid)] {
        match want {
            Some(n) => want_num(ev, key, n as u64, &mut errs),
            None => {
                if ev.get(key).is_some() {
                    errs.push(format!("{key} = {}, want absent", ev[key]));
                }
            }
        }
    }
    match &w.xattr {
        Some(x) => {
            if ev.get("xattr").and_then(Value::as_str) != Some(x.as_str()) {
                errs.push(format!("xattr = {:?}, want {x:?}", ev.get("xattr")));
            }
        }
        None => {
            if ev.get("xattr").is_some() {
                errs.push(format!("xattr = {}, want absent", ev["xattr"]));
            }
        }
    }
    if w.exchange {
        if ev.get("exchange") != Some(&Value::Bool(true)) {
            errs.push(format!("exchange = {:?}, want true", ev.get("exchange")));
        }
    } else {
        want_absent_or_false(ev, "exchange", &mut errs);
    }
    if w.truncated {
        if ev.get("truncated") != Some(&Value::Bool(true)) {
            errs.push(format!("truncated = {:?}, want true", ev.get("truncated")));
        }
    } else {
        want_absent_or_false(ev, "truncated", &mut errs);
    }
    let tree = w.tree.as_deref().unwrap_or(tree);
    check_path_field(ev, "tree", &Some(bytes(tree)), &mut errs);
    let backend = expected_backend();
    match ev.get("ret") {
        None if w.io_uring && backend == "tracepoint" => {}
        Some(v) if v.as_i64() == Some(0) && !(w.io_uring && backend == "tracepoint") => {}
        v => errs.push(format!("ret = {v:?}, want 0")),
    }
    if ev.get("backend").and_then(Value::as_str) != Some(backend.as_str()) {
        errs.push(format!(
            "backend = {:?}, want {backend:?}",
            ev.get("backend")
        ));
    }
    match ev
        .get("time")
        .and_then(Value::as_str)
        .map(|t| (t, parse_time(t)))
    {
        Some((t, Some(secs))) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            if (now - secs).abs() > 120.0 {
                errs.push(format!("time = {t:?} is not within 2 minutes of now"));
            }
        }
        t => errs.push(format!(
            "time = {:?}, want RFC 3339 UTC like 2026-11-25T13:42:15.123456789Z",
            t.map(|t| t.0)
        )),
    }
    for k in ["pid", "tid", "ppid"] {
        if ev.get(k).and_then(Value::as_u64).is_none() {
            errs.push(format!("{k} missing or not a number"));
        }
    }
    if let Some(pid) = w.pid {
        want_num(ev, "pid", pid as u64, &mut errs);
        if !w.io_uring {
            want_num(ev, "tid", w.tid.unwrap_or(pid) as u64, &mut errs);
        }
        want_num(ev, "ppid", std::process::id() as u64, &mut errs);
    }
    match (&w.comm, ev.get("comm").and_then(Value::as_str)) {
        (Some(c), Some(g)) if w.io_uring && (g == c || g.starts_with("iou-wrk-")) => {}
        (_, None) => errs.push("comm missing or not a string".into()),
        (Some(c), Some(g)) if c != g => errs.push(format!("comm = {g:?}, want {c:?}")),
        _ => {}
    }
    for (k, v) in &w.fields {
        if ev.get(k) != Some(v) {
            errs.push(format!("{k} = {:?}, want {v}", ev.get(k)));
        }
    }
    if let Some(obj) = ev.as_object() {
        for k in obj.keys() {
            if !KNOWN_FIELDS.contains(&k.as_str()) {
                errs.push(format!("unknown field {k:?}"));
            }
        }
    }
    errs
}

/// Long strings (deep paths) cut in the middle so that failure reports stay readable.
pub fn abbrev(s: &str) -> String {
    const KEEP: usize = 120;
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 3 * KEEP {
        return s.to_string();
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!("{head}…[{} chars]…{tail}", chars.len())
}

fn abbrev_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k:?}:{}", abbrev(&v.to_string())))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        v => abbrev(&v.to_string()),
    }
}

fn show_exp(w: &Exp) -> String {
    let mut s = format!(
        "{} {:?} fsuid={}",
        w.op,
        abbrev(&String::from_utf8_lossy(&w.path)),
        w.fsuid
    );
    if let Some(n) = &w.new_path {
        s += &format!(" new_path={:?}", abbrev(&String::from_utf8_lossy(n)));
    }
    if let Some(t) = &w.target {
        s += &format!(" target={:?}", abbrev(&String::from_utf8_lossy(t)));
    }
    if let Some(m) = w.mode {
        s += &format!(" mode={m:04o}");
    }
    s
}

/// The events must be exactly `want`, in order. On mismatch, panic with both lists and
/// every difference.
pub fn assert_events(got: &[Value], want: &[Exp], tree: &Path) {
    const MAX_PROBLEMS: usize = 25;
    let mut report = Vec::new();
    let n = got.len().max(want.len());
    let bad_len = got.len() != want.len();
    let mut problems = 0;
    let mut ok_run: Option<(usize, usize)> = None;
    let flush = |report: &mut Vec<String>, run: &mut Option<(usize, usize)>| match run.take() {
        Some((a, b)) if a == b => report.push(format!("  [{a}] ok    {}", show_exp(&want[a]))),
        Some((a, b)) => report.push(format!("  [{a}..={b}] ok")),
        None => {}
    };
    for i in 0..n {
        let line = match (got.get(i), want.get(i)) {
            (Some(g), Some(w)) => {
                let errs = check_event(g, w, tree);
                if errs.is_empty() {
                    ok_run = Some(match ok_run {
                        Some((a, _)) => (a, i),
                        None => (i, i),
                    });
                    continue;
                }
                let errs: Vec<String> = errs.iter().map(|e| abbrev(e)).collect();
                format!(
                    "  [{i}] DIFF  want {}\n        got  {}\n        - {}",
                    show_exp(w),
                    abbrev_json(g),
                    errs.join("\n        - ")
                )
            }
            (Some(g), None) => format!("  [{i}] EXTRA got {}", abbrev_json(g)),
            (None, Some(w)) => format!("  [{i}] MISSING want {}", show_exp(w)),
            (None, None) => unreachable!(),
        };
        flush(&mut report, &mut ok_run);
        problems += 1;
        if problems <= MAX_PROBLEMS {
            report.push(line);
        }
    }
    flush(&mut report, &mut ok_run);
    if problems > MAX_PROBLEMS {
        report.push(format!(
            "  ... {} more differences",
            problems - MAX_PROBLEMS
        ));
    }
    if bad_len || problems > 0 {
        panic!(
            "events differ (got {}, want {}):\n{}",
            got.len(),
            want.len(),
            report.join("\n")
        );
    }
}
