//! Issue 15, `-o journal`: each event as one journal entry, sent to a real systemd-journald
//! over its native protocol, read back with `journalctl -o json -t ownwatch`.
//!
//! journald runs in a private mount namespace (`unshare -m --propagation private`) with
//! tmpfs on /run/systemd and /run/log, so the host's /run and journal are untouched: a
//! script there starts /lib/systemd/systemd-journald (not socket-activated, it makes its own
//! sockets; a drop-in in /run/systemd/journald.conf.d keeps it volatile, off the kernel log
//! and without rate limits), waits for /run/systemd/journal/socket, then runs the agent. The
//! file operations happen on the host's filesystem as usual (BPF does not care about mount
//! namespaces). When the agent has stopped, the script syncs the journal and writes
//! `journalctl -o json -t ownwatch` into the test's directory.
//!
//! Host suite only (not in the kernel matrix, whose guests have a read-only root). Without
//! journald or journalctl the tests are skipped with a reason, except in CI (CI=true), where
//! that is a failure.

#[macro_use]
mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// Whether journald, journalctl, unshare and nsenter are here. Missing: skipped with the
/// reason outside CI, a failure in CI (package `systemd`, `util-linux`).
fn have_journald(test: &str) -> bool {
    let missing: Vec<&str> = [JOURNALD, "journalctl", "unshare", "nsenter"]
        .into_iter()
        .filter(|p| {
            if p.starts_with('/') {
                !Path::new(p).exists()
            } else {
                !Command::new("sh")
                    .args(["-c", &format!("command -v {p} >/dev/null")])
                    .status()
                    .is_ok_and(|s| s.success())
            }
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} missing (Debian packages systemd and util-linux)",
        missing.join(", ")
    );
    if in_ci() {
        panic!("{test}: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// Runs in the new mount namespace: `$1` the test's directory (journald's log, the pids,
/// the entries), the rest the agent's command line.
const SCRIPT: &str = r#"
out=$1; shift
mount -t tmpfs -o mode=0755 ownwatch-test /run/systemd || exit 90
mount -t tmpfs -o mode=0755 ownwatch-test /run/log || exit 90
mkdir -p /run/systemd/journal /run/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nRateLimitIntervalSec=0\n' \
  > /run/systemd/journald.conf.d/ownwatch-test.conf
SYSTEMD_LOG_TARGET=console /lib/systemd/systemd-journald </dev/null >"$out/journald.log" 2>&1 &
jd=$!
echo $jd > "$out/journald.pid"
i=0
while [ ! -S /run/systemd/journal/socket ]; do
  i=$((i + 1))
  if [ $i -gt 400 ] || ! kill -0 $jd 2>/dev/null; then
    echo "journald did not make its socket: $(cat "$out/journald.log")" >&2
    kill $jd 2>/dev/null
    exit 91
  fi
  sleep 0.05
done
"$@" &
ow=$!
echo $ow > "$out/agent.pid"
stopping=
trap 'stopping=1; kill -TERM $ow' TERM INT
wait $ow; rc=$?
# A trapped signal ends the first wait early (status > 128): wait for the agent's own.
if [ -n "$stopping" ]; then wait $ow; rc=$?; fi
journalctl --sync >&2 || sleep 1
journalctl -D /run/log/journal/* --all -o json -t ownwatch --no-pager >"$out/entries.json" \
  2>"$out/journalctl.err" || echo "journalctl failed: $(cat "$out/journalctl.err")" >&2
# journald's pid now: the test may have restarted it.
jd=$(cat "$out/journald.pid")
kill $jd
i=0
while kill -0 $jd 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.05; done
exit $rc
"#;

/// Starts journald again in the namespace (after `Journald::stop_journald`), the same way.
const RESTART: &str = r#"
out=$1
SYSTEMD_LOG_TARGET=console /lib/systemd/systemd-journald </dev/null >>"$out/journald.log" 2>&1 &
echo $! > "$out/journald.pid"
i=0
while [ ! -S /run/systemd/journal/socket ] || ! kill -0 $! 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 400 ] && exit 91
  sleep 0.05
done
"#;

/// The agent, watching with `-o journal` under its own journald (see the module's doc).
struct Journald {
    agent: Agent,
    dir: PathBuf,
}

impl Journald {
    fn start(base: &Path, tree: &Path) -> Journald {
        let dir = base.join("journald");
        make_dir(&dir);
        let script = dir.join("run.sh");
        std::fs::write(&script, SCRIPT).unwrap();
        let args = watch_args(&["-o", "journal", s(tree)]);
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh"])
            .arg(&script)
            .arg(&dir)
            .arg(bin())
            .args(&args)
            .env_remove("NOTIFY_SOCKET");
        let agent = Agent::spawn_command(cmd, args, StdoutMode::Lines);
        Journald { agent, dir }
    }

    fn pid_of(&self, what: &str) -> i32 {
        let f = self.dir.join(format!("{what}.pid"));
        std::fs::read_to_string(&f)
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no pid in {}", f.display()))
    }

    /// A signal to the agent itself (the script's child).
    fn signal_agent(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.pid_of("agent"), sig) }, 0);
    }

    /// Stops journald (SIGTERM) and waits until it is gone; its socket file stays, refusing.
    fn stop_journald(&self) {
        let pid = self.pid_of("journald");
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        wait_until("journald to exit", Duration::from_millis(20), || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |st| st.contains(") Z "))
        });
    }

    /// Starts journald again in the agent's namespace and waits for its socket.
    fn start_journald(&self) {
        let st = Command::new("nsenter")
            .args([
                "-t",
                &self.agent.pid().to_string(),
                "-m",
                "sh",
                "-c",
                RESTART,
                "sh",
            ])
            .arg(&self.dir)
            .status()
            .expect("nsenter");
        assert!(st.success(), "restarting journald: {st}");
    }

    fn wait_stderr(&self, needle: &str) {
        wait_until(
            &format!("{needle:?} on the agent's stderr"),
            Duration::from_millis(50),
            || self.agent.stderr_text().contains(needle),
        );
    }

    /// `journalctl -o json -t ownwatch` in the namespace, now.
    fn entries_now(&self) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.agent.pid().to_string(), "-m", "sh", "-c"])
            .arg("journalctl -D /run/log/journal/* --all -o json -t ownwatch --no-pager")
            .output()
            .expect("nsenter journalctl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until an entry mentions `needle`, stops the agent (exit 0 required), and returns
    /// every entry `-t ownwatch` in the journal.
    fn finish(mut self, needle: &str) -> Vec<Value> {
        let deadline = Instant::now() + *TIMEOUT;
        while !self.entries_now().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no journal entry with {needle:?} within {:?}; stderr:\n{}\njournald:\n{}",
                *TIMEOUT,
                self.agent.stderr_text(),
                std::fs::read_to_string(self.dir.join("journald.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.agent.stop_with(libc::SIGTERM);
        let stdout = self.agent.drain();
        assert!(
            stdout.is_empty(),
            "-o journal printed on stdout: {stdout:?}"
        );
        let text = std::fs::read_to_string(self.dir.join("entries.json"))
            .unwrap_or_else(|e| panic!("entries.json: {e}; stderr:\n{}", self.agent.stderr_text()));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Drop for Journald {
    /// A test that failed half-way: the agent and journald go too (the script's children,
    /// by the pids it wrote).
    fn drop(&mut self) {
        for f in ["agent.pid", "journald.pid"] {
            if let Some(pid) = std::fs::read_to_string(self.dir.join(f))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// A field as journalctl -o json prints it: a string, or an array of byte values when it is
/// not printable UTF-8.
fn field(e: &Value, k: &str) -> Option<Vec<u8>> {
    match e.get(k)? {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Array(a) => Some(a.iter().map(|b| b.as_u64().unwrap() as u8).collect()),
        v => panic!("{k}: {v}"),
    }
}

/// A name from the event's JSON, exactly (`<name>_b64` when it is not UTF-8).
fn json_bytes(ev: &Value, k: &str) -> Option<Vec<u8>> {
    if let Some(b) = ev.get(format!("{k}_b64")).and_then(Value::as_str) {
        return Some(b64decode(b).unwrap());
    }
    ev.get(k)
        .and_then(Value::as_str)
        .map(|s| s.as_bytes().to_vec())
}

fn syscall_mkdir(p: &Path) -> Result<(), String> {
    sc!(libc::SYS_mkdirat, libc::AT_FDCWD, cp(p), 0o755)?;
    Ok(())
}

#[test]
fn events_become_journal_entries_with_fields_and_json() {
    needs_root!();
    if !have_journald("journal::events_become_journal_entries_with_fields_and_json") {
        return;
    }
    let d = TestDir::new("journal");
    let j = Journald::start(&d.base, &d.tree);

    let weird = PathBuf::from(OsStr::from_bytes(b"new\nname\xff"));
    // The owner's own write: never reported.
    run_as(Creds::User(OWNER, OWNER), || {
        let fd = sc!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            cp(d.t("owned")),
            libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL | libc::O_CLOEXEC,
            0o644
        )?;
        close(fd);
        Ok(())
    });
    // Nothing to reopen: no error, and the agent goes on.
    j.signal_agent(libc::SIGHUP);
    let root = d.act(Creds::Root, || {
        syscall_mkdir(&d.t("jdir"))?;
        sc!(
            libc::SYS_fchownat,
            libc::AT_FDCWD,
            cp(d.t("owned")),
            OTHER,
            OTHER,
            0
        )?;
        Ok(())
    });
    let other = d.act(Creds::User(OTHER, OTHER), || {
        let fd = sc!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            cp(d.t("other_file")),
            libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL | libc::O_CLOEXEC,
            0o600
        )?;
        close(fd);
        Ok(())
    });
    let root2 = d.act(Creds::Root, || {
        sc!(
            libc::SYS_renameat,
            libc::AT_FDCWD,
            cp(d.t("jdir")),
            libc::AT_FDCWD,
            cp(d.tree.join(&weird))
        )?;
        syscall_mkdir(&d.t("zz-sentinel"))?;
        Ok(())
    });
    let stderr = j.agent.stderr_text();
    let entries = j.finish("zz-sentinel");
    assert_eq!(
        stderr.lines().count(),
        1,
        "only the start line on stderr (the SIGHUP said nothing): {stderr}"
    );

    let events: Vec<Value> = entries
        .iter()
        .map(|e| {
            let json = field(e, "OWNWATCH_JSON").expect("OWNWATCH_JSON");
            let s = String::from_utf8(json).expect("OWNWATCH_JSON is UTF-8");
            assert!(!s.contains('\n'), "OWNWATCH_JSON is one line: {s:?}");
            parse_event(&s)
        })
        .collect();
    d.expect(
        &events,
        &[
            root.mkdir("jdir", 0o755),
            root.op("chown", "owned").owner(Some(OTHER), Some(OTHER)),
            other.create("other_file", 0o600),
            root2.rename("jdir", &weird),
            root2.mkdir("zz-sentinel", 0o755),
        ],
    );
    check_fields(&entries, &events);
    // The rename's new name: not UTF-8 and with a newline, kept byte for byte.
    let mut want = d.tree.as_os_str().as_bytes().to_vec();
    want.extend_from_slice(b"/new\nname\xff");
    assert_eq!(field(&entries[3], "OWNWATCH_NEW_PATH"), Some(want));
    assert!(
        entries[3]["OWNWATCH_NEW_PATH"].is_array(),
        "journalctl shows a non-UTF-8 value as bytes: {}",
        entries[3]["OWNWATCH_NEW_PATH"]
    );
}

/// Each entry's fields against its event's JSON (from its OWNWATCH_JSON): PRIORITY by op,
/// SYSLOG_IDENTIFIER, the OWNWATCH_* fields byte for byte, a one-line MESSAGE.
fn check_fields(entries: &[Value], events: &[Value]) {
    assert_eq!(entries.len(), events.len());
    for (e, ev) in entries.iter().zip(events) {
        let op = ev["op"].as_str().unwrap();
        let want_priority = match op {
            "chown" | "chmod" | "unlink" | "rmdir" | "rename" | "truncate" => "4",
            _ => "5",
        };
        let f = |k: &str| field(e, k);
        let str_of = |k: &str| f(k).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(str_of("PRIORITY").as_deref(), Some(want_priority), "{op}");
        assert_eq!(str_of("SYSLOG_IDENTIFIER").as_deref(), Some("ownwatch"));
        assert_eq!(str_of("OWNWATCH_OP").as_deref(), Some(op));
        assert_eq!(f("OWNWATCH_PATH"), json_bytes(ev, "path"), "{op}");
        assert_eq!(f("OWNWATCH_NEW_PATH"), json_bytes(ev, "new_path"), "{op}");
        assert_eq!(f("OWNWATCH_TREE"), json_bytes(ev, "tree"), "{op}");
        assert_eq!(
            str_of("OWNWATCH_UID"),
            Some(ev["fsuid"].to_string()),
            "{op}: the fsuid"
        );
        assert_eq!(str_of("OWNWATCH_PID"), Some(ev["pid"].to_string()));
        assert_eq!(f("OWNWATCH_COMM"), json_bytes(ev, "comm"));
        assert_eq!(f("OWNWATCH_EXE"), json_bytes(ev, "exe"), "{op}");
        assert_eq!(
            str_of("OWNWATCH_BACKEND").as_deref(),
            ev["backend"].as_str()
        );
        assert_eq!(str_of("OWNWATCH_TIME").as_deref(), ev["time"].as_str());
        assert_eq!(
            str_of("OWNWATCH_LOGINUID"),
            ev.get("loginuid").map(Value::to_string)
        );
        let msg = str_of("MESSAGE").expect("MESSAGE");
        assert!(
            msg.starts_with(&format!("{op} ")) && !msg.contains('\n'),
            "MESSAGE: {msg:?}"
        );
        // The journal's own fields: the entry came from the agent over the native socket.
        assert_eq!(str_of("_TRANSPORT").as_deref(), Some("journal"));
    }
}

/// `unshare -m`, an empty tmpfs on /run/systemd (so no journal socket), then `cmd`.
fn without_journal_socket(args: &[String]) -> (Option<i32>, String, String) {
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs ownwatch-test /run/systemd && mkdir /run/systemd/journal \
             && exec \"$0\" \"$@\"",
        )
        .arg(bin())
        .args(args)
        .output()
        .expect("unshare");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_journal_socket_is_exit_2_with_one_line() {
    needs_root!();
    if !have_journald("journal::no_journal_socket_is_exit_2_with_one_line") {
        return;
    }
    let d = TestDir::new("journal-nosock");
    let started = Instant::now();
    let (code, stdout, stderr) =
        without_journal_socket(&watch_args(&["-o", "journal", s(&d.tree)]));
    assert_eq!(
        stderr,
        "ownwatch: -o journal: no journald socket at /run/systemd/journal/socket\n"
    );
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stdout.is_empty(), "{stdout:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "attached first?"
    );
}

#[test]
fn format_text_with_journal_is_a_usage_error() {
    needs_root!();
    let d = TestDir::new("journal-text");
    let args = watch_args(&["--format", "text", "-o", "journal", s(&d.tree)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = run_once(&args);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stdout.is_empty(), "{stdout:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.starts_with("ownwatch: --format text does not go with -o journal"),
        "{stderr:?}"
    );
}

/// A file really named journal: `-o ./journal`.
#[test]
fn dot_slash_journal_is_a_file() {
    needs_root!();
    let d = TestDir::new("journal-file");
    let mut a = Agent::spawn_in(
        watch_args(&["-o", "./journal", s(&d.tree)]),
        StdoutMode::Lines,
        Some(&d.base),
    );
    let pid = run_as(Creds::Root, || syscall_mkdir(&d.t("in-file")));
    let file = d.base.join("journal");
    wait_until("the event in ./journal", Duration::from_millis(50), || {
        file_has(&file, "in-file")
    });
    a.stop_with(libc::SIGTERM);
    let evs = json_lines(&file);
    d.expect(&evs, &[By::new(&d.tree, 0, pid).mkdir("in-file", 0o755)]);
}

/// journald stopping and starting again under the agent: the entry it could not take is
/// dropped after the retries and counted, and the first entry the new journald takes is the
/// `lost` entry for it (PRIORITY 3), then the events go on; stderr says when it started and
/// ended.
#[test]
fn journald_restarting_is_counted_in_a_lost_entry() {
    needs_root!();
    if !have_journald("journal::journald_restarting_is_counted_in_a_lost_entry") {
        return;
    }
    let d = TestDir::new("journal-restart");
    let j = Journald::start(&d.base, &d.tree);
    let before = d.act(Creds::Root, || syscall_mkdir(&d.t("before")));
    wait_until("the first entry", Duration::from_millis(50), || {
        j.entries_now().contains("before")
    });
    j.stop_journald();
    d.act(Creds::Root, || syscall_mkdir(&d.t("during")));
    j.wait_stderr("dropping entries");
    j.start_journald();
    j.wait_stderr("journald takes entries again; 1 were dropped");
    let after = d.act(Creds::Root, || syscall_mkdir(&d.t("after")));
    let entries = j.finish(s(&d.t("after")));
    let json: Vec<Value> = entries
        .iter()
        .map(|e| parse_event(&String::from_utf8(field(e, "OWNWATCH_JSON").unwrap()).unwrap()))
        .collect();
    assert_eq!(json.len(), 3, "{json:#?}");
    assert_eq!(json[1]["op"], "lost", "{json:#?}");
    assert_eq!(json[1]["count"], 1);
    assert_eq!(json[1]["reason"], "output");
    assert_eq!(field(&entries[1], "PRIORITY"), Some(b"3".to_vec()));
    assert_eq!(field(&entries[1], "OWNWATCH_COUNT"), Some(b"1".to_vec()));
    assert_eq!(
        field(&entries[1], "MESSAGE"),
        Some(b"lost 1 events (output)".to_vec())
    );
    let events = [json[0].clone(), json[2].clone()];
    d.expect(
        &events,
        &[before.mkdir("before", 0o755), after.mkdir("after", 0o755)],
    );
}

/// An entry bigger than a datagram may be (journald's socket takes ~208 KiB by default): a
/// rename ~58 KiB deep, whose two paths are in OWNWATCH_PATH, OWNWATCH_NEW_PATH, MESSAGE and
/// OWNWATCH_JSON; it goes in a sealed memfd, and journald keeps it whole.
#[test]
fn a_big_entry_reaches_journald_whole() {
    needs_root!();
    if !have_journald("journal::a_big_entry_reaches_journald_whole") {
        return;
    }
    let d = TestDir::new("journal-big");
    let j = Journald::start(&d.base, &d.tree);
    let name = "d".repeat(255);
    const DEPTH: usize = 230;
    // Down the deep path, one component at a time (a path this long cannot be opened whole).
    let descend = |make: bool| -> Result<libc::c_long, String> {
        let mut fd = sc!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            cp(&d.tree),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC
        )?;
        for _ in 0..DEPTH {
            if make {
                sc!(libc::SYS_mkdirat, fd, cs(&name), 0o755)?;
            }
            let next = sc!(
                libc::SYS_openat,
                fd,
                cs(&name),
                libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC
            )?;
            close(fd);
            fd = next;
        }
        Ok(fd)
    };
    // The owner makes the deep tree: no events.
    run_as(Creds::User(OWNER, OWNER), || {
        let fd = descend(true)?;
        sc!(libc::SYS_mkdirat, fd, cs("a"), 0o755)?;
        close(fd);
        Ok(())
    });
    let root = d.act(Creds::Root, || {
        let fd = descend(false)?;
        sc!(libc::SYS_renameat, fd, cs("a"), fd, cs("b"))?;
        close(fd);
        syscall_mkdir(&d.t("zz-sentinel"))
    });
    let entries = j.finish("zz-sentinel");
    let events: Vec<Value> = entries
        .iter()
        .map(|e| parse_event(&String::from_utf8(field(e, "OWNWATCH_JSON").unwrap()).unwrap()))
        .collect();
    let deep = vec![name.as_str(); DEPTH].join("/");
    d.expect(
        &events,
        &[
            root.rename(format!("{deep}/a"), format!("{deep}/b")),
            root.mkdir("zz-sentinel", 0o755),
        ],
    );
    check_fields(&entries, &events);
    let size: usize = [
        "MESSAGE",
        "OWNWATCH_PATH",
        "OWNWATCH_NEW_PATH",
        "OWNWATCH_JSON",
    ]
    .iter()
    .map(|k| field(&entries[0], k).unwrap().len())
    .sum();
    assert!(size > 256 << 10, "the entry is only {size} bytes");
}
