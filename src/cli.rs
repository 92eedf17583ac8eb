//! The command line: every clap definition, in one place (the man page and completions are
//! generated from these).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Format;
use crate::kernel::plan::BackendReq;

/// The main help's epilogue; the man page's EXIT STATUS and EXAMPLES are cut from these texts
/// (src/manual.rs), so each is written once: "Exit codes:" first, then "\n\nExamples:\n".
pub const AFTER_HELP: &str = "\
Exit codes:
  0  ok; watch also when stopped by --duration, --max-events, SIGINT or SIGTERM, or when the
     reader of its stdout goes away (e.g. `| head -1`)
  1  scan: wrongly owned entries remain (found; with --fix: not all of them given back)
  2  bad usage or environment: one line on stderr (nothing is attached or changed)

Examples:
  sudo ownwatch watch /srv/app | jq .
  ownwatch watch --owner svc --duration 1h -o /var/log/ownwatch/app.jsonl /srv/app
  ownwatch scan --fix /srv/app
  ownwatch completions bash > /usr/share/bash-completion/completions/ownwatch
  ownwatch man | man -l -";

pub const WATCH_AFTER_HELP: &str = "\
Exit codes: 0 ok (also when stopped by --duration, --max-events, SIGINT or SIGTERM, or when the
reader of stdout goes away); 2 bad usage or environment, one line on stderr.

Examples:
  sudo ownwatch watch /srv/app | jq .
  ownwatch watch --owner svc --allow deploy --ops create,mkdir,chown /srv/app
  ownwatch watch --fix --duration 1h30m -o /var/log/ownwatch/app.jsonl /srv/app
  ownwatch watch -o journal /srv/app     # then: journalctl -o json -t ownwatch | jq .";

pub const SCAN_AFTER_HELP: &str = "\
Exit codes: 0 nothing wrongly owned (with --fix: everything found was given back); 1 wrongly
owned entries remain (found, or --fix could not give them all back); 2 bad usage or
environment, one line on stderr.

Examples:
  ownwatch scan /srv/app
  ownwatch scan --owner svc:www-data --fix /srv/app /srv/app/data";

#[derive(Parser, Debug)]
#[command(
    name = "ownwatch",
    version,
    about = "Report writes by the wrong user in directory trees, as JSON lines",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // (parsed once, at start)
pub enum Cmd {
    /// Stream offending writes in the trees as JSON lines
    #[command(after_help = WATCH_AFTER_HELP)]
    Watch(WatchArgs),
    /// Report entries of the trees owned by someone else, as JSON lines; exit 1 if any remain
    #[command(after_help = SCAN_AFTER_HELP)]
    Scan(ScanArgs),
    /// Report what this kernel allows: BTF, LSMs, each backend usable or not and why
    Probe,
    /// Validate a config file and print its effective rules, one block per tree; exit 2 with
    /// `FILE:LINE:COL: what is wrong` when it is bad
    CheckConfig {
        /// The config file [default: /etc/ownwatch/ownwatch.toml]
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Print the completion script for SHELL on stdout
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: CompletionShell,
    },
    /// Print the manual page ownwatch(8) in roff on stdout, or write every page into DIR
    Man {
        /// Write ownwatch.8 and one ownwatch-COMMAND.8 per command into DIR (created if
        /// missing) instead
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The shells `ownwatch completions` writes scripts for.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// Expected owner of everything in the trees; its writes are allowed [default: the uid:gid
    /// that owns each DIR; a DIR owned by root needs --owner, or --any-user]
    #[arg(long, value_name = "USER[:GROUP]")]
    pub owner: Option<String>,
    /// Another user whose writes are allowed (repeatable; name or number)
    #[arg(long, value_name = "USER")]
    pub allow: Vec<String>,
    /// Report every write in the trees, whoever makes it (not with --allow or --fix: --fix
    /// would take objects away from allowed users)
    #[arg(long, conflicts_with_all = ["allow", "fix", "config"])]
    pub any_user: bool,
    /// Comma-separated subset of create, mkdir, mknod, symlink, link, rename, unlink, rmdir,
    /// chmod, chown, truncate, setxattr, removexattr, write (as in --ops create,mkdir)
    /// [default: all]
    #[arg(long, value_name = "LIST")]
    pub ops: Option<String>,
    /// Hook mechanism
    #[arg(long, value_enum, default_value_t = BackendReq::Auto)]
    pub backend: BackendReq,
    /// json: one JSON object per event (README "Event fields"). text: one readable line per
    /// event, `TIME OP PATH [-> NEW_PATH] [=> TARGET] [mode=M] [fixed=B] [owner=U:G] by
    /// USER(FSUID) pid=N comm=COMM [login=USER(ID)] [tty=T]`; a name with spaces, quotes,
    /// backslashes, control characters or bytes that are not UTF-8 is double-quoted with C
    /// escapes (\", \\, \n, \t, \xNN)
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Give each offending object back to the owner (new directories with their contents),
    /// without setuid/setgid bits; never through a symlink or beyond a mount point
    #[arg(long)]
    pub fix: bool,
    /// Append events to FILE (created 0640) instead of stdout; reopened on SIGHUP. `journal`:
    /// one systemd journal entry per event instead (`journalctl -o json -t ownwatch`); a file
    /// named journal is `-o ./journal`
    #[arg(short = 'o', long = "output", value_name = "FILE|journal")]
    pub output: Option<PathBuf>,
    /// Stop after DUR: numbers with units s, m, h, d, several in a row (30s, 10m, 1h, 1h30m,
    /// 2d); a number without a unit is refused
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,
    /// Stop after N events
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
    /// Ring buffer between the kernel and ownwatch: a power of two from 64K to 1G, a multiple
    /// of the page size (256K, 4M, 16M). Larger rides out longer stalls of the reader; all of it is
    /// resident (and counted twice in RSS: the kernel maps its data twice)
    #[arg(long, value_name = "SIZE", default_value = "8M")]
    pub ring_size: String,
    /// Keep Prometheus metrics in FILE, for node_exporter's textfile collector (e.g.
    /// /var/lib/node_exporter/textfile_collector/ownwatch.prom): ownwatch_events_total by
    /// tree, op and user, ownwatch_lost_events_total, ownwatch_fixed_total,
    /// ownwatch_fix_errors_total, ownwatch_info, ownwatch_trees, ownwatch_start_time_seconds,
    /// ownwatch_last_event_timestamp_seconds. Rewritten every --metrics-interval and at exit,
    /// atomically (FILE.tmp, renamed over FILE), mode 0644. Its directory must exist; a
    /// failed write is said once on stderr and ownwatch goes on
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// How often --metrics FILE is rewritten: a duration as for --duration (10s, 1m)
    #[arg(long, value_name = "DUR", default_value = "15s", requires = "metrics")]
    pub metrics_interval: String,
    /// More diagnostics on stderr (repeat for more); stdout carries events only
    #[arg(short, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Per-tree rules from FILE (TOML: owner, allow, ops, fix, ignore, except for each
    /// [[tree]]) instead of DIRs; --owner, --allow, --ops and --fix given too win over the file
    /// in every tree. SIGHUP rereads it
    #[arg(long, value_name = "FILE", conflicts_with = "dirs")]
    pub config: Option<PathBuf>,
    /// Directory trees to watch
    #[arg(value_name = "DIR", required_unless_present = "config")]
    pub dirs: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Expected owner of every entry [default: the uid:gid that owns each DIR]. Without a
    /// group: the user's primary group, or DIR's group when the user has no passwd entry
    #[arg(long, value_name = "USER[:GROUP]")]
    pub owner: Option<String>,
    /// Give each offending entry back to the owner (never through a symlink, never outside the
    /// tree, never beyond a mount point), dropping setuid/setgid from non-directories; adds
    /// "fixed" (and "setid_cleared" or "fix_error") to its line. Exit 0 when every offender
    /// was given back
    #[arg(long)]
    pub fix: bool,
    /// Stay on each DIR's mount: report mount points (bind mounts included), do not enter them
    /// (the default)
    #[arg(long, conflicts_with = "cross_mounts")]
    pub xdev: bool,
    /// Also descend into mounts inside the trees and report what is there (--fix never changes
    /// anything beyond a mount point)
    #[arg(long)]
    pub cross_mounts: bool,
    /// Directory trees to scan (a DIR given as a symlink is followed; nothing below it is)
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
}
