//! Python's own routes to the kernel, as a service's deploy script or an admin's one-liner
//! takes them: x86_64's older syscalls where glibc's tools use the `*at` ones (`rename`,
//! `mkdir`, `chmod`, `lchown`, `truncate`, `setxattr`, `rmdir`), `dir_fd` ones where they use
//! a path (`mkdirat`, `symlinkat`, `linkat`, `fchownat`, `mknodat`, `renameat`, `unlinkat`),
//! tempfile's save-by-rename, shutil's copy2 (its utime is no op of ours), move, copytree and
//! fd-based rmtree, and an unnamed O_TMPFILE file (no event), the tree named relative to
//! another working directory. Debian's /usr/bin/python3, as root, in a tree the shared agent
//! watches; `make test-deps` installs it. Not in the arm64 guests' userland
//! (vm/arm64-root.sh): arm64 has only the `*at` syscalls, which the other tests make there.

use super::tools::{by, tool_as, Sysctl, CORE_DUMPS};
use super::*;

const PYTHON: &str = "/usr/bin/python3";

/// Whether Debian's python3 is here: in CI it must be (`make test-deps` installs it);
/// elsewhere `test` says it checks nothing without it.
fn have_python(test: &str) -> bool {
    if Path::new(PYTHON).exists() {
        return true;
    }
    assert!(
        !common::in_ci(),
        "{PYTHON} is missing: make test-deps installs it"
    );
    eprintln!("NOT CHECKED {test}: no {PYTHON}");
    false
}

/// Root's script: argv[1] the tree, argv[2] the directory beside it. Where its tempfile's
/// random name went is written to `outside/tmpname` (root's write outside the tree: no event).
const ROUTES: &str = r#"
import os, pathlib, shutil, sys, tempfile
tree, outside = sys.argv[1], sys.argv[2]
os.chdir(tree)
fd, tmp = tempfile.mkstemp(dir=".", prefix=".conf.", suffix=".tmp")
os.write(fd, b"new\n")
os.fchmod(fd, 0o644)
os.close(fd)
os.replace(tmp, "conf")
with open(os.path.join(outside, "tmpname"), "w") as f:
    f.write(os.path.basename(tmp))
os.chdir(outside)
t = os.path.relpath(tree)
pathlib.Path(f"{t}/p.txt").write_text("x")
shutil.copy2("src", f"{t}/c2")
dfd = os.open(t, os.O_RDONLY | os.O_DIRECTORY)
os.mkdir("d", 0o750, dir_fd=dfd)
os.makedirs(f"{t}/d/a/b")
os.symlink("conf", "ln", dir_fd=dfd)
os.link("conf", "hl", src_dir_fd=dfd, dst_dir_fd=dfd)
os.lchown(f"{t}/ln", 4343, -1)
os.chown("hl", -1, 4343, dir_fd=dfd)
os.truncate(f"{t}/conf", 1)
os.setxattr(f"{t}/conf", "trusted.k", b"v")
os.removexattr(f"{t}/conf", "trusted.k")
with open(f"{t}/p.txt", "a") as f:
    f.write("y")
os.mkfifo("fifo", 0o600, dir_fd=dfd)
os.rename("hl", "hl2", src_dir_fd=dfd, dst_dir_fd=dfd)
shutil.move(f"{t}/d/a", f"{t}/moved")
shutil.rmtree(f"{t}/moved")
os.unlink("ln", dir_fd=dfd)
os.chmod(f"{t}/conf", 0o600)
os.close(dfd)
shutil.copytree("srcdir", f"{t}/ct")
# an unnamed file (O_TMPFILE) that is never linked: nothing in the tree changed
with tempfile.TemporaryFile(dir=t) as f:
    f.write(b"scratch")
# outside the tree: no event
os.mkdir("x")
shutil.copy2("src", "x/c")
shutil.rmtree("x")
"#;

/// The owner's own writes in its directory of the tree: no event.
const OWNERS: &str = r#"
import os, shutil, tempfile
fd, tmp = tempfile.mkstemp(dir=".")
os.write(fd, b"mine")
os.close(fd)
os.replace(tmp, "mine")
os.makedirs("k/l")
os.chmod("mine", 0o600)
shutil.rmtree("k")
"#;

#[test]
fn python_file_operations_from_other_working_directories() {
    let d = shared_dir!("python");
    let (t, o) = (&d.tree, &d.outside);
    if !have_python("python_file_operations_from_other_working_directories") {
        return;
    }
    make_file(d.o("src"), b"src");
    chmod(d.o("src"), 0o640);
    make_dir(d.o("srcdir"));
    make_file(d.o("srcdir/f"), b"f");
    chmod(d.o("srcdir/f"), 0o640);
    chmod(d.o("srcdir"), 0o750);
    make_dir(d.t("own"));
    chown(d.t("own"), OWNER, OWNER);

    let mut lease = d.lease();
    tool_as(None, o, &[PYTHON, "-c", ROUTES, s(t), s(o)]);
    tool_as(Some(OWNER), &d.t("own"), &[PYTHON, "-c", OWNERS]);
    let evs = lease.finish();

    let tmp = std::fs::read_to_string(d.o("tmpname")).expect("the script's tmpname");
    let py = |op: &str, rel: &str| by("python3", op, d.t(rel));
    let want = vec![
        py("create", &tmp).mode(0o600),
        py("chmod", &tmp).mode(0o644),
        py("rename", &tmp).new_path(d.t("conf")),
        py("create", "p.txt").mode(0o644),
        py("create", "c2").mode(0o644),
        py("chmod", "c2").mode(0o640),
        py("mkdir", "d").mode(0o750),
        py("mkdir", "d/a").mode(0o755),
        py("mkdir", "d/a/b").mode(0o755),
        py("symlink", "ln").target("conf"),
        py("link", "conf").new_path(d.t("hl")),
        py("chown", "ln").owner(Some(4343), None),
        py("chown", "hl").owner(None, Some(4343)),
        py("truncate", "conf"),
        py("setxattr", "conf").xattr("trusted.k"),
        py("removexattr", "conf").xattr("trusted.k"),
        py("write", "p.txt"),
        py("mknod", "fifo").mode(0o600),
        py("rename", "hl").new_path(d.t("hl2")),
        py("rename", "d/a").new_path(d.t("moved")),
        py("rmdir", "moved/b"),
        py("rmdir", "moved"),
        py("unlink", "ln"),
        py("chmod", "conf").mode(0o600),
        py("mkdir", "ct").mode(0o755),
        py("create", "ct/f").mode(0o644),
        py("chmod", "ct/f").mode(0o640),
        py("chmod", "ct").mode(0o750),
    ];
    d.expect(&evs, &want);
}

/// A daemon started as root drops to the service user and crashes, with fs.suid_dumpable 2
/// and an absolute core_pattern into its tree: the kernel writes the core as root (fsuid 0;
/// the process changed its ids, so its mm says SUID_DUMP_ROOT), a root-owned file in the tree
/// made by the owner's process. Reported as that create, fsuid 0, the other ids the owner's.
/// (A process of the owner's own that never was root dumps as the owner: the tools test.)
#[test]
fn a_daemon_that_dropped_to_the_owner_dumps_core_as_root() {
    let d = root_dir!("suidcore");
    let t = &d.tree;
    if !have_python("a_daemon_that_dropped_to_the_owner_dumps_core_as_root") {
        return;
    }
    let _one = CORE_DUMPS.lock().unwrap_or_else(|e| e.into_inner());
    let core = d.t("daemon.core");
    // (the kernel resolves a set-id dump's absolute path from init's root, which the kernel
    // matrix's guests keep apart from the tests' own: through the dumper's root, it is the
    // same place everywhere)
    let pattern = format!("/proc/self/root{}", s(&core));
    let _pattern = Sysctl::set("/proc/sys/kernel/core_pattern", &pattern);
    let _suid = Sysctl::set("/proc/sys/fs/suid_dumpable", "2");
    let mut agent = Agent::watch_tree(t, &[]);
    let script = format!(
        "import os, resource, signal\n\
         resource.setrlimit(resource.RLIMIT_CORE, (-1, -1))\n\
         os.setgroups([])\n\
         os.setresgid({OWNER}, {OWNER}, {OWNER})\n\
         os.setresuid({OWNER}, {OWNER}, {OWNER})\n\
         os.kill(os.getpid(), signal.SIGSEGV)\n"
    );
    let mut child = std::process::Command::new(PYTHON)
        .args(["-c", &script])
        .current_dir(t)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let st = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(st.core_dumped(), "python3 did not dump core: {st}");
    let evs = agent.finish(t);
    let want = if kernel_decides_string_paths() {
        vec![by("python3", "create", &core)
            .mode(0o600)
            .pid(pid)
            .ids(OWNER, OWNER, OWNER, OWNER)]
    } else {
        eprintln!("NOT REPORTED core dumps: the tracepoint backend on a kernel before 6.13");
        Vec::new()
    };
    assert_events(&evs, &want, t);
}
