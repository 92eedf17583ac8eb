//! Unit tests of `fix`: paths, refusals, mounts, nested trees and a symlink-swap race.

use super::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::fcntl::{renameat2, RenameFlags};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::testutil::{make, temp_dir};

#[test]
fn rel_paths() {
    assert_eq!(rel_path(b"/srv/app", b"/srv/app"), Some(&b""[..]));
    assert_eq!(rel_path(b"/srv/app/", b"/srv/app"), Some(&b""[..]));
    assert_eq!(rel_path(b"/srv/app", b"/srv/app/"), Some(&b""[..]));
    assert_eq!(rel_path(b"/srv/app", b"/srv/app/a/b"), Some(&b"a/b"[..]));
    assert_eq!(rel_path(b"/srv/app", b"/srv/app//a/b/"), Some(&b"a/b"[..]));
    assert_eq!(rel_path(b"/", b"/etc/x"), Some(&b"etc/x"[..]));
    assert_eq!(rel_path(b"/", b"/"), Some(&b""[..]));
    assert_eq!(rel_path(b"/srv/app", b"/srv/application"), None);
    assert_eq!(rel_path(b"/srv/app", b"/srv"), None);
    assert_eq!(rel_path(b"/srv/app", b"/srv/app/../etc"), None);
    assert_eq!(rel_path(b"/srv/app", b"/srv/app/a/.."), None);
    assert_eq!(rel_path(b"/srv/app", b"srv/app/a"), None);
    assert_eq!(rel_path(b"/srv/app", b"/srv/app/a..b"), Some(&b"a..b"[..]));
}

/// A test's tree and a directory outside it, removed when dropped.
struct Fixture {
    /// `<tmp>/tree`, with what the test asked for below it.
    root: PathBuf,
    /// Another directory on the same filesystem, with what the test asked for.
    outside: PathBuf,
    _dirs: [tempfile::TempDir; 2],
}

/// Makes `inside` below the tree root and `outside` in a directory beside it, both named after
/// `tag`. None (the test skips) without root outside CI: root is needed to chown to other uids.
fn fixture(tag: &str, inside: &[&str], outside: &[&str]) -> Option<Fixture> {
    if !crate::testutil::root_or_skip(tag, "it changes owners to other uids") {
        return None;
    }
    let dirs = [temp_dir(tag), temp_dir(&format!("{tag}-outside"))];
    let root = dirs[0].path().join("tree");
    std::fs::create_dir(&root).unwrap();
    make(&root, inside);
    make(dirs[1].path(), outside);
    Some(Fixture {
        root,
        outside: dirs[1].path().to_path_buf(),
        _dirs: dirs,
    })
}

fn dirfd(p: &Path) -> OwnedFd {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    openat(sys::cwd(), &c, libc::O_PATH | libc::O_DIRECTORY)
        .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

fn lchown(p: &Path, u: u32, g: u32) {
    std::os::unix::fs::lchown(p, Some(u), Some(g)).unwrap();
}

#[test]
fn fixes_file_symlink_and_tree_below() {
    let Some(f) = fixture("fix-basic", &["a/f", "a/b/c/g"], &["secret"]) else {
        return;
    };
    let (root, out) = (&f.root, &f.outside);
    lchown(&out.join("secret"), 5555, 5555);
    symlink(out.join("secret"), root.join("a/b/ln")).unwrap();
    symlink(out, root.join("a/b/lndir")).unwrap();
    let rfd = dirfd(root);

    // A single file.
    let o = fix_path(rfd.as_fd(), b"a/f", 4242, 4343, false, &[]).unwrap();
    assert_eq!((o.changed, o.unchanged, o.failed), (1, 0, 0));
    assert_eq!(owner(&root.join("a/f")), (4242, 4343));
    // Again: nothing to do.
    let o = fix_path(rfd.as_fd(), b"./a//f", 4242, 4343, false, &[]).unwrap();
    assert_eq!((o.changed, o.unchanged), (0, 1));

    // A symlink is changed itself, its target is not.
    let o = fix_path(rfd.as_fd(), b"a/b/ln", 4242, 4343, true, &[]).unwrap();
    assert_eq!(o.changed, 1);
    assert_eq!(owner(&root.join("a/b/ln")), (4242, 4343));
    assert_eq!(owner(&out.join("secret")), (5555, 5555));

    // Through a symlinked directory: refused.
    let e = fix_path(rfd.as_fd(), b"a/b/lndir/secret", 4242, 4343, false, &[]).unwrap_err();
    assert_eq!(e, "path component \"lndir\" is a symlink (not followed)");
    let e = fix_path(rfd.as_fd(), b"a/f/x", 4242, 4343, false, &[]).unwrap_err();
    assert_eq!(e, "path component \"f\" is not a directory");
    let e = fix_path(rfd.as_fd(), b"a/../a/f", 4242, 4343, false, &[]).unwrap_err();
    assert_eq!(e, "\"..\" in the path refused");
    let e = fix_path(rfd.as_fd(), b"/etc/passwd", 4242, 4343, false, &[]).unwrap_err();
    assert!(e.starts_with("absolute path refused"), "{e}");
    let e = fix_path(rfd.as_fd(), b"a/nothere", 4242, 4343, false, &[]).unwrap_err();
    assert_eq!(
        e,
        "opening \"a/nothere\": ENOENT: No such file or directory"
    );
    assert_eq!(owner(&out.join("secret")), (5555, 5555));

    // The whole tree below a, with recurse: a, b, c, g, lndir (f and ln already done).
    let o = fix_path(rfd.as_fd(), b"a", 4242, 4343, true, &[]).unwrap();
    assert_eq!((o.changed, o.unchanged, o.failed), (5, 2, 0), "{o:?}");
    for p in ["a", "a/b", "a/b/c", "a/b/c/g", "a/b/lndir", "a/f", "a/b/ln"] {
        assert_eq!(owner(&root.join(p)), (4242, 4343), "{p}");
    }
    assert_eq!(owner(out), (0, 0));
    assert_eq!(owner(&out.join("secret")), (5555, 5555));
    // The root itself, by an empty path; without recurse nothing below is touched.
    lchown(&root.join("a/f"), 0, 0);
    let o = fix_path(rfd.as_fd(), b"", 4242, 4343, false, &[]).unwrap();
    assert_eq!((o.changed, o.unchanged), (1, 0));
    assert_eq!(owner(root), (4242, 4343));
    assert_eq!(owner(&root.join("a/f")), (0, 0));
}

#[test]
fn refuses_hard_links_and_devices_and_stays_on_the_filesystem() {
    let Some(f) = fixture("fix-refusals", &["d/mnt/"], &["outside"]) else {
        return;
    };
    let root = &f.root;
    std::fs::hard_link(f.outside.join("outside"), root.join("d/hl")).unwrap();
    let rfd = dirfd(root);
    let e = fix_path(rfd.as_fd(), b"d/hl", 4242, 4242, false, &[]).unwrap_err();
    assert_eq!(
        e,
        "2 hard links: not changed (another name may lie outside the tree)"
    );
    assert_eq!(owner(&f.outside.join("outside")), (0, 0));

    let dev = CString::new(root.join("d/null").as_os_str().as_bytes()).unwrap();
    // SAFETY: plain mknod.
    let r = unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
    let have_dev = r == 0;
    if have_dev {
        let e = fix_path(rfd.as_fd(), b"d/null", 4242, 4242, false, &[]).unwrap_err();
        assert!(e.starts_with("device node: not given away"), "{e}");
    }

    // A filesystem mounted inside: recursion does not enter it.
    let mnt = root.join("d/mnt");
    let mounted = mount(
        Some("none"),
        &mnt,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .is_ok();
    if mounted {
        std::fs::write(root.join("d/mnt/inner"), b"x").unwrap();
    }
    let o = fix_path(rfd.as_fd(), b"d", 4242, 4242, true, &[]).unwrap();
    // d itself changed; hl (and null) failed; mnt failed too: not changed, not entered.
    assert_eq!(o.changed, if mounted { 1 } else { 2 }, "{o:?}");
    assert_eq!(
        o.failed,
        if have_dev { 2 } else { 1 } + u64::from(mounted),
        "{o:?}"
    );
    assert!(o.first_error.as_deref().unwrap().contains("hard links") || have_dev);
    if mounted {
        assert_eq!(owner(&root.join("d/mnt/inner")), (0, 0));
        assert_eq!(owner(&root.join("d/mnt")), (0, 0));
        umount2(&mnt, MntFlags::MNT_DETACH).unwrap();
    }
    assert_eq!(owner(&f.outside.join("outside")), (0, 0));
}

#[test]
fn recursion_leaves_nested_roots_and_bind_mounts_alone() {
    let Some(f) = fixture(
        "fix-nested",
        &["d/bm/", "d/f", "d/inner/sub/g"],
        &["secret"],
    ) else {
        return;
    };
    let (root, src) = (&f.root, &f.outside);
    let m = std::fs::metadata(root.join("d/inner")).unwrap();
    let inner = (m.dev(), m.ino());
    let bm = root.join("d/bm");
    let none = None::<&str>;
    mount(Some(src), &bm, none, MsFlags::MS_BIND, none).expect("mount --bind");
    let rfd = dirfd(root);
    let o = fix_path(rfd.as_fd(), b"d", 4242, 4242, true, &[inner]).unwrap();
    umount2(&bm, MntFlags::MNT_DETACH).unwrap();
    // d and f changed; inner skipped; bm failed (a mount point), not entered.
    assert_eq!((o.changed, o.failed), (2, 1), "{o:?}");
    assert_eq!(
        o.first_error.as_deref(),
        Some("bm: mount point: another mount, not changed or entered")
    );
    for p in ["d/inner", "d/inner/sub", "d/inner/sub/g"] {
        assert_eq!(owner(&root.join(p)), (0, 0), "{p}");
    }
    assert_eq!(owner(src), (0, 0));
    assert_eq!(owner(&src.join("secret")), (0, 0));
}

/// Many fixes while a thread keeps swapping a directory of the tree with a symlink to a
/// directory outside it: nothing outside may ever change owner.
#[test]
fn race_with_symlink_swap_never_escapes() {
    let Some(f) = fixture(
        "fix-race",
        &["sw/file", "sw/sub/file"],
        &["file", "sub/file"],
    ) else {
        return;
    };
    let (root, outside) = (&f.root, &f.outside);
    for p in ["", "file", "sub", "sub/file"] {
        lchown(&outside.join(p), 5555, 5555);
    }
    symlink(outside, root.join("swlink")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            let (a, b) = (root.join("sw"), root.join("swlink"));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                renameat2(None, &a, None, &b, RenameFlags::RENAME_EXCHANGE).expect("renameat2");
                n += 1;
            }
            n
        })
    };
    let rfd = dirfd(root);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..5_000u32 {
        // Alternate owners so every successful call really changes something.
        let id = 6000 + (i % 2);
        for (rel, recurse) in [
            (&b"sw/file"[..], false),
            (b"sw/sub/file", false),
            (b"sw", true),
            (b"sw/sub", true),
        ] {
            match fix_path(rfd.as_fd(), rel, id, id, recurse, &[]) {
                Ok(_) => ok += 1,
                Err(_) => refused += 1,
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    for p in ["", "file", "sub", "sub/file"] {
        assert_eq!(owner(&outside.join(p)), (5555, 5555), "outside/{p} changed");
    }
    // The race was real: both outcomes happened, and the swapper kept swapping.
    assert!(ok > 0 && refused > 0, "ok {ok} refused {refused}");
    assert!(swaps > 1000, "only {swaps} swaps");
}
