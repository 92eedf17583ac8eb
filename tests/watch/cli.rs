//! --format text and -v. (Usage, bad input and `probe`: kernel_wide.rs.)

use super::*;

use serde_json::Value;

#[test]
fn format_text_is_one_readable_line_per_event() {
    let (d, mut a) = watched!("text", &["--format", "text"]);
    let t = &d.tree;
    run_as(Creds::Root, || {
        mkdir(&d.t("text_dir"), 0o755)?;
        create(&d.t("text_file"), 0o644)?;
        rename(&d.t("text_file"), &d.t("text_file2"))?;
        create(&d.t("new\nline\u{1b}[2J"), 0o644)?;
        rename(&d.t("text_file2"), &d.t("my file -> x"))?;
        Ok(())
    });
    let (lines, sentinel) = a.finish_lines_with(t, Sentinel::Mkdir);
    assert_eq!(lines.len(), 5, "want 5 lines, got {lines:#?}");
    // Names that need it are quoted, with C escapes: one name reads as one.
    let want = format!(
        " create \"{}\" mode=0644 by root(0) ",
        s(&d.t("new\\nline\\x1b[2J"))
    );
    assert!(lines[3].contains(&want), "want {want:?} in {:?}", lines[3]);
    let want = format!(
        " rename {} -> \"{}\" by root(0) ",
        s(&d.t("text_file2")),
        s(&d.t("my file -> x"))
    );
    assert!(lines[4].contains(&want), "want {want:?} in {:?}", lines[4]);
    assert!(lines[3].contains("create"), "{}", lines[3]);
    assert!(
        !lines[3].contains('\u{1b}'),
        "control character printed raw: {:?}",
        lines[3]
    );
    let checks = [
        ("mkdir", s(&d.t("text_dir")).to_string()),
        ("create", s(&d.t("text_file")).to_string()),
        ("rename", s(&d.t("text_file")).to_string()),
    ];
    for (line, (op, path)) in lines.iter().chain([&sentinel]).zip(checks.iter()) {
        assert!(
            serde_json::from_str::<Value>(line).is_err(),
            "--format text printed JSON: {line}"
        );
        assert!(line.contains(op), "line lacks op {op:?}: {line}");
        assert!(
            line.contains(path.as_str()),
            "line lacks path {path:?}: {line}"
        );
    }
    assert!(
        lines[2].contains(s(&d.t("text_file2"))),
        "rename line lacks the new path: {}",
        lines[2]
    );
    assert!(sentinel.contains("mkdir"));
}

#[test]
fn verbose_keeps_stdout_for_events() {
    let d = root_dir!("verbose");
    let (evs, by) = d.root_run(&["-v"], || mkdir(&d.t("v"), 0o755));
    d.expect(&evs, &[by.mkdir("v", 0o755)]);
}

/// -vv passes libbpf's own messages on, each prefixed once ("ownwatch: libbpf: ...", not
/// "ownwatch: libbpf: libbpf: ..."); the backends passed over are said with -v only (without
/// it a start is one line: kernel_wide.rs).
#[test]
fn very_verbose_prefixes_libbpf_once() {
    let d = root_dir!("vv");
    let args = watch_args(&["-vv", "--duration", "1s", s(&d.tree)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run_once(&args);
    let ctx = format!(
        "ownwatch {args:?}: exit {code:?}; stderr (start):\n{:.3000}",
        err
    );
    assert_eq!(code, Some(0), "{ctx}");
    assert!(out.is_empty(), "stdout: {out:?}; {ctx}");
    assert!(err.contains("\nownwatch: libbpf: "), "{ctx}");
    assert!(!err.contains("libbpf: libbpf:"), "doubled prefix; {ctx}");
}
