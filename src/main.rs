//! ownwatch: report writes by the wrong user in service directory trees, as JSON lines.

mod cli;
mod config;
mod fix;
mod kernel;
mod manual;
mod output;
mod paths;
mod probe;
mod rules;
mod scan;
mod sys;
#[cfg(test)]
mod testutil;
mod users;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Cmd};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let res = match cli.cmd {
        Cmd::Watch(args) => watch::run(args),
        Cmd::Scan(args) => scan::run(args),
        Cmd::Probe => probe::run(),
        Cmd::CheckConfig { file } => rules::check(file.as_deref()),
        Cmd::Completions { shell } => manual::completions(shell),
        Cmd::Man { dir } => manual::man(dir.as_deref()),
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A bad config file: `FILE:LINE:COL: what`, as compilers say it (editors jump there).
            if let Some(c) = e.downcast_ref::<rules::ConfigError>() {
                eprintln!("{}", c.to_string().replace('\n', " "));
                return ExitCode::from(2);
            }
            // One line: the chain of contexts, outermost first.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("ownwatch: {msg}");
            ExitCode::from(2)
        }
    }
}

/// clap's verdict on the command line. --help and --version: on stdout, exit 0. A bare
/// `ownwatch`: the help (the commands) on stderr, exit 2. Anything else is bad usage: one line
/// on stderr (clap's first paragraph, with its tips such as "a similar subcommand exists:
/// 'watch'"), exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            eprintln!("ownwatch: {}", one_line(&e.to_string()));
            ExitCode::from(2)
        }
    }
}

/// clap's error text (several lines: the error, tips, usage) as one line.
fn one_line(text: &str) -> String {
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut paras = text.split("\n\n");
    let first = squeeze(paras.next().unwrap_or("bad usage"));
    let first = first.trim_start_matches("error: ");
    let tips: Vec<String> = paras
        .flat_map(str::lines)
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .map(squeeze)
        .collect();
    if tips.is_empty() {
        format!("{first} (see --help)")
    } else {
        format!("{first} ({}; see --help)", tips.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;
    use clap::Parser;

    fn err(args: &[&str]) -> String {
        let e = crate::cli::Cli::try_parse_from(args).unwrap_err();
        one_line(&e.to_string())
    }

    #[test]
    fn usage_errors_are_one_line_with_clap_tips() {
        assert_eq!(
            err(&["ownwatch", "wach"]),
            "unrecognized subcommand 'wach' (a similar subcommand exists: 'watch'; see --help)"
        );
        let e = err(&["ownwatch", "watch", "--ownr", "x", "/srv"]);
        assert!(e.starts_with("unexpected argument '--ownr' found ("), "{e}");
        assert!(e.contains("a similar argument exists: '--owner'"), "{e}");
        assert_eq!(
            err(&["ownwatch", "frobnicate"]),
            "unrecognized subcommand 'frobnicate' (see --help)"
        );
        for args in [
            &["ownwatch", "watch", "--any-user", "--fix", "/srv"][..],
            &["ownwatch", "scan", "--xdev", "--cross-mounts", "/srv"],
        ] {
            let e = err(args);
            assert!(e.contains("cannot be used with"), "{args:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn bare_ownwatch_shows_the_commands() {
        let e = crate::cli::Cli::try_parse_from(["ownwatch"]).unwrap_err();
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        let help = e.to_string();
        for c in ["watch", "scan", "probe", "Exit codes", "Examples"] {
            assert!(help.contains(c), "{c} missing from:\n{help}");
        }
    }
}
