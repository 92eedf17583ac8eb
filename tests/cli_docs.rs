//! The manual pages and shell completions (`ownwatch man`, `ownwatch completions`) and
//! `make install`. Nothing here needs root, BTF or BPF: a host-only test target (the kernel
//! matrix runs only watch, identity, cron, tools and fix). The pages are rendered with groff
//! (Debian groff-base, in the Makefile's APT_PKGS) and the completions checked with zsh and fish
//! (TEST_PKGS); in CI a missing groff, make, zsh or fish fails the
//! test, elsewhere the test says it did not check and passes.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const README: &str = include_str!("../README.md");

/// True when `tool` can be run; otherwise fails in CI, or says what is not checked.
fn have(tool: &str, what: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            !in_ci(),
            "{tool} is not installed: {what} cannot be checked"
        );
        eprintln!("NOT CHECKED {what}: {tool} is not installed");
    }
    ok
}

/// `ownwatch args`, which must exit 0 with nothing on stderr; its stdout.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = run_once(args);
    assert_eq!(code, Some(0), "ownwatch {args:?}: stderr {err:?}");
    assert!(err.is_empty(), "ownwatch {args:?}: stderr {err:?}");
    out
}

/// `prog args` with `input` on stdin: (success, stdout, stderr).
fn pipe(prog: &str, args: &[&str], input: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The page checked by groff with every warning on (`groff -man -ww -z`): it must say
/// nothing. Then rendered as plain text on lines long enough never to be broken or
/// hyphenated.
fn render(name: &str, roff: &[u8]) -> String {
    let (ok, _, err) = pipe("groff", &["-man", "-Tutf8", "-ww", "-z"], roff);
    assert!(ok && err.is_empty(), "{name}: groff warns:\n{err}");
    let (ok, text, err) = pipe(
        "groff",
        &["-man", "-Tutf8", "-rLL=3000n", "-rHY=0", "-P-cbou"],
        roff,
    );
    assert!(ok && err.is_empty(), "{name}: groff: {err}");
    text
}

/// Whitespace runs as one space, so text can be compared across line breaks and indents.
fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `what` appears in `text` as a whole word (not as part of a longer name).
fn has_word(text: &str, what: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(what).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(word)
            && !text[i + what.len()..].chars().next().is_some_and(word)
    })
}

/// The commands `ownwatch --help` lists (clap's `help` left out: the pages document
/// --help instead).
fn subcommands() -> Vec<String> {
    let help = ok(&["--help"]);
    let cmds: Vec<String> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    for c in ["watch", "scan", "probe", "completions", "man"] {
        assert!(cmds.iter().any(|x| x == c), "{c} not in --help:\n{help}");
    }
    cmds
}

/// The long options `ownwatch CMD --help` lists.
fn long_options(cmd: &str) -> BTreeSet<String> {
    let help = ok(&[cmd, "--help"]);
    let opts: BTreeSet<String> = help
        .lines()
        .skip_while(|l| *l != "Options:")
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("-")
                .filter(|r| r.starts_with(|c: char| c.is_alphabetic()))
                .map_or(l, |r| r[1..].trim_start_matches(", "));
            l.strip_prefix("--")
                .map(|o| o.split([' ', '=', '<']).next().unwrap().to_string())
        })
        .collect();
    assert!(
        opts.contains("help"),
        "{cmd} --help: options not found:\n{help}"
    );
    let want: &[&str] = match cmd {
        "watch" => &[
            "owner",
            "output",
            "max-events",
            "ring-size",
            "format",
            "fix",
        ],
        "scan" => &["owner", "fix", "xdev", "cross-mounts"],
        _ => &[],
    };
    for o in want {
        assert!(
            opts.contains(*o),
            "{cmd} --help: --{o} not found in {opts:?}"
        );
    }
    opts
}

/// The README section that starts with the heading line `head`, up to the next heading.
fn readme_section(head: &str) -> &'static str {
    let start = README
        .find(&format!("\n{head}\n"))
        .unwrap_or_else(|| panic!("README: no {head}"));
    let rest = &README[start + head.len() + 2..];
    &rest[..rest.find("\n##").unwrap_or(rest.len())]
}

/// Every field of an event line README documents: the keys of its example event and the
/// names in its "Event fields" section (`name` or `"name": value` in backquotes).
fn readme_event_fields() -> BTreeSet<String> {
    let example: String = README
        .lines()
        .skip_while(|l| !l.starts_with("$ sudo ownwatch watch /srv/app | jq -c ."))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    let example: serde_json::Value = serde_json::from_str(&example).expect("README example event");
    let mut fields: BTreeSet<String> = example.as_object().unwrap().keys().cloned().collect();
    let section = readme_section("### Event fields");
    for (i, span) in section.split('`').enumerate() {
        if i % 2 == 0 {
            continue; // outside backquotes
        }
        for tok in span.split([',', ' ', '\n']).filter(|t| !t.is_empty()) {
            let name = match tok.strip_prefix('"') {
                Some(q) => match q.strip_suffix("\":") {
                    Some(n) => n,
                    None => continue, // a quoted value ("pts/3"), not a field
                },
                None => tok,
            };
            if name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !["true", "false", "null"].contains(&name)
            {
                fields.insert(name.to_string());
            }
        }
    }
    for f in [
        "time",
        "new_path",
        "fix_error",
        "argv_truncated",
        "container_id",
        "resolved",
    ] {
        assert!(
            fields.contains(f),
            "README fields: {f} not found in {fields:?}"
        );
    }
    fields
}

/// The text of the rendered page between two section headings.
fn section<'a>(text: &'a str, head: &str, next: &str) -> &'a str {
    let start = text
        .find(&format!("\n{head}\n"))
        .unwrap_or_else(|| panic!("no section {head} in:\n{text}"));
    let rest = &text[start..];
    &rest[..rest.find(&format!("\n{next}\n")).unwrap_or(rest.len())]
}

#[test]
fn man_page_documents_commands_options_fields_exit_codes_and_jq_recipes() {
    let roff = ok(&["man"]);
    assert!(roff.contains(".TH ownwatch 8"), "{roff}");
    if !have("groff", "the man page") {
        return;
    }
    let text = render("ownwatch.8", roff.as_bytes());
    for head in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "EVENT FIELDS",
        "EXIT STATUS",
        "EXAMPLES",
        "JQ RECIPES",
    ] {
        assert!(
            text.contains(&format!("\n{head}\n")),
            "no section {head}:\n{text}"
        );
    }

    let commands = section(&text, "COMMANDS", "EVENT FIELDS");
    for c in subcommands() {
        assert!(
            commands.contains(&format!("ownwatch {c}")),
            "command {c} missing:\n{commands}"
        );
        for o in long_options(&c) {
            assert!(
                has_word(commands, &format!("--{o}")),
                "ownwatch {c} --{o} missing:\n{commands}"
            );
        }
    }

    let fields = section(&text, "EVENT FIELDS", "EXIT STATUS");
    for f in readme_event_fields() {
        assert!(has_word(fields, &f), "event field {f} missing:\n{fields}");
    }
    for line in [
        r#"{"time":…,"op":"lost","count":N}"#,
        r#"{"time":…,"op":"lost","count":N,"reason":"output"}"#,
        r#"{"time":…,"op":"lost","count":N,"reason":"skipped"}"#,
        r#"{"time":…,"op":"tree_gone","tree":…,"reason":…}"#,
    ] {
        assert!(README.contains(line), "README no longer shows {line}");
        assert!(
            fields.contains(line),
            "in-band line {line} missing:\n{fields}"
        );
    }

    // EXIT STATUS and EXAMPLES say what --help says.
    let help = ok(&["--help"]);
    let codes = help
        .split_once("Exit codes:\n")
        .and_then(|(_, r)| r.split_once("\n\nExamples:\n"))
        .expect("--help: Exit codes, Examples");
    let exit = norm(section(&text, "EXIT STATUS", "EXAMPLES"));
    // "  N  text" with indented continuation lines, one item per code
    let mut items: Vec<String> = Vec::new();
    for line in codes.0.lines() {
        match items.last_mut() {
            Some(item) if !line.trim_start().starts_with(|c: char| c.is_ascii_digit()) => {
                item.push(' ');
                item.push_str(line);
            }
            _ => items.push(line.to_string()),
        }
    }
    let numbers: Vec<String> = items.iter().map(|i| norm(i)[..1].to_string()).collect();
    assert_eq!(numbers, ["0", "1", "2"], "--help exit codes: {items:?}");
    for item in items.iter().map(|i| norm(i)) {
        assert!(exit.contains(&item), "exit code {item:?} missing:\n{exit}");
    }
    let examples = section(&text, "EXAMPLES", "JQ RECIPES");
    for ex in codes.1.lines() {
        assert!(
            examples.lines().any(|l| l.trim() == ex.trim()),
            "example {ex:?} missing:\n{examples}"
        );
    }

    // The jq recipes exactly as README prints them (the block tests/watch/tools.rs runs), line by
    // line.
    let recipes = readme_section("### jq recipes");
    let block = recipes
        .split("```\n")
        .nth(1)
        .expect("README: jq recipes block");
    let shown = section(&text, "JQ RECIPES", "SEE ALSO");
    let mut n = 0;
    for line in block.lines() {
        assert!(
            shown.lines().any(|l| l.trim() == line.trim()),
            "README jq recipe line {line:?} missing:\n{shown}"
        );
        n += line.starts_with("# ") as usize;
    }
    assert_eq!(n, 5, "README's recipes: {block}");
    assert!(
        norm(shown).contains(&norm(block)),
        "recipes out of order:\n{shown}"
    );
}

#[test]
fn man_dir_writes_a_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new");
    assert_eq!(ok(&["man", "--dir", out.to_str().unwrap()]), "");
    let mut want: BTreeSet<String> = subcommands()
        .iter()
        .map(|c| format!("ownwatch-{c}.8"))
        .collect();
    want.insert("ownwatch.8".into());
    let got: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        std::fs::read_to_string(out.join("ownwatch.8")).unwrap(),
        ok(&["man"]),
        "--dir's ownwatch.8 differs from stdout's"
    );
    if !have("groff", "the man pages") {
        return;
    }
    for c in subcommands() {
        let name = format!("ownwatch-{c}.8");
        let text = render(&name, &std::fs::read(out.join(&name)).unwrap());
        assert!(text.contains(&format!("ownwatch {c}")), "{name}:\n{text}");
        for o in long_options(&c) {
            assert!(
                has_word(&text, &format!("--{o}")),
                "{name}: --{o} missing:\n{text}"
            );
        }
        assert!(
            text.contains("\nSEE ALSO\n") && text.contains("ownwatch(8)"),
            "{name}:\n{text}"
        );
    }
    let watch = render(
        "ownwatch-watch.8",
        &std::fs::read(out.join("ownwatch-watch.8")).unwrap(),
    );
    assert!(
        watch.contains("\nEXIT STATUS\n") && watch.contains("\nEXAMPLES\n"),
        "{watch}"
    );
}

/// The bash completion's replies for the words `words`, the last being completed: the
/// function the script registers for ownwatch, called as bash's programmable completion calls
/// it (COMP_WORDS, COMP_CWORD; $1 the command, $2 the word, $3 the one before).
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prog = format!(
        r#"source '{script}' || exit 3
spec=$(complete -p ownwatch) || exit 4
f=$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<< "$spec")
[ -n "$f" ] || {{ echo "no function in: $spec" >&2; exit 5; }}
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$f" ownwatch "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script = script.display(),
        words = quoted.join(" ")
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &prog])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "bash completion {words:?}: {}; {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn bash_completion_completes_commands_options_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ownwatch.bash");
    std::fs::write(&script, ok(&["completions", "bash"])).unwrap();
    assert_eq!(bash_complete(&script, &["ownwatch", "wa"]), ["watch"]);
    let all = bash_complete(&script, &["ownwatch", ""]);
    for c in subcommands() {
        assert!(all.contains(&c), "{c} not offered: {all:?}");
    }
    assert_eq!(
        bash_complete(&script, &["ownwatch", "watch", "--ow"]),
        ["--owner"]
    );
    assert_eq!(
        bash_complete(&script, &["ownwatch", "scan", "--cro"]),
        ["--cross-mounts"]
    );
    let backends = bash_complete(&script, &["ownwatch", "watch", "--backend", ""]);
    assert_eq!(backends, ["auto", "lsm", "fentry", "kprobe", "tracepoint"]);
    let shells = bash_complete(&script, &["ownwatch", "completions", ""]);
    for s in ["bash", "zsh", "fish"] {
        assert!(
            shells.contains(&s.to_string()),
            "{s} not offered: {shells:?}"
        );
    }
}

#[test]
fn zsh_and_fish_completions() {
    for (shell, check) in [("zsh", ["-n"]), ("fish", ["--no-execute"])] {
        let script = ok(&["completions", shell]);
        assert!(!script.is_empty(), "{shell}: empty");
        for c in subcommands() {
            assert!(has_word(&script, &c), "{shell}: {c} missing");
        }
        for o in long_options("watch") {
            assert!(script.contains(&o), "{shell}: watch --{o} missing");
        }
        // zsh and fish are in the Makefile's TEST_PKGS: in CI a missing one fails
        if have(shell, &format!("the {shell} completion script's syntax")) {
            let (ok, _, err) = pipe(shell, &check, script.as_bytes());
            assert!(ok && err.is_empty(), "{shell} {check:?}: {err}");
        }
    }
}

/// What fish offers for `line` with ownwatch's completion script loaded (`complete -C`):
/// the candidates, without their descriptions.
fn fish_complete(script: &Path, line: &str) -> Vec<String> {
    let out = Command::new("fish")
        .args(["--no-config", "-c"])
        .arg(format!(
            "source {}; complete -C {}",
            script.display(),
            shell_quote(line)
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "fish complete -C {line:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// fish really completes with the script: commands, options, the values of --backend.
#[test]
fn fish_completion_completes_commands_options_and_values() {
    if !have("fish", "fish completion") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ownwatch.fish");
    std::fs::write(&script, ok(&["completions", "fish"])).unwrap();
    assert_eq!(fish_complete(&script, "ownwatch wa"), ["watch"]);
    let all = fish_complete(&script, "ownwatch ");
    for c in subcommands() {
        assert!(all.contains(&c), "{c} not offered: {all:?}");
    }
    assert_eq!(fish_complete(&script, "ownwatch watch --ow"), ["--owner"]);
    assert_eq!(
        fish_complete(&script, "ownwatch scan --cro"),
        ["--cross-mounts"]
    );
    // (fish sorts what it offers)
    let backends = fish_complete(&script, "ownwatch watch --backend ");
    assert_eq!(backends, ["auto", "fentry", "kprobe", "lsm", "tracepoint"]);
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for args in [
        &["completions", "nosuchshell"][..],
        &["completions"],
        &["completions", "bash", "zsh"],
        &["man", "--dirr", "/tmp"],
        &["man", "--dir"],
    ] {
        let (code, out, err) = run_once(args);
        let ctx = format!("ownwatch {args:?}: exit {code:?}\nstdout: {out:?}\nstderr: {err:?}");
        assert_eq!(code, Some(2), "{ctx}");
        assert!(out.is_empty(), "{ctx}");
        assert_eq!(err.lines().count(), 1, "{ctx}");
        assert!(
            err.starts_with("ownwatch: ") && err.ends_with('\n'),
            "{ctx}"
        );
    }
    // A DIR that cannot be made: one line too.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let (code, out, err) = run_once(&["man", "--dir", file.join("x").to_str().unwrap()]);
    assert_eq!(
        (code, out.as_str(), err.lines().count()),
        (Some(2), "", 1),
        "{err}"
    );
    assert!(err.starts_with("ownwatch: "), "{err}");
}

#[test]
fn make_install_puts_every_file_in_place_and_uninstall_removes_them() {
    if !have("make", "make install") {
        return;
    }
    let repo = env!("CARGO_MANIFEST_DIR");
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    let make = |target: &str| {
        let out = Command::new("make")
            .args(["-C", repo, "--no-print-directory", target])
            .arg(format!("BIN={}", bin()))
            .arg(format!("DESTDIR={}", d.display()))
            .arg("PREFIX=/usr")
            .output()
            .expect("make");
        assert!(
            out.status.success(),
            "make {target}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    make("install-files");

    let mut want: BTreeSet<String> = [
        "usr/bin/ownwatch",
        "usr/share/bash-completion/completions/ownwatch",
        "usr/share/zsh/site-functions/_ownwatch",
        "usr/share/fish/vendor_completions.d/ownwatch.fish",
        "usr/lib/systemd/system/ownwatch.service",
        "usr/lib/systemd/system/ownwatch@.service",
        "etc/logrotate.d/ownwatch",
        "etc/ownwatch/ownwatch.toml",
    ]
    .map(String::from)
    .into();
    want.insert("usr/share/man/man8/ownwatch.8.gz".into());
    for c in subcommands() {
        want.insert(format!("usr/share/man/man8/ownwatch-{c}.8.gz"));
    }
    let got = files_under(d);
    assert_eq!(got, want);

    let read = |p: &str| std::fs::read(d.join(p)).unwrap();
    assert_eq!(read("usr/bin/ownwatch"), std::fs::read(bin()).unwrap());
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("usr/bin/ownwatch"), 0o755);
    assert_eq!(mode("etc/logrotate.d/ownwatch"), 0o644);
    // The pages gzipped, as `ownwatch man` makes them.
    let (okz, page, err) = pipe("gzip", &["-dc"], &read("usr/share/man/man8/ownwatch.8.gz"));
    assert!(okz, "gunzip: {err}");
    assert_eq!(page, ok(&["man"]));
    for (path, shell) in [
        ("usr/share/bash-completion/completions/ownwatch", "bash"),
        ("usr/share/zsh/site-functions/_ownwatch", "zsh"),
        ("usr/share/fish/vendor_completions.d/ownwatch.fish", "fish"),
    ] {
        assert_eq!(
            String::from_utf8(read(path)).unwrap(),
            ok(&["completions", shell])
        );
    }
    // The units run the installed binary; everything else in them is contrib's.
    for u in ["ownwatch.service", "ownwatch@.service"] {
        let installed = String::from_utf8(read(&format!("usr/lib/systemd/system/{u}"))).unwrap();
        let contrib = std::fs::read_to_string(format!("{repo}/contrib/{u}")).unwrap();
        assert!(
            contrib.contains("ExecStart=/usr/local/bin/ownwatch "),
            "{u}"
        );
        assert!(
            installed.contains("ExecStart=/usr/bin/ownwatch "),
            "{u}:\n{installed}"
        );
        assert!(!installed.contains("/usr/local"), "{u}:\n{installed}");
        assert_eq!(
            installed,
            contrib.replace("/usr/local/bin/ownwatch", "/usr/bin/ownwatch")
        );
    }
    assert_eq!(
        read("etc/logrotate.d/ownwatch"),
        std::fs::read(format!("{repo}/contrib/ownwatch.logrotate")).unwrap()
    );

    let conf = "etc/ownwatch/ownwatch.toml";
    assert_eq!(
        read(conf),
        std::fs::read(format!("{repo}/contrib/ownwatch.toml")).unwrap()
    );
    assert_eq!(mode(conf), 0o644);

    // An edited config is the operator's: install leaves it, uninstall keeps it.
    std::fs::write(d.join(conf), "# mine\n").unwrap();
    make("install-files");
    assert_eq!(read(conf), b"# mine\n");
    make("uninstall");
    let kept: BTreeSet<String> = [conf.to_string()].into();
    assert_eq!(files_under(d), kept, "left after make uninstall");

    // Unedited, it goes with the rest.
    std::fs::remove_file(d.join(conf)).unwrap();
    make("install-files");
    make("uninstall");
    assert_eq!(files_under(d), BTreeSet::new(), "left after make uninstall");
}

/// Every non-directory below `root`, as a path relative to it.
fn files_under(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}
