//! Unit tests of `fix`: paths, refusals, mounts, nested trees and a symlink-swap race.

use super::*;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

use crate::testutil::temp_dir;

/// Root is needed to chown to other uids.
fn root_or_skip(test: &str) -> bool {
    crate::testutil::root_or_skip(test, "it changes owners to other uids")
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
    if !root_or_skip("fixes_file_symlink_and_tree_below") {
        return;
    }
    let t = temp_dir("basic");
    let out = temp_dir("basic-outside");
    let root = t.path().join("tree");
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::write(root.join("a/f"), b"x").unwrap();
    std::fs::write(root.join("a/b/c/g"), b"x").unwrap();
    std::fs::write(out.path().join("secret"), b"x").unwrap();
    lchown(&out.path().join("secret"), 5555, 5555);
    symlink(out.path().join("secret"), root.join("a/b/ln")).unwrap();
    symlink(&out.path(), root.join("a/b/lndir")).unwrap();
    let rfd = dirfd(&root);

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
    assert_eq!(owner(&out.path().join("secret")), (5555, 5555));

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
    assert_eq!(owner(&out.path().join("secret")), (5555, 5555));

    // The whole tree below a, with recurse: a, b, c, g, lndir (f and ln already done).
    let o = fix_path(rfd.as_fd(), b"a", 4242, 4343, true, &[]).unwrap();
    assert_eq!((o.changed, o.unchanged, o.failed), (5, 2, 0), "{o:?}");
    for p in ["a", "a/b", "a/b/c", "a/b/c/g", "a/b/lndir", "a/f", "a/b/ln"] {
        assert_eq!(owner(&root.join(p)), (4242, 4343), "{p}");
    }
    assert_eq!(owner(&out.path()), (0, 0));
    assert_eq!(owner(&out.path().join("secret")), (5555, 5555));
    // The root itself, by an empty path; without recurse nothing below is touched.
    lchown(&root.join("a/f"), 0, 0);
    let o = fix_path(rfd.as_fd(), b"", 4242, 4343, false, &[]).unwrap();
    assert_eq!((o.changed, o.unchanged), (1, 0));
    assert_eq!(owner(&root), (4242, 4343));
    assert_eq!(owner(&root.join("a/f")), (0, 0));
}

#[test]
fn refuses_hard_links_and_devices_and_stays_on_the_filesystem() {
    if !root_or_skip("refuses_hard_links_and_devices_and_stays_on_the_filesystem") {
        return;
    }
    let t = temp_dir("links");
    let root = t.path().join("tree");
    std::fs::create_dir_all(root.join("d/mnt")).unwrap();
    std::fs::write(t.path().join("outside"), b"x").unwrap();
    std::fs::hard_link(t.path().join("outside"), root.join("d/hl")).unwrap();
    let rfd = dirfd(&root);
    let e = fix_path(rfd.as_fd(), b"d/hl", 4242, 4242, false, &[]).unwrap_err();
    assert_eq!(
        e,
        "2 hard links: not changed (another name may lie outside the tree)"
    );
    assert_eq!(owner(&t.path().join("outside")), (0, 0));

    let dev = CString::new(root.join("d/null").as_os_str().as_bytes()).unwrap();
    // SAFETY: plain mknod.
    let r = unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
    let have_dev = r == 0;
    if have_dev {
        let e = fix_path(rfd.as_fd(), b"d/null", 4242, 4242, false, &[]).unwrap_err();
        assert!(e.starts_with("device node: not given away"), "{e}");
    }

    // A filesystem mounted inside: recursion does not enter it.
    let mnt = CString::new(root.join("d/mnt").as_os_str().as_bytes()).unwrap();
    // SAFETY: plain mount of a fresh tmpfs on our own temp dir.
    let mounted = unsafe {
        libc::mount(
            c"none".as_ptr(),
            mnt.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    } == 0;
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
        // SAFETY: unmount what we mounted.
        unsafe { libc::umount2(mnt.as_ptr(), libc::MNT_DETACH) };
    }
    assert_eq!(owner(&t.path().join("outside")), (0, 0));
}

#[test]
fn recursion_leaves_nested_roots_and_bind_mounts_alone() {
    if !root_or_skip("recursion_leaves_nested_roots_and_bind_mounts_alone") {
        return;
    }
    let t = temp_dir("nested");
    let src = temp_dir("nested-bindsrc");
    let root = t.path().join("tree");
    std::fs::create_dir_all(root.join("d/inner/sub")).unwrap();
    std::fs::create_dir_all(root.join("d/bm")).unwrap();
    std::fs::write(root.join("d/f"), b"x").unwrap();
    std::fs::write(root.join("d/inner/sub/g"), b"x").unwrap();
    std::fs::write(src.path().join("secret"), b"x").unwrap();
    let m = std::fs::metadata(root.join("d/inner")).unwrap();
    let inner = (m.dev(), m.ino());
    let bm = CString::new(root.join("d/bm").as_os_str().as_bytes()).unwrap();
    let s = CString::new(src.path().as_os_str().as_bytes()).unwrap();
    // SAFETY: a bind mount between two of our temp dirs (same filesystem).
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            bm.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "mount --bind: {}", io::Error::last_os_error());
    let rfd = dirfd(&root);
    let o = fix_path(rfd.as_fd(), b"d", 4242, 4242, true, &[inner]).unwrap();
    // SAFETY: unmount what we mounted.
    unsafe { libc::umount2(bm.as_ptr(), libc::MNT_DETACH) };
    // d and f changed; inner skipped; bm failed (a mount point), not entered.
    assert_eq!((o.changed, o.failed), (2, 1), "{o:?}");
    assert_eq!(
        o.first_error.as_deref(),
        Some("bm: mount point: another mount, not changed or entered")
    );
    for p in ["d/inner", "d/inner/sub", "d/inner/sub/g"] {
        assert_eq!(owner(&root.join(p)), (0, 0), "{p}");
    }
    assert_eq!(owner(&src.path()), (0, 0));
    assert_eq!(owner(&src.path().join("secret")), (0, 0));
}

/// Many fixes while a thread keeps swapping a directory of the tree with a symlink to a
/// directory outside it: nothing outside may ever change owner.
#[test]
fn race_with_symlink_swap_never_escapes() {
    if !root_or_skip("race_with_symlink_swap_never_escapes") {
        return;
    }
    let t = temp_dir("race");
    let outside = temp_dir("race-outside");
    let root = t.path().join("tree");
    std::fs::create_dir_all(root.join("sw/sub")).unwrap();
    std::fs::write(root.join("sw/file"), b"x").unwrap();
    std::fs::write(root.join("sw/sub/file"), b"x").unwrap();
    std::fs::create_dir(outside.path().join("sub")).unwrap();
    std::fs::write(outside.path().join("file"), b"x").unwrap();
    std::fs::write(outside.path().join("sub/file"), b"x").unwrap();
    for p in ["", "file", "sub", "sub/file"] {
        lchown(&outside.path().join(p), 5555, 5555);
    }
    symlink(&outside.path(), root.join("swlink")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            let a = CString::new(root.join("sw").as_os_str().as_bytes()).unwrap();
            let b = CString::new(root.join("swlink").as_os_str().as_bytes()).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: renameat2(RENAME_EXCHANGE) of two names in our temp dir.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(r, 0, "renameat2: {}", io::Error::last_os_error());
                n += 1;
            }
            n
        })
    };
    let rfd = dirfd(&root);
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
        assert_eq!(
            owner(&outside.path().join(p)),
            (5555, 5555),
            "outside/{p} changed"
        );
    }
    // The race was real: both outcomes happened, and the swapper kept swapping.
    assert!(ok > 0 && refused > 0, "ok {ok} refused {refused}");
    assert!(swaps > 1000, "only {swaps} swaps");
}
