//! A path string from the caller (tracepoint backend) resolved on disk, relative to the
//! directory the kernel walked, the way the kernel resolved it: symlinks followed, `..`
//! handled, absolute symlinks kept inside the caller's root.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use crate::paths::{join, normalize, trim_leading_slashes};

fn cstr(p: &[u8]) -> Option<CString> {
    CString::new(p).ok()
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_IN_ROOT: u64 = 0x10;

fn openat2(dirfd: i32, path: &[u8], flags: i32, resolve: u64) -> Option<OwnedFd> {
    let c = cstr(if path.is_empty() { b"." } else { path })?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: valid C string and struct for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new fd we own.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens a directory by its path, also one longer than PATH_MAX (a deep tree), a part of
/// at most `CHUNK` bytes at a time.
fn open_dir(path: &[u8]) -> Option<OwnedFd> {
    const CHUNK: usize = 3072;
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    let mut fd: Option<OwnedFd> = None;
    let mut rest = path;
    loop {
        let (part, next) = if rest.len() <= CHUNK {
            (rest, &b""[..])
        } else {
            // cut at the last '/' within CHUNK; a name is at most 255 bytes
            let cut = rest[..CHUNK].iter().rposition(|&c| c == b'/')?.max(1);
            (&rest[..cut], &rest[cut..])
        };
        let dfd = fd.as_ref().map_or(libc::AT_FDCWD, |f| f.as_raw_fd());
        let part = if fd.is_some() {
            trim_leading_slashes(part)
        } else {
            part
        };
        fd = Some(openat2(
            dfd,
            if part.is_empty() { b"." } else { part },
            flags,
            0,
        )?);
        if next.is_empty() {
            return fd;
        }
        rest = next;
    }
}

/// The path of an open fd as the host sees it; None when it has none (another mount
/// namespace, or removed since it was opened: /proc then says "<old path> (deleted)").
pub fn fd_path(fd: &OwnedFd) -> Option<Vec<u8>> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let p = fs::read_link(link).ok()?;
    let b = p.as_os_str().as_bytes();
    if b.first() != Some(&b'/') {
        return None;
    }
    // (a name that really ends so is still linked)
    if b.ends_with(b" (deleted)")
        && crate::sys::fstat(fd.as_fd()).map_or(true, |st| st.st_nlink == 0)
    {
        return None;
    }
    Some(b.to_vec())
}

/// A path string from the caller, relative to what the kernel walked.
pub struct StrPath<'a> {
    /// Host path of the caller's root (absolute strings) or of the dirfd/cwd (relative).
    pub base: &'a [u8],
    pub string: &'a [u8],
    pub absolute: bool,
    /// The op acts on a final symlink itself (unlink, rename, lchown, mkdir...).
    pub nofollow: bool,
    /// Host path of the caller's cwd, sent along with "/proc/..." strings.
    pub cwd: Option<&'a [u8]>,
    pub pid: u32,
    pub tid: u32,
}

/// Rewrites "/proc/self/...", "/proc/thread-self/..." and "/proc/<own pid>/..." so that they
/// mean the writer, not us. Returns (base, string, absolute).
fn proc_rewrite(sp: &StrPath) -> Option<(Vec<u8>, Vec<u8>, bool)> {
    let rest = sp.string.strip_prefix(b"/proc/")?;
    let (who, rest) = match rest.iter().position(|&c| c == b'/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &b""[..]),
    };
    let me = sp.pid.to_string();
    let prefix = match who {
        b"self" => format!("/proc/{}", sp.pid),
        b"thread-self" => format!("/proc/{}/task/{}", sp.pid, sp.tid),
        w if w == me.as_bytes() => format!("/proc/{}", sp.pid),
        _ => return None,
    };
    if let (Some(cwd), Some(after)) = (sp.cwd, rest.strip_prefix(b"/cwd")) {
        if after.is_empty() || after[0] == b'/' {
            return Some((cwd.to_vec(), trim_leading_slashes(after).to_vec(), false));
        }
    }
    // "/proc/self/root/x" is "x" in the caller's root, which the kernel walked for us: no
    // need for the caller to still be alive.
    if let (true, Some(after)) = (sp.absolute, rest.strip_prefix(b"/root")) {
        if after.is_empty() || after[0] == b'/' {
            let after = if after.is_empty() { &b"/"[..] } else { after };
            return Some((sp.base.to_vec(), after.to_vec(), true));
        }
    }
    let mut s = prefix.into_bytes();
    s.extend_from_slice(rest);
    Some((b"/".to_vec(), s, true))
}

/// Resolves a caller's string to an absolute host path. Returns the path and whether it was
/// resolved on disk (false: lexical guess, the directory was gone by the time we looked).
pub fn resolve_str(sp: &StrPath) -> (Vec<u8>, bool) {
    let (base, string, absolute) = match proc_rewrite(sp) {
        Some(t) => t,
        None => (sp.base.to_vec(), sp.string.to_vec(), sp.absolute),
    };
    let resolve = if absolute && base != b"/" {
        RESOLVE_IN_ROOT
    } else {
        0
    };
    let rel: &[u8] = if absolute {
        trim_leading_slashes(&string)
    } else {
        &string
    };
    let lexical = || normalize(&join(&base, rel));
    // One plain name in the directory the kernel walked, for an op on the name itself
    // (unlink, rmdir, mkdir, rename...): exact even when that directory is gone by now
    // (`rm -r` removes it right after).
    let single = !rel.contains(&b'/') && !matches!(rel, b"" | b"." | b"..");
    // The directory is gone (`rm -r` removes it right after, maybe while we look): the one
    // name in it stands.
    let gone = || (lexical(), !absolute && sp.nofollow && single);
    let Some(dirfd) = open_dir(&base) else {
        return gone();
    };
    let dfd = dirfd.as_raw_fd();
    // A path longer than PATH_MAX has no name /proc can give: one plain name in the
    // directory the kernel walked is exact when the op acts on the name itself, or on what it
    // names and that is no symlink (or is gone: as below, the name stands).
    if base.len() + rel.len() >= 4000 {
        let no_link = || {
            let Ok(name) = std::ffi::CString::new(rel) else {
                return false;
            };
            crate::sys::fstatat(dirfd.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW)
                .map_or(true, |st| st.st_mode & libc::S_IFMT != libc::S_IFLNK)
        };
        return (lexical(), single && (sp.nofollow || no_link()));
    }
    // The name itself, in its resolved parent directory. Also for an op that follows a final
    // symlink, unless the name is one: the object's own fd would give its name when we read
    // it back (/proc), which a rename since the op (`chmod n; mv n m`) has changed.
    let mut trimmed = rel;
    while trimmed.len() > 1 && trimmed.last() == Some(&b'/') {
        trimmed = &trimmed[..trimmed.len() - 1];
    }
    let (parent, name): (&[u8], &[u8]) = match trimmed.iter().rposition(|&c| c == b'/') {
        Some(0) => (b"/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (b".", trimmed),
    };
    let o_path = |path: &[u8], flags: i32| openat2(dfd, path, libc::O_PATH | flags, resolve);
    if matches!(name, b"" | b"." | b"..") {
        let lexical = lexical();
        let p = o_path(trimmed, 0).and_then(|fd| named_so(&fd, &lexical, || o_path(trimmed, 0)));
        return match p {
            Some((p, true)) => (p, true),
            _ => (lexical, false),
        };
    }
    // (".": the directory the kernel walked, which `base` names as it was named then)
    let parent_fd = if parent == b"." {
        None
    } else {
        o_path(parent, libc::O_DIRECTORY)
    };
    if !sp.nofollow && is_symlink(parent_fd.as_ref().unwrap_or(&dirfd), name) {
        // (the target's path, a guess where it moved meanwhile; the link's own name where it
        // leads nowhere)
        let p = o_path(rel, 0).and_then(|fd| named_so(&fd, &lexical(), || o_path(rel, 0)));
        if let Some(p) = p {
            return p;
        }
    }
    let parent_path = match parent_fd {
        _ if parent == b"." => Some(base.clone()),
        Some(fd) => {
            let lexical = normalize(&join(&base, parent));
            named_so(&fd, &lexical, || o_path(parent, libc::O_DIRECTORY))
                .and_then(|(p, ok)| ok.then_some(p))
        }
        None => None,
    };
    match parent_path {
        Some(p) => (join(&p, name), true),
        None if !single => {
            // Removed under us (`rmdir a/x/y/z`, then `rm -r a/x` at once): what is left of
            // the way is still resolved on disk (`a` may be a symlink), only the rest guessed.
            let guess = on_disk_as_far_as_it_goes(dfd, trimmed, parent.len(), resolve);
            (guess.unwrap_or_else(lexical), false)
        }
        None => gone(),
    }
}

/// The host path of `fd`, which a caller's string opened, and whether that string still
/// names it so (false: renamed while we looked, the path a guess). /proc names it as it is
/// named when read, and a rename since the open (`mkdir d/x; mv d e`, the agent a little
/// behind) gives its later name. The string's own lexical path (`lexical`) is its name by the
/// string; any other (symlinks on the way) is checked: the string opened again (`reopen`) and
/// that path must both be the same file, and /proc must name it the same after those checks.
/// (Not by its ctime, which a rename sets: a file written meanwhile, a directory that got an
/// entry, has a new one too.)
fn named_so(
    fd: &OwnedFd,
    lexical: &[u8],
    reopen: impl FnOnce() -> Option<OwnedFd>,
) -> Option<(Vec<u8>, bool)> {
    let p = fd_path(fd)?;
    if p == lexical {
        return Some((p, true));
    }
    let id = |st: libc::stat| (st.st_dev, st.st_ino);
    let same = || {
        let it = id(crate::sys::fstat(fd.as_fd()).ok()?);
        let again = id(crate::sys::fstat(reopen()?.as_fd()).ok()?);
        let now = fs::metadata(std::ffi::OsStr::from_bytes(&p)).ok()?;
        Some(again == it && (now.dev(), now.ino()) == it && fd_path(fd).as_ref() == Some(&p))
    };
    let ok = same().unwrap_or(false);
    Some((p, ok))
}

/// Whether `name` in `dir` is a symlink (a name that is not there is none).
fn is_symlink(dir: &OwnedFd, name: &[u8]) -> bool {
    cstr(name).is_some_and(|c| {
        crate::sys::fstatat(dir.as_fd(), &c, libc::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
    })
}

/// The longest leading part of `rel` shorter than `rel[..failed]` (whole components; that
/// one did not open) that still opens as a directory, resolved on disk, and the rest of `rel`
/// joined to it lexically.
fn on_disk_as_far_as_it_goes(dfd: i32, rel: &[u8], failed: usize, resolve: u64) -> Option<Vec<u8>> {
    let mut cut = failed.min(rel.len());
    while let Some(i) = rel[..cut].iter().rposition(|&c| c == b'/') {
        cut = i;
        let head = &rel[..cut];
        if head.is_empty() || head.ends_with(b"/") {
            continue;
        }
        if let Some(p) = openat2(dfd, head, libc::O_PATH | libc::O_DIRECTORY, resolve)
            .and_then(|fd| fd_path(&fd))
        {
            return Some(normalize(&join(&p, trim_leading_slashes(&rel[cut..]))));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path string of writer 77 (thread 78), as it went to a syscall.
    fn sp<'a>(base: &'a [u8], string: &'a [u8], cwd: Option<&'a [u8]>) -> StrPath<'a> {
        StrPath {
            base,
            string,
            absolute: string.starts_with(b"/"),
            nofollow: true,
            cwd,
            pid: 77,
            tid: 78,
        }
    }

    #[test]
    fn proc_self_root_needs_no_live_writer() {
        let sp = sp(b"/var/lib/ct/rootfs", b"/proc/self/root/srv/app/x", None);
        assert_eq!(
            proc_rewrite(&sp).unwrap(),
            (b"/var/lib/ct/rootfs".to_vec(), b"/srv/app/x".to_vec(), true)
        );
        let sp = StrPath {
            string: b"/proc/self/rootfs/x",
            ..sp
        };
        assert_eq!(proc_rewrite(&sp).unwrap().1, b"/proc/77/rootfs/x");
    }

    #[test]
    fn proc_self_is_the_writer() {
        let sp = sp(b"/", b"/proc/self/cwd/a/b", Some(b"/srv/app"));
        assert_eq!(
            proc_rewrite(&sp).unwrap(),
            (b"/srv/app".to_vec(), b"a/b".to_vec(), false)
        );
        let sp = StrPath {
            string: b"/proc/thread-self/fd/3",
            cwd: None,
            ..sp
        };
        assert_eq!(proc_rewrite(&sp).unwrap().1, b"/proc/77/task/78/fd/3");
        let sp = StrPath {
            string: b"/proc/1/cwd",
            ..sp
        };
        assert!(proc_rewrite(&sp).is_none());
    }

    #[test]
    fn resolves_through_symlinks_on_disk() {
        let d = std::env::temp_dir().join(format!("ownwatch-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("real/sub")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        let base = d.as_os_str().as_bytes();
        let real = fs::canonicalize(d.join("real")).unwrap();
        let real = real.as_os_str().as_bytes();
        let sp = sp(base, b"link/sub/../new", None);
        let (p, exact) = resolve_str(&sp);
        assert!(exact);
        assert_eq!(p, join(real, b"new"));
        // nofollow on the link itself keeps its name; follow goes to the target.
        let sp = StrPath {
            string: b"link",
            ..sp
        };
        assert_eq!(
            resolve_str(&sp).0,
            join(
                fs::canonicalize(&d).unwrap().as_os_str().as_bytes(),
                b"link"
            )
        );
        let sp = StrPath {
            nofollow: false,
            ..sp
        };
        assert_eq!(resolve_str(&sp).0, real);
        fs::remove_dir_all(&d).unwrap();
    }

    /// `rmdir a/x/y/z` racing `rm -r a/x`: the directory `a/x/y` is gone when we look, but
    /// `a` is still there and is a symlink: the guess goes through its target, and says it
    /// is one.
    #[test]
    fn a_gone_directory_is_guessed_from_what_is_left() {
        let t = crate::testutil::temp_dir("gone");
        let real = t.path().join("real");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("a")).unwrap();
        let base = t.path().as_os_str().as_bytes();
        let sp = sp(base, b"a/x/y/z", None);
        let (p, exact) = resolve_str(&sp);
        assert!(!exact);
        assert_eq!(p, join(real.as_os_str().as_bytes(), b"x/y/z"));
        // nothing of the way left: the lexical guess
        let sp = StrPath {
            string: b"b/x/y/z",
            ..sp
        };
        assert_eq!(resolve_str(&sp), (join(base, b"b/x/y/z"), false));
        // a plain name in a directory that is there is exact
        fs::create_dir_all(real.join("x/y")).unwrap();
        let sp = StrPath {
            string: b"a/x/y/z",
            ..sp
        };
        assert_eq!(
            resolve_str(&sp),
            (join(real.as_os_str().as_bytes(), b"x/y/z"), true)
        );
    }

    /// `rm -r a/x` reports `y` in `a/x` and removes `a/x` right after, maybe between our
    /// opening `a/x` and reading its path: /proc then says "a/x (deleted)", which is no path.
    /// A directory really named so keeps its name.
    #[test]
    fn a_directory_removed_while_open_has_no_path() {
        let t = crate::testutil::temp_dir("fdpath");
        let x = t.path().join("x");
        fs::create_dir(&x).unwrap();
        let fd = open_dir(x.as_os_str().as_bytes()).unwrap();
        assert_eq!(fd_path(&fd).unwrap(), x.as_os_str().as_bytes());
        fs::remove_dir(&x).unwrap();
        assert_eq!(fd_path(&fd), None);
        let odd = t.path().join("x (deleted)");
        fs::create_dir(&odd).unwrap();
        let fd = open_dir(odd.as_os_str().as_bytes()).unwrap();
        assert_eq!(fd_path(&fd).unwrap(), odd.as_os_str().as_bytes());
    }

    /// `f` while another thread renames `dir/a` to `dir/b` and back, as fast as it can.
    fn while_renamed<T>(dir: &std::path::Path, a: &str, b: &str, f: impl FnOnce() -> T) -> T {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = fs::rename(dir.join(a), dir.join(b));
                    let _ = fs::rename(dir.join(b), dir.join(a));
                }
            });
            let r = f();
            stop.store(true, Ordering::Relaxed);
            r
        })
    }

    /// A follow op's string whose object is renamed while we resolve it (`chmod n; mv n m`
    /// with the agent a little behind): the op's path is the name it went through, never the
    /// object's later name, which reading back an fd of the object would give.
    #[test]
    fn an_object_renamed_while_resolved_keeps_the_name_of_the_op() {
        let t = crate::testutil::temp_dir("renamed");
        fs::write(t.path().join("a"), b"x").unwrap();
        let base = t.path().as_os_str().as_bytes();
        let sp = StrPath {
            nofollow: false,
            ..sp(base, b"a", None)
        };
        let wrong = while_renamed(t.path(), "a", "b", || {
            (0..20_000)
                .filter(|_| resolve_str(&sp).0 != join(base, b"a"))
                .count()
        });
        assert_eq!(wrong, 0, "resolved to another name {wrong} times of 20000");
    }

    /// The same for the directory the name is in (`mkdir d/x; mv d e`): never its later name.
    /// A guess (not exact) is the answer for a directory renamed while we looked. (Renamed
    /// away for good each time, and a new one made in its place: a directory renamed there
    /// and back between two of our calls is not told from one that stayed.)
    #[test]
    fn a_directory_renamed_while_resolved_keeps_the_name_of_the_op() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let t = crate::testutil::temp_dir("dirrenamed");
        let dir = t.path();
        fs::create_dir(dir.join("p")).unwrap();
        fs::write(dir.join("p/x"), b"x").unwrap();
        // through a symlink, its path is checked another way (named_so)
        std::os::unix::fs::symlink("p", dir.join("l")).unwrap();
        let base = dir.as_os_str().as_bytes();
        let stop = AtomicBool::new(false);
        let wrong = std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = fs::rename(dir.join("p"), dir.join(format!("q{i}")));
                    let _ = fs::create_dir(dir.join("p"));
                    let _ = fs::write(dir.join("p/x"), b"x");
                }
            });
            let mut wrong = 0;
            for (string, nofollow) in [("p/x", true), ("p/x", false), ("l/x", true), ("l/x", false)]
            {
                let sp = StrPath {
                    nofollow,
                    ..sp(base, string.as_bytes(), None)
                };
                for _ in 0..5_000 {
                    let (p, exact) = resolve_str(&sp);
                    if exact && p != join(base, b"p/x") {
                        wrong += 1;
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
            wrong
        });
        assert_eq!(wrong, 0, "resolved to another name {wrong} times of 20000");
    }

    /// A follow op through a symlink whose target changes meanwhile (a chmod, a write: its
    /// ctime): the path is the target's, a guess at worst, never the link's own name (the
    /// 6.12 tracepoint test `root_truncate_and_write_variants` got "wsl" for "w" that way).
    #[test]
    fn a_symlink_to_a_file_changing_meanwhile_leads_to_the_file() {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        let t = crate::testutil::temp_dir("linkchmod");
        let w = t.path().join("w");
        fs::write(&w, b"x").unwrap();
        std::os::unix::fs::symlink("w", t.path().join("wsl")).unwrap();
        let base = t.path().as_os_str().as_bytes();
        let sp = StrPath {
            nofollow: false,
            ..sp(base, b"wsl", None)
        };
        let stop = AtomicBool::new(false);
        let wrong = std::thread::scope(|s| {
            s.spawn(|| {
                for m in [0o600, 0o644].into_iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = fs::set_permissions(&w, fs::Permissions::from_mode(m));
                }
            });
            let n = (0..20_000)
                .filter(|_| resolve_str(&sp).0 != join(base, b"w"))
                .count();
            stop.store(true, Ordering::Relaxed);
            n
        });
        assert_eq!(wrong, 0, "not the target {wrong} times of 20000");
    }

    /// A directory reached through a symlink that gets and loses entries meanwhile (a busy
    /// tree, `mkdir outlink/x` in path_forms): exact, through the link, every time.
    #[test]
    fn a_busy_directory_through_a_symlink_is_exact() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let t = crate::testutil::temp_dir("busylink");
        let real = t.path().join("real");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink("real", t.path().join("l")).unwrap();
        let base = t.path().as_os_str().as_bytes();
        let want = join(real.as_os_str().as_bytes(), b"new");
        let sp = sp(base, b"l/new", None);
        let stop = AtomicBool::new(false);
        let wrong = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = fs::create_dir(real.join("churn"));
                    let _ = fs::remove_dir(real.join("churn"));
                }
            });
            let n = (0..10_000)
                .filter(|_| resolve_str(&sp) != (want.clone(), true))
                .count();
            stop.store(true, Ordering::Relaxed);
            n
        });
        assert_eq!(wrong, 0, "not exact {wrong} times of 10000");
    }
}
