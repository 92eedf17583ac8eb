//! Path forms: relative to the cwd or a dirfd, `..`, symlinked parents, /proc/self magic
//! links, bind mounts (on the host and in a private mount namespace), another mount namespace,
//! a chroot, a watched root given in other forms or renamed; every event carries the canonical
//! path as it was when the op ran.

use std::path::{Path, PathBuf};

use super::*;

/// DIR given relative to the agent's cwd, with a trailing slash, and through a symlink:
/// `tree` is still the root's canonical absolute path.
#[test]
fn dir_argument_forms_give_the_canonical_tree() {
    needs_root!();
    let d1 = TestDir::new("dirarg-rel");
    let d2 = TestDir::new("dirarg-link");
    let link = d2.base.join("link-to-tree");
    std::os::unix::fs::symlink(&d2.tree, &link).unwrap();
    let mut a = Agent::spawn_in(
        watch_args(&["./tree/", s(&link)]),
        StdoutMode::Lines,
        Some(&d1.base),
    );
    let root = d1.act(Creds::Root, || {
        mkdir(&d1.t("x"), 0o755)?;
        mkdir(&d2.t("y"), 0o755)
    });
    let y = root.mkdir(d2.t("y"), 0o755).tree(&d2.tree);
    a.expect_in(&d1.tree, Sentinel::Mkdir, &[root.mkdir("x", 0o755), y]);
}

#[test]
fn path_forms() {
    let d = ruled_dir!("paths", "");
    let t = &d.tree;
    make_dir(d.t("sub"));
    make_file(d.t("sub/file_u"), b"");
    make_file(d.t("sub/ren_a"), b"");
    let outlink = d.base.join("outlink");
    std::os::unix::fs::symlink(t, &outlink).unwrap();
    std::os::unix::fs::symlink("sub", d.t("sublink")).unwrap();
    // the writer's fd table is gone when user space resolves without the kernel's view
    let proc_fd = string_paths_promised("path_forms: /proc/self/fd/N/name");
    let (evs, by) = d.root_run(&[], || {
        mkdir(&d.t("abs"), 0o755)?;
        chdir(t)?;
        sc!(nr::SYS_mkdir, cs("rel"), 0o755)?;
        chdir(&d.t("sub"))?;
        sc!(nr::SYS_mkdir, cs("../dotdot"), 0o755)?;
        sc!(nr::SYS_mkdir, cp(d.t("sub/../dotdot_abs")), 0o755)?;
        chdir(&d.outside)?;
        sc!(nr::SYS_mkdir, cs("../tree/from_outside_cwd"), 0o755)?;
        let dfd = dirfd(&d.t("sub"))?;
        sc!(libc::SYS_mkdirat, dfd, cs("dirfd"), 0o755)?;
        let pfd = sc!(
            nr::SYS_open,
            cp(d.t("sub")),
            libc::O_PATH | libc::O_DIRECTORY
        )?;
        sc!(libc::SYS_mkdirat, pfd, cs("opath"), 0o755)?;
        close(pfd);
        let bfd = dirfd(&d.base)?;
        sc!(libc::SYS_mkdirat, bfd, cs("tree/via_base_fd"), 0o755)?;
        close(bfd);
        mkdir(&outlink.join("via_outlink"), 0o755)?;
        mkdir(&d.t("sublink/via_sublink"), 0o755)?;
        chdir(&outlink)?;
        sc!(nr::SYS_mkdir, cs("cwd_via_link"), 0o755)?;
        chdir(t)?;
        sc!(nr::SYS_mkdir, cs("/proc/self/cwd/proc_cwd"), 0o755)?;
        sc!(
            nr::SYS_mkdir,
            cs(format!("/proc/self/root{}/proc_root", t.display())),
            0o755
        )?;
        if proc_fd {
            sc!(
                nr::SYS_mkdir,
                cs(format!("/proc/self/fd/{dfd}/proc_fd")),
                0o755
            )?;
        }
        sc!(
            nr::SYS_mkdir,
            cs(format!("{}//./slashes/", t.display())),
            0o755
        )?;
        openat_close(
            dfd,
            cs("../dotdot_file"),
            libc::O_CREAT | libc::O_WRONLY,
            0o644,
        )?;
        sc!(nr::SYS_unlink, cp(outlink.join("sub/file_u")))?;
        sc!(
            nr::SYS_rename,
            cp(outlink.join("sub/ren_a")),
            cp(d.t("sublink/ren_b"))
        )?;
        close(dfd);
        Ok(())
    });
    let m = |rel: &str| by.op("mkdir", rel).mode(0o755);
    let mut want = vec![
        m("abs"),
        m("rel"),
        m("dotdot"),
        m("dotdot_abs"),
        m("from_outside_cwd"),
        m("sub/dirfd"),
        m("sub/opath"),
        m("via_base_fd"),
        m("via_outlink"),
        m("sub/via_sublink"),
        m("cwd_via_link"),
        m("proc_cwd"),
        m("proc_root"),
        m("sub/proc_fd"),
        m("slashes"),
        by.create("dotdot_file", 0o644),
        by.op("unlink", "sub/file_u"),
        by.rename("sub/ren_a", "sub/ren_b"),
    ];
    if !proc_fd {
        want.retain(|w| !w.path.ends_with(b"/proc_fd"));
    }
    d.expect(&evs, &want);
}

/// Paths are what they were when the operation ran, even when a directory or symlink on
/// the way is renamed, replaced or removed right after (before the agent gets to the event).
#[test]
fn paths_are_as_at_the_time_of_the_operation() {
    needs_root!();
    if !string_paths_promised("paths_are_as_at_the_time_of_the_operation: names re-pointed, removed or moved right after the op") {
        return;
    }
    let d = TestDir::shared("racepath");
    let t = &d.tree;
    for dd in ["sub", "mv", "gone", "own"] {
        make_dir(d.t(dd));
    }
    chown(d.t("own"), OWNER, OWNER);
    let outlink = d.base.join("outlink");
    std::os::unix::fs::symlink(t, &outlink).unwrap();
    std::os::unix::fs::symlink("sub", d.t("sublink")).unwrap();
    let mut a = d.lease();
    let by = d.act(Creds::Root, || {
        // A symlinked parent outside the tree, re-pointed elsewhere right after.
        mkdir(&outlink.join("via_outlink"), 0o755)?;
        sc!(nr::SYS_unlink, cp(&outlink))?;
        sc!(nr::SYS_symlink, cp(&d.outside), cp(&outlink))?;
        // A symlinked parent inside the tree, removed right after.
        mkdir(&d.t("sublink/via_sublink"), 0o755)?;
        sc!(nr::SYS_unlink, cp(d.t("sublink")))?;
        // The parent moved out of the tree right after.
        mkdir(&d.t("mv/in_mv"), 0o755)?;
        sc!(nr::SYS_rename, cp(d.t("mv")), cp(d.o("mv")))?;
        // The parent removed right after.
        create(&d.t("gone/f"), 0o644)?;
        sc!(nr::SYS_unlink, cp(d.t("gone/f")))?;
        sc!(nr::SYS_rmdir, cp(d.t("gone")))?;
        // A new directory renamed right after something was made in it.
        mkdir(&d.t("a"), 0o755)?;
        mkdir(&d.t("a/b"), 0o755)?;
        sc!(nr::SYS_rename, cp(d.t("a")), cp(d.t("a2")))?;
        Ok(())
    });
    // The owner renames its directory right after root wrote in it (silent itself).
    let late = d.act(Creds::Root, || mkdir(&d.t("own/by_root"), 0o755));
    d.act(Creds::User(OWNER, OWNER), || {
        sc!(nr::SYS_rename, cp(d.t("own")), cp(d.t("own2")))?;
        Ok(())
    });
    let m = |rel: &str| by.mkdir(rel, 0o755);
    a.expect(&[
        m("via_outlink"),
        m("sub/via_sublink"),
        by.op("unlink", "sublink"),
        m("mv/in_mv"),
        by.op("rename", "mv").new_path(d.o("mv")),
        by.create("gone/f", 0o644),
        by.op("unlink", "gone/f"),
        by.op("rmdir", "gone"),
        m("a"),
        m("a/b"),
        by.rename("a", "a2"),
        late.mkdir("own/by_root", 0o755),
    ]);
}

/// `sub` in the tree, and two empty directories beside it to mount the tree and `sub` on.
fn bind_points(d: &TestDir, tree_on: &str, sub_on: &str) -> (PathBuf, PathBuf) {
    make_dir(d.t("sub"));
    let (a, b) = (d.base.join(tree_on), d.base.join(sub_on));
    make_dir(&a);
    make_dir(&b);
    (a, b)
}

#[test]
fn path_through_bind_mount_on_host() {
    let d = root_dir!("hostbind");
    let t = &d.tree;
    let (bind, bind_sub) = bind_points(&d, "bind", "bind_sub");
    d.bind_mount(t, &bind);
    d.bind_mount(&d.t("sub"), &bind_sub);
    // (the point of a mount into the tree made later: set-up, before the agent)
    make_dir(d.t("late_in"));
    make_dir(d.o("late_src"));
    let mut a = Agent::watch_tree(t, &[]);
    // Two more, made while the agent runs: the tree mounted elsewhere, and an outside
    // directory mounted into the tree (its files are on the same superblock as their
    // outside path, which a mount table read before this mount would give).
    let late = d.base.join("late_bind");
    make_dir(&late);
    d.bind_mount(t, &late);
    d.bind_mount(&d.o("late_src"), &d.t("late_in"));
    let pid = run_as(Creds::Root, || {
        mkdir(&bind.join("hb"), 0o755)?;
        create(&bind.join("hbf"), 0o644)?;
        sc!(nr::SYS_rename, cp(bind.join("hbf")), cp(bind.join("hbg")))?;
        mkdir(&bind_sub.join("in_sub"), 0o755)?;
        mkdir(&late.join("via_late_bind"), 0o755)?;
        mkdir(&d.t("via_tree_path"), 0o755)?;
        // ops by path string right after that mount: on the tracepoint backend their changed
        // dentries lie on a superblock the agent's last look at the mounts had no mount of
        // inside the tree (bpf/lib/maps.h, mount calls), and the agent must read the mounts
        // again to place them (first, before an op whose walk crosses that mount)
        mkdir(&d.t("late_in/dd"), 0o755)?;
        create(&d.t("late_in/f"), 0o644)?;
        sc!(nr::SYS_chmod, cp(d.t("late_in/f")), 0o600)?;
        // the VFS backends' xattr hooks get no mount: their walk stays in that superblock
        let v = b"v";
        sc!(
            libc::SYS_setxattr,
            cp(d.t("late_in/f")),
            cs("user.k"),
            v.as_ptr(),
            v.len(),
            0
        )?;
        Ok(())
    });
    a.expect(&[
        Exp::new("mkdir", d.t("hb"), 0).pid(pid).mode(0o755),
        Exp::new("create", d.t("hbf"), 0).pid(pid).mode(0o644),
        Exp::new("rename", d.t("hbf"), 0)
            .pid(pid)
            .new_path(d.t("hbg")),
        Exp::new("mkdir", d.t("sub/in_sub"), 0).pid(pid).mode(0o755),
        Exp::new("mkdir", d.t("via_late_bind"), 0)
            .pid(pid)
            .mode(0o755),
        Exp::new("mkdir", d.t("via_tree_path"), 0)
            .pid(pid)
            .mode(0o755),
        Exp::new("mkdir", d.t("late_in/dd"), 0).pid(pid).mode(0o755),
        Exp::new("create", d.t("late_in/f"), 0).pid(pid).mode(0o644),
        Exp::new("chmod", d.t("late_in/f"), 0).pid(pid).mode(0o600),
        Exp::new("setxattr", d.t("late_in/f"), 0)
            .pid(pid)
            .xattr("user.k"),
    ]);
}

/// An overlay's layers in `d.base`, the tree's owner owning them: `lower` with the directory
/// `sub` and the files `files` (one byte each), `upper` empty.
fn overlay_layers(d: &TestDir, files: &[&str]) -> (PathBuf, PathBuf) {
    let (lower, upper) = (d.base.join("lower"), d.base.join("upper"));
    make_tree(&lower, OWNER);
    make_tree(&upper, OWNER);
    make_dir(lower.join("sub"));
    chown(lower.join("sub"), OWNER, OWNER);
    for f in files {
        make_file(lower.join(f), b"x");
        chown(lower.join(f), OWNER, OWNER);
    }
    (lower, upper)
}

/// A tree on overlayfs (a container's root, a live system): its ops change the layer below
/// first, on another superblock (a copy-up for a chmod of a lower file, a whiteout for its
/// unlink), and the 6.13+ ctime tracepoints see those inodes before the overlay's own. Every
/// op is reported under the overlay's path, none lost; the layers' writes outside the tree
/// are not reported.
#[test]
fn tree_on_overlayfs() {
    let d = root_dir!("overlay");
    let t = &d.tree;
    let (lower, upper) = overlay_layers(&d, &["f", "sub/g", "h"]);
    d.mount_overlay(t, &lower, &upper);
    let mut a = Agent::watch_tree(t, &[]);
    let pid = run_as(Creds::Root, || {
        sc!(nr::SYS_chmod, cp(d.t("f")), 0o600)?; // copy-up
        sc!(nr::SYS_chown, cp(d.t("sub/g")), 0, 0)?; // copy-up of sub, then g
        sc!(nr::SYS_unlink, cp(d.t("h")))?; // a whiteout
        create(&d.t("n"), 0o644)?;
        sc!(nr::SYS_chmod, cp(d.t("n")), 0o640)?; // in the upper layer already
        sc!(nr::SYS_rename, cp(d.t("n")), cp(d.t("sub/n2")))?;
        mkdir(&d.t("dd"), 0o755)?;
        sc!(nr::SYS_rmdir, cp(d.t("dd")))?;
        sc!(libc::SYS_truncate, cp(d.t("sub/g")), 0)?;
        // Renamed right after, before the agent gets to them: the kernel's walks of the
        // overlay's own dentries decide, not the strings resolved after the fact.
        mkdir(&d.t("a"), 0o755)?;
        mkdir(&d.t("a/b"), 0o755)?;
        sc!(nr::SYS_chmod, cp(d.t("a/b")), 0o700)?;
        sc!(nr::SYS_rename, cp(d.t("a")), cp(d.t("a2")))?;
        Ok(())
    });
    let e = |op: &str, rel: &str| Exp::new(op, d.t(rel), 0).pid(pid);
    a.expect(&[
        e("chmod", "f").mode(0o600),
        e("chown", "sub/g").owner(Some(0), Some(0)),
        e("unlink", "h"),
        e("create", "n").mode(0o644),
        e("chmod", "n").mode(0o640),
        e("rename", "n").new_path(d.t("sub/n2")),
        e("mkdir", "dd").mode(0o755),
        e("rmdir", "dd"),
        e("truncate", "sub/g"),
        e("mkdir", "a").mode(0o755),
        e("mkdir", "a/b").mode(0o755),
        e("chmod", "a/b").mode(0o700),
        e("rename", "a").new_path(d.t("a2")),
    ]);
}

/// overlayfs does its own ops on the upper layer inside the caller's: a chmod of a lower file
/// copies it up, and the copy-up sets trusted.overlay.* xattrs on upper inodes (the parent
/// marked "impure"), inside notify_change. With the upper layer watched too, those inner
/// xattr ops are events of that tree (the mounter's credentials: root), and on lsm, fentry and
/// kprobe an inner op's wait replaced the chmod's: the outcome of the inner setxattr was taken
/// for the chmod, which said the mode of the directory the xattr was set on. (The same, now
/// and then, with only the overlay watched: after any mount on the machine the kernel sends
/// the inner op for user space to place.) The chmod and chown come with their own outcome;
/// the inner ops with none ("ret" absent: they run inside another op), or with their own
/// where no outer op waits.
#[test]
fn overlay_ops_inside_a_watched_op_keep_its_outcome() {
    let d = root_dir!("overlay-nested");
    let t = &d.tree;
    let (lower, upper) = overlay_layers(&d, &["f", "sub/g"]);
    d.mount_overlay(t, &lower, &upper);
    let mut a = Agent::watch(&[s(t), s(&upper)]);
    let pid = run_as(Creds::Root, || {
        sc!(nr::SYS_chmod, cp(d.t("f")), 0o600)?; // copy-up
        sc!(nr::SYS_chown, cp(d.t("sub/g")), 0, 0)?; // copy-up of sub, then g
        Ok(())
    });
    // (the sentinel in the upper layer: one made in the overlay is made there too, and 5.10
    // reports that mkdir in the upper layer's tree as well)
    let evs = a.finish_all(&upper);
    let (outer, inner): (Vec<_>, Vec<_>) = evs
        .into_iter()
        .partition(|e| e["tree"].as_str() == Some(s(t)));
    let e = |op: &str, rel: &str| Exp::new(op, d.t(rel), 0).pid(pid);
    assert_events(
        &outer,
        &[
            e("chmod", "f").mode(0o600),
            e("chown", "sub/g").owner(Some(0), Some(0)),
        ],
        t,
    );
    eprintln!("inner ops in the upper layer: {}", inner.len());
    for ev in &inner {
        let path = ev["path"].as_str().unwrap_or_default();
        let xattr = ev["xattr"].as_str().unwrap_or_default();
        assert!(
            matches!(ev["op"].as_str(), Some("setxattr" | "removexattr"))
                && xattr.starts_with("trusted.overlay.")
                && ev["tree"].as_str() == Some(s(&upper))
                && path.starts_with(s(&upper))
                && ev["fsuid"] == 0
                && ev.get("ret").is_none_or(|r| *r == 0),
            "not an inner op of the copy-up (an xattr of the upper layer, \"ret\" 0 or none): {ev}"
        );
    }
}

/// In the calling (forked) process: a new mount namespace whose mounts do not propagate.
fn private_mount_ns() -> Result<(), String> {
    sc!(libc::SYS_unshare, libc::CLONE_NEWNS)?;
    let root = cs("/");
    sc!(
        libc::SYS_mount,
        std::ptr::null::<u8>(),
        root,
        std::ptr::null::<u8>(),
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null::<u8>()
    )?;
    Ok(())
}

fn bind(src: &Path, dst: &Path) -> Result<(), String> {
    sc!(
        libc::SYS_mount,
        cp(src),
        cp(dst),
        std::ptr::null::<u8>(),
        libc::MS_BIND,
        std::ptr::null::<u8>()
    )?;
    Ok(())
}

#[test]
fn path_through_bind_mount_in_private_namespace() {
    needs_root!();
    if !string_paths_promised(
        "path_through_bind_mount_in_private_namespace: a mount only another namespace had",
    ) {
        return;
    }
    let d = TestDir::ruled("nsbind", "");
    let t = &d.tree;
    let (b1, b2) = bind_points(&d, "nsbind", "nsbind_sub");
    let (evs, by) = d.root_run(&[], || {
        private_mount_ns()?;
        bind(t, &b1)?;
        bind(&d.t("sub"), &b2)?;
        mkdir(&b1.join("via_ns_bind"), 0o755)?;
        rename(&b1.join("via_ns_bind"), &b1.join("via_ns_bind2"))?;
        create(&b2.join("via_ns_bind_sub"), 0o600)?;
        Ok(())
    });
    // Nothing leaked into the host namespace.
    assert!(
        std::fs::read_dir(&b1).unwrap().next().is_none(),
        "bind mount leaked to the host"
    );
    d.expect(
        &evs,
        &[
            by.mkdir("via_ns_bind", 0o755),
            by.rename("via_ns_bind", "via_ns_bind2"),
            by.create("sub/via_ns_bind_sub", 0o600),
        ],
    );
}

#[test]
fn path_from_another_mount_namespace() {
    let d = shared_dir!("mntns");
    let (evs, by) = d.root_run(&[], || {
        private_mount_ns()?;
        // Make the namespace differ: a tmpfs over the unwatched sibling.
        sc!(
            libc::SYS_mount,
            cs("tmpfs"),
            cp(&d.outside),
            cs("tmpfs"),
            0,
            std::ptr::null::<u8>()
        )?;
        mkdir(&d.t("in_ns"), 0o755)?;
        create(&d.t("in_ns/file"), 0o644)?;
        mkdir(&d.o("on_tmpfs"), 0o755)?; // outside the tree: nothing
        Ok(())
    });
    d.expect(
        &evs,
        &[by.mkdir("in_ns", 0o755), by.create("in_ns/file", 0o644)],
    );
}

#[test]
fn path_from_inside_a_chroot() {
    let d = ruled_dir!("chroot", "");
    let (evs, by) = d.root_run(&[], || {
        sc!(libc::SYS_chroot, cp(&d.base))?;
        sc!(libc::SYS_chdir, cs("/"))?;
        sc!(nr::SYS_mkdir, cs("/tree/in_chroot"), 0o755)?;
        sc!(libc::SYS_chdir, cs("/tree"))?;
        sc!(nr::SYS_mkdir, cs("rel_in_chroot"), 0o755)?;
        sc!(nr::SYS_mkdir, cs("/../../tree/dotdot_at_root"), 0o755)?;
        sc!(
            nr::SYS_symlink,
            cs("/tree/in_chroot"),
            cs("/tree/chroot_link")
        )?;
        sc!(nr::SYS_mkdir, cs("/tree/chroot_link/through_link"), 0o755)?;
        sc!(
            nr::SYS_rename,
            cs("/tree/rel_in_chroot"),
            cs("/outside/moved_out")
        )?;
        Ok(())
    });
    let m = |rel: &str| by.op("mkdir", rel).mode(0o755);
    d.expect(
        &evs,
        &[
            m("in_chroot"),
            m("rel_in_chroot"),
            m("dotdot_at_root"),
            by.op("symlink", "chroot_link").target("/tree/in_chroot"),
            m("in_chroot/through_link"),
            by.op("rename", "rel_in_chroot").new_path(d.o("moved_out")),
        ],
    );
}

#[test]
fn renamed_watched_root_stays_watched() {
    let d = root_dir!("rootrename");
    // base/holder (owner's) / tree
    let holder = d.base.join("holder");
    make_dir(&holder);
    chown(&holder, OWNER, OWNER);
    let t0 = holder.join("tree");
    std::fs::rename(&d.tree, &t0).unwrap();
    let mut a = Agent::watch_tree(&t0, &[]);
    // The owner renames the root (allowed: silent).
    let t1 = holder.join("tree-moved");
    run_as(Creds::User(OWNER, OWNER), || {
        sc!(nr::SYS_rename, cp(&t0), cp(&t1))?;
        Ok(())
    });
    let p1 = run_as(Creds::Root, || mkdir(&t1.join("after1"), 0o755));
    // Root renames the root's parent (outside the tree: silent).
    let holder2 = d.base.join("holder2");
    let t2 = holder2.join("tree-moved");
    run_as(Creds::Root, || {
        sc!(nr::SYS_rename, cp(&holder), cp(&holder2))?;
        Ok(())
    });
    let p2 = run_as(Creds::Root, || {
        create(&t2.join("after2"), 0o644)?;
        mkdir(&t2.join("after2dir"), 0o700)
    });
    let mut evs = a.finish(&t2);
    // Made just before its tree moved: the path at the time of the op needs the kernel's view.
    let before_move = t1.join("after1");
    if !string_paths_promised("renamed_watched_root_stays_watched: an op just before the move") {
        evs.retain(|e| e["pid"].as_i64() != Some(p1 as i64));
    }
    let mut want = vec![Exp::new("mkdir", &before_move, 0)
        .pid(p1)
        .mode(0o755)
        .tree(&t1)];
    if !kernel_decides_string_paths() {
        want.clear();
    }
    assert_events(
        &evs,
        &[
            want,
            vec![
                Exp::new("create", t2.join("after2"), 0)
                    .pid(p2)
                    .mode(0o644)
                    .tree(&t2),
                Exp::new("mkdir", t2.join("after2dir"), 0)
                    .pid(p2)
                    .mode(0o700)
                    .tree(&t2),
            ],
        ]
        .concat(),
        &t2,
    );
}

/// The names above a watched root are sent once per CPU and referred to by later walks in the
/// same root while the kernel finds them unchanged (README "Backends"): every event still
/// names the root where it was when its op ran. One writer on one CPU alternates between two
/// files of one root and a file of another, their common ancestor is renamed, renamed back to
/// its old name (the same dentries and names again), and one root's parent is moved under the
/// other's; a file created and then changed through its fd (a walk kept for later records,
/// which stopped at its root) has its ancestor renamed between two of its ops. fchmod and a
/// create's fd are walked in the kernel on every backend and kernel.
#[test]
fn events_name_the_root_where_it_was_at_each_op() {
    let d = root_dir!("aboveroot");
    let h = d.base.join("h");
    make_dir(&h);
    make_dir(h.join("a"));
    make_dir(h.join("b"));
    let t1 = h.join("a/t1");
    let t2 = h.join("b/t2");
    std::fs::rename(&d.tree, &t1).unwrap();
    make_dir(&t2);
    chown(&t2, OWNER, OWNER);
    for f in [t1.join("e"), t1.join("f"), t2.join("g")] {
        make_file(&f, b"");
        chown(&f, OWNER, OWNER);
    }
    let mut a = Agent::spawn(watch_args(&[s(&t1), s(&t2)]), StdoutMode::Lines);
    let (h2, h3) = (d.base.join("h2"), d.base.join("h3"));
    let ren = |from: &Path, to: &Path| sc!(nr::SYS_rename, cp(from), cp(to)).map(|_| ());
    let pid = run_as(Creds::Root, || {
        pin_to_cpu(0)?;
        let (e, f, g) = (
            rdonly(&t1.join("e"))?,
            rdonly(&t1.join("f"))?,
            rdonly(&t2.join("g"))?,
        );
        let fchmod = |fd, mode| sc!(libc::SYS_fchmod, fd, mode).map(|_| ());
        for (fd, mode) in [(f, 0o600), (e, 0o600), (g, 0o600), (f, 0o604), (e, 0o604)] {
            fchmod(fd, mode)?;
        }
        ren(&h, &h2)?;
        fchmod(f, 0o640)?;
        fchmod(e, 0o640)?;
        ren(&h2, &h)?;
        fchmod(f, 0o660)?;
        fchmod(e, 0o660)?;
        ren(&h.join("a"), &h.join("b/a"))?;
        fchmod(f, 0o664)?;
        fchmod(e, 0o664)?;
        fchmod(g, 0o640)?;
        fchmod(e, 0o666)?;
        let n = open_fd(
            &h.join("b/a/t1/n"),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
        )?;
        fchmod(n, 0o640)?;
        ren(&h, &h3)?;
        fchmod(n, 0o644)?;
        fchmod(e, 0o644)?;
        for fd in [e, f, g, n] {
            close(fd);
        }
        Ok(())
    });
    let last = h3.join("b/a/t1");
    let evs = a.finish(&last);
    let chmod = |root: &Path, name: &str, mode: u32| {
        Exp::new("chmod", root.join(name), 0)
            .pid(pid)
            .mode(mode)
            .tree(root)
    };
    let (t1b, t1h2) = (h.join("b/a/t1"), h2.join("a/t1"));
    assert_events(
        &evs,
        &[
            chmod(&t1, "f", 0o600),
            chmod(&t1, "e", 0o600),
            chmod(&t2, "g", 0o600),
            chmod(&t1, "f", 0o604),
            chmod(&t1, "e", 0o604),
            chmod(&t1h2, "f", 0o640),
            chmod(&t1h2, "e", 0o640),
            chmod(&t1, "f", 0o660),
            chmod(&t1, "e", 0o660),
            chmod(&t1b, "f", 0o664),
            chmod(&t1b, "e", 0o664),
            chmod(&t2, "g", 0o640),
            chmod(&t1b, "e", 0o666),
            Exp::new("create", t1b.join("n"), 0)
                .pid(pid)
                .mode(0o600)
                .tree(&t1b),
            chmod(&t1b, "n", 0o640),
            chmod(&last, "n", 0o644),
            chmod(&last, "e", 0o644),
        ],
        &last,
    );
}

/// A file made next to the one made before it (tar's next file, a create in the directory
/// just made, one a level up) is named as it is named at its op, whatever happened above it in
/// between: the kernel sends the names from its directory up once and refers to them while
/// they are the same (the writer kept on one CPU, where it does that). Here a directory above
/// is renamed to a name of the same length by the writer (its own event) and, silently, by
/// the owner; a directory is made and filled; a file outside the tree comes in between.
#[test]
fn files_next_to_the_last_one_are_named_as_they_are_at_each_op() {
    needs_root!();
    let d = TestDir::shared("nextfile");
    make_dir(d.t("o"));
    chown(d.t("o"), OWNER, OWNER);
    let out = d.outside.join("nextfile-out");
    let mut a = d.lease();
    let by = d.act(Creds::Root, || {
        pin_to_cpu(0)?;
        for dir in ["o/b", "o/b/c", "o/b/c/d"] {
            mkdir(&d.t(dir), 0o755)?;
        }
        for f in ["o/b/c/d/f1", "o/b/c/d/f2", "o/b/c/d/f3"] {
            create(&d.t(f), 0o644)?;
        }
        rename(&d.t("o/b"), &d.t("o/B"))?;
        create(&d.t("o/B/c/d/f4"), 0o644)?;
        mkdir(&d.t("o/B/c/d/e"), 0o755)?;
        create(&d.t("o/B/c/d/e/g1"), 0o644)?;
        create(&d.t("o/B/c/d/e/g2"), 0o644)?;
        create(&d.t("o/B/c/g3"), 0o644)?;
        create(&out, 0o644)?;
        create(&d.t("o/B/c/g4"), 0o644)?;
        Ok(())
    });
    // the owner renames it (silent itself), then root makes the next file
    d.act(Creds::User(OWNER, OWNER), || {
        pin_to_cpu(0)?;
        rename(&d.t("o/B"), &d.t("o/x"))
    });
    let late = d.act(Creds::Root, || {
        pin_to_cpu(0)?;
        create(&d.t("o/x/c/g5"), 0o644)?;
        create(&d.t("o/x/c/d/e/g6"), 0o644)?;
        Ok(())
    });
    let c = |by: &By, f: &str| by.create(f, 0o644);
    a.expect(&[
        by.mkdir("o/b", 0o755),
        by.mkdir("o/b/c", 0o755),
        by.mkdir("o/b/c/d", 0o755),
        c(&by, "o/b/c/d/f1"),
        c(&by, "o/b/c/d/f2"),
        c(&by, "o/b/c/d/f3"),
        by.rename("o/b", "o/B"),
        c(&by, "o/B/c/d/f4"),
        by.mkdir("o/B/c/d/e", 0o755),
        c(&by, "o/B/c/d/e/g1"),
        c(&by, "o/B/c/d/e/g2"),
        c(&by, "o/B/c/g3"),
        c(&by, "o/B/c/g4"),
        c(&late, "o/x/c/g5"),
        c(&late, "o/x/c/d/e/g6"),
    ]);
}
