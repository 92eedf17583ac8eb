//! `scan --fix`: everything given back without following a symlink or a hard link out of the
//! tree, the root itself, a racing symlink swap, bind mounts of the same filesystem, set-id
//! bits, and nested trees given to the innermost owner.

use super::*;

#[test]
fn fix_gives_everything_back_and_never_follows_symlinks() {
    needs_root!();
    let m = mixed_tree();
    // A hard link to a file outside the tree must not be given away.
    std::fs::hard_link(m.outside.join("sub/file"), m.tree.join("hardlink")).unwrap();
    chmod(m.outside.join("sub/file"), 0o644);
    set_mtime_at(
        libc::AT_FDCWD,
        m.outside.join("sub/file").as_os_str().as_bytes(),
    );
    set_mtime_at(libc::AT_FDCWD, m.tree.as_os_str().as_bytes());
    let hl_err = "2 hard links: not changed (another name may lie outside the tree)";
    let hardlink = || {
        entry(m.tree.join("hardlink"), "file", "0644", &m.tree)
            .ids(OUTSIDE, OUTSIDE)
            .fix(Fix::Failed(hl_err))
    };
    let mut want = mixed_expected(&m, true);
    want.push(hardlink().text());
    let want = sorted(want);

    let r = scan(&[os("--fix"), m.tree.as_os_str()]);
    assert_eq!(r.stderr, "");
    assert_eq!(r.lines(), want);
    assert_eq!(r.code, 1);

    // lstat says: everything fixable belongs to the owner now, symlinks themselves included.
    for p in [
        "root_file",
        "grp_only",
        "usr_only",
        "bad_dir",
        "bad_dir/nobody",
        "link_out",
        "fifo",
        "sock",
    ] {
        assert_eq!(owner_of(m.tree.join(p)), (OWNER, OWNER), "{p}");
    }
    assert_eq!(owner_of(&m.odd), (OWNER, OWNER));
    assert_eq!(owner_of(&m.weird), (OWNER, OWNER));
    assert_eq!(owner_of(m.tree.join("chardev")), (0, 0));
    // Outside: untouched, whether reached by symlink or hard link.
    for p in ["", "target", "sub", "sub/file"] {
        assert_eq!(
            owner_of(m.outside.join(p)),
            (OUTSIDE, OUTSIDE),
            "outside/{p}"
        );
    }
    // Modes are left alone, except what the kernel itself drops on chown (setuid).
    let mode = |p: &str| mode_of(m.tree.join(p));
    assert_eq!(mode("bad_dir"), 0o1777);
    assert_eq!(mode("root_file"), 0o600);
    assert_eq!(mode("usr_only"), 0o755);

    // Second run: only what could not be fixed remains, still refused.
    let r = scan(&[os("--fix"), m.tree.as_os_str()]);
    assert_eq!(r.code, 1);
    let chardev = entry(m.tree.join("chardev"), "char", "0600", &m.tree);
    assert_eq!(
        r.lines(),
        lines(vec![chardev.fix(Fix::Failed(DEVICE)), hardlink()])
    );
    // Without them the tree is clean.
    std::fs::remove_file(m.tree.join("chardev")).unwrap();
    std::fs::remove_file(m.tree.join("hardlink")).unwrap();
    let r = scan(&[os("--fix"), m.tree.as_os_str()]);
    assert_eq!((r.code, r.stdout.len(), r.stderr.as_str()), (0, 0, ""));
}

#[test]
fn fix_gives_back_the_root_itself() {
    let (_tmp, t) = root_tmp!("fixroot");
    std::fs::create_dir(&t).unwrap();
    chmod(&t, 0o2775);
    set_all_mtimes(&t);
    let r = scan(&[os("--owner"), os("4242:4343"), os("--fix"), t.as_os_str()]);
    // Everything found was given back: exit 0 (README: 1 only when something remains).
    r.expect(0, lines(vec![entry(&t, "dir", "2775", &t).fix(Fix::Fixed)]));
    assert_eq!(owner_of(&t), (OWNER, OTHER));
    scan(&[t.as_os_str()]).expect_none();
}

/// `scan --fix` many times while a thread keeps swapping `tree/sw` (a directory) with
/// `tree/swlink` (a symlink to a directory outside whose files belong to OUTSIDE): whatever
/// the interleaving, nothing outside may change owner and no outside path may be reported.
#[test]
fn race_scan_fix_with_symlink_swap_never_escapes() {
    let (tmp, t) = root_tmp!("race");
    let outside = tmp.join("outside-xxx");
    std::fs::create_dir_all(t.join("sw/sub")).unwrap();
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    for f in ["sw/f1", "sw/f2", "sw/sub/f3"] {
        std::fs::write(t.join(f), b"x").unwrap();
    }
    for f in ["f1", "f2", "sub/f3"] {
        std::fs::write(outside.join(f), b"x").unwrap();
    }
    for p in walk_all(&outside) {
        chown(&p, OUTSIDE, OUTSIDE);
    }
    symlink(&outside, t.join("swlink")).unwrap();

    let swapper = Swapper::start(&t.join("sw"), &t.join("swlink"));
    let outside_s = outside.to_str().unwrap().to_string();
    let mut fixed_inside = 0;
    for i in 0..300 {
        // Alternate owners so each run has everything to fix.
        let who = format!("{}:{}", 6000 + i % 2, 6000 + i % 2);
        let r = scan(&[os("--fix"), os("--owner"), os(&who), t.as_os_str()]);
        // exit 1 exactly when something could not be given back (the swap raced it)
        let unfixed = r.lines().iter().any(|l| l.contains("\"fixed\":false"));
        assert_eq!(r.code, unfixed as i32, "run {i}: {}", r.stderr);
        for l in r.lines() {
            assert!(!l.contains(&outside_s), "run {i} reported outside: {l}");
            if (l.contains("/sw/") || l.contains("/swlink/")) && l.contains("\"fixed\":true") {
                fixed_inside += 1;
            }
        }
        for p in walk_all(&outside) {
            assert_eq!(owner_of(&p), (OUTSIDE, OUTSIDE), "run {i}: {}", p.display());
        }
    }
    let swaps = swapper.finish();
    assert!(swaps > 1000, "only {swaps} swaps: no race was tested");
    assert!(fixed_inside > 0, "the swapped directory was never fixed");
}

/// Issue 10 item 2: a directory and a single file bind-mounted into the tree from outside, on
/// the same filesystem (same st_dev). They are mount points: reported, not entered (unless
/// --cross-mounts), and `--fix` never changes them or anything below them.
#[test]
fn fix_never_crosses_a_bind_mount_of_the_same_filesystem() {
    let (tmp, t) = root_tmp!("bind");
    let src = tmp.join("bindsrc");
    let single = tmp.join("single");
    for d in [&t, &t.join("bm"), &src, &src.join("sub")] {
        std::fs::create_dir(d).unwrap();
    }
    for f in [
        t.join("bmf"),
        t.join("plain"),
        src.join("secret"),
        src.join("sub/deep"),
        single.clone(),
    ] {
        std::fs::write(&f, b"x").unwrap();
    }
    for p in [&t, &t.join("bm"), &t.join("bmf")] {
        chown(p, OWNER, OWNER);
    }
    chmod(&t, 0o755);
    chmod(&src, 0o755);
    chmod(src.join("sub"), 0o755);
    for f in [
        t.join("plain"),
        src.join("secret"),
        src.join("sub/deep"),
        single.clone(),
    ] {
        chmod(&f, 0o644);
    }
    tmp.bind_mount(&src, &t.join("bm"));
    tmp.bind_mount(&single, &t.join("bmf"));
    let dev = std::fs::metadata(&t).unwrap().dev();
    assert_eq!(std::fs::metadata(t.join("bm")).unwrap().dev(), dev);
    set_all_mtimes(&t);
    set_all_mtimes(&single);

    let l = |p: &str, kind, mode, fix| entry(t.join(p), kind, mode, &t).fix(fix);
    // Reported as the entries they show, not entered.
    let r = scan(&[t.as_os_str()]);
    assert_eq!(r.stderr, "");
    r.expect(
        1,
        lines(vec![
            l("bm", "dir", "0755", Fix::No),
            l("bmf", "file", "0644", Fix::No),
            l("plain", "file", "0644", Fix::No),
        ]),
    );
    // --cross-mounts: entered and reported.
    let all = |fix: Fix<'static>| {
        lines(vec![
            l("bm", "dir", "0755", fix),
            l("bm/secret", "file", "0644", fix),
            l("bm/sub", "dir", "0755", fix),
            l("bm/sub/deep", "file", "0644", fix),
            l("bmf", "file", "0644", fix),
        ])
    };
    let r = scan(&[os("--cross-mounts"), t.as_os_str()]);
    let mut want = all(Fix::No);
    want.push(l("plain", "file", "0644", Fix::No).text());
    r.expect(1, sorted(want));

    // --fix: the mount points are not changed; the tree's own file is.
    let r = scan(&[os("--fix"), t.as_os_str()]);
    assert_eq!(r.stderr, "");
    r.expect(
        1,
        lines(vec![
            l("bm", "dir", "0755", Fix::Failed(BEYOND_MOUNT)),
            l("bmf", "file", "0644", Fix::Failed(BEYOND_MOUNT)),
            l("plain", "file", "0644", Fix::Fixed),
        ]),
    );
    // --fix --cross-mounts: everything beyond the mount points is reported, nothing fixed.
    let r = scan(&[os("--fix"), os("--cross-mounts"), t.as_os_str()]);
    r.expect(1, all(Fix::Failed(BEYOND_MOUNT)));
    for p in [
        src.clone(),
        src.join("secret"),
        src.join("sub"),
        src.join("sub/deep"),
        single.clone(),
    ] {
        assert_eq!(owner_of(&p), (0, 0), "{}", p.display());
    }
    assert_eq!(owner_of(t.join("plain")), (OWNER, OWNER));
}

/// A wrongly owned file loses setuid and setgid when given back, also a setgid bit the kernel
/// keeps on a chown (no group execute), and the line says so; a directory keeps its setgid.
#[test]
fn fix_drops_setid_bits_of_files_not_of_directories() {
    let (_tmp, t) = root_tmp!("setid");
    std::fs::create_dir_all(t.join("sgdir")).unwrap();
    for f in ["suid", "sgid_noexec", "plain"] {
        std::fs::write(t.join(f), b"x").unwrap();
    }
    chown(&t, OWNER, OWNER);
    chmod(&t, 0o755);
    chmod(t.join("suid"), 0o6755);
    chmod(t.join("sgid_noexec"), 0o2644);
    chmod(t.join("plain"), 0o644);
    chmod(t.join("sgdir"), 0o2775);
    set_all_mtimes(&t);
    let r = scan(&[os("--fix"), t.as_os_str()]);
    assert_eq!(r.stderr, "");
    let l = |p: &str, kind, mode, fix| entry(t.join(p), kind, mode, &t).fix(fix);
    r.expect(
        0,
        lines(vec![
            l("suid", "file", "6755", Fix::FixedSetid),
            l("sgid_noexec", "file", "2644", Fix::FixedSetid),
            l("plain", "file", "0644", Fix::Fixed),
            l("sgdir", "dir", "2775", Fix::Fixed),
        ]),
    );
    let mode = |p: &str| mode_of(t.join(p));
    assert_eq!(
        [
            mode("suid"),
            mode("sgid_noexec"),
            mode("plain"),
            mode("sgdir")
        ],
        [0o755, 0o644, 0o644, 0o2775]
    );
    for p in ["suid", "sgid_noexec", "plain", "sgdir"] {
        assert_eq!(owner_of(t.join(p)), (OWNER, OWNER), "{p}");
    }
}

/// Issue 10 item 6: `scan /a /a/b` with different owners. Entries below /a/b are judged (and
/// fixed) by /a/b's owner only, whatever order the trees are given in.
#[test]
fn nested_trees_the_innermost_owner_decides() {
    needs_root!();
    let tmp = TempDir::new("nested");
    let a = tmp.join("a");
    let b = a.join("b");
    std::fs::create_dir_all(b.join("sub")).unwrap();
    for f in [
        a.join("a_own"),
        a.join("a_root"),
        b.join("b_own"),
        b.join("sub/b_root"),
    ] {
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o644);
    }
    for p in [a.clone(), a.join("a_own")] {
        chown(&p, OWNER, OWNER);
    }
    for p in [b.clone(), b.join("sub"), b.join("b_own")] {
        chown(&p, OTHER, OTHER);
    }
    chmod(&a, 0o755);
    chmod(&b, 0o755);
    chmod(b.join("sub"), 0o755);
    set_all_mtimes(&a);
    let want = |fix: Fix<'static>| {
        lines(vec![
            entry(a.join("a_root"), "file", "0644", &a).fix(fix),
            entry(b.join("sub/b_root"), "file", "0644", &b).fix(fix),
        ])
    };
    for order in [[&a, &b], [&b, &a]] {
        let r = scan(&[order[0].as_os_str(), order[1].as_os_str()]);
        assert_eq!(r.stderr, "");
        assert_eq!((r.code, r.lines()), (1, want(Fix::No)), "{order:?}");
    }
    let r = scan(&[os("--fix"), a.as_os_str(), b.as_os_str()]);
    r.expect(0, want(Fix::Fixed));
    assert_eq!(owner_of(a.join("a_root")), (OWNER, OWNER));
    for p in ["", "sub", "b_own", "sub/b_root"] {
        assert_eq!(owner_of(b.join(p)), (OTHER, OTHER), "b/{p}");
    }
    scan(&[a.as_os_str(), b.as_os_str()]).expect_none();
    // Alone, /a still covers /a/b with its own owner: b is one of its entries then.
    let r = scan(&[a.as_os_str()]);
    assert_eq!(r.code, 1);
    assert_eq!(r.lines().len(), 4, "{:?}", r.lines());
}
