//! Issue 15, `watch --config FILE` and `check-config`: one agent serves several trees, each
//! with its own owner, allowed users, ops, fix, ignored paths and exceptions; a bad file is
//! one `FILE:LINE:COL: what` line and exit 2; SIGHUP rereads the file, and a bad one keeps the
//! old rules. The real binary, real BPF, real writes by numeric users (host only: not in the
//! kernel matrix's list).

#[macro_use]
mod common;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::json;

/// A third user, allowed in one tree only.
const DEPLOY: u32 = 4444;

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(p)
        .map_err(|e| format!("mkdir {}: {e}", p.display()))
}

fn create(p: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(p)
        .map(drop)
        .map_err(|e| format!("create {}: {e}", p.display()))
}

/// A second tree beside the TestDir's, owned by `id`.
fn second_tree(d: &TestDir, name: &str, id: u32) -> PathBuf {
    let p = d.base.join(name);
    make_tree(&p, id);
    p
}

fn write_config(d: &TestDir, text: &str) -> PathBuf {
    let p = d.base.join("ownwatch.toml");
    // replaced whole, as an editor or a deploy tool does
    let tmp = d.base.join(".ownwatch.toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p
}

fn agent(config: &Path, extra: &[&str]) -> Agent {
    let mut v = vec!["--config", s(config)];
    v.extend_from_slice(extra);
    Agent::spawn(watch_args(&v), StdoutMode::Lines)
}

/// `argv` run by root (a real exec: its exe and comm are the program's); its pid.
fn run_prog(argv: &[&str]) -> i32 {
    let mut c = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .spawn()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let pid = c.id() as i32;
    let st = c.wait().unwrap();
    assert!(st.success(), "{argv:?}: {st}");
    pid
}

/// The event of `argv[0]` (run by root through `run_prog`) doing `op` on `path`.
fn prog_event(op: &str, path: &Path, pid: i32, exe: &str) -> Exp {
    let comm = Path::new(exe).file_name().unwrap().to_str().unwrap();
    Exp::new(op, path, 0)
        .pid(pid)
        .any_comm()
        .field("comm", json!(comm))
        .field("exe", json!(exe))
}

#[test]
fn two_trees_with_their_own_owners_in_one_agent() {
    let d = root_dir!("cfg-owners");
    let (ta, tb) = (d.tree.clone(), second_tree(&d, "b", OTHER));
    let f = write_config(
        &d,
        &format!(
            "[[tree]]\npath = \"{}\"\nowner = \"{OWNER}\"\n\n[[tree]]\npath = \"{}\"\n\
             allow = [\"{DEPLOY}\"]\n",
            ta.display(),
            tb.display()
        ),
    );
    let mut a = agent(&f, &[]);
    // each owner in its own tree: allowed; in the other: reported, with that tree
    d.act(Creds::User(OWNER, OWNER), || mkdir(&ta.join("own")));
    let owner_in_b = d.act(Creds::User(OWNER, OWNER), || mkdir(&tb.join("by_a")));
    d.act(Creds::User(OTHER, OTHER), || mkdir(&tb.join("own")));
    let other_in_a = d.act(Creds::User(OTHER, OTHER), || mkdir(&ta.join("by_b")));
    // DEPLOY is allowed in b only
    d.act(Creds::User(DEPLOY, DEPLOY), || mkdir(&tb.join("deploy")));
    let deploy_in_a = d.act(Creds::User(DEPLOY, DEPLOY), || mkdir(&ta.join("deploy")));
    // root in both
    let root = d.act(Creds::Root, || {
        mkdir(&ta.join("root"))?;
        create(&tb.join("rootf"))
    });
    let evs = a.finish(&ta);
    assert_events(
        &evs,
        &[
            owner_in_b.mkdir(tb.join("by_a"), 0o755).tree(&tb),
            other_in_a.mkdir("by_b", 0o755),
            deploy_in_a.mkdir("deploy", 0o755),
            root.mkdir("root", 0o755),
            root.create(tb.join("rootf"), 0o644).tree(&tb),
        ],
        &ta,
    );
    assert!(
        a.stderr_text().contains("watching 2 trees"),
        "{}",
        a.stderr_text()
    );
}

#[test]
fn exceptions_by_exe_and_comm() {
    let d = root_dir!("cfg-except");
    let (ta, tb) = (d.tree.clone(), second_tree(&d, "b", OWNER));
    let f = write_config(
        &d,
        &format!(
            "[[tree]]\npath = \"{}\"\n[[tree.except]]\nexe = \"/usr/bin/inst*\"\n\n\
             [[tree]]\npath = \"{}\"\n[[tree.except]]\ncomm = \"{ACTOR_COMM}\"\n",
            ta.display(),
            tb.display()
        ),
    );
    let mut a = agent(&f, &[]);
    // a: install's writes are allowed, mkdir's are not, nor the actor's
    run_prog(&["/usr/bin/install", "-d", s(&ta.join("by_install"))]);
    let mk = run_prog(&["/usr/bin/mkdir", s(&ta.join("by_mkdir"))]);
    let actor_a = d.act(Creds::Root, || mkdir(&ta.join("by_actor")));
    // b: the actor's comm is excepted, install is not
    d.act(Creds::Root, || mkdir(&tb.join("by_actor")));
    let inst = run_prog(&[
        "/usr/bin/install",
        "-d",
        "-m",
        "0700",
        s(&tb.join("by_install")),
    ]);
    let evs = a.finish(&ta);
    let mut want = vec![
        prog_event("mkdir", &ta.join("by_mkdir"), mk, "/usr/bin/mkdir"),
        actor_a.mkdir("by_actor", 0o755),
        prog_event("mkdir", &tb.join("by_install"), inst, "/usr/bin/install").tree(&tb),
    ];
    // install -d -m 0700 may chmod after its mkdir (coreutils does when the umask hid bits)
    if evs.len() == 4 {
        want.push(
            prog_event("chmod", &tb.join("by_install"), inst, "/usr/bin/install")
                .mode(0o700)
                .tree(&tb),
        );
    }
    assert_events(&evs, &want, &ta);
}

/// An exception by exe still holds for a writer whose executable was deleted or replaced
/// since it ran it (an upgrade renames a new binary over it): it is matched by the path it was
/// run from, which the event says as /proc does, "<path> (deleted)".
#[test]
fn an_exception_by_exe_holds_after_the_exe_is_deleted() {
    let d = root_dir!("cfg-except-deleted");
    let bin = d.o("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let (kept, other) = (bin.join("backup"), bin.join("other"));
    for b in [&kept, &other] {
        copy_exe("/bin/bash", b);
    }
    let f = write_config(
        &d,
        &format!(
            "[[tree]]\npath = \"{}\"\n[[tree.except]]\nexe = \"{}\"\n",
            d.tree.display(),
            kept.display()
        ),
    );
    let mut a = agent(&f, &[]);
    // (echo is bash's own: the writes are the copy's; rm's unlink lies outside the tree)
    let script = "echo x > \"$1-a\"; rm -f \"$0\"; echo x > \"$1-b\"";
    run_prog(&[s(&kept), "-c", script, s(&kept), s(&d.tree.join("backup"))]);
    let pid = run_prog(&[s(&other), "-c", script, s(&other), s(&d.tree.join("other"))]);
    let evs = a.finish(&d.tree);
    let gone = format!("{} (deleted)", other.display());
    assert_events(
        &evs,
        &[
            prog_event("create", &d.tree.join("other-a"), pid, s(&other)),
            Exp::new("create", d.tree.join("other-b"), 0)
                .pid(pid)
                .any_comm()
                .field("comm", json!("other"))
                .field("exe", json!(gone)),
        ],
        &d.tree,
    );
}

#[test]
fn ignore_globs_and_per_tree_ops() {
    let d = root_dir!("cfg-ignore");
    let (ta, tb) = (d.tree.clone(), second_tree(&d, "b", OWNER));
    let f = write_config(
        &d,
        &format!(
            "ops = \"create,mkdir,rename\"\n[[tree]]\npath = \"{}\"\nignore = [\"cache/**\", \"*.tmp\"]\n\n\
             [[tree]]\npath = \"{}\"\nops = \"create\"\n",
            ta.display(),
            tb.display()
        ),
    );
    let mut a = agent(&f, &[]);
    let root = d.act(Creds::Root, || {
        mkdir(&ta.join("cache"))?; // the directory itself is not below it: reported
        create(&ta.join("cache/x"))?;
        mkdir(&ta.join("cache/sub"))?;
        create(&ta.join("cache/sub/y"))?;
        create(&ta.join("a.tmp"))?;
        mkdir(&ta.join("d"))?;
        create(&ta.join("d/b.tmp"))?;
        create(&ta.join("d/kept"))?;
        // a rename with one end not ignored is reported
        std::fs::rename(ta.join("d/kept"), ta.join("d/kept.tmp")).map_err(|e| e.to_string())?;
        std::fs::rename(ta.join("a.tmp"), ta.join("cache/a")).map_err(|e| e.to_string())?;
        // ops of the file but not of a's list: a chmod is not hooked at all
        std::fs::set_permissions(
            ta.join("d"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|e| e.to_string())?;
        // b reports creates only
        mkdir(&tb.join("m"))?;
        create(&tb.join("f"))?;
        std::fs::rename(tb.join("f"), tb.join("g")).map_err(|e| e.to_string())
    });
    let evs = a.finish(&ta);
    assert_events(
        &evs,
        &[
            root.mkdir("cache", 0o755),
            root.mkdir("d", 0o755),
            root.create("d/kept", 0o644),
            root.rename("d/kept", "d/kept.tmp"),
            root.create(tb.join("f"), 0o644).tree(&tb),
        ],
        &ta,
    );
}

#[test]
fn fix_per_tree_and_command_line_overrides() {
    let d = root_dir!("cfg-fix");
    let (ta, tb) = (d.tree.clone(), second_tree(&d, "b", OTHER));
    let text = format!(
        "fix = true\n[[tree]]\npath = \"{}\"\n\n[[tree]]\npath = \"{}\"\nfix = false\n",
        ta.display(),
        tb.display()
    );
    let f = write_config(&d, &text);
    let mut a = agent(&f, &[]);
    let root = d.act(Creds::Root, || {
        create(&ta.join("f"))?;
        create(&tb.join("g"))
    });
    // the sentinel is given back too: a create, so that nothing is left root's
    let evs = a.finish_with(&ta, Sentinel::Create);
    assert_events(
        &evs,
        &[
            root.create("f", 0o644).fixed(),
            root.create(tb.join("g"), 0o644).tree(&tb),
        ],
        &ta,
    );
    assert_eq!(owner_of(ta.join("f")), (OWNER, OWNER));
    assert_eq!(owner_of(tb.join("g")), (0, 0));

    // --ops on the command line wins over the file in every tree; --owner too
    let mut a = agent(&f, &["--ops", "mkdir", "--owner", &OTHER.to_string()]);
    d.act(Creds::User(OTHER, OTHER), || mkdir(&ta.join("o")));
    assert_eq!(owner_of(ta.join("o")), (OTHER, OTHER));
    let owner = d.act(Creds::User(OWNER, OWNER), || {
        create(&ta.join("by_owner"))?;
        mkdir(&ta.join("by_owner_dir"))
    });
    let evs = a.finish(&ta);
    // given back to the owner --owner named
    assert_events(&evs, &[owner.mkdir("by_owner_dir", 0o755).fixed()], &ta);
    // (a uid without a passwd entry: the group stays the directory's, as with DIRs)
    assert_eq!(owner_of(ta.join("by_owner_dir")), (OTHER, OWNER));
}

#[test]
fn check_config_prints_the_effective_rules() {
    let d = root_dir!("cfg-check");
    let tb = second_tree(&d, "b", OTHER);
    let f = write_config(
        &d,
        &format!(
            "# defaults\nops = \"create,mkdir\"\n[[tree]]\npath = \"{}\"\nowner = \"{OWNER}:{OTHER}\"\n\
             allow = [\"{DEPLOY}\"]\nfix = true\nignore = [\"cache/**\", \"*.tmp\"]\n\
             [[tree.except]]\nexe = \"/usr/bin/rsync\"\n[[tree.except]]\ncomm = \"backup*\"\n\
             unit = \"backup.service\"\n\n[[tree]]\npath = \"{}/\"\nops = \"all\"\n",
            d.tree.display(),
            tb.display()
        ),
    );
    let (code, out, err) = run_once(&["check-config", s(&f)]);
    assert_eq!(code, Some(0), "stderr: {err}");
    assert_eq!(err, "");
    let want = format!(
        "tree {}\n  owner   {OWNER}:{OTHER}\n  allow   {DEPLOY}\n  ops     create,mkdir\n  fix     true\n  \
         ignore  cache/** *.tmp\n  except  exe=/usr/bin/rsync\n  except  comm=backup* unit=backup.service\n\n\
         tree {}\n  owner   {OTHER}:{OTHER}\n  allow   -\n  ops     all\n  fix     false\n  ignore  -\n  \
         except  -\n\nkernel: ops all; writes dropped there: by nobody (no user is allowed in every tree)\n",
        d.tree.display(),
        tb.display()
    );
    assert_eq!(out, want);
}

#[test]
fn bad_config_files_are_one_line_with_file_line_col() {
    let d = root_dir!("cfg-bad");
    let t = d.tree.display().to_string();
    let file_not_dir = d.base.join("plain");
    make_file(&file_not_dir, b"x");
    for (case, text, at, what) in [
        (
            "unknown key",
            format!("[[tree]]\npath = \"{t}\"\nowners = \"x\"\n"),
            "3:1",
            "unknown field `owners`",
        ),
        (
            "unknown user",
            format!("[[tree]]\npath = \"{t}\"\nallow = [\"{OWNER}\", \"no-such-owt-user\"]\n"),
            "3:18",
            "allow: unknown user \"no-such-owt-user\"",
        ),
        (
            "missing path",
            "[[tree]]\npath = \"/no/such/owt-dir\"\n".to_string(),
            "2:8",
            "/no/such/owt-dir: no such directory",
        ),
        (
            "not a directory",
            format!("[[tree]]\npath = \"{}\"\n", file_not_dir.display()),
            "2:8",
            &format!("{}: not a directory", file_not_dir.display()),
        ),
        (
            "bad glob",
            format!("[[tree]]\npath = \"{t}\"\nignore = [\"ok/**\",\n  \"[a-\"]\n"),
            "4:3",
            "ignore: bad glob \"[a-\": unclosed [ (a set needs its ])",
        ),
        (
            "bad op",
            format!("ops = \"mkdir,mkdirs\"\n[[tree]]\npath = \"{t}\"\n"),
            "1:7",
            "ops: unknown op \"mkdirs\"",
        ),
        (
            "empty exception",
            format!("[[tree]]\npath = \"{t}\"\n[[tree.except]]\n"),
            "3:1",
            "an exception needs at least one of exe, comm, unit, cgroup",
        ),
        (
            "not TOML",
            format!("[[tree]]\npath = \"{t}\"\nfix = yes\n"),
            "3:7",
            "",
        ),
    ] {
        let f = write_config(&d, &text);
        let prefix = format!("{}:{at}: {what}", f.display());
        for args in [
            vec!["check-config".to_string(), s(&f).to_string()],
            watch_args(&["--config", s(&f)]),
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out, err) = run_once(&args);
            assert_eq!(code, Some(2), "{case}: {args:?}: stderr {err:?}");
            assert!(out.is_empty(), "{case}: stdout {out:?}");
            assert!(
                err.starts_with(&prefix) && err.ends_with('\n') && err.lines().count() == 1,
                "{case}: {args:?}: stderr {err:?}, want one line starting {prefix:?}"
            );
        }
    }
    // DIRs do not go with --config; a missing file is a plain error
    let f = write_config(&d, &format!("[[tree]]\npath = \"{t}\"\n"));
    let args = watch_args(&["--config", s(&f), s(&d.tree)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run_once(&args);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let missing = d.base.join("missing.toml");
    let (code, _, err) = run_once(&["check-config", s(&missing)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!("ownwatch: {}: No such file", missing.display())),
        "{err}"
    );
}

/// Waits until the agent's stderr holds `needle` `n` times.
fn wait_stderr(a: &Agent, needle: &str, n: usize) {
    wait_until(
        &format!("{n} x {needle:?} on the agent's stderr"),
        Duration::from_millis(20),
        || a.stderr_text().matches(needle).count() >= n,
    );
}

#[test]
fn sighup_reloads_good_files_and_keeps_the_rules_on_bad_ones() {
    let d = root_dir!("cfg-hup");
    let (ta, tb) = (d.tree.clone(), second_tree(&d, "b", OTHER));
    let tc = second_tree(&d, "c", OWNER);
    let tree = |p: &Path, allow: &str| {
        format!(
            "\n[[tree]]\npath = \"{}\"\nallow = [{allow}]\n",
            p.display()
        )
    };
    let other = format!("\"{OTHER}\"");
    let mkdir_ops = "ops = \"mkdir,create\"\n";
    let f = write_config(
        &d,
        &format!("{mkdir_ops}{}{}", tree(&ta, ""), tree(&tb, "")),
    );
    let mut a = agent(&f, &[]);
    let first = d.act(Creds::User(OTHER, OTHER), || mkdir(&ta.join("x1")));

    // OTHER allowed in a as well: allowed everywhere, so the kernel drops its writes now
    write_config(
        &d,
        &format!("{mkdir_ops}{}{}", tree(&ta, &other), tree(&tb, "")),
    );
    a.signal(libc::SIGHUP);
    wait_stderr(&a, "rules reloaded (2 trees)", 1);
    d.act(Creds::User(OTHER, OTHER), || mkdir(&ta.join("x2")));

    // a bad file: one line, the old rules stay
    let bad = format!(
        "{mkdir_ops}{}{}owner = \"no-such-owt-user\"\n",
        tree(&ta, ""),
        tree(&tb, "")
    );
    write_config(&d, &bad);
    a.signal(libc::SIGHUP);
    wait_stderr(&a, "failed, keeping the old rules", 1);
    d.act(Creds::User(OTHER, OTHER), || mkdir(&ta.join("x3")));

    // ops the kernel has not hooked since start: refused, said why
    write_config(
        &d,
        &format!("ops = \"all\"\n{}{}", tree(&ta, ""), tree(&tb, "")),
    );
    a.signal(libc::SIGHUP);
    wait_stderr(&a, "failed, keeping the old rules", 2);
    d.act(Creds::User(OTHER, OTHER), || mkdir(&ta.join("x4")));

    // a third tree: added, with its own owner
    let abc = format!(
        "{mkdir_ops}{}{}{}",
        tree(&ta, ""),
        tree(&tb, ""),
        tree(&tc, "")
    );
    write_config(&d, &abc);
    a.signal(libc::SIGHUP);
    wait_stderr(&a, "rules reloaded (3 trees)", 1);
    let x5 = d.act(Creds::User(OTHER, OTHER), || {
        mkdir(&ta.join("x5"))?;
        mkdir(&tc.join("by_other"))
    });
    d.act(Creds::User(OWNER, OWNER), || mkdir(&tc.join("by_owner")));

    // b removed: nothing reported there any more
    write_config(
        &d,
        &format!("{mkdir_ops}{}{}", tree(&ta, ""), tree(&tc, "")),
    );
    a.signal(libc::SIGHUP);
    wait_stderr(&a, "rules reloaded (2 trees)", 2);
    let root = d.act(Creds::Root, || {
        mkdir(&tb.join("after_removal"))?;
        create(&tc.join("f"))
    });
    let evs = a.finish(&ta);
    assert_events(
        &evs,
        &[
            first.mkdir("x1", 0o755),
            x5.mkdir("x5", 0o755),
            x5.mkdir(tc.join("by_other"), 0o755).tree(&tc),
            root.create(tc.join("f"), 0o644).tree(&tc),
        ],
        &ta,
    );
    let err = a.stderr_text();
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("keeping the old rules"))
        .collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with(&format!(
            "ownwatch: reloading {} failed, keeping the old rules: {}:10:9: owner: unknown user",
            f.display(),
            f.display()
        )),
        "{err}"
    );
    assert!(
        lines[1].ends_with(
            "ops mknod,symlink,link,rename,unlink,rmdir,chmod,chown,truncate,\
             setxattr,removexattr,write are not hooked since start: restart ownwatch for them"
        ),
        "{err}"
    );
}

#[test]
fn exceptions_by_unit_and_cgroup() {
    let d = root_dir!("cfg-unit");
    let (ta, tb) = (d.tree.clone(), second_tree(&d, "b", OWNER));
    let unit = format!("owt-backup-{}-{}.service", std::process::id(), next_id());
    let cg = Cgroup(cgroup2_root().join(&unit));
    std::fs::create_dir(&cg.0).expect("create a cgroup");
    let f = write_config(
        &d,
        &format!(
            "[[tree]]\npath = \"{}\"\n[[tree.except]]\nunit = \"owt-backup-*.service\"\n\n\
             [[tree]]\npath = \"{}\"\n[[tree.except]]\ncgroup = \"/{unit}\"\ncomm = \"nomatch\"\n",
            ta.display(),
            tb.display()
        ),
    );
    let mut a = agent(&f, &[]);
    let join =
        || std::fs::write(cg.0.join("cgroup.procs"), "0").map_err(|e| format!("join cgroup: {e}"));
    // in the unit: excepted in a; in b only with a comm it does not have
    let in_unit = d.act(Creds::Root, || {
        join()?;
        mkdir(&ta.join("by_unit"))?;
        mkdir(&tb.join("by_unit"))
    });
    // outside it: reported in both
    let outside = d.act(Creds::Root, || {
        mkdir(&ta.join("outside"))?;
        mkdir(&tb.join("outside"))
    });
    let evs = a.finish(&ta);
    assert_events(
        &evs,
        &[
            in_unit
                .mkdir(tb.join("by_unit"), 0o755)
                .tree(&tb)
                .field("cgroup", json!(format!("/{unit}"))),
            outside.mkdir("outside", 0o755),
            outside.mkdir(tb.join("outside"), 0o755).tree(&tb),
        ],
        &ta,
    );
}
