//! Issue 4: who did it. Every identity field is captured in the kernel at the write and
//! checked exactly: login uid and session, terminal, command line, executable, ancestry,
//! cgroup and container id, for a writer that exits right after the write.

use super::*;

use std::ffi::CString;
use std::path::Path;

use serde_json::Value;

fn w(path: impl AsRef<Path>, data: &str) -> Result<(), String> {
    std::fs::write(path.as_ref(), data)
        .map_err(|e| format!("write {}: {e}", path.as_ref().display()))
}

/// The command line of the writer: `sh -c 'echo x > "$0"' FILE PAD...`.
fn sh_argv(file: &Path, pad: &[String]) -> Vec<String> {
    let mut argv = vec![
        "sh".to_string(),
        "-c".into(),
        "echo x > \"$0\"".into(),
        s(file).into(),
    ];
    argv.extend(pad.iter().cloned());
    argv
}

/// What the writer saw of itself, sent back through a pipe.
struct Seen {
    writer: i32,
    tty: String,
    sessionid: u32,
}

/// In a forked actor: set the login uid, open a pseudo-terminal, fork the writer, which
/// becomes a session leader with the pty as its terminal, joins `cgroup`, and execs /bin/sh
/// with `argv` (`sh_argv`); sh creates the file through a redirection and exits at once.
fn write_from_a_login_chain(loginuid: u32, cgroup: &Path, argv: &[String]) -> (i32, Seen) {
    let mut fds = [0i32; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let actor = run_as(Creds::Root, || {
        w("/proc/self/loginuid", &loginuid.to_string())?;
        let sessionid: u32 = std::fs::read_to_string("/proc/self/sessionid")
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|e| format!("sessionid: {e}"))?;
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        if master < 0
            || unsafe { libc::grantpt(master) } != 0
            || unsafe { libc::unlockpt(master) } != 0
        {
            return Err("no pseudo-terminal".into());
        }
        let mut name = [0 as libc::c_char; 64];
        if unsafe { libc::ptsname_r(master, name.as_mut_ptr(), name.len()) } != 0 {
            return Err("ptsname".into());
        }
        let slave_path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_owned();
        let tty = slave_path
            .to_string_lossy()
            .trim_start_matches("/dev/")
            .to_string();
        let sh = CString::new("/bin/sh").unwrap();
        let args: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_str()).unwrap())
            .collect();
        let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let procs =
            CString::new(cgroup.join("cgroup.procs").as_os_str().as_encoded_bytes()).unwrap();
        let writer = unsafe { libc::fork() };
        if writer == 0 {
            unsafe {
                libc::setsid();
                let slave = libc::open(slave_path.as_ptr(), libc::O_RDWR);
                libc::ioctl(slave, libc::TIOCSCTTY, 0);
                let cg = libc::open(procs.as_ptr(), libc::O_WRONLY);
                libc::write(cg, b"0".as_ptr() as *const libc::c_void, 1);
                libc::close(cg);
                libc::execv(sh.as_ptr(), ptrs.as_ptr());
                libc::_exit(127);
            }
        }
        let mut st = 0;
        unsafe { libc::waitpid(writer, &mut st, 0) };
        if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
            return Err(format!("writer failed: {st:#x}"));
        }
        let msg = format!("{writer} {tty} {sessionid}");
        unsafe { libc::write(fds[1], msg.as_ptr() as *const libc::c_void, msg.len()) };
        Ok(())
    });
    unsafe { libc::close(fds[1]) };
    let mut buf = [0u8; 256];
    let n = unsafe { libc::read(fds[0], buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    unsafe { libc::close(fds[0]) };
    let msg = String::from_utf8_lossy(&buf[..n.max(0) as usize]).to_string();
    let f: Vec<&str> = msg.split(' ').collect();
    (
        actor,
        Seen {
            writer: f[0].parse().expect("writer pid"),
            tty: f[1].to_string(),
            sessionid: f[2].parse().expect("sessionid"),
        },
    )
}

fn only_event(evs: &[Value]) -> &Value {
    assert_eq!(evs.len(), 1, "want exactly one event, got {evs:#?}");
    &evs[0]
}

/// The shared agent on the tree of `d` while `sh` creates `file` from a login chain
/// (`write_from_a_login_chain`) with `pad` on its command line after the file: the one event,
/// the actor's pid, what the writer saw, and the command line given.
fn sh_event(
    d: &TestDir,
    loginuid: u32,
    cgroup: &Path,
    file: &Path,
    pad: &[String],
) -> (Value, i32, Seen, Vec<String>) {
    let mut a = d.lease();
    let argv = sh_argv(file, pad);
    let (actor, seen) = write_from_a_login_chain(loginuid, cgroup, &argv);
    let evs = a.finish();
    (only_event(&evs).clone(), actor, seen, argv)
}

#[test]
fn who_did_it_login_terminal_command_ancestry_cgroup() {
    let d = shared_dir!("identity");
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let name = format!("ownwatch-it-{}-docker-{id}.scope", std::process::id());
    let cg = Cgroup(cgroup2_root().join(&name));
    std::fs::create_dir(&cg.0).expect("create cgroup");
    // A command line well over 4 KiB: it must come through whole.
    let pad: Vec<String> = (0..60)
        .map(|i| format!("arg{i:02}-{}", "x".repeat(90)))
        .collect();
    let file = d.t("made-by-sh");
    let (e, actor, seen, argv) = sh_event(&d, 4711, &cg.0, &file, &pad);

    assert_eq!(e["op"], "create");
    assert_eq!(e["path"], s(&file));
    assert_eq!(e["pid"], seen.writer);
    assert_eq!(e["comm"], "sh");
    assert_eq!(e["fsuid"], 0);
    assert_eq!(e["loginuid"], 4711);
    assert_eq!(e["login_user"], Value::Null, "uid 4711 has no name");
    assert_eq!(e["sessionid"], seen.sessionid);
    assert_eq!(e["tty"], seen.tty.as_str());
    assert!(seen.tty.starts_with("pts/"), "{}", seen.tty);
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    assert_eq!(e["exe"], s(&sh));
    let want_len: usize = argv.iter().map(|a| a.len() + 1).sum();
    assert!(
        want_len > 4096,
        "the test's command line is {want_len} bytes"
    );
    assert_eq!(e["argv"], Value::from(argv));
    assert!(e.get("argv_truncated").is_none());
    // The writer's parent is the actor, whose parent is this test process.
    assert_eq!(e["ppid"], actor);
    let parents = e["parents"].as_array().expect("parents");
    assert_eq!(parents[0]["pid"], actor);
    assert_eq!(parents[0]["comm"], ACTOR_COMM);
    assert_eq!(parents[1]["pid"], std::process::id());
    let last = parents.last().unwrap()["pid"].as_u64().unwrap();
    assert!(
        last == 1 || parents.len() == 16,
        "chain ends at init or at the bound: {parents:?}"
    );
    assert_eq!(e["cgroup"], format!("/{name}"));
    assert_eq!(e["container_id"], id);
}

#[test]
fn unset_login_and_no_terminal_are_left_out() {
    needs_root!();
    let own = std::fs::read_to_string("/proc/self/loginuid").unwrap();
    let d = TestDir::shared("noidentity");
    let mut a = d.lease();
    let pid = run_as(Creds::User(4343, 4343), || {
        unsafe { libc::setsid() };
        std::fs::create_dir(d.t("plain")).map_err(|e| e.to_string())
    });
    let evs = a.finish();
    let e = only_event(&evs);
    assert_eq!(e["pid"], pid);
    assert_eq!(e["fsuid"], 4343);
    assert!(
        e.get("tty").is_none(),
        "a session leader without a terminal: {e}"
    );
    if own.trim() == "4294967295" {
        assert!(
            e.get("loginuid").is_none() && e.get("login_user").is_none(),
            "{e}"
        );
        assert!(e.get("sessionid").is_none(), "{e}");
    } else {
        assert_eq!(e["loginuid"].to_string(), own.trim());
    }
    // The test binary is the executable; argv is what it was started with.
    let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
    assert_eq!(e["exe"], s(&exe));
    let argv: Vec<String> = std::env::args().collect();
    assert_eq!(e["argv"], Value::from(argv));
    assert!(e.get("container_id").is_none());
}

#[test]
fn an_overlong_command_line_is_cut_and_says_so() {
    let d = shared_dir!("longargv");
    let cg = cgroup2_root();
    let pad: Vec<String> = (0..200)
        .map(|i| format!("{i:03}{}", "y".repeat(97)))
        .collect();
    let (e, _, seen, full) = sh_event(&d, 4712, &cg, &d.t("long"), &pad);
    assert_eq!(e["pid"], seen.writer);
    assert_eq!(e["argv_truncated"], true);
    let got = e["argv"].as_array().unwrap();
    // Whole arguments up to the cut, then the cut one as a prefix: never more than was given.
    let n = got.len();
    assert!(n > 4 && n < full.len(), "{n} of {}", full.len());
    for (g, f) in got[..n - 1].iter().zip(&full) {
        assert_eq!(g, f);
    }
    assert!(full[n - 1].starts_with(got[n - 1].as_str().unwrap()));
    let kept: usize = got.iter().map(|a| a.as_str().unwrap().len() + 1).sum();
    assert!(
        kept >= 8000,
        "at least 8 KiB of command line is kept, got {kept}"
    );
}

/// `prog args`, exec'd in place of a forked root actor: its pid is the events'.
fn exec_as_root(prog: &str, args: &[&str]) -> i32 {
    use std::os::unix::process::CommandExt;
    run_as(Creds::Root, || {
        Err(format!(
            "exec {prog}: {}",
            std::process::Command::new(prog).args(args).exec()
        ))
    })
}

fn canon(p: &str) -> String {
    s(&std::fs::canonicalize(p).unwrap()).to_string()
}

fn strs(v: &[&str]) -> Value {
    Value::from(v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// This process's cgroup v2 path, as events name it.
fn own_cgroup() -> String {
    let c = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    c.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line")
        .to_string()
}

/// Issue 14: the kernel sends a process's exe, tty and cgroup once and refers to them in its
/// later records while they stay the same. Every record must still say exactly who wrote:
/// a process that writes several times, forks, then execs another program (same pid).
#[test]
fn the_writer_of_each_write_when_a_process_writes_often_forks_and_execs() {
    let d = shared_dir!("ident-exec");
    let mut a = d.lease();
    let (f1, f2, f3, f4, dir) = (d.t("f1"), d.t("f2"), d.t("f3"), d.t("f4"), d.t("dir"));
    let script =
        "echo x > \"$1\"; echo x > \"$2\"; (echo x > \"$3\"); echo x > \"$4\"; exec mkdir \"$5\"";
    let args = [
        "-c",
        script,
        "bash",
        s(&f1),
        s(&f2),
        s(&f3),
        s(&f4),
        s(&dir),
    ];
    let pid = exec_as_root("bash", &args);
    let evs = a.finish();
    assert_eq!(evs.len(), 5, "{evs:#?}");
    let bash_argv = strs(&[&["bash"][..], &args].concat());
    let (bash, mkdir) = (canon("/bin/bash"), canon("/bin/mkdir"));
    let cg = own_cgroup();
    for (e, path, op, exe, argv) in [
        (&evs[0], &f1, "create", &bash, &bash_argv),
        (&evs[1], &f2, "create", &bash, &bash_argv),
        (&evs[2], &f3, "create", &bash, &bash_argv),
        (&evs[3], &f4, "create", &bash, &bash_argv),
        (&evs[4], &dir, "mkdir", &mkdir, &strs(&["mkdir", s(&dir)])),
    ] {
        assert_eq!(e["op"], op, "{e}");
        assert_eq!(e["path"], s(path), "{e}");
        assert_eq!(e["exe"], exe.as_str(), "{e}");
        assert_eq!(&e["argv"], argv, "{e}");
        assert_eq!(e["cgroup"], cg.as_str(), "{e}");
        assert_eq!(e["fsuid"], 0, "{e}");
    }
    // the actor's parent is this test; the subshell is a child of the bash (same exe and
    // command line, its own pid)
    for (i, e) in evs.iter().enumerate() {
        let (me, parent) = if i == 2 {
            assert_ne!(e["pid"], pid, "{e}");
            (e["pid"].as_i64().unwrap() as i32, pid as u32)
        } else {
            (pid, std::process::id())
        };
        assert_eq!(e["pid"], me, "{e}");
        assert_eq!(e["ppid"], parent, "{e}");
        assert_eq!(e["parents"][0]["pid"], parent, "{e}");
    }
    assert_eq!(evs[4]["comm"], "mkdir");
}

/// The same for a process that rewrites its command line in place between two writes (perl's
/// `$0 = ...`, as setproctitle does), and one that moves to another cgroup between two.
#[test]
fn the_writer_of_each_write_when_a_process_rewrites_argv_or_changes_cgroup() {
    let d = shared_dir!("ident-argv");
    let name = format!("ownwatch-it-{}-move.scope", std::process::id());
    let cg = Cgroup(cgroup2_root().join(&name));
    std::fs::create_dir(&cg.0).expect("create cgroup");
    let mut a = d.lease();
    let (p1, p2, c1, c2) = (d.t("p1"), d.t("p2"), d.t("c1"), d.t("c2"));
    let perl_script = "mkdir $ARGV[0] or die; $0 = \"renamed-in-place\"; mkdir $ARGV[1] or die";
    let perl_args = ["-e", perl_script, s(&p1), s(&p2)];
    let perl_pid = exec_as_root("perl", &perl_args);
    let procs = cg.0.join("cgroup.procs");
    let sh_script = "echo x > \"$1\"; echo $$ > \"$3\"; echo x > \"$2\"";
    let sh_args = ["-c", sh_script, "bash", s(&c1), s(&c2), s(&procs)];
    let bash_pid = exec_as_root("bash", &sh_args);
    let evs = a.finish();
    assert_eq!(evs.len(), 4, "{evs:#?}");
    let (perl, bash) = (canon("/usr/bin/perl"), canon("/bin/bash"));
    let own = own_cgroup();
    assert_eq!(evs[0]["path"], s(&p1));
    assert_eq!(evs[0]["argv"], strs(&[&["perl"][..], &perl_args].concat()));
    assert_eq!(evs[1]["path"], s(&p2));
    // perl writes the new name over the old command line and blanks the rest of it
    assert_eq!(evs[1]["argv"][0], "renamed-in-place", "{}", evs[1]);
    for e in &evs[..2] {
        assert_eq!(e["pid"], perl_pid, "{e}");
        assert_eq!(e["exe"], perl.as_str(), "{e}");
        assert_eq!(e["cgroup"], own.as_str(), "{e}");
    }
    let bash_argv = strs(&[&["bash"][..], &sh_args].concat());
    for (e, path, cgroup) in [
        (&evs[2], &c1, own.clone()),
        (&evs[3], &c2, format!("/{name}")),
    ] {
        assert_eq!(e["op"], "create", "{e}");
        assert_eq!(e["path"], s(path), "{e}");
        assert_eq!(e["pid"], bash_pid, "{e}");
        assert_eq!(e["exe"], bash.as_str(), "{e}");
        assert_eq!(e["argv"], bash_argv, "{e}");
        assert_eq!(e["cgroup"], cgroup.as_str(), "{e}");
    }
}

/// A process whose executable is deleted (or replaced, as a package upgrade renames a new
/// binary over it) while it runs: its writes from then on say `exe` as /proc/PID/exe does,
/// "<path> (deleted)", and its writes before said the path alone. The kernel sends a
/// process's exe once and refers to it after: the deletion must still show.
#[test]
fn the_writer_whose_executable_was_deleted_says_so() {
    let d = shared_dir!("ident-deleted-exe");
    let bin = d.o("bin");
    make_dir(&bin);
    let (sh, upgraded) = (bin.join("sh-copy"), bin.join("sh-upgraded"));
    copy_exe("/bin/bash", &sh);
    copy_exe("/bin/bash", &upgraded);
    let mut a = d.lease();
    let (f1, f2, f3) = (d.t("f1"), d.t("f2"), d.t("f3"));
    // (rm and mv run as children; their ops lie outside the tree)
    let script = "echo x > \"$1\"; rm -f \"$4\"; echo x > \"$2\"; echo x > \"$3\"";
    let pid = exec_as_root(
        s(&sh),
        &["-c", script, "bash", s(&f1), s(&f2), s(&f3), s(&sh)],
    );
    let script = "echo x > \"$1\"; mv -f \"$2\" \"$3\"; echo x > \"$4\"";
    let moved = bin.join("sh-new");
    copy_exe("/bin/bash", &moved);
    let pid2 = exec_as_root(
        s(&upgraded),
        &[
            "-c",
            script,
            "bash",
            s(&d.t("g1")),
            s(&moved),
            s(&upgraded),
            s(&d.t("g2")),
        ],
    );
    let evs = a.finish();
    assert_eq!(evs.len(), 5, "{evs:#?}");
    let gone = format!("{} (deleted)", s(&sh));
    for (e, path, exe, p) in [
        (&evs[0], f1, s(&sh).to_string(), pid),
        (&evs[1], f2, gone.clone(), pid),
        (&evs[2], f3, gone, pid),
        (&evs[3], d.t("g1"), s(&upgraded).to_string(), pid2),
        (
            &evs[4],
            d.t("g2"),
            format!("{} (deleted)", s(&upgraded)),
            pid2,
        ),
    ] {
        assert_eq!(e["op"], "create", "{e}");
        assert_eq!(e["path"], s(&path), "{e}");
        assert_eq!(e["exe"], exe.as_str(), "{e}");
        assert_eq!(e["pid"], p, "{e}");
        assert_eq!(e["fsuid"], 0, "{e}");
    }
}
