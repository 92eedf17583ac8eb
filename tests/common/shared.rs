//! One agent for many tests. Starting an agent (probe, verifier, attach) and stopping it
//! (detaching every hook) is most of what a watch test costs under emulation: about 2–3 s of
//! guest CPU per agent in the kernel matrix, against a few hundred ms for the test's own
//! syscalls. The tests that watch with the default options share one agent per test binary
//! instead: it watches the *arena*, a directory owned by OWNER, and each test's tree is a
//! directory in it (`TestDir::shared`).
//!
//! A test takes a `Lease` on its tree. The agent's lines go to the lease whose tree (or
//! `outside` directory) holds the event's path or new path. Markers made in the arena root
//! (`<tree>.begin-N`, `<tree>.end-N`, `<tree>.after-N`, root mkdirs, reported like any other)
//! bound what belongs to the test: what came before `begin` was the test's set-up, what comes
//! between `end` and `after` came after the test's last op (an error, as after the sentinel of
//! an agent of its own). An event no lease claims is kept and fails the next lease that
//! finishes. Skipped-runs notes go to every lease; so does any other line without a path.
//!
//! The agent starts on first use, from a thread of its own that lives as long as the test
//! process (the agent gets SIGKILL when that thread ends: PR_SET_PDEATHSIG), and is stopped,
//! and the arena removed, when the test process exits.
//!
//! A second shared agent, the *ruled* one (`Arena::ruled`, `TestDir::ruled`), runs with
//! `--config FILE` instead: the arena (OWNER's, every op) is the file's first `[[tree]]`, for
//! the markers, and each test's tree is a `[[tree]]` of its own with the test's rules
//! (owner, allow, ops, fix), laid out as for an agent of its own (`tree` and an unwatched
//! `outside` beside it, outside the arena). The file is rewritten and the agent sent SIGHUP
//! (its "rules reloaded" line awaited) when a test takes its lease (before it, the tree is
//! unwatched set-up, as before an agent's start) and before the tree goes: the tests whose
//! subject is a tree's rules or the paths around it, not the agent's start, pay one start
//! per test process instead of one each.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde_json::Value;

use super::{
    assert_events, bin, check_event, expected_backend, is_outcome_note, is_skipped_note, make_tree,
    next_id, note_count, parse_event, read_stderr, watch_args, Exp, TestDir, OWNER, TIMEOUT,
};

/// A shared agent and where its lines go.
pub struct Arena {
    /// The watched directory; every shared tree is a directory in it (for the ruled agent:
    /// where the markers are made).
    pub root: PathBuf,
    routes: Mutex<Routes>,
    /// The ruled agent's config file and its trees' blocks.
    config: Option<Mutex<Config>>,
    stderr: Arc<Mutex<String>>,
    /// What the agent said on stderr by the time it was ready (its start).
    pub started: String,
    pid: i32,
}

#[derive(Default)]
struct Routes {
    leases: Vec<Route>,
    /// Lines no lease claimed, not yet reported.
    orphans: Vec<String>,
    /// Why the agent's output ended, once it has.
    ended: Option<String>,
}

struct Route {
    key: u32,
    /// The tree and, with a trailing '/', what lies below it and below the test's
    /// `outside` directory; the markers' stem and '.', the markers.
    exact: String,
    prefixes: Vec<String>,
    /// The markers are `<stem>.<what>-N`, in the arena.
    stem: PathBuf,
    /// The watched root of the tree's events ("tree").
    root: PathBuf,
    tx: Sender<String>,
}

/// The ruled agent's `--config` file: the arena's block, then one per tree (by route key).
struct Config {
    file: PathBuf,
    head: String,
    trees: Vec<(u32, String)>,
    /// Blocks of trees not leased yet.
    pending: Vec<(u32, String)>,
    /// "rules reloaded" and "reloading ... failed" lines seen so far.
    reloads: (usize, usize),
}

/// How many "rules reloaded" and "reloading ... failed" lines `stderr` holds.
fn reload_lines(stderr: &str) -> (usize, usize) {
    (
        stderr.matches(": rules reloaded (").count(),
        stderr.matches("failed, keeping the old rules").count(),
    )
}

impl Route {
    fn claims(&self, path: &str) -> bool {
        path == self.exact || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// The paths an event line names (path, new_path), for routing.
fn line_paths(line: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return Vec::new();
    };
    ["path", "new_path"]
        .iter()
        .filter_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
        .collect()
}

impl Arena {
    /// The shared agent of this test process (default options), started on first use.
    pub fn get() -> &'static Arena {
        static A: OnceLock<&'static Arena> = OnceLock::new();
        A.get_or_init(|| Arena::launch(false))
    }

    /// The ruled agent of this test process (`--config`), started on first use.
    pub fn ruled() -> &'static Arena {
        static A: OnceLock<&'static Arena> = OnceLock::new();
        A.get_or_init(|| Arena::launch(true))
    }

    fn launch(ruled: bool) -> &'static Arena {
        let (arena, lines) = Arena::start(ruled);
        let a: &'static Arena = Box::leak(Box::new(arena));
        std::thread::spawn(move || a.dispatch(lines));
        a
    }

    fn start(ruled: bool) -> (Arena, Receiver<Option<String>>) {
        let root = PathBuf::from(format!(
            "/tmp/ownwatch-arena-{}-{}",
            std::process::id(),
            next_id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        make_tree(&root, OWNER);
        let root = std::fs::canonicalize(&root).expect("canonicalize the arena");
        let root_s = root.to_str().expect("UTF-8 arena path").to_string();
        // (beside the arena, not in it: root's writes there would be events)
        let file = PathBuf::from(format!("{root_s}.toml"));
        let file_s = file.to_str().unwrap().to_string();
        let config = ruled.then(|| {
            let c = Config {
                file: file.clone(),
                head: format!("[[tree]]\npath = {root_s:?}\nowner = \"{OWNER}\"\n"),
                trees: Vec::new(),
                pending: Vec::new(),
                reloads: (0, 0),
            };
            c.write();
            Mutex::new(c)
        });
        // Many tests' bursts share its ring: 64 MiB unless the run sets a size
        // (OWNWATCH_TEST_RING_SIZE, which watch_args passes).
        let mut extra = if ruled {
            vec!["--config", file_s.as_str()]
        } else {
            vec![root_s.as_str()]
        };
        if std::env::var_os("OWNWATCH_TEST_RING_SIZE").is_none() {
            extra.extend(["--ring-size", "64M"]);
        }
        let args = watch_args(&extra);
        let stderr = Arc::new(Mutex::new(String::new()));
        let (started_tx, started_rx) = mpsc::channel::<Result<i32, String>>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let (lines_tx, lines_rx) = mpsc::channel::<Option<String>>();
        let err = stderr.clone();
        // The thread that forks the agent lives until the agent's stdout ends: the agent's
        // parent-death signal is tied to it.
        std::thread::spawn(move || {
            let mut cmd = Command::new(bin());
            cmd.args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            // SAFETY: prctl is async-signal-safe; it changes only the child.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = started_tx.send(Err(format!("spawn {} {args:?}: {e}", bin())));
                    return;
                }
            };
            let _ = started_tx.send(Ok(child.id() as i32));
            read_stderr(child.stderr.take().unwrap(), err, ready_tx);
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = Vec::new();
            while matches!(out.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let s = String::from_utf8_lossy(&line)
                    .trim_end_matches('\n')
                    .to_string();
                line.clear();
                if lines_tx.send(Some(s)).is_err() {
                    break;
                }
            }
            let _ = child.wait();
            let _ = lines_tx.send(None);
        });
        let pid = match started_rx.recv().expect("the shared agent's thread") {
            Ok(pid) => pid,
            Err(e) => panic!("{e}"),
        };
        let mut arena = Arena {
            root,
            routes: Mutex::new(Routes::default()),
            config,
            stderr,
            started: String::new(),
            pid,
        };
        if ready_rx.recv_timeout(*TIMEOUT).is_err() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!(
                "shared agent: no 'ownwatch: watching ' line within {:?}; stderr:\n{}",
                *TIMEOUT,
                arena.stderr_text()
            );
        }
        arena.started = arena.stderr_text();
        stop_at_exit(pid, &arena.root, &file);
        (arena, lines_rx)
    }

    /// Hands the agent's lines out until its output ends.
    fn dispatch(&'static self, rx: Receiver<Option<String>>) {
        while let Ok(line) = rx.recv() {
            let end = line.is_none();
            self.route(line);
            if end {
                break;
            }
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Each line to the lease that claims it (see the module's doc).
    fn route(&self, line: Option<String>) {
        let mut r = self.routes.lock().unwrap();
        let Some(line) = line else {
            r.ended = Some(format!(
                "the shared agent's output ended; stderr:\n{}",
                self.stderr_text()
            ));
            for l in &mut r.leases {
                l.tx = mpsc::channel().0; // (their receivers see the end)
            }
            return;
        };
        let paths = line_paths(&line);
        if paths.is_empty() || is_skipped_note(&line) {
            for l in &r.leases {
                let _ = l.tx.send(line.clone());
            }
            return;
        }
        match r.leases.iter().find(|l| paths.iter().any(|p| l.claims(p))) {
            Some(l) => {
                let _ = l.tx.send(line);
            }
            None => r.orphans.push(line),
        }
    }

    /// Claim the lines about `tree` and what lies below `base` (a shared `TestDir`) for
    /// whoever leases it; until then, and after, they are passed over. Returns the key for
    /// `lease` and `unregister`.
    pub fn register(&self, tree: &Path, base: &Path) -> u32 {
        assert!(
            self.config.is_none(),
            "the ruled agent's trees come with rules"
        );
        self.add_route(next_id(), tree, base, tree.to_path_buf(), &self.root)
    }

    fn add_route(&self, key: u32, tree: &Path, base: &Path, stem: PathBuf, root: &Path) -> u32 {
        let t = tree.to_str().expect("UTF-8 tree").to_string();
        let o = base.to_str().expect("UTF-8 base").to_string();
        let m = stem.to_str().expect("UTF-8 stem").to_string();
        let mut r = self.routes.lock().unwrap();
        r.leases.push(Route {
            key,
            exact: t.clone(),
            prefixes: vec![format!("{t}/"), format!("{m}."), format!("{o}/")],
            stem,
            root: root.to_path_buf(),
            tx: mpsc::channel().0,
        });
        key
    }

    /// The ruled agent: `tree` (in `base`, a `TestDir`'s) to be a `[[tree]]` of its own with
    /// `rules` (TOML lines: `allow = [...]`, `ops = "..."`, `fix = true`, even more
    /// `[[tree]]`s; `{tree}` stands for the tree's path), watched from its `lease` on as an
    /// agent of its own would be from its start; its lines are claimed as `register` does.
    /// Returns the key for `lease` and `unregister`.
    pub fn register_ruled(&self, tree: &Path, base: &Path, rules: &str) -> u32 {
        let key = next_id();
        let name = base.file_name().unwrap().to_str().unwrap();
        self.add_route(
            key,
            tree,
            base,
            self.root.join(format!("{name}-{key}")),
            tree,
        );
        let t = tree.to_str().expect("UTF-8 tree");
        let block = format!(
            "[[tree]]\npath = {t:?}\n{}\n",
            rules.trim().replace("{tree}", t)
        );
        let mut c = self.config();
        c.pending.push((key, block));
        key
    }

    /// The tree's lines are nobody's from now on (and the ruled agent watches it no more).
    pub fn unregister(&self, key: u32) {
        if self.config.is_some() {
            self.config().pending.retain(|(k, _)| *k != key);
            let res = self.reconfigure(|c| {
                let n = c.trees.len();
                c.trees.retain(|(k, _)| *k != key);
                c.trees.len() != n
            });
            if let Err(e) = res {
                eprintln!("(ruled agent: {e})");
            }
        }
        self.routes.lock().unwrap().leases.retain(|l| l.key != key);
    }

    /// The ruled agent's file (also after a test panicked holding it).
    fn config(&self) -> std::sync::MutexGuard<'_, Config> {
        let c = self.config.as_ref().expect("the ruled agent");
        c.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the ruled agent's file with `f` (which says whether it changed anything), then
    /// SIGHUP, and waits for its "rules reloaded" line (one reload at a time).
    fn reconfigure(&self, f: impl FnOnce(&mut Config) -> bool) -> Result<(), String> {
        let mut c = self.config();
        if !f(&mut c) {
            return Ok(());
        }
        c.write();
        // SAFETY: a signal to the agent we started.
        unsafe { libc::kill(self.pid, libc::SIGHUP) };
        let deadline = Instant::now() + *TIMEOUT;
        loop {
            let err = self.stderr_text();
            let (ok, failed) = reload_lines(&err);
            if failed > c.reloads.1 {
                c.reloads = (ok, failed);
                return Err(format!("the ruled agent refused its file:\n{err}"));
            }
            if ok > c.reloads.0 {
                c.reloads = (ok, failed);
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the ruled agent: no 'rules reloaded' line within {:?}; stderr:\n{err}",
                    *TIMEOUT
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Where the lines of `key` go: to `tx`.
    fn redirect(&self, key: u32, tx: Sender<String>) {
        let mut r = self.routes.lock().unwrap();
        if let Some(why) = &r.ended {
            panic!("{why}");
        }
        if let Some(l) = r.leases.iter_mut().find(|l| l.key == key) {
            l.tx = tx;
        }
    }

    /// Back to passing the lines of `key` over (no panic: for drops).
    fn redirect_quietly(&self, key: u32) {
        let mut r = self.routes.lock().unwrap();
        if let Some(l) = r.leases.iter_mut().find(|l| l.key == key) {
            l.tx = mpsc::channel().0;
        }
    }

    /// A lease on `d`'s tree (made by `TestDir::shared`), from now on: what came before is
    /// set-up and is passed over.
    pub fn lease(&'static self, d: &TestDir) -> Lease {
        let key = match d.shared {
            Some((a, key)) if std::ptr::eq(a, self) => key,
            _ => panic!("{}: not a tree of this shared agent", d.tree.display()),
        };
        if self.config.is_some() {
            // watched from now on, as an agent of its own from its start
            self.reconfigure(|c| match c.pending.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    let b = c.pending.remove(i);
                    c.trees.push(b);
                    true
                }
                None => false,
            })
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let (tx, rx) = mpsc::channel();
        self.redirect(key, tx);
        let (stem, root) = {
            let r = self.routes.lock().unwrap();
            let l = r.leases.iter().find(|l| l.key == key).expect("a route");
            (l.stem.clone(), l.root.clone())
        };
        let mut l = Lease {
            arena: self,
            key,
            tree: d.tree.clone(),
            stem,
            root,
            rx,
            skipped: 0,
            outcomes_said: 0,
        };
        l.until_marker("begin");
        l
    }
}

/// When the test process exits: SIGINT to the agent `pid`, wait for it to go, remove `root`
/// and `file`. (At most two: the shared agent and the ruled one.)
fn stop_at_exit(pid: i32, root: &Path, file: &Path) {
    static AT_EXIT: Mutex<Vec<(i32, PathBuf, PathBuf)>> = Mutex::new(Vec::new());
    extern "C" fn stop() {
        let agents = std::mem::take(&mut *AT_EXIT.lock().unwrap_or_else(|e| e.into_inner()));
        // SAFETY: signals to the agents we started.
        for (pid, _, _) in &agents {
            unsafe { libc::kill(*pid, libc::SIGINT) };
        }
        let deadline = Instant::now() + *TIMEOUT;
        for (pid, root, file) in &agents {
            // (its exit is reaped by the thread that waits for it: enough that it is gone)
            while unsafe { libc::kill(*pid, 0) } == 0 && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            unsafe { libc::kill(*pid, libc::SIGKILL) };
            let _ = std::fs::remove_dir_all(root);
            let _ = std::fs::remove_file(file);
        }
    }
    let mut agents = AT_EXIT.lock().unwrap();
    if agents.is_empty() {
        // SAFETY: registers a plain function.
        unsafe { libc::atexit(stop) };
    }
    agents.push((pid, root.to_path_buf(), file.to_path_buf()));
}

impl Config {
    /// The file, whole, by rename (the agent never reads half of it).
    fn write(&self) {
        let mut text = self.head.clone();
        for (_, b) in &self.trees {
            text.push_str(b);
        }
        let tmp = self.file.with_extension("toml.new");
        std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
        std::fs::rename(&tmp, &self.file)
            .unwrap_or_else(|e| panic!("{}: {e}", self.file.display()));
    }
}

/// A test's share of the shared agent: the lines about its tree.
pub struct Lease {
    arena: &'static Arena,
    key: u32,
    tree: PathBuf,
    /// See `Route`.
    stem: PathBuf,
    root: PathBuf,
    rx: Receiver<String>,
    /// Runs the agent said the kernel skipped, so far (see `Agent::skipped`).
    pub skipped: u64,
    /// Events the agent said it sent without their outcome, so far (notes come to every
    /// lease: see `until_marker`).
    outcomes_said: u64,
}

impl Lease {
    /// The watched root (the arena, or a ruled tree): what events carry as "tree".
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make the marker `<stem>.<what>-N` (a root mkdir in the arena) and read up to its
    /// event: (the lines before it, the marker's event). Skipped notes are counted, not kept.
    fn until_marker(&mut self, what: &str) -> (Vec<String>, Value, PathBuf) {
        let name = format!(
            "{}.{what}-{}",
            self.stem.file_name().unwrap().to_str().unwrap(),
            next_id()
        );
        let p = self.arena.root.join(&name);
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("marker {}: {e}", p.display()));
        let deadline = Instant::now() + *TIMEOUT;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) if line_paths(&l).iter().any(|q| q.ends_with(&name)) => {
                    return (before, parse_event(&l), p);
                }
                Ok(l) if is_skipped_note(&l) => {
                    eprintln!("(shared agent said: {l})");
                    self.skipped += note_count(&l);
                }
                // Events sent without "ret" (their outcome did not come: the kernel skipped
                // it while another test's agent replaced a trampoline, say): the count has no
                // path, so it comes to every lease; each event goes to the test whose tree it
                // is about.
                Ok(l) if is_outcome_note(&l) => {
                    eprintln!("(shared agent said: {l})");
                    self.outcomes_said += note_count(&l);
                }
                Ok(l) => before.push(l),
                Err(e) => {
                    let why = match e {
                        RecvTimeoutError::Timeout => format!("not reported within {:?}", *TIMEOUT),
                        RecvTimeoutError::Disconnected => self
                            .arena
                            .routes
                            .lock()
                            .unwrap()
                            .ended
                            .clone()
                            .unwrap_or_default(),
                    };
                    panic!(
                        "shared agent: marker {}: {why}.\nlines so far:\n{}\nstderr:\n{}",
                        p.display(),
                        before.join("\n"),
                        self.arena.stderr_text()
                    );
                }
            }
        }
    }

    /// The events of the tree since the lease began, every one JSON; after them nothing
    /// more may come, and no line that no test claimed may have come meanwhile.
    pub fn finish(&mut self) -> Vec<Value> {
        let (before, mut end, p) = self.until_marker("end");
        // The marker is the harness's own op: its outcome may not come as any event's may
        // (the kernel skipped the outcome program while another test's agent replaced that
        // function's trampoline), and then the agent says so in-band, right after it. Its
        // "ret" is then not asked for, but that note is, by the `after` marker.
        let end_without_ret = end.get("ret").is_none() && expected_backend() != "tracepoint";
        if end_without_ret {
            end["ret"] = 0.into();
        }
        let want = Exp::new("mkdir", p, 0).any_comm();
        let errs = check_event(&end, &want, &self.arena.root);
        assert!(errs.is_empty(), "marker event wrong: {errs:?}: {end}");
        let (after, _, _) = self.until_marker("after");
        assert!(
            !end_without_ret || self.outcomes_said > 0,
            "the end marker came without \"ret\", and no line said an event went without it"
        );
        assert!(
            after.is_empty(),
            "shared agent: lines about {} after its last op:\n{}",
            self.tree.display(),
            after.join("\n")
        );
        let orphans: Vec<String> = std::mem::take(&mut self.arena.routes.lock().unwrap().orphans);
        assert!(
            orphans.is_empty(),
            "shared agent: lines that no running test's tree claims (one of them, or an \
             earlier test, got events it should not have):\n{}",
            orphans.join("\n")
        );
        before.iter().map(|l| parse_event(l)).collect()
    }

    /// `finish`, and the events must be exactly `want`.
    pub fn expect(&mut self, want: &[Exp]) {
        let evs = self.finish();
        assert_events(&evs, want, &self.root.clone());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.arena.redirect_quietly(self.key);
    }
}
