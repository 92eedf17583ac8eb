//! `ownwatch man` and `ownwatch completions`: the manual pages and the shell completion
//! scripts, generated from the clap definitions in cli.rs (clap_mangen, clap_complete). Nothing
//! here needs root, BTF or BPF.
//!
//! Every text is written once: options and commands come from clap; EXIT STATUS and EXAMPLES
//! are cut from the help epilogues in cli.rs; the description and the jq recipes are taken
//! from README.md at build time (the recipes exactly as README prints them, which is also
//! what tests/watch/tools.rs runs). The EVENT FIELDS table is the one text kept here; it follows
//! README "Event fields" and "What counts", and tests/cli_docs.rs checks it names every field
//! of README's example event.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

use crate::cli::{Cli, CompletionShell};

const README: &str = include_str!("../README.md");
const SECTION: &str = "8";

/// `ownwatch completions SHELL`: the script on stdout.
pub fn completions(shell: CompletionShell) -> Result<u8> {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ownwatch", &mut buf);
    to_stdout(&buf)
}

/// `ownwatch man [--dir DIR]`: ownwatch(8) on stdout, or every page written into DIR.
pub fn man(dir: Option<&Path>) -> Result<u8> {
    let pages = pages()?;
    let Some(dir) = dir else {
        return to_stdout(&pages[0].1);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    for (name, text) in &pages {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}", path.display()))?;
    }
    Ok(0)
}

/// Writes all of `buf` to stdout; a reader that went away (`| head`) is not an error.
fn to_stdout(buf: &[u8]) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    match out.write_all(buf).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("stdout"),
        _ => Ok(0),
    }
}

/// The command as the pages show it: built (subcommands know their full names), without
/// clap's `help` subcommand (`--help` is documented with every command).
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every page, (file name, roff): ownwatch.8 first, then ownwatch-COMMAND.8 per command.
pub fn pages() -> Result<Vec<(String, Vec<u8>)>> {
    let cmd = command();
    let source = format!("ownwatch {}", env!("CARGO_PKG_VERSION"));
    let mut pages = vec![(format!("ownwatch.{SECTION}"), main_page(&cmd)?)];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone())
            .section(SECTION)
            .source(source.clone());
        let mut w = Vec::new();
        man.render_title(&mut w)?;
        man.render_name_section(&mut w)?;
        man.render_synopsis_section(&mut w)?;
        man.render_description_section(&mut w)?;
        man.render_options_section(&mut w)?;
        let mut r = Roff::new();
        if let Some(after) = sub.get_after_help() {
            exit_and_examples(&mut r, &after.to_string());
        }
        see_also(&mut r, None);
        r.to_writer(&mut w)?;
        pages.push((man.get_filename(), w));
    }
    Ok(pages
        .into_iter()
        .map(|(name, roff)| (name, ascii(&roff)))
        .collect())
}

/// The page with every character beyond ASCII as a groff escape (`—` is `\[u2014]`), so it
/// renders the same whatever encoding the formatter assumes (plain `groff -man` takes Latin-1).
fn ascii(roff: &[u8]) -> Vec<u8> {
    let mut out = String::new();
    for c in String::from_utf8_lossy(roff).chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    out.into_bytes()
}

fn main_page(cmd: &clap::Command) -> Result<Vec<u8>> {
    let man = Man::new(cmd.clone()).section(SECTION);
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    let mut r = Roff::new();
    r.control("PP", []).text([roman(readme_intro())]);
    r.to_writer(&mut w)?;
    man.render_options_section(&mut w)?;
    commands(cmd, &mut w)?;

    let mut r = Roff::new();
    event_fields(&mut r);
    let after = cmd
        .get_after_help()
        .map(|s| s.to_string())
        .unwrap_or_default();
    exit_and_examples(&mut r, &after);
    r.control("SH", ["JQ RECIPES"]);
    r.text([roman(
        "From README.md; a log written with -o (as the systemd units do) is read \
         directly. Grouping needs all events at once (jq -s): run it on a log, or on \
         ownwatch watch --duration 10m /srv/app.",
    )]);
    verbatim(&mut r, jq_recipes());
    see_also(&mut r, Some(cmd));
    r.to_writer(&mut w)?;
    man.render_version_section(&mut w)?;
    Ok(w)
}

/// COMMANDS: each command with its synopsis, what it does and all its options (so the main
/// page is complete on its own), and its page. clap_mangen's sections of the command, with
/// their headings turned into this section's.
fn commands(cmd: &clap::Command, w: &mut Vec<u8>) -> Result<()> {
    Roff::new().control("SH", ["COMMANDS"]).to_writer(w)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone()).section(SECTION);
        let mut synopsis = Vec::new();
        man.render_synopsis_section(&mut synopsis)?;
        let mut options = Vec::new();
        man.render_options_section(&mut options)?;
        let name = sub.get_name();
        Roff::new()
            .control("SS", [format!("ownwatch {name}").as_str()])
            .to_writer(w)?;
        let synopsis = String::from_utf8_lossy(&synopsis).replacen(".SH SYNOPSIS\n", "", 1);
        w.extend(synopsis.as_bytes());
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        Roff::new()
            .control("PP", [])
            .text([
                roman(format!("{about}. See ")),
                bold(format!("ownwatch-{name}")),
                roman(format!("({SECTION}).")),
            ])
            .to_writer(w)?;
        let options = String::from_utf8_lossy(&options).replacen(".SH OPTIONS\n", ".PP\n", 1);
        w.extend(options.as_bytes());
    }
    Ok(())
}

/// README's jq recipes block, exactly as README prints it (between the fences after
/// "### jq recipes").
pub fn jq_recipes() -> &'static str {
    let start = README
        .find("\n### jq recipes\n")
        .expect("README: ### jq recipes");
    let rest = &README[start..];
    let open = rest.find("\n```\n").expect("README: jq recipes block") + 5;
    let len = rest[open..]
        .find("```\n")
        .expect("README: end of jq recipes block");
    rest[open..open + len].trim_end_matches('\n')
}

/// README's introduction (the paragraph that starts "ownwatch watches"), without markdown.
fn readme_intro() -> String {
    let start = README
        .find("\nownwatch watches ")
        .expect("README: introduction");
    let para = README[start + 1..].split("\n\n").next().unwrap_or_default();
    para.replace(['*', '`'], "").replace('\n', " ")
}

/// EXIT STATUS and EXAMPLES from a help epilogue of cli.rs: "Exit codes:" (a list of
/// "  N  text" items with indented continuation lines, or one paragraph), then
/// "\n\nExamples:\n" and one indented command per line.
fn exit_and_examples(r: &mut Roff, after_help: &str) {
    let (codes, examples) = after_help
        .split_once("\n\nExamples:\n")
        .unwrap_or((after_help, ""));
    let codes = codes.strip_prefix("Exit codes:").unwrap_or(codes);
    r.control("SH", ["EXIT STATUS"]);
    if let Some(list) = codes.strip_prefix('\n') {
        let mut items: Vec<(String, String)> = Vec::new();
        for line in list.lines() {
            let t = line.trim();
            match t.split_once("  ") {
                Some((n, text)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    items.push((n.to_string(), text.trim().to_string()))
                }
                _ => match items.last_mut() {
                    Some((_, text)) => {
                        text.push(' ');
                        text.push_str(t);
                    }
                    None => items.push((String::new(), t.to_string())),
                },
            }
        }
        for (n, text) in items {
            r.control("TP", []).text([bold(n)]).text([roman(text)]);
        }
    } else {
        let para: Vec<&str> = codes.split_whitespace().collect();
        r.text([roman(para.join(" "))]);
    }
    if !examples.is_empty() {
        r.control("SH", ["EXAMPLES"]);
        verbatim(r, examples);
    }
}

/// Lines as they are (no filling, no adjusting), indented.
fn verbatim(r: &mut Roff, text: &str) {
    r.control("PP", []).control("RS", ["4"]).control("nf", []);
    for line in text.lines() {
        r.text([roman(line)]);
    }
    r.control("fi", []).control("RE", []);
}

/// The main page points at every command's page and the tools it names; a command's page
/// at the main page.
fn see_also(r: &mut Roff, main: Option<&clap::Command>) {
    r.control("SH", ["SEE ALSO"]);
    let refs = match main {
        Some(cmd) => cmd
            .get_subcommands()
            .map(|s| format!("ownwatch-{}({SECTION})", s.get_name()))
            .chain(["jq(1)", "systemd.service(5)", "logrotate(8)"].map(String::from))
            .collect(),
        None => vec![format!("ownwatch({SECTION})")],
    };
    r.text([roman(refs.join(", "))]);
}

/// The fields of a JSON event line, each with its meaning, in README's words ("Event fields",
/// "What counts", the example event); then the in-band lines.
const EVENT_FIELDS: &[(&str, &str)] = &[
    (
        "time",
        "When it happened, UTC, as in 2026-11-25T15:11:24.431260018Z.",
    ),
    (
        "op",
        "What was done: create, mkdir, mknod, symlink, link, rename, unlink, rmdir, chmod, \
            chown, truncate, setxattr, removexattr or write (an existing file opened for \
            writing, by name or by file handle); lost and tree_gone are the in-band lines \
            below. Linking an O_TMPFILE file into a tree is a create; binding a unix socket \
            to a name in a tree is a mknod. Only operations that succeeded are reported.",
    ),
    (
        "path",
        "The object, as the host sees it; for rename and link the old name.",
    ),
    (
        "new_path",
        "rename and link: the new name. Either end in a tree counts (moves in, out \
                  and within).",
    ),
    ("exchange", "true for RENAME_EXCHANGE."),
    ("target", "symlink: the symlink text."),
    ("xattr", "setxattr, removexattr: the attribute name."),
    (
        "tree",
        "The watched tree holding the object; with nested trees the innermost, whose \
              owner and allowed users judged the write.",
    ),
    (
        "uid, gid, euid, fsuid, fsgid",
        "The writer's credentials. The actor is the fsuid (what \
              new files get owned by): sudo -u svc touch is the service user, a setuid-root \
              helper run by the service user is root.",
    ),
    (
        "user, group",
        "Names of fsuid and fsgid, null when unknown.",
    ),
    (
        "pid, tid, ppid, comm",
        "The process, thread, parent process and command name.",
    ),
    (
        "mode",
        "Octal; create, mkdir, mknod, chmod. For chmod the mode the file got, which lacks the \
              setgid bit asked for when the caller is neither in the file's group nor \
              privileged. The tracepoint backend works that out from the caller's groups \
              and CAP_FSETID and the file's group; a path chmod on a kernel before 6.13 \
              says the mode asked for there.",
    ),
    (
        "new_uid, new_gid",
        "chown; absent when unchanged. The ids the file gets, as the host sees them: a \
              chown to 0 by the root of a user namespace says the host id it maps 0 to.",
    ),
    ("ret", "The operation's return value."),
    (
        "backend",
        "The hook mechanism that saw it: lsm, fentry, kprobe or tracepoint.",
    ),
    (
        "fixed",
        "With --fix: true: the object, and for mkdir/rename everything below it, now \
               belongs to the owner and carries no setuid/setgid bit; false: not, with \
               fix_error saying why; absent when no object is left in a tree to give back \
               (unlink, rmdir, a move out).",
    ),
    ("fix_error", "Why fixed is false; present only then."),
    (
        "setid_cleared",
        "true when the fix dropped setuid/setgid bits; absent otherwise.",
    ),
    (
        "loginuid, login_user, sessionid",
        "The audit login identity, which survives sudo and su \
              and so names the person behind a root shell; absent when unset.",
    ),
    (
        "tty",
        "The terminal (\"pts/3\", \"tty1\"); absent without a terminal.",
    ),
    (
        "exe",
        "The executable, absolute and mount-aware; \"PATH (deleted)\", as /proc/PID/exe \
         says it, when that file was deleted or replaced (an upgrade) since the process ran it.",
    ),
    ("argv", "The whole command line up to 8 KiB."),
    (
        "argv_truncated",
        "true when argv was cut: longer than 8 KiB, or a page of it was not in \
                        memory.",
    ),
    (
        "parents",
        "pid and comm of each ancestor, nearest first, up to init (at most 16).",
    ),
    (
        "cgroup",
        "The cgroup v2 path (systemd unit, container scope).",
    ),
    (
        "container_id",
        "When a 64-hex-digit container id is in the cgroup path (docker, \
                      containerd, cri-o, podman).",
    ),
    (
        "truncated",
        "true when a reported path really was cut, or the string the caller \
                   passed could not be read any more (a path up to 64 KiB always arrives \
                   whole).",
    ),
    (
        "resolved",
        "false marks a path the tracepoint backend had to guess lexically because the \
                  directory was already gone when it looked.",
    ),
    (
        "path_b64, new_path_b64, target_b64, argv_b64",
        "The exact bytes, base64, of a name that \
              is not UTF-8; the plain field then holds it with each bad byte replaced by U+FFFD \
              (readable, not exact). Decode with base64 -d: jq's @base64d turns those bytes \
              into U+FFFD again.",
    ),
];

const IN_BAND: &[(&str, &str)] = &[
    (
        r#"{"time":…,"op":"lost","count":N}"#,
        "N events could not be delivered (counted in the \
        kernel).",
    ),
    (
        r#"{"time":…,"op":"lost","count":N,"reason":"outcome"}"#,
        "The N events just before it came \
        without ret: their outcome (lsm, fentry, kprobe) did not come (the op failed after the \
        hook, the kernel skipped or could not deliver the outcome, or the op still ran when \
        ownwatch stopped).",
    ),
    (
        r#"{"time":…,"op":"lost","count":N,"reason":"output"}"#,
        "N events the agent had but \
        could not write to a full -o file; written where the dropped lines would have been, \
        once writing works again.",
    ),
    (
        r#"{"time":…,"op":"lost","count":N,"reason":"skipped"}"#,
        "N runs of ownwatch's programs \
        the kernel skipped (its per-CPU recursion guard; on the kprobe backend, missed \
        kretprobes and fprobe hits), each of which may have been an event or its outcome; \
        checked once a second and at exit.",
    ),
    (
        r#"{"time":…,"op":"tree_gone","tree":…,"reason":…}"#,
        "A watched root was deleted, lazily \
        unmounted (umount -l) or moved out of reach: it is given up, said once here and on \
        stderr, and nothing is reported for it afterwards. When the last tree is gone ownwatch \
        stops with exit status 2.",
    ),
];

fn event_fields(r: &mut Roff) {
    r.control("SH", ["EVENT FIELDS"]);
    r.text([roman(
        "watch writes one JSON object per line (--format json, the default). Fields that do \
         not apply to an event are absent. Who did it is captured in the kernel at the moment \
         of the write, and only for offending events. Bytes that are not UTF-8 keep a lossy \
         string plus an exact ",
    )])
    .text([italic("field"), roman("_b64; quotes, newlines and control characters are escaped, so one event is always one line.")]);
    for (names, text) in EVENT_FIELDS {
        r.control("TP", [])
            .text([bold(*names)])
            .text([roman(*text)]);
    }
    r.control("SS", ["In-band lines"]);
    r.text([roman(
        "Besides events, the stream carries these lines (in --format text: TIME lost N events \
         [(reason)] and TIME tree_gone TREE (reason)):",
    )]);
    for (line, text) in IN_BAND {
        r.control("TP", []).text([bold(*line)]).text([roman(*text)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: &str) -> String {
        let pages = pages().unwrap();
        let (_, text) = pages.iter().find(|(n, _)| n == name).unwrap();
        String::from_utf8(text.clone()).unwrap()
    }

    #[test]
    fn jq_recipes_are_readmes_block() {
        let r = jq_recipes();
        assert!(r.starts_with("# who changed what in /srv/app"), "{r}");
        assert!(r.ends_with("printf '\\0'; done"), "{r}");
        assert!(!r.contains("```"), "{r}");
    }

    #[test]
    fn pages_for_every_command() {
        let names: Vec<String> = pages().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "ownwatch.8",
                "ownwatch-watch.8",
                "ownwatch-scan.8",
                "ownwatch-probe.8",
                "ownwatch-check-config.8",
                "ownwatch-completions.8",
                "ownwatch-man.8"
            ]
        );
    }

    #[test]
    fn exit_status_and_examples_come_from_the_help() {
        let main = page("ownwatch.8");
        for s in [
            ".SH \"EXIT STATUS\"",
            ".SH EXAMPLES",
            ".SH \"EVENT FIELDS\"",
            ".SH \"JQ RECIPES\"",
        ] {
            assert!(main.contains(s), "{s} missing");
        }
        assert!(!main.contains(".SH EXTRA"));
        assert!(
            main.contains(".TP\n\\fB1\\fR\nscan: wrongly owned entries remain"),
            "{main}"
        );
        let watch = page("ownwatch-watch.8");
        assert!(
            watch.contains(".SH \"EXIT STATUS\"\n0 ok (also when stopped by"),
            "{watch}"
        );
        assert!(watch.contains("\\-\\-ops create,mkdir,chown"), "{watch}");
    }
}
