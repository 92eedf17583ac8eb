//! ownwatch: report writes by the wrong user in service directory trees, as JSON lines.

mod bpf;
mod config;
mod decode;
mod fix;
mod identity;
mod output;
mod plan;
mod probe;
mod resolve;
mod scan;
mod sink;
#[cfg(test)]
mod testutil;
mod timefmt;
mod users;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{BackendReq, Format};

#[derive(Parser, Debug)]
#[command(
    name = "ownwatch",
    version,
    about = "Report writes by the wrong user in directory trees, as JSON lines"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Stream offending writes in the trees as JSON lines
    Watch(WatchArgs),
    /// Report entries of the trees owned by someone else, as JSON lines; exit 1 if any
    Scan(scan::ScanArgs),
    /// Report what this kernel allows: BTF, LSMs, each backend usable or not and why
    Probe,
}

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// Expected owner of everything in the trees; its writes are allowed
    /// [default: the uid:gid that owns each DIR]
    #[arg(long, value_name = "USER[:GROUP]")]
    pub owner: Option<String>,
    /// Another user whose writes are allowed (repeatable; name or number)
    #[arg(long, value_name = "USER")]
    pub allow: Vec<String>,
    /// Report every write in the trees, whoever makes it
    #[arg(long)]
    pub any_user: bool,
    /// Comma-separated subset of: create,mkdir,mknod,symlink,link,rename,unlink,rmdir,
    /// chmod,chown,truncate,setxattr,removexattr,write [default: all]
    #[arg(long, value_name = "LIST")]
    pub ops: Option<String>,
    /// Hook mechanism
    #[arg(long, value_enum, default_value_t = BackendReq::Auto)]
    pub backend: BackendReq,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Give each offending object back to the owner (new directories with their contents),
    /// without setuid/setgid bits; never through a symlink or beyond a mount point
    #[arg(long)]
    pub fix: bool,
    /// Append events to FILE (created 0640) instead of stdout; reopened on SIGHUP
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Stop after DUR (30s, 10m, 1h)
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,
    /// Stop after N events
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
    /// Ring buffer between the kernel and ownwatch: a power of two, a multiple of the page
    /// size (256K, 4M, 16M). Larger rides out longer stalls of the reader; all of it is
    /// resident (and counted twice in RSS: the kernel maps its data twice)
    #[arg(long, value_name = "SIZE", default_value = "8M")]
    pub ring_size: String,
    /// More diagnostics on stderr (repeat for more); stdout carries events only
    #[arg(short, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Directory trees to watch
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<std::path::PathBuf>,
}

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
