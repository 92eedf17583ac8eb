//! The safe open of the `-o` file: the agent runs as root and the path may lie where others
//! can write (`/tmp`), so the directories on the way are walked one component at a time and
//! the file must be a regular file of ours that no one else can write (see [`open_output`]).

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;

use crate::sys::{self, fstat, fstatat};

/// Opens `path` for appending event lines, as root, where others may have planted things:
/// - the directories on the way are resolved one component at a time, and a symlink among
///   them is followed only when it belongs to root or to us (so `/tmp/evil -> /etc`, made by
///   a user, is refused); no directory on the way may be writable by others without the
///   sticky bit (someone could swap what follows);
/// - the file itself is opened O_NOFOLLOW|O_NONBLOCK|O_NOCTTY|O_CLOEXEC|O_APPEND, created
///   0640 when absent; a symlink, FIFO, socket or device there is refused without being
///   opened for writing, and nothing ever blocks;
/// - the opened file must be a regular file owned by our euid, with one link (not a hard link
///   to some other file), not writable by group or others. Nothing is chmod-ed: a file that
///   fails is refused, and the error says why.
///
/// The error is one line: "PATH: reason".
pub fn open_output(path: &Path) -> io::Result<File> {
    let fail = |kind: io::ErrorKind, why: String| {
        io::Error::new(kind, format!("{}: {why}", path.display()))
    };
    let os = |e: io::Error| {
        let desc = e
            .raw_os_error()
            .map(|c| nix::errno::Errno::from_raw(c).desc().to_string())
            .unwrap_or_else(|| e.to_string());
        fail(e.kind(), format!("cannot open: {desc}"))
    };
    let name = match path.components().next_back() {
        Some(Component::Normal(n)) => n.to_os_string(),
        _ => {
            return Err(fail(
                io::ErrorKind::InvalidInput,
                "is not a file name".into(),
            ))
        }
    };
    let parent = path.parent().unwrap_or(Path::new(""));
    let dir = open_dir_safely(parent).map_err(|e| match e {
        Walk::Os(e) => os(e),
        Walk::Refused(why) => fail(io::ErrorKind::PermissionDenied, why),
    })?;
    let cname = CString::new(name.into_vec())
        .map_err(|_| fail(io::ErrorKind::InvalidInput, "contains a NUL byte".into()))?;
    let euid = nix::unistd::geteuid().as_raw();
    let refuse = |why: String| fail(io::ErrorKind::PermissionDenied, why);

    // What is there now: refuse a non-file before opening it (opening a device or a FIFO can
    // have effects of its own). The fstat below is the check that counts.
    match fstatat(dir.as_fd(), &cname, libc::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => {
            if let Some(why) = not_regular(st.st_mode) {
                return Err(refuse(why));
            }
        }
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(os(e.into())),
    }
    let flags = libc::O_WRONLY
        | libc::O_APPEND
        | libc::O_CREAT
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_NOCTTY
        | libc::O_CLOEXEC;
    let file = match sys::openat_mode(dir.as_fd(), &cname, flags, 0o640) {
        Ok(fd) => File::from(fd),
        // Swapped for a symlink since the look above.
        Err(Errno::ELOOP) => {
            return Err(refuse("is a symbolic link; refusing to follow it".into()))
        }
        Err(e) => return Err(os(e.into())),
    };
    let st = fstat(file.as_fd()).map_err(|e| os(e.into()))?;
    if let Some(why) = not_ours(&st, euid) {
        return Err(refuse(why));
    }
    // Back to ordinary blocking writes (O_NONBLOCK only kept the open from waiting).
    sys::clear_nonblock(file.as_fd()).map_err(|e| os(e.into()))?;
    Ok(file)
}

/// Why the opened file is not one to append events to: not a regular file of `euid`'s with
/// one link that no one else can write.
fn not_ours(st: &libc::stat, euid: u32) -> Option<String> {
    if let Some(why) = not_regular(st.st_mode) {
        return Some(why);
    }
    if st.st_uid != euid {
        return Some(format!(
            "is owned by uid {}, not by uid {euid} (ownwatch itself); refusing to append to it",
            st.st_uid
        ));
    }
    if st.st_nlink != 1 {
        return Some(format!(
            "has {} hard links; refusing to append to it",
            st.st_nlink
        ));
    }
    if st.st_mode & 0o022 != 0 {
        return Some(format!(
            "is writable by group or others (mode {:04o}); refusing to append to it \
             (chmod go-w it first)",
            st.st_mode & 0o7777
        ));
    }
    None
}

/// Why a file of this mode is not one to append events to.
fn not_regular(mode: libc::mode_t) -> Option<String> {
    let what = match mode & libc::S_IFMT {
        libc::S_IFREG => return None,
        libc::S_IFLNK => return Some("is a symbolic link; refusing to follow it".into()),
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "of an unknown type",
    };
    Some(format!("is {what}, not a regular file; refusing it"))
}

/// The checks of [`open_dir_safely`] for another file the agent writes as root (`--metrics`):
/// an O_PATH fd of `dir`, or why not, naming the directory ("directory /x: No such file or
/// directory", "/tmp/evil is a symbolic link owned by uid 1000; refusing to follow it").
pub fn open_dir_checked(dir: &Path) -> Result<OwnedFd, String> {
    open_dir_safely(dir).map_err(|e| match e {
        Walk::Os(e) => format!(
            "directory {}: {}",
            dir.display(),
            e.raw_os_error()
                .map(|c| Errno::from_raw(c).desc().to_string())
                .unwrap_or_else(|| e.to_string())
        ),
        Walk::Refused(why) => why,
    })
}

enum Walk {
    Os(io::Error),
    Refused(String),
}

impl From<io::Error> for Walk {
    fn from(e: io::Error) -> Walk {
        Walk::Os(e)
    }
}

/// An O_PATH fd of directory `dir`, resolved one component at a time with O_NOFOLLOW. A
/// symlink on the way is followed only when root or our euid owns it (at most 40 of them);
/// every directory passed must not be writable by others unless it is sticky.
fn open_dir_safely(dir: &Path) -> Result<OwnedFd, Walk> {
    const MAX_LINKS: usize = 40;
    let euid = nix::unistd::geteuid().as_raw();
    let start = if dir.is_absolute() { "/" } else { "." };
    let mut cur = step(sys::cwd(), OsStr::new(start))?;
    // The path as walked, for messages.
    let mut shown = if dir.is_absolute() {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    check_dir(&cur, &shown)?;
    let mut todo: Vec<OsString> = Vec::new(); // components still to walk, last first
    let push_path = |todo: &mut Vec<OsString>, p: &Path| {
        for c in p.components().rev() {
            todo.push(match c {
                Component::RootDir => OsString::from("/"),
                Component::CurDir => OsString::from("."),
                Component::ParentDir => OsString::from(".."),
                Component::Normal(n) => n.to_os_string(),
                Component::Prefix(_) => continue,
            });
        }
    };
    push_path(&mut todo, dir);
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == "/" {
            cur = step(sys::cwd(), OsStr::new("/"))?;
            shown = PathBuf::from("/");
            continue;
        }
        if c == "." {
            continue;
        }
        let next = step(cur.as_fd(), &c)?;
        shown.push(&c);
        let st = fstat(next.as_fd()).map_err(io::Error::from)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => {
                if st.st_uid != 0 && st.st_uid != euid {
                    return Err(Walk::Refused(format!(
                        "{} is a symbolic link owned by uid {}; refusing to follow it",
                        shown.display(),
                        st.st_uid
                    )));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(Walk::Os(io::Error::from_raw_os_error(libc::ELOOP)));
                }
                let target = sys::readlink(next.as_fd())?;
                shown.pop();
                push_path(&mut todo, &target);
            }
            libc::S_IFDIR => {
                check_dir(&next, &shown)?;
                cur = next;
            }
            _ => return Err(Walk::Os(io::Error::from_raw_os_error(libc::ENOTDIR))),
        }
    }
    Ok(cur)
}

fn check_dir(fd: &OwnedFd, shown: &Path) -> Result<(), Walk> {
    let st = fstat(fd.as_fd()).map_err(io::Error::from)?;
    if st.st_mode & 0o002 != 0 && st.st_mode & libc::S_ISVTX == 0 {
        let shown = if shown.as_os_str().is_empty() {
            Path::new(".")
        } else {
            shown
        };
        return Err(Walk::Refused(format!(
            "directory {} is writable by others and not sticky (mode {:04o}); refusing it",
            shown.display(),
            st.st_mode & 0o7777
        )));
    }
    Ok(())
}

/// One step of [`open_dir_safely`]: an O_PATH handle of `name` in `dir`, not following it.
fn step(dir: BorrowedFd, name: &OsStr) -> io::Result<OwnedFd> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(sys::open_handle(dir, &c)?)
}
