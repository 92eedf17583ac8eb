//! What `scan` reports, and how: exactly the wrongly owned entries (every kind, odd names),
//! nothing for a clean tree, --owner and its defaults, bad input, a tree deeper than PATH_MAX,
//! other filesystems, unreadable directories and a closed stdout.

use super::*;

#[test]
fn reports_exactly_the_wrongly_owned_entries() {
    needs_root!();
    let m = mixed_tree();
    let r = scan(&[m.tree.as_os_str()]);
    assert_eq!(r.stderr, "");
    assert_eq!(r.lines(), mixed_expected(&m, false));
    assert_eq!(r.code, 1);
    // Names are exact: the odd one is lossless in path_b64, the weird one escaped on one line.
    assert!(r
        .lines()
        .iter()
        .any(|l| l.contains("\"path_b64\":\"") && l.contains("odd-\u{fffd}\u{fffd}")));
    // Nothing was changed by a plain scan, and the symlinks' targets were never entered.
    assert_eq!(owner_of(m.tree.join("root_file")), (0, 0));
    assert!(!String::from_utf8_lossy(&r.stdout).contains(m.outside.to_str().unwrap()));

    // The same tree given through a symlink to it: the tree is the real path.
    let via = m.tree.with_file_name("via-link");
    symlink(&m.tree, &via).unwrap();
    let r2 = scan(&[via.as_os_str()]);
    assert_eq!(r2.code, 1);
    assert_eq!(r2.lines(), r.lines());
}

#[test]
fn clean_tree_prints_nothing_and_exits_0() {
    let (_tmp, tree) = root_tmp!("clean");
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    std::fs::write(tree.join("a/b/c/f"), b"x").unwrap();
    symlink("/etc/passwd", tree.join("a/ln")).unwrap();
    nix::unistd::mkfifo(
        &tree.join("a/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    for e in walk_all(&tree) {
        chown(&e, OWNER, OTHER);
    }
    let r = scan(&[tree.as_os_str()]);
    assert_eq!(
        (r.code, r.stdout.as_slice(), r.stderr.as_str()),
        (0, &b""[..], "")
    );
    // Explicitly the same owner, by number: still clean.
    let r = scan(&[os("--owner"), os("4242:4343"), tree.as_os_str()]);
    assert_eq!(
        (r.code, r.stdout.as_slice(), r.stderr.as_str()),
        (0, &b""[..], "")
    );
    // The same tree twice is scanned once.
    scan(&[tree.as_os_str(), tree.join("a/..").as_os_str()]).expect_none();
}

#[test]
fn owner_option_and_its_defaults() {
    let (_tmp, t) = root_tmp!("owner");
    std::fs::create_dir(&t).unwrap();
    std::fs::write(t.join("a"), b"x").unwrap();
    std::fs::write(t.join("b"), b"x").unwrap();
    chown(&t, OWNER, OTHER);
    chown(t.join("a"), OWNER, OTHER);
    chown(t.join("b"), OWNER, OWNER);
    chmod(&t, 0o750);
    chmod(t.join("a"), 0o644);
    chmod(t.join("b"), 0o644);
    set_all_mtimes(&t);
    let a = || entry(t.join("a"), "file", "0644", &t).ids(OWNER, OTHER);
    let b = || entry(t.join("b"), "file", "0644", &t).ids(OWNER, OWNER);
    let root = || entry(&t, "dir", "0750", &t).ids(OWNER, OTHER);

    // Default: the owner of DIR, 4242:4343.
    let r = scan(&[t.as_os_str()]);
    r.expect(1, lines(vec![b()]));
    // A uid without a passwd entry and no group: DIR's group.
    let r = scan(&[os("--owner"), os("4242"), t.as_os_str()]);
    r.expect(1, lines(vec![b()]));
    // Both given: DIR itself is reported too.
    let r = scan(&[os("--owner"), os("4242:4242"), t.as_os_str()]);
    r.expect(1, lines(vec![root(), a()]));
    // A named user without a group: its primary group (nobody -> 65534).
    let r = scan(&[os("--owner"), os("nobody"), t.as_os_str()]);
    r.expect(1, lines(vec![root(), a(), b()]));
    assert_eq!(r.stderr, "");

    for (owner, msg) in [
        (
            "no-such-user-ownwatch",
            "ownwatch: unknown user \"no-such-user-ownwatch\"\n",
        ),
        (
            "4242:no-such-group-ownwatch",
            "ownwatch: unknown group \"no-such-group-ownwatch\"\n",
        ),
        ("", "ownwatch: empty user name\n"),
    ] {
        let r = scan(&[os("--owner"), os(owner), t.as_os_str()]);
        assert_eq!(
            (r.code, r.stdout.len(), r.stderr.as_str()),
            (2, 0, msg),
            "{owner:?}"
        );
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let tmp = TempDir::new("bad");
    let file = tmp.join("file");
    std::fs::write(&file, b"x").unwrap();
    let missing = tmp.join("missing");
    let cases: Vec<(Vec<&OsStr>, String)> = vec![
        (
            vec![missing.as_os_str()],
            format!("ownwatch: {}: no such directory\n", missing.display()),
        ),
        (
            vec![file.as_os_str()],
            format!("ownwatch: {}: not a directory\n", file.display()),
        ),
        // A good tree first does not start the output: everything is checked up front.
        (
            vec![tmp.path.as_os_str(), missing.as_os_str()],
            format!("ownwatch: {}: no such directory\n", missing.display()),
        ),
    ];
    for (args, want) in cases {
        let r = scan(&args);
        assert_eq!(
            (r.code, r.stdout.len(), r.stderr.as_str()),
            (2, 0, want.as_str())
        );
    }
    for args in [vec![], vec![os("--frobnicate"), tmp.path.as_os_str()]] {
        let r = scan(&args);
        assert_eq!((r.code, r.stdout.len()), (2, 0), "{args:?}");
        assert!(r.stderr.starts_with("ownwatch: "), "{:?}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{:?}", r.stderr);
    }
}

/// mkdirat/openat relative to fds: the test itself cannot use paths this long either.
fn mkdir_open(dir: libc::c_int, name: &[u8]) -> OwnedFd {
    let n = cs(name);
    // SAFETY: plain syscalls with valid pointers.
    unsafe {
        assert_eq!(libc::mkdirat(dir, n.as_ptr(), 0o755), 0);
        let fd = libc::openat(dir, n.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        assert!(fd >= 0);
        libc::fchownat(fd, c"".as_ptr(), OWNER, OWNER, libc::AT_EMPTY_PATH);
        OwnedFd::from_raw_fd(fd)
    }
}

#[test]
fn deep_tree_beyond_path_max() {
    needs_root!();
    const LEVELS: usize = 200;
    let tmp = TempDir::new("deep");
    let t = tmp.join("tree");
    std::fs::create_dir(&t).unwrap();
    chown(&t, OWNER, OWNER);
    let root = std::fs::File::open(&t).unwrap();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut path = pb(&t);
    for i in 0..LEVELS {
        let name = format!("{i:03}-{}", "d".repeat(196)).into_bytes();
        assert_eq!(name.len(), 200);
        let parent = fds.last().map_or(root.as_raw_fd(), |f| f.as_raw_fd());
        fds.push(mkdir_open(parent, &name));
        path.push(b'/');
        path.extend_from_slice(&name);
    }
    let bottom = fds.last().unwrap().as_raw_fd();
    // SAFETY: plain syscalls.
    unsafe {
        let fd = libc::openat(
            bottom,
            c"bottom".as_ptr(),
            libc::O_CREAT | libc::O_WRONLY,
            0o600,
        );
        assert!(fd >= 0);
        libc::close(fd);
    }
    set_mtime_at(bottom, b"bottom");
    path.extend_from_slice(b"/bottom");
    assert!(path.len() > 40_000);

    let bottom_line = |fix| entry(OsStr::from_bytes(&path), "file", "0600", &t).fix(fix);
    let want = bottom_line(Fix::No).text();
    let r = scan(&[t.as_os_str()]);
    assert_eq!((r.code, r.lines(), r.stderr.as_str()), (1, vec![want], ""));

    let want = bottom_line(Fix::Fixed).text();
    let r = scan(&[os("--fix"), t.as_os_str()]);
    // all of it given back: exit 0
    assert_eq!((r.code, r.lines(), r.stderr.as_str()), (0, vec![want], ""));
    assert_eq!(owner_at(bottom, b"bottom"), (OWNER, OWNER));
    scan(&[t.as_os_str()]).expect_none();
}

#[test]
fn stays_on_the_filesystem_unless_cross_mounts() {
    let (tmp, t) = root_tmp!("mounts");
    let mnt = t.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    chown(&t, OWNER, OWNER);
    chown(&mnt, OWNER, OWNER);
    if let Err(e) = tmp.mount_tmpfs(&mnt, &format!("mode=0755,uid={OWNER},gid={OWNER}")) {
        if in_ci() {
            panic!("mount tmpfs: {e}");
        }
        eprintln!("SKIPPED stays_on_the_filesystem_unless_cross_mounts: cannot mount: {e}");
        return;
    }
    std::fs::write(mnt.join("inner"), b"x").unwrap(); // owned by root
    chmod(mnt.join("inner"), 0o644);
    set_mtime_at(libc::AT_FDCWD, mnt.join("inner").as_os_str().as_bytes());

    let r = scan(&[t.as_os_str()]);
    assert_eq!((r.code, r.stdout.len(), r.stderr.as_str()), (0, 0, ""));
    // Both at once contradict each other: a usage error, whichever comes last.
    for args in [["--cross-mounts", "--xdev"], ["--xdev", "--cross-mounts"]] {
        let r = scan(&[os(args[0]), os(args[1]), t.as_os_str()]);
        assert_eq!((r.code, r.stdout.len()), (2, 0), "{args:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("ownwatch: the argument '--")
                && r.stderr.contains("cannot be used with"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = scan(&[os("--cross-mounts"), t.as_os_str()]);
    let want = entry(mnt.join("inner"), "file", "0644", &t).text();
    r.expect(1, vec![want]);
}

#[test]
fn unreadable_directories_are_reported_and_the_scan_goes_on() {
    let (_tmp, t) = root_tmp!("unreadable");
    std::fs::create_dir_all(t.join("locked/sub")).unwrap();
    std::fs::create_dir_all(t.join("open")).unwrap();
    std::fs::write(t.join("open/rootfile"), b"x").unwrap();
    std::fs::write(t.join("locked/sub/hidden"), b"x").unwrap();
    for e in walk_all(&t) {
        chown(&e, OWNER, OWNER);
    }
    chown(t.join("open/rootfile"), 0, 0);
    chown(t.join("locked/sub/hidden"), 0, 0);
    chmod(t.join("open/rootfile"), 0o644);
    chmod(t.join("locked"), 0o311); // searchable, not readable
    set_all_mtimes(&t);

    // As the owner itself, which has no way past mode 0311.
    let r = scan_as(&[t.as_os_str()], Some(OWNER));
    assert_eq!(
        r.stderr,
        format!(
            "ownwatch: cannot read {}: Permission denied\n\
             ownwatch: 1 entry could not be read (see above); the scan is incomplete\n",
            t.join("locked").display()
        )
    );
    let want = entry(t.join("open/rootfile"), "file", "0644", &t).text();
    r.expect(1, vec![want]);

    // The root itself unreadable: nothing can be scanned, exit 2.
    chmod(&t, 0o311);
    let r = scan_as(&[t.as_os_str()], Some(OWNER));
    assert_eq!(
        (r.code, r.stdout.len(), r.stderr),
        (
            2,
            0,
            format!(
                "ownwatch: {}: cannot read: Permission denied\n",
                t.display()
            )
        )
    );
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let (_tmp, t) = root_tmp!("pipe");
    std::fs::create_dir(&t).unwrap();
    for i in 0..20_000 {
        std::fs::write(t.join(format!("f{i}")), b"").unwrap();
    }
    chown(&t, OWNER, OWNER);
    // `scan … | head -1`: the reader leaves after one line (20000 lines do not fit a pipe).
    let mut child = Command::new(bin())
        .arg("scan")
        .arg(&t)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("{\"path\":"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(1));
}
