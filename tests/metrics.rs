//! Issue 15, `watch --metrics FILE`: the Prometheus textfile node_exporter's textfile
//! collector reads. The real agent on a tree, real offending writes as root (and allowed ones
//! as the owner), then FILE's exact counters: per tree, op and user, lost, --fix outcomes;
//! rewritten every --metrics-interval, whole at every read (it is replaced by a rename), and
//! written once more at exit. Bad input is exit 2 with one line, before anything is attached.
//!
//! Its own test binary, host only: the counts come from the same events on every backend,
//! and the kernel matrix (vm/test-kernels.sh, VM_TESTS) runs watch, identity, cron, tools and
//! fix. Root only; in CI (CI=true) these never skip.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The families of the file, in the order the agent writes them.
const FAMILIES: [&str; 8] = [
    "ownwatch_events_total",
    "ownwatch_lost_events_total",
    "ownwatch_fixed_total",
    "ownwatch_fix_errors_total",
    "ownwatch_info",
    "ownwatch_trees",
    "ownwatch_start_time_seconds",
    "ownwatch_last_event_timestamp_seconds",
];

/// The samples of a metrics file: series as written (`name` or `name{labels}`) -> value.
/// Panics unless the file is whole and well-formed: each family declared (HELP, then TYPE)
/// once, in order, before its samples; every sample of the family declared last; one
/// sample per series; a final newline.
fn samples(text: &str) -> BTreeMap<String, f64> {
    assert!(
        text.ends_with('\n'),
        "not whole (no final newline):\n{text}"
    );
    let mut out = BTreeMap::new();
    let mut declared: Vec<&str> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if let Some(rest) = l.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.is_empty(), "empty HELP: {l}");
            let t = lines.next().unwrap_or_default();
            let kind = t
                .strip_prefix(&format!("# TYPE {name} "))
                .unwrap_or_else(|| panic!("no TYPE after {l:?}: {t:?}"));
            assert!(matches!(kind, "counter" | "gauge"), "{t}");
            declared.push(name);
            continue;
        }
        let (series, value) = l
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("sample? {l:?}"));
        let name = series.split('{').next().unwrap();
        assert_eq!(
            Some(&name),
            declared.last(),
            "sample of an undeclared family: {l}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{l}"
            );
        }
        let v: f64 = value.parse().unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(out.insert(series.to_string(), v).is_none(), "repeated: {l}");
    }
    assert_eq!(declared, FAMILIES, "families:\n{text}");
    out
}

/// FILE's samples now; None while it does not exist. Every read must be a whole file.
fn read_samples(f: &Path) -> Option<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(f).ok()?;
    Some(samples(&text))
}

fn events_series(tree: &str, op: &str, user: &str) -> String {
    format!("ownwatch_events_total{{tree=\"{tree}\",op=\"{op}\",user=\"{user}\"}}")
}

/// The event series of `evs` as the file must count them: (tree, op, user or fsuid) -> n.
fn expected_series(evs: &[Value]) -> BTreeMap<String, f64> {
    let mut want = BTreeMap::new();
    for e in evs {
        let user = match &e["user"] {
            Value::String(u) => u.clone(),
            _ => e["fsuid"].as_u64().expect("fsuid").to_string(),
        };
        let tree = e["tree"].as_str().expect("tree");
        let op = e["op"].as_str().expect("op");
        *want.entry(events_series(tree, op, &user)).or_insert(0.0) += 1.0;
    }
    want
}

fn only_events(s: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    s.iter()
        .filter(|(k, _)| k.starts_with("ownwatch_events_total{"))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// The next `n` events on the agent's stdout (skipped-run notes aside).
fn events(a: &Agent, n: usize) -> Vec<Value> {
    let mut evs = Vec::new();
    while evs.len() < n {
        let l = a.next_line(*TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{} of {n} events within {:?}; stderr:\n{}",
                evs.len(),
                *TIMEOUT,
                a.stderr_text()
            )
        });
        if is_skipped_note(&l) {
            eprintln!("(agent said: {l})");
            continue;
        }
        let v = parse_event(&l);
        assert_ne!(v["op"], "lost", "{l}");
        evs.push(v);
    }
    evs
}

/// As root: `files` new files (O_CREAT|O_EXCL) and `dirs` new directories in `dir`, named
/// with `tag`.
fn root_writes(dir: &Path, tag: &str, files: usize, dirs: usize) {
    let dir = dir.to_path_buf();
    let tag = tag.to_string();
    run_as(Creds::Root, move || {
        for i in 0..files {
            let p = dir.join(format!("{tag}-f{i}"));
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
                .map_err(|e| format!("create {}: {e}", p.display()))?;
        }
        for i in 0..dirs {
            let p = dir.join(format!("{tag}-d{i}"));
            std::fs::create_dir(&p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
        }
        Ok(())
    });
}

/// Waits until FILE's event series are exactly `want`; returns its samples then.
fn wait_for_counts(f: &Path, want: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let deadline = std::time::Instant::now() + *TIMEOUT;
    loop {
        let s = read_samples(f);
        match s {
            Some(s) if only_events(&s) == *want => return s,
            _ if std::time::Instant::now() >= deadline => {
                panic!("{} never counted {want:?}; last: {s:?}", f.display())
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The samples other than the event series, for a run of one tree with `backend`.
fn assert_scalars(s: &BTreeMap<String, f64>, backend: &str, lost: f64, fixed: f64, errors: f64) {
    let v = |k: &str| *s.get(k).unwrap_or_else(|| panic!("no {k} in {s:?}"));
    assert_eq!(v("ownwatch_lost_events_total"), lost, "{s:?}");
    assert_eq!(v("ownwatch_fixed_total"), fixed, "{s:?}");
    assert_eq!(v("ownwatch_fix_errors_total"), errors, "{s:?}");
    assert_eq!(v("ownwatch_trees"), 1.0, "{s:?}");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        v(&format!(
            "ownwatch_info{{backend=\"{backend}\",version=\"{version}\"}}"
        )),
        1.0,
        "{s:?}"
    );
    let start = v("ownwatch_start_time_seconds");
    let last = v("ownwatch_last_event_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        start > now - 600.0 && start <= now,
        "start {start}, now {now}"
    );
    assert!(
        last >= start && last <= now,
        "last event {last}, start {start}"
    );
    // Nothing but what is checked here and the event series.
    assert_eq!(s.len(), only_events(s).len() + 7, "{s:?}");
}

/// Root's creates and mkdirs count per op, the owner's write does not; FILE is rewritten
/// every interval (the counts grow with more writes), whole at every read, and has the final
/// counts after the agent stops.
#[test]
fn counts_offending_writes_by_tree_op_and_user() {
    let d = root_dir!("metrics-counts");
    let mdir = d.base.join("textfile");
    make_dir(&mdir);
    chmod(&mdir, 0o755);
    let f = mdir.join("ownwatch.prom");
    let mut a = Agent::watch_tree(&d.tree, &["--metrics", s(&f), "--metrics-interval", "1s"]);
    // Written at start: nothing counted yet.
    wait_until(
        "the metrics file at start",
        Duration::from_millis(50),
        || f.exists(),
    );
    let s0 = read_samples(&f).unwrap();
    assert!(only_events(&s0).is_empty(), "{s0:?}");
    assert_eq!(s0["ownwatch_last_event_timestamp_seconds"], 0.0);
    assert_eq!(s0["ownwatch_lost_events_total"], 0.0);

    // The owner may write: not counted. Root's 3 creates and 2 mkdirs are.
    let tree = d.tree.clone();
    run_as(Creds::User(OWNER, OWNER), move || {
        std::fs::write(tree.join("owners"), b"x").map_err(|e| e.to_string())
    });
    root_writes(&d.tree, "a", 3, 2);
    let mut evs = events(&a, 5);
    let root = s(&d.tree);
    for e in &evs {
        assert_eq!(e["tree"], root, "{e}");
        assert_eq!(e["fsuid"], 0, "{e}");
    }
    let want = expected_series(&evs);
    assert_eq!(
        want,
        BTreeMap::from([
            (events_series(root, "create", "root"), 3.0),
            (events_series(root, "mkdir", "root"), 2.0),
        ])
    );
    let backend = evs[0]["backend"].as_str().unwrap().to_string();
    let s1 = wait_for_counts(&f, &want);
    assert_scalars(&s1, &backend, 0.0, 0.0, 0.0);

    // Rewritten: more writes, higher counts, a later last event.
    root_writes(&d.tree, "b", 2, 0);
    evs.extend(events(&a, 2));
    let want = expected_series(&evs);
    assert_eq!(want[&events_series(root, "create", "root")], 5.0);
    let s2 = wait_for_counts(&f, &want);
    assert_scalars(&s2, &backend, 0.0, 0.0, 0.0);
    assert!(
        s2["ownwatch_last_event_timestamp_seconds"] >= s1["ownwatch_last_event_timestamp_seconds"]
    );

    // At exit: the same counts, whole, no FILE.tmp left.
    a.stop_with(libc::SIGINT);
    let rest: Vec<String> = a
        .drain()
        .into_iter()
        .filter(|l| !is_skipped_note(l))
        .collect();
    assert!(rest.is_empty(), "more events: {rest:?}");
    let s3 = read_samples(&f).unwrap();
    assert_eq!(only_events(&s3), want);
    assert_scalars(&s3, &backend, 0.0, 0.0, 0.0);
    let names: Vec<String> = std::fs::read_dir(&mdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ownwatch.prom"]);
}

/// `--duration` with an interval longer than the run: only the writes at start and at exit
/// happen, and the one at exit has every event of the run, --fix's outcomes included.
#[test]
fn complete_at_exit_after_duration() {
    let d = root_dir!("metrics-exit");
    let f = d.base.join("ownwatch.prom");
    let mut a = Agent::watch_tree(
        &d.tree,
        &[
            "--fix",
            "--duration",
            "3s",
            "--metrics",
            s(&f),
            "--metrics-interval",
            "1h",
        ],
    );
    root_writes(&d.tree, "x", 2, 1);
    let evs = events(&a, 3);
    let st = a.wait_exit(*TIMEOUT + Duration::from_secs(3));
    assert_eq!(
        st.and_then(|s| s.code()),
        Some(0),
        "exit after --duration; stderr:\n{}",
        a.stderr_text()
    );
    let fixed = evs.iter().filter(|e| e["fixed"] == true).count() as f64;
    let errors = evs.iter().filter(|e| e["fixed"] == false).count() as f64;
    assert_eq!((fixed, errors), (3.0, 0.0), "{evs:?}");
    let s1 = read_samples(&f).expect("FILE after the run");
    assert_eq!(only_events(&s1), expected_series(&evs));
    let backend = evs[0]["backend"].as_str().unwrap();
    assert_scalars(&s1, backend, 0.0, fixed, errors);
}

/// FILE's directory removed while the agent runs: one line on stderr, the agent keeps
/// reporting; once the directory is back FILE is written again (and that is said once).
#[test]
fn write_errors_are_said_once_and_the_agent_goes_on() {
    let d = root_dir!("metrics-gone");
    let mdir = d.base.join("textfile");
    make_dir(&mdir);
    let f = mdir.join("ownwatch.prom");
    let mut a = Agent::watch_tree(&d.tree, &["--metrics", s(&f), "--metrics-interval", "1s"]);
    wait_until(
        "the metrics file at start",
        Duration::from_millis(50),
        || f.exists(),
    );
    std::fs::remove_dir_all(&mdir).unwrap();
    let failing = "not updated, retrying every interval";
    wait_until("the failure on stderr", Duration::from_millis(100), || {
        a.stderr_text().contains(failing)
    });
    // Several intervals pass; still one line, and events still come.
    root_writes(&d.tree, "y", 1, 0);
    let evs = events(&a, 1);
    std::thread::sleep(Duration::from_millis(2500));
    let err = a.stderr_text();
    assert_eq!(err.matches(failing).count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "ownwatch: metrics {}: directory {}: No such file or directory; ",
            f.display(),
            mdir.display()
        )),
        "{err}"
    );
    make_dir(&mdir);
    let want = expected_series(&evs);
    wait_for_counts(&f, &want);
    wait_until("the recovery on stderr", Duration::from_millis(100), || {
        a.stderr_text().contains("written again")
    });
    a.stop_with(libc::SIGINT);
}

/// Exit 2 with one line on stderr, nothing on stdout, nothing attached: a missing directory
/// for FILE, a symlink to it planted by another user, a directory as FILE, a bad interval,
/// an interval without --metrics.
#[test]
fn bad_metrics_options_exit_2_with_one_line() {
    let d = root_dir!("metrics-bad");
    let tree = s(&d.tree);
    let missing = d.base.join("nope/ownwatch.prom");
    let base = s(&d.base);
    let ok_file = d.base.join("ownwatch.prom");
    // A directory symlink another user planted (`/tmp/evil -> /etc`): never followed, so
    // nothing of ours is renamed over a file where it points.
    let target = d.o("target");
    make_dir(&target);
    let evil = d.base.join("evil");
    std::os::unix::fs::symlink(&target, &evil).unwrap();
    let rc = unsafe {
        let c = std::ffi::CString::new(s(&evil)).unwrap();
        libc::lchown(c.as_ptr(), OTHER, OTHER)
    };
    assert_eq!(rc, 0, "lchown {}", evil.display());
    let through = evil.join("ownwatch.prom");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--metrics", s(&missing), tree],
            format!(
                "ownwatch: --metrics {}: directory {}: No such file or directory\n",
                missing.display(),
                d.base.join("nope").display()
            ),
        ),
        (
            vec!["--metrics", s(&through), tree],
            format!(
                "ownwatch: --metrics {}: {} is a symbolic link owned by uid {OTHER}; refusing \
                 to follow it\n",
                through.display(),
                evil.display()
            ),
        ),
        (
            vec!["--metrics", base, tree],
            format!(
                "ownwatch: --metrics {base}: is a directory; give a file name in it (e.g. \
                 {base}/ownwatch.prom)\n"
            ),
        ),
        (
            vec!["--metrics", s(&ok_file), "--metrics-interval", "15", tree],
            "ownwatch: --metrics-interval: bad duration \"15\": a number needs a unit: s, m, h \
             or d (e.g. 15s, 15m, 1h30m)\n"
                .into(),
        ),
        (
            vec!["--metrics", s(&ok_file), "--metrics-interval", "soon", tree],
            "ownwatch: --metrics-interval: bad duration \"soon\" (units: s, m, h, d; examples: \
             30s, 10m, 1h, 1h30m)\n"
                .into(),
        ),
        (
            vec!["--metrics-interval", "10s", tree],
            "ownwatch: the following required arguments were not provided: --metrics <FILE> \
             (see --help)\n"
                .into(),
        ),
    ];
    for (extra, want) in cases {
        let args = watch_args(&extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run_once(&args);
        assert_eq!(err, want, "{extra:?}");
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(out.is_empty(), "{extra:?}: {out}");
    }
    assert!(!ok_file.exists(), "FILE written by a refused run");
    let planted: Vec<_> = std::fs::read_dir(&target).unwrap().collect();
    assert!(
        planted.is_empty(),
        "written through the symlink: {planted:?}"
    );
}
