//! ownwatch: report writes by the wrong user in service directory trees, as JSON lines.

mod cli;
mod config;
mod fix;
mod kernel;
mod output;
mod paths;
mod probe;
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
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's error is several lines (usage, tips); we promise one.
            let text = e.to_string();
            let body = text.split("\n\n").next().unwrap_or("bad usage");
            let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
            let line = line.trim_start_matches("error: ");
            eprintln!("ownwatch: {line} (see --help)");
            return ExitCode::from(2);
        }
    };
    let res = match cli.cmd {
        Cmd::Watch(args) => watch::run(args),
        Cmd::Scan(args) => scan::run(args),
        Cmd::Probe => probe::run(),
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line: the chain of contexts, outermost first.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("ownwatch: {msg}");
            ExitCode::from(2)
        }
    }
}
