//! The tools people really run — coreutils, tar, a shell's redirection, an editor's
//! save-by-rename — from several working directories, as root, under the real agent. glibc
//! passes `AT_FDCWD` as a 32-bit int (the upper half of the 64-bit argument is zero), unlike the
//! raw syscalls of tests/watch/: every relative path below goes that way. Run as root:
//! `cargo test --test watch tools::`; also with `OWNWATCH_NO_CTIME_HOOKS=1` (how the tracepoint backend
//! runs on kernels before 6.13) and on every backend of the kernel matrix.

use super::*;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `args` run in `cwd` with umask 022 as the test's own user (root), or as `uid` when given
/// (setresuid through setpriv, as `sudo -u` would). Panics unless it succeeds.
pub(super) fn tool_as(uid: Option<u32>, cwd: &Path, args: &[&str]) {
    let mut cmd = command_as(uid, args[0]);
    cmd.args(&args[1..])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let st = cmd
        .status()
        .unwrap_or_else(|e| panic!("running {args:?} in {}: {e}", cwd.display()));
    assert!(
        st.success(),
        "{args:?} in {} as {uid:?}: {st}",
        cwd.display()
    );
}

/// `program`, run as `uid` when given: setresuid through setpriv, no supplementary groups.
fn command_as(uid: Option<u32>, program: &str) -> Command {
    let Some(u) = uid else {
        return Command::new(program);
    };
    let mut c = Command::new("setpriv");
    c.args([
        format!("--reuid={u}"),
        format!("--regid={u}"),
        "--clear-groups".into(),
        "--".into(),
        program.into(),
    ]);
    c
}

fn tool(cwd: &Path, args: &[&str]) {
    tool_as(None, cwd, args)
}

/// A root event made by `comm`.
pub(super) fn by(comm: &str, op: &str, path: impl AsRef<Path>) -> Exp {
    let mut e = Exp::new(op, path, 0);
    e.comm = Some(comm.to_string());
    e
}

/// Does the filesystem of `dir` keep POSIX ACLs? cp -a and install set them (a setxattr of
/// system.posix_acl_access) where it does.
fn has_acls(dir: &Path) -> bool {
    let p = cp(dir);
    let name = cs("system.posix_acl_access");
    let r = unsafe { libc::lgetxattr(p.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    r >= 0 || errno() == libc::ENODATA
}

#[test]
fn coreutils_tar_and_shells_from_other_working_directories() {
    let d = root_dir!("tools");
    let (t, o, base) = (&d.tree, &d.outside, &d.base);
    assert!(
        has_acls(t),
        "{}: this test expects a filesystem with POSIX ACLs (ext4, tmpfs, xfs...)",
        t.display()
    );
    for p in ["a", "b", "own"] {
        make_dir(d.t(p));
    }
    for p in ["src", "dir", "dir/sub"] {
        make_dir(d.o(p));
    }
    make_file(d.t("a/y"), b"y");
    make_file(d.o("src/f"), b"f");
    make_file(d.o("dir/sub/g"), b"g");
    make_file(d.o("plain"), b"plain");
    for (p, m) in [
        ("dir", 0o755),
        ("dir/sub", 0o750),
        ("dir/sub/g", 0o640),
        ("plain", 0o644),
    ] {
        chmod(d.o(p), m);
    }
    make_file(d.t("own/mine"), b"mine");
    chown(d.t("own"), OWNER, OWNER);
    chown(d.t("own/mine"), OWNER, OWNER);
    let arch = base.join("arch.tar");
    tool(o, &["tar", "-cf", arch.to_str().unwrap(), "dir"]);
    // A working directory reached through a symlink: the kernel's cwd is the tree itself.
    std::os::unix::fs::symlink(t, d.o("to-tree")).unwrap();
    let (ta, tb, via) = (d.t("a"), d.t("b"), d.o("to-tree"));

    let mut agent = Agent::watch_tree(t, &[]);
    tool(base, &["mv", "outside/src", "tree/moved"]);
    tool(&ta, &["mv", "y", "../b/y2"]);
    tool(t, &["mv", "moved/f", "b/"]);
    tool(base, &["ln", "tree/b/y2", "tree/hl"]);
    tool(&ta, &["ln", "-s", "../b/y2", "sl"]);
    tool(t, &["rm", "hl"]);
    tool(&ta, &["chmod", "600", "../b/y2"]);
    tool(o, &["chown", "4343", "../tree/b/f"]);
    tool(&tb, &["chown", ":4343", "y2"]);
    tool(t, &["mknod", "p1", "p"]);
    tool(t, &["mkfifo", "-m", "640", "p2"]);
    tool(&ta, &["mkdir", "-p", "x/y/z"]);
    tool(o, &["install", "-m", "0640", "plain", "../tree/inst"]);
    tool(t, &["cp", "../outside/plain", "cpd"]);
    tool(base, &["cp", "-a", "outside/dir", "tree/cpa"]);
    tool(&ta, &["tar", "-xf", "../../arch.tar"]);
    tool(&via, &["touch", "newfile"]);
    tool(&via, &["truncate", "-s", "0", "cpd"]);
    tool(t, &["setfattr", "-n", "user.k", "-v", "v", "cpd"]);
    tool(t, &["rmdir", "a/x/y/z"]);
    tool(t, &["rm", "-r", "a/x"]);
    // An editor's save: write a temporary name, then rename it over the file.
    tool(t, &["sh", "-c", "echo new > .f.swp && mv .f.swp f"]);
    // Not reported: writes outside the tree, and the owner's own writes inside it.
    tool(o, &["sh", "-c", "touch x && mkdir d && mv x d/ && rm -r d"]);
    let own = d.t("own");
    tool_as(
        Some(OWNER),
        &own,
        &[
            "sh",
            "-c",
            "echo 2 > mine && mv mine m2 && mkdir -p k/l && rm -r k",
        ],
    );
    tool_as(Some(OWNER), &own, &["cp", "-a", "m2", "../own/m3"]);

    let evs = agent.finish(t);
    let mkdir_p = |rel: &str| by("mkdir", "mkdir", d.t(rel)).mode(0o755);
    let want = vec![
        by("mv", "rename", d.o("src")).new_path(d.t("moved")),
        by("mv", "rename", d.t("a/y")).new_path(d.t("b/y2")),
        by("mv", "rename", d.t("moved/f")).new_path(d.t("b/f")),
        by("ln", "link", d.t("b/y2")).new_path(d.t("hl")),
        by("ln", "symlink", d.t("a/sl")).target("../b/y2"),
        by("rm", "unlink", d.t("hl")),
        by("chmod", "chmod", d.t("b/y2")).mode(0o600),
        by("chown", "chown", d.t("b/f")).owner(Some(4343), None),
        by("chown", "chown", d.t("b/y2")).owner(None, Some(4343)),
        by("mknod", "mknod", d.t("p1")).mode(0o644),
        by("mkfifo", "mknod", d.t("p2")).mode(0o640),
        by("mkfifo", "chmod", d.t("p2")).mode(0o640),
        mkdir_p("a/x"),
        mkdir_p("a/x/y"),
        mkdir_p("a/x/y/z"),
        by("install", "create", d.t("inst")).mode(0o600),
        by("install", "setxattr", d.t("inst")).xattr("system.posix_acl_access"),
        by("install", "chmod", d.t("inst")).mode(0o640),
        by("cp", "create", d.t("cpd")).mode(0o644),
        by("cp", "mkdir", d.t("cpa")).mode(0o700),
        by("cp", "mkdir", d.t("cpa/sub")).mode(0o700),
        by("cp", "create", d.t("cpa/sub/g")).mode(0o600),
        by("cp", "setxattr", d.t("cpa/sub/g")).xattr("system.posix_acl_access"),
        by("cp", "chown", d.t("cpa/sub")).owner(Some(0), Some(0)),
        by("cp", "setxattr", d.t("cpa/sub")).xattr("system.posix_acl_access"),
        by("cp", "removexattr", d.t("cpa/sub")).xattr("system.posix_acl_default"),
        by("cp", "chown", d.t("cpa")).owner(Some(0), Some(0)),
        by("cp", "setxattr", d.t("cpa")).xattr("system.posix_acl_access"),
        by("cp", "removexattr", d.t("cpa")).xattr("system.posix_acl_default"),
        by("tar", "mkdir", d.t("a/dir")).mode(0o700),
        by("tar", "mkdir", d.t("a/dir/sub")).mode(0o700),
        by("tar", "create", d.t("a/dir/sub/g")).mode(0o600),
        by("tar", "chown", d.t("a/dir/sub/g")).owner(Some(0), Some(0)),
        by("tar", "chmod", d.t("a/dir/sub/g")).mode(0o640),
        by("tar", "chown", d.t("a/dir/sub")).owner(Some(0), Some(0)),
        by("tar", "chmod", d.t("a/dir/sub")).mode(0o750),
        by("tar", "chown", d.t("a/dir")).owner(Some(0), Some(0)),
        by("tar", "chmod", d.t("a/dir")).mode(0o755),
        by("touch", "create", d.t("newfile")).mode(0o644),
        by("truncate", "write", d.t("cpd")),
        by("truncate", "truncate", d.t("cpd")),
        by("setfattr", "setxattr", d.t("cpd")).xattr("user.k"),
        by("rmdir", "rmdir", d.t("a/x/y/z")),
        by("rm", "rmdir", d.t("a/x/y")),
        by("rm", "rmdir", d.t("a/x")),
        by("sh", "create", d.t(".f.swp")).mode(0o644),
        by("mv", "rename", d.t(".f.swp")).new_path(d.t("f")),
    ];
    assert_events(&evs, &want, t);
}

/// The README's jq recipes, as printed there (README "jq recipes"), on real events: the
/// grouping recipe groups, and the exact-bytes recipe gives a name that is not UTF-8 back
/// byte for byte (jq's own @base64d turned such bytes into U+FFFD). Needs jq (make deps and
/// the arm64 guests' userland install it); without it the test fails in CI, and elsewhere
/// says so and checks nothing.
#[test]
fn readme_jq_recipes_on_real_events() {
    let d = root_dir!("jqrecipes");
    if Command::new("jq").arg("--version").output().is_err() {
        assert!(
            !common::in_ci(),
            "jq is not installed: the README's recipes cannot be checked"
        );
        eprintln!("NOT CHECKED readme_jq_recipes_on_real_events: jq is not installed");
        return;
    }
    let t = &d.tree;
    let odd = b"odd\xff\xfe name".to_vec();
    let odd_path = join_bytes(t, &odd);
    let mut agent = Agent::watch_tree(t, &[]);
    tool(t, &["mkdir", "m"]);
    tool(t, &["touch", "a", "b"]);
    tool(t, &["chmod", "600", "a"]);
    tool(
        t,
        &["sh", "-c", r#"exec touch "$(printf 'odd\377\376 name')""#],
    );
    assert!(odd_path.exists(), "{}", odd_path.display());
    let (lines, _) = agent.finish_lines_with(t, Sentinel::Mkdir);
    let log = d.base.join("app.jsonl");
    std::fs::write(
        &log,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();

    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    // The command that follows the comment line `# <title>...` in the recipes block, with the
    // log the README names replaced by ours.
    let recipe = |title: &str| -> String {
        let mut it = readme
            .lines()
            .skip_while(|l| !l.starts_with(&format!("# {title}")));
        it.next()
            .unwrap_or_else(|| panic!("README: no recipe {title:?}"));
        let cmd: Vec<&str> = it
            .take_while(|l| !l.starts_with('#') && !l.starts_with("```"))
            .collect();
        cmd.join("\n")
            .replace("/var/log/ownwatch/app.jsonl", log.to_str().unwrap())
    };
    let run = |cmd: &str| -> Vec<u8> {
        let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
        assert!(
            out.status.success(),
            "{cmd}: {}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };

    let exact = run(&recipe("paths that are not UTF-8, byte for byte"));
    let mut want = bytes(&odd_path);
    want.push(0);
    assert_eq!(exact, want, "{:?}", String::from_utf8_lossy(&exact));

    let grouped = String::from_utf8(run(&recipe("who wrote in /srv/app, grouped by"))).unwrap();
    let mut got: Vec<&str> = grouped.lines().collect();
    // the order of equal counts is jq's
    assert_eq!(got.first(), Some(&"root\ttouch\t3\tcreate"), "{grouped}");
    got.sort();
    assert_eq!(
        got,
        [
            "root\tchmod\t1\tchmod",
            "root\tmkdir\t1\tmkdir",
            "root\ttouch\t3\tcreate"
        ],
        "{grouped}"
    );
}

/// Nine roots moved together by `mv` of a directory two levels above them, after the agent
/// had nothing to read for a while, and written in right after: the events carry the roots'
/// new paths. (The agent looks where a root is only when the kernel says it may have moved,
/// watch/rootwatch.rs, or once a second: this move is said by inotify on the directories
/// above the roots.) The `mv` itself is outside every tree: not reported.
#[test]
fn roots_moved_by_mv_above_them_are_reported_where_they_are_now() {
    let d = root_dir!("mvroots");
    let o = &d.outside;
    let trees: Vec<PathBuf> = (0..9)
        .map(|i| {
            let p = d.o(&format!("g/p/t{i}"));
            std::fs::create_dir_all(&p).unwrap();
            chown(&p, OWNER, OWNER);
            p
        })
        .collect();
    let owner = OWNER.to_string();
    let mut args = vec!["--owner", &owner];
    args.extend(trees.iter().map(|p| s(p)));
    let mut a = Agent::watch(&args);
    std::thread::sleep(std::time::Duration::from_millis(300));
    tool(o, &["mv", "g", "g2"]);
    let (first, last) = (d.o("g2/p/t0"), d.o("g2/p/t8"));
    tool(&last, &["touch", "after"]);
    tool(o, &["mkdir", "g2/p/t0/d"]);
    let evs = a.finish(&first);
    assert_events(
        &evs,
        &[
            by("touch", "create", last.join("after"))
                .mode(0o644)
                .tree(&last),
            by("mkdir", "mkdir", first.join("d")).mode(0o755),
        ],
        &first,
    );
}

/// The core dump tests set core_pattern, a setting of the whole machine: one at a time.
pub(super) static CORE_DUMPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A kernel setting (a /proc/sys file) changed for a test and put back when it ends.
pub(super) struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    pub(super) fn set(path: &'static str, value: &str) -> Sysctl {
        let old = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        std::fs::write(path, value).unwrap_or_else(|e| panic!("{path} = {value}: {e}"));
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, self.old.trim_end_matches('\n'));
    }
}

/// `sh` in `cwd` as `uid` (root when None) that allows core dumps and kills itself with
/// SIGSEGV: the kernel writes its core into `cwd` (core_pattern a plain name). Returns its pid.
fn dump_core(uid: Option<u32>, cwd: &Path) -> i32 {
    let script = "ulimit -c unlimited && kill -SEGV $$";
    let mut child = command_as(uid, "sh")
        .args(["-c", script])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("sh in {}: {e}", cwd.display()));
    let pid = child.id() as i32;
    let st = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        (st.signal(), st.core_dumped()),
        (Some(libc::SIGSEGV), true),
        "sh in {} as {uid:?} did not dump core: {st}",
        cwd.display()
    );
    pid
}

/// A process that crashes in a tree leaves its core there, made by the kernel for it outside
/// any syscall (core_pattern a file name, not a `|` helper): root's dump is a create by the
/// crashing process (its pid, comm and identity), and a second dump over the first unlinks
/// it, then creates the new one, as the kernel does. Not reported: root's dump outside the
/// tree, the owner's in it (over root's). The tracepoint backend sees dumps where the kernel
/// has the ctime tracepoints (6.13+), and none before.
#[test]
fn a_core_dump_into_a_tree_is_a_create_by_the_crashing_process() {
    let d = root_dir!("coredump");
    let (t, o) = (&d.tree, &d.outside);
    let _one = CORE_DUMPS.lock().unwrap_or_else(|e| e.into_inner());
    let _pattern = Sysctl::set("/proc/sys/kernel/core_pattern", "ow-core");
    let _uses_pid = Sysctl::set("/proc/sys/kernel/core_uses_pid", "0");
    let mut agent = Agent::watch_tree(t, &[]);
    let first = dump_core(None, t);
    let second = dump_core(None, t);
    dump_core(None, o);
    // (over root's: the owner's unlink and create, neither reported)
    dump_core(Some(OWNER), t);
    let evs = agent.finish(t);
    let core = d.t("ow-core");
    let want = if kernel_decides_string_paths() {
        vec![
            by("sh", "create", &core).mode(0o600).pid(first),
            by("sh", "unlink", &core).pid(second),
            by("sh", "create", &core).mode(0o600).pid(second),
        ]
    } else {
        // README "Backends": the tracepoint backend sees a dump through the ctime tracepoints
        eprintln!("NOT REPORTED core dumps: the tracepoint backend on a kernel before 6.13");
        Vec::new()
    };
    assert_events(&evs, &want, t);
}
