//! `watch --fix` (issue 10): never past a mount point (bind mounts of the same filesystem
//! included), no setuid/setgid bit left on what it gives back, every op that leaves a wrongly
//! owned object in the tree fixed, and nested trees given to the innermost tree's owner.
//! Exact events, then lstat of what must (and must not) have changed. Root only; in CI
//! (CI=true) these never skip.

#[macro_use]
mod common;

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn ids(p: &Path) -> (u32, u32) {
    owner_of(p)
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn io<T>(what: &str, r: std::io::Result<T>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| format!("{what}: {e}"))
}

/// As root, in the test process: run `cmd args`, require exit 0.
fn root_cmd(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(st.success(), "{cmd} {args:?}: {st}");
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

/// Unmounts (MNT_DETACH) whatever is mounted on these paths when dropped, also after a
/// failed assertion: for mounts that move with a rename, which `TestDir` cannot know.
struct Unmount(Vec<PathBuf>);

impl Drop for Unmount {
    fn drop(&mut self) {
        for p in &self.0 {
            let c = cp(p);
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

const BEYOND_MOUNT: &str =
    "on another mount than the tree (a mount point or below one): not changed";

/// Bind mounts of the same filesystem (same st_dev) into the tree: a directory and a single
/// file from outside, and a moved-in directory holding one. Root writes through them; --fix
/// reports each as not fixed and nothing outside changes owner.
#[test]
fn fix_never_crosses_a_bind_mount() {
    needs_root!();
    let d = TestDir::new("fixbind");
    let bindsrc = d.o("bindsrc");
    make_dir(&bindsrc);
    make_file(bindsrc.join("secret"), b"s");
    chmod(bindsrc.join("secret"), 0o600);
    make_dir(bindsrc.join("sub"));
    let single = d.o("single");
    make_file(&single, b"x");
    let bundle = d.o("bundle");
    make_dir(&bundle);
    make_file(bundle.join("file"), b"f");
    make_dir(bundle.join("mnt"));
    make_dir(d.t("bm"));
    chown(d.t("bm"), OWNER, OWNER);
    make_file(d.t("bmf"), b"");
    chown(d.t("bmf"), OWNER, OWNER);
    d.bind_mount(&bindsrc, &d.t("bm"));
    d.bind_mount(&single, &d.t("bmf"));
    // This one moves into the tree with `bundle`.
    let _moved = Unmount(vec![d.t("bundle/mnt"), bundle.join("mnt")]);
    let c = (cp(&bindsrc), cp(bundle.join("mnt")));
    let r = unsafe {
        libc::mount(
            c.0.as_ptr(),
            c.1.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "bind mount: {}", std::io::Error::last_os_error());
    // Same filesystem: st_dev cannot tell these mounts from the tree.
    let dev = std::fs::metadata(&d.tree).unwrap().dev();
    assert_eq!(std::fs::metadata(d.t("bm")).unwrap().dev(), dev);
    assert_eq!(std::fs::metadata(d.t("bmf")).unwrap().dev(), dev);

    let mut a = Agent::watch_tree(&d.tree, &["--fix"]);
    let pid = run_as(Creds::Root, || {
        io("rename", std::fs::rename(&bundle, d.t("bundle")))?;
        io("create", std::fs::write(d.t("bm/newfile"), b"n"))?;
        io(
            "chown",
            std::os::unix::fs::lchown(d.t("bmf"), Some(0), Some(0)),
        )
    });
    let evs = a.finish(&d.tree);
    let failed = |e: &str| {
        vec![
            ("fixed", Value::Bool(false)),
            ("fix_error", Value::from(e.to_string())),
        ]
    };
    let with = |mut x: Exp, f: Vec<(&str, Value)>| {
        for (k, v) in f {
            x = x.field(k, v);
        }
        x
    };
    assert_events(
        &evs,
        &[
            with(
                Exp::new("rename", &bundle, 0)
                    .new_path(d.t("bundle"))
                    .pid(pid),
                failed("mnt: mount point: another mount, not changed or entered"),
            ),
            with(
                Exp::new("create", d.t("bm/newfile"), 0).pid(pid),
                failed(
                    "path component \"bm\" is a mount point: nothing on another mount is changed",
                ),
            ),
            with(
                Exp::new("chown", d.t("bmf"), 0)
                    .owner(Some(0), Some(0))
                    .pid(pid),
                failed(BEYOND_MOUNT),
            ),
        ],
        &d.tree,
    );
    // What was moved in is the tree's; what the mounts show is not, and keeps its owner.
    for p in ["bundle", "bundle/file"] {
        assert_eq!(ids(&d.t(p)), (OWNER, OWNER), "{p}");
    }
    for p in [
        bindsrc.clone(),
        bindsrc.join("secret"),
        bindsrc.join("sub"),
        bindsrc.join("newfile"),
        single.clone(),
    ] {
        assert_eq!(ids(&p), (0, 0), "{}", p.display());
    }
}

/// `install -m 4755`, `chmod u+s`, `chmod g+s` by root: what --fix gives back has no set-id
/// bit left, and the event that dropped it says so; a directory keeps its setgid bit.
#[test]
fn fix_drops_setid_bits_root_leaves() {
    needs_root!();
    let d = TestDir::new("fixsetid");
    for f in ["u", "g"] {
        make_file(d.t(f), b"#!/bin/sh\n");
        chown(d.t(f), OWNER, OWNER);
        chmod(d.t(f), 0o755);
    }
    make_dir(d.t("dir"));
    chown(d.t("dir"), OWNER, OWNER);
    chmod(d.t("dir"), 0o755);
    let mut a = Agent::watch_tree(&d.tree, &["--fix"]);
    let x = d.t("x");
    root_cmd("install", &["-m", "4755", "/bin/true", s(&x)]);
    root_cmd("chmod", &["u+s", s(&d.t("u"))]);
    root_cmd("chmod", &["g+s", s(&d.t("g"))]);
    root_cmd("chmod", &["g+s", s(&d.t("dir"))]);
    let evs = a.finish(&d.tree);

    // install: creates x, maybe sets its ACL (coreutils copy_acl), then chmods it 4755. Who
    // drops the bit depends on timing: the create's fix when it comes after the chmod (the
    // chown clears it), else the chmod's. Exactly one of them says so.
    let on_x: Vec<&Value> = evs.iter().filter(|e| e["path"] == s(&x)).collect();
    let ops: Vec<&str> = on_x.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert!(
        ops.first() == Some(&"create")
            && ops.last() == Some(&"chmod")
            && ops[1..ops.len() - 1]
                .iter()
                .all(|o| *o == "setxattr" || *o == "removexattr"),
        "install's events: {ops:?}"
    );
    for e in &on_x {
        assert_eq!(e["fixed"], true, "{e}");
        assert!(e.get("fix_error").is_none(), "{e}");
        assert_eq!(e["comm"], "install", "{e}");
    }
    assert_eq!(on_x.last().unwrap()["mode"], "4755");
    let cleared = on_x
        .iter()
        .filter(|e| e.get("setid_cleared") == Some(&Value::Bool(true)))
        .count();
    assert_eq!(cleared, 1, "exactly one event on x drops the bit: {on_x:?}");

    // The chmods of existing files and the directory: exact.
    let rest: Vec<Value> = evs.iter().filter(|e| e["path"] != s(&x)).cloned().collect();
    assert_events(
        &rest,
        &[
            Exp::new("chmod", d.t("u"), 0)
                .mode(0o4755)
                .any_comm()
                .field("fixed", Value::Bool(true))
                .field("setid_cleared", Value::Bool(true)),
            Exp::new("chmod", d.t("g"), 0)
                .mode(0o2755)
                .any_comm()
                .field("fixed", Value::Bool(true))
                .field("setid_cleared", Value::Bool(true)),
            Exp::new("chmod", d.t("dir"), 0)
                .mode(0o2755)
                .any_comm()
                .field("fixed", Value::Bool(true)),
        ],
        &d.tree,
    );
    assert!(rest[2].get("setid_cleared").is_none(), "{}", rest[2]);
    for (p, m) in [("x", 0o755), ("u", 0o755), ("g", 0o755), ("dir", 0o2755)] {
        assert_eq!((ids(&d.t(p)), mode(&d.t(p))), ((OWNER, OWNER), m), "{p}");
    }
}

/// Writes, truncates and xattr changes by root on objects that are wrongly owned (there before
/// the agent started) give them back too; the same ops on the owner's objects leave them as
/// they are and say `"fixed":true`. A move out of the tree and an unlink leave nothing in it
/// to give back: no `fixed`, and the moved object is not touched.
#[test]
fn fix_gives_back_what_root_writes_truncates_or_sets_xattrs_on() {
    needs_root!();
    let d = TestDir::new("fixwrite");
    for f in ["w", "t", "x", "mine", "out", "gone"] {
        make_file(d.t(f), b"data");
        chmod(d.t(f), 0o644);
    }
    chown(d.t("mine"), OWNER, OWNER);
    // A root-owned setgid file without group execute: the kernel keeps that bit on a chown.
    chmod(d.t("x"), 0o2644);
    let mut a = Agent::watch_tree(&d.tree, &["--fix"]);
    let pid = run_as(Creds::Root, || {
        io(
            "write",
            std::fs::OpenOptions::new().write(true).open(d.t("w")),
        )?;
        io(
            "truncate",
            std::fs::OpenOptions::new()
                .write(true)
                .open(d.t("t"))
                .and_then(|f| f.set_len(1)),
        )?;
        let (p, n, v) = (cp(d.t("x")), CString::new("user.k").unwrap(), b"v");
        let r = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), 1, 0) };
        if r != 0 {
            return Err(format!("setxattr: {}", std::io::Error::last_os_error()));
        }
        io(
            "write mine",
            std::fs::OpenOptions::new().write(true).open(d.t("mine")),
        )?;
        // Nothing is left in the tree to give back after these.
        io("rename out", std::fs::rename(d.t("out"), d.o("out")))?;
        io("unlink", std::fs::remove_file(d.t("gone")))
    });
    let evs = a.finish(&d.tree);
    let fixed = || Value::Bool(true);
    assert_events(
        &evs,
        &[
            Exp::new("write", d.t("w"), 0)
                .pid(pid)
                .field("fixed", fixed()),
            Exp::new("write", d.t("t"), 0)
                .pid(pid)
                .field("fixed", fixed()),
            Exp::new("truncate", d.t("t"), 0)
                .pid(pid)
                .field("fixed", fixed()),
            Exp::new("setxattr", d.t("x"), 0)
                .xattr("user.k")
                .pid(pid)
                .field("fixed", fixed())
                .field("setid_cleared", Value::Bool(true)),
            Exp::new("write", d.t("mine"), 0)
                .pid(pid)
                .field("fixed", fixed()),
            Exp::new("rename", d.t("out"), 0)
                .new_path(d.o("out"))
                .pid(pid),
            Exp::new("unlink", d.t("gone"), 0).pid(pid),
        ],
        &d.tree,
    );
    for f in ["w", "t", "x", "mine"] {
        assert_eq!(ids(&d.t(f)), (OWNER, OWNER), "{f}");
    }
    assert_eq!(ids(&d.o("out")), (0, 0));
    assert_eq!(mode(&d.t("x")), 0o644);
    assert!(evs[4].get("setid_cleared").is_none());
    for e in &evs[5..] {
        assert!(
            e.get("fixed").is_none() && e.get("fix_error").is_none(),
            "{e}"
        );
    }
}

/// `watch --fix OUTER OUTER/inner` with different owners: what lands in the inner tree goes
/// to the inner owner, also a directory moved in with everything in it; the outer tree's
/// objects to the outer owner.
#[test]
fn fix_in_nested_trees_follows_the_innermost_owner() {
    needs_root!();
    let d = TestDir::new("fixnested");
    let inner = d.t("inner");
    make_dir(&inner);
    chown(&inner, OTHER, OTHER);
    chmod(&inner, 0o777);
    let bundle = d.o("bundle");
    make_dir(&bundle);
    make_file(bundle.join("file"), b"f");
    let mut a = Agent::watch(&["--fix", s(&d.tree), s(&inner)]);
    let pid = run_as(Creds::Root, || {
        io("create outer", std::fs::write(d.t("a"), b"a"))?;
        io("create inner", std::fs::write(inner.join("b"), b"b"))?;
        io("mkdir inner", std::fs::create_dir(inner.join("sub")))?;
        io("rename in", std::fs::rename(&bundle, inner.join("bundle")))
    });
    let evs = a.finish(&d.tree);
    let fixed = || Value::Bool(true);
    assert_events(
        &evs,
        &[
            Exp::new("create", d.t("a"), 0)
                .pid(pid)
                .field("fixed", fixed()),
            Exp::new("create", inner.join("b"), 0)
                .pid(pid)
                .tree(&inner)
                .field("fixed", fixed()),
            Exp::new("mkdir", inner.join("sub"), 0)
                .pid(pid)
                .tree(&inner)
                .field("fixed", fixed()),
            Exp::new("rename", &bundle, 0)
                .new_path(inner.join("bundle"))
                .pid(pid)
                .tree(&inner)
                .field("fixed", fixed()),
        ],
        &d.tree,
    );
    assert_eq!(ids(&d.t("a")), (OWNER, OWNER));
    for p in ["b", "sub", "bundle", "bundle/file"] {
        assert_eq!(ids(&inner.join(p)), (OTHER, OTHER), "inner/{p}");
    }
    assert_eq!(ids(&inner), (OTHER, OTHER));
    let _ = std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o755));
}
