//! What does not depend on the backend under test: usage errors and bad input (exit 2, one
//! line on stderr), `probe`, and a normal start of every backend probe calls usable. The
//! kernel matrix runs this module once per kernel (with its first backend), not per backend.

use super::*;

use serde_json::Value;

fn assert_usage_error(args: &[&str]) {
    let (code, out, err) = run_once(args);
    let ctx = format!("ownwatch {args:?}: exit {code:?}\nstdout: {out:?}\nstderr: {err:?}");
    assert_eq!(code, Some(2), "{ctx}");
    assert!(out.is_empty(), "stdout not empty; {ctx}");
    assert!(err.ends_with('\n'), "stderr not one line; {ctx}");
    assert_eq!(err.lines().count(), 1, "stderr not exactly one line; {ctx}");
    assert!(
        err.starts_with("ownwatch: "),
        "stderr not 'ownwatch: ...'; {ctx}"
    );
    assert!(!err.contains("panicked"), "{ctx}");
}

/// The backends `probe` calls usable (or not).
fn probed_backends(usable: bool) -> Vec<String> {
    probe()["backends"]
        .as_array()
        .expect("probe backends")
        .iter()
        .filter(|b| b["usable"] == Value::Bool(usable))
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let d = root_dir!("badinput");
    let t = s(&d.tree);
    let file = d.o("a_file");
    make_file(&file, b"");
    let file = s(&file);
    let missing = s(&d.base.join("does-not-exist")).to_string();
    for c in [
        vec!["watch", &missing],
        vec!["watch", t, &missing],
        vec!["watch", file],
    ] {
        assert_usage_error(&c);
    }
    // `watch OPTION VALUE TREE` with a bad value.
    let bad = [
        ("--owner", "no-such-user-ownwatch"),
        ("--owner", "4242:no-such-group-ownwatch"),
        ("--allow", "no-such-user-ownwatch"),
        ("--ops", "mkdir,frobnicate"),
        ("--ops", ""),
        ("--backend", "magic"),
        ("--format", "yaml"),
        ("--duration", "0"),
        ("--duration", "00"),
        ("--duration", "0s"),
        ("--duration", "10x"),
        ("--duration", "2"),
        ("--duration", "90"),
        ("--duration", "9223372036854775807"),
        ("--duration", "99999999999999999999999h"),
    ];
    for (option, value) in bad {
        assert_usage_error(&["watch", option, value, t]);
    }
    // A bare number has no unit: the line says which units there are.
    let (_, _, err) = run_once(&["watch", "--duration", "2", t]);
    assert!(
        err.contains("a number needs a unit: s, m, h or d"),
        "{err:?}"
    );
    // Backends this machine cannot use.
    let unusable = probed_backends(false);
    if expected_choice() == "tracepoint" {
        for b in ["lsm", "fentry", "kprobe"] {
            assert!(
                unusable.iter().any(|u| u == b),
                "probe says {b} is usable here"
            );
        }
    }
    for b in &unusable {
        assert_usage_error(&["watch", "--backend", b, t]);
    }
}

/// Usage errors (README "Usage": exit 2 with one line on stderr, never a panic), keeping
/// clap's "did you mean" tip; options that contradict each other are usage errors too.
#[test]
fn usage_errors_exit_2_with_one_line() {
    let d = root_dir!("usage");
    let t = s(&d.tree);
    for args in [
        vec!["watch"],
        vec!["frobnicate"],
        vec!["watch", "--no-such-flag", &t],
        vec!["watch", "--owner"],
    ] {
        assert_usage_error(&args);
    }
    for (args, tip) in [
        (vec!["wach", t], "a similar subcommand exists: 'watch'"),
        (
            vec!["watch", "--ownr", "root", t],
            "a similar argument exists: '--owner'",
        ),
        (
            vec!["scan", "--cross-mount", t],
            "a similar argument exists: '--cross-mounts'",
        ),
    ] {
        assert_usage_error(&args);
        let (_, _, err) = run_once(&args);
        assert!(err.contains(tip), "ownwatch {args:?}: {err:?}");
    }
    for args in [
        vec!["watch", "--any-user", "--fix", t],
        vec!["watch", "--fix", "--any-user", t],
        vec!["watch", "--any-user", "--allow", "root", t],
        vec!["scan", "--xdev", "--cross-mounts", t],
        vec!["scan", "--cross-mounts", "--xdev", t],
    ] {
        assert_usage_error(&args);
        let (_, _, err) = run_once(&args);
        assert!(
            err.contains("cannot be used with"),
            "ownwatch {args:?}: {err:?}"
        );
    }
}

/// A bare `ownwatch` shows what there is: the help, with the commands, on stderr; exit 2.
/// --help shows the exit codes and examples, on stdout; exit 0.
#[test]
fn bare_ownwatch_lists_the_commands_and_help_has_exit_codes() {
    let (code, out, err) = run_once(&[]);
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(out.is_empty(), "stdout: {out:?}");
    for want in [
        "Usage: ownwatch <COMMAND>",
        "watch",
        "scan",
        "probe",
        "Exit codes:",
    ] {
        assert!(err.contains(want), "{want:?} missing from stderr:\n{err}");
    }
    for (args, wants) in [
        (
            vec!["--help"],
            vec!["Exit codes:", "Examples:", "  2  bad usage"],
        ),
        (
            vec!["watch", "--help"],
            vec![
                "Exit codes:",
                "Examples:",
                "1h30m",
                "text: one readable line",
                "64K to 1G",
            ],
        ),
        (
            vec!["scan", "--help"],
            vec!["Exit codes:", "Examples:", "--fix"],
        ),
    ] {
        let (code, out, err) = run_once(&args);
        assert_eq!(code, Some(0), "ownwatch {args:?}: {err}");
        for want in wants {
            assert!(
                out.contains(want),
                "ownwatch {args:?}: {want:?} missing:\n{out}"
            );
        }
    }
}

/// A root-owned DIR without --owner would make root the owner, allow root's writes and report
/// nothing: refused, saying to pass --owner. With --owner (or --any-user) it is watched.
#[test]
fn a_root_owned_dir_needs_owner() {
    needs_root!();
    let d = root_dir!("rootowned");
    let dir = d.o("root-owned");
    make_dir(&dir);
    assert_eq!(owner_of(&dir).0, 0);
    let dir = s(&dir);
    assert_usage_error(&["watch", dir]);
    assert_usage_error(&["watch", s(&d.tree), dir]);
    let (_, _, err) = run_once(&["watch", dir]);
    assert!(
        err.contains(&format!("{dir}: owned by root")) && err.contains("pass --owner USER"),
        "{err:?}"
    );
    for opt in [["--owner", "4242"], ["--any-user", "-v"]] {
        let args = watch_args(&[opt[0], opt[1], "--duration", "1s", dir]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = run_once(&args);
        assert_eq!(code, Some(0), "ownwatch {args:?}: {err}");
    }
}

/// `ownwatch probe | head -3`: the reader goes away before the JSON is written; exit 0 and
/// no panic (it used to be "failed printing to stdout: Broken pipe" with a backtrace).
#[test]
fn probe_into_a_closed_pipe_is_no_panic() {
    use std::process::{Command, Stdio};
    needs_root!();
    let (r, w) = std::io::pipe().expect("pipe");
    drop(r);
    let o = Command::new(bin())
        .arg("probe")
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .output()
        .expect("run ownwatch probe");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{:?}; stderr:\n{err}", o.status);
    assert!(!err.contains("panicked"), "stderr:\n{err}");
}

#[test]
fn probe_reports_every_backend_and_the_choice() {
    needs_root!();
    let p = probe();
    assert!(p["kernel"].is_object(), "kernel: {}", p["kernel"]);
    let backends = p["backends"].as_array().expect("backends array");
    let names: Vec<&str> = backends
        .iter()
        .map(|b| b["name"].as_str().expect("backend name"))
        .collect();
    assert_eq!(names.len(), 4, "backends: {names:?}");
    for n in ["lsm", "fentry", "kprobe", "tracepoint"] {
        assert!(names.contains(&n), "backend {n} missing: {names:?}");
    }
    for b in backends {
        let usable = b["usable"]
            .as_bool()
            .unwrap_or_else(|| panic!("usable not a bool: {b}"));
        if !usable {
            let reason = b["reason"].as_str().unwrap_or("");
            assert!(
                !reason.trim().is_empty(),
                "unusable backend without reason: {b}"
            );
        }
    }
    // the kernel features the backends adapt to, each present or not, with what it decides
    let features = p["kernel"]["features"]
        .as_object()
        .expect("kernel.features");
    for f in [
        "bpf_loop",
        "get_func_arg",
        "trampoline_struct_args",
        "rdonly_cast",
        "fprobe",
        "kprobe_session",
        "ctime_tracepoints",
        "faultable_syscall_tracepoints",
        "io_uring_tracepoint",
    ] {
        let v = &features
            .get(f)
            .unwrap_or_else(|| panic!("feature {f} missing: {p:#}"));
        assert!(v["present"].is_boolean(), "{f}: {v}");
        assert!(
            v["effect"].as_str().is_some_and(|e| !e.is_empty()),
            "{f}: {v}"
        );
    }
    let choice = expected_choice();
    assert_eq!(p["choice"], Value::from(choice.as_str()), "probe: {p:#}");
    let chosen = backends.iter().find(|b| b["name"] == p["choice"]).unwrap();
    assert_eq!(
        chosen["usable"],
        Value::Bool(true),
        "chosen backend not usable: {p:#}"
    );
    if choice == "tracepoint" {
        for n in ["lsm", "fentry", "kprobe"] {
            let b = backends.iter().find(|b| b["name"] == n).unwrap();
            assert_eq!(b["usable"], Value::Bool(false), "{n} usable here? {b}");
        }
    }
}

/// Without -v a start says one line, naming the backend: why better ones were passed over is
/// for -v and `probe`. And every backend `probe` calls usable starts (probe loads what watch
/// loads: never "usable" and then a load error). In the kernel matrix every usable backend
/// has a cell of its own (OWNWATCH_TEST_CELLS names them), whose shared agent's start is
/// checked the same way there (`ops::the_shared_agent_started_with_one_line`): only auto
/// and the backends without a cell start here.
#[test]
fn a_normal_start_is_one_line_and_usable_backends_start() {
    needs_root!();
    let d = root_dir!("oneline");
    let t = s(&d.tree);
    let usable = probed_backends(true);
    assert!(!usable.is_empty(), "probe: nothing usable: {:#}", probe());
    let cells = std::env::var("OWNWATCH_TEST_CELLS").unwrap_or_default();
    let cells: Vec<&str> = cells.split_whitespace().collect();
    for c in &cells {
        assert!(
            usable.iter().any(|u| u == c),
            "a cell for {c}, which probe does not call usable: {:#}",
            probe()
        );
    }
    let auto = ["watch", "--duration", "1s", t];
    let mut runs = vec![(expected_choice(), auto.to_vec())];
    for b in usable.iter().filter(|b| !cells.contains(&b.as_str())) {
        runs.push((
            b.clone(),
            vec!["watch", "--backend", b, "--duration", "1s", t],
        ));
    }
    for (backend, args) in runs {
        let (code, out, err) = run_once(&args);
        let ctx = format!("ownwatch {args:?}: exit {code:?}\nstdout: {out:?}\nstderr: {err:?}");
        assert_eq!(code, Some(0), "{ctx}");
        assert_normal_start(&err, &backend, &ctx);
    }
}
