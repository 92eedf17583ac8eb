//! The raw filesystem syscalls, one wrapper each, for `fix`, `scan`, the `-o` sink and the
//! watcher's path resolution: `*at()` opens and stats relative to a directory fd, the mount id
//! of an fd, owner and mode changes through an O_PATH handle, getdents64 into one buffer, and
//! plain writes.
//!
//! Nothing here decides anything: the rules (which flags, what is refused) live with the
//! callers. Errors are the kernel's errno; EINTR is retried where a call can block.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;

/// `AT_FDCWD` as a directory fd, for an absolute path (or one relative to the working dir).
pub fn cwd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is valid as a dirfd for every *at() call, for the life of the process.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// Standard output, for writes that bypass std's line-buffered `Stdout`.
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: fd 1 stays open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// openat(2) of `name` in `dir`; `mode` is used with O_CREAT only.
pub fn openat_mode(
    dir: BorrowedFd,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::c_uint,
) -> Result<OwnedFd, Errno> {
    loop {
        // SAFETY: valid NUL-terminated name; the result is a new fd we own.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) };
        if fd >= 0 {
            // SAFETY: fresh fd from the kernel.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// openat(2) of `name` in `dir`, creating nothing.
pub fn openat(dir: BorrowedFd, name: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    openat_mode(dir, name, flags, 0)
}

/// An O_PATH handle of `name` in `dir`, never following a symlink (a symlink there is itself
/// the handle's object).
pub fn open_handle(dir: BorrowedFd, name: &CStr) -> Result<OwnedFd, Errno> {
    openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
}

/// The directory `name` in `dir`, opened for reading: ELOOP or ENOTDIR when it is a symlink
/// or not a directory.
pub fn open_dir(dir: BorrowedFd, name: &CStr) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    )
}

/// A readable fd of the directory an O_PATH handle refers to: the same inode, no name lookup.
pub fn open_dir_of(h: BorrowedFd) -> Result<OwnedFd, Errno> {
    open_dir(h, c".")
}

pub fn fstatat(dir: BorrowedFd, name: &CStr, flags: libc::c_int) -> Result<libc::stat, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: the kernel fills `st` on success.
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), flags) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: initialised by the successful call.
    Ok(unsafe { st.assume_init() })
}

pub fn fstat(fd: BorrowedFd) -> Result<libc::stat, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: the kernel fills `st` on success.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: initialised by the successful call.
    Ok(unsafe { st.assume_init() })
}

/// statx of `name` in `dir` (empty: `dir` itself, with AT_EMPTY_PATH in `flags`) as a
/// `libc::stat`, plus the mount id when the kernel gives it (5.8+).
fn statx_raw(
    dir: BorrowedFd,
    name: &CStr,
    flags: libc::c_int,
) -> Result<(libc::stat, Option<u64>), Errno> {
    let mut x = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: the kernel fills `x` on success.
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_BASIC_STATS | libc::STATX_MNT_ID,
            x.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: zero-initialised, then filled by the successful call.
    let x = unsafe { x.assume_init() };
    // SAFETY: all-zero is a valid libc::stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    st.st_dev = libc::makedev(x.stx_dev_major, x.stx_dev_minor);
    st.st_ino = x.stx_ino;
    st.st_mode = x.stx_mode as u32;
    st.st_nlink = x.stx_nlink as _;
    st.st_uid = x.stx_uid;
    st.st_gid = x.stx_gid;
    st.st_rdev = libc::makedev(x.stx_rdev_major, x.stx_rdev_minor);
    st.st_size = x.stx_size as _;
    st.st_blksize = x.stx_blksize as _;
    st.st_blocks = x.stx_blocks as _;
    st.st_atime = x.stx_atime.tv_sec as _;
    st.st_atime_nsec = x.stx_atime.tv_nsec as _;
    st.st_mtime = x.stx_mtime.tv_sec as _;
    st.st_mtime_nsec = x.stx_mtime.tv_nsec as _;
    st.st_ctime = x.stx_ctime.tv_sec as _;
    st.st_ctime_nsec = x.stx_ctime.tv_nsec as _;
    let mnt = (x.stx_mask & libc::STATX_MNT_ID != 0).then_some(x.stx_mnt_id);
    Ok((st, mnt))
}

/// lstat of `name` in `dir` (mount points are crossed, as by any lookup), plus the mount id of
/// what it found when the kernel says (statx, 5.8+).
pub fn stat_at(dir: BorrowedFd, name: &CStr) -> Result<(libc::stat, Option<u64>), Errno> {
    match statx_raw(dir, name, libc::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOSYS) => Ok((fstatat(dir, name, libc::AT_SYMLINK_NOFOLLOW)?, None)),
        r => r,
    }
}

/// fstat of `fd` and the id of the mount it lies on.
pub fn stat_mnt(fd: BorrowedFd) -> Result<(libc::stat, u64), Errno> {
    match statx_raw(fd, c"", libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) {
        Ok((st, Some(m))) => Ok((st, m)),
        Ok((st, None)) => Ok((st, fdinfo_mnt_id(fd)?)),
        Err(Errno::ENOSYS) => Ok((fstat(fd)?, fdinfo_mnt_id(fd)?)),
        Err(e) => Err(e),
    }
}

/// The id of the mount `fd` lies on.
pub fn mnt_id(fd: BorrowedFd) -> Result<u64, Errno> {
    stat_mnt(fd).map(|(_, m)| m)
}

/// Kernels before 5.8: the `mnt_id:` line of /proc/self/fdinfo/N (3.15+).
fn fdinfo_mnt_id(fd: BorrowedFd) -> Result<u64, Errno> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    text.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(Errno::ENOTSUP)
}

/// The text of the symlink an O_PATH|O_NOFOLLOW fd refers to.
pub fn readlink(fd: BorrowedFd) -> io::Result<PathBuf> {
    Ok(nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")?.into())
}

/// lchown of the object an O_PATH handle refers to, without looking up a name.
pub fn chown_handle(fd: BorrowedFd, uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall on a borrowed fd and a static empty string.
    let r = unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// fchmodat2(2), 6.6+: 452 on every architecture, but the libc crate names it only for some
/// (not aarch64-linux-gnu).
const SYS_FCHMODAT2: libc::c_long = 452;

/// chmod of the object an O_PATH handle refers to, without looking up a name: fchmodat2 with
/// AT_EMPTY_PATH (6.6+), else through the handle's /proc/self/fd link (fchmod refuses O_PATH
/// fds). `fd` must not be a symlink (the link would be followed).
pub fn chmod_handle(fd: BorrowedFd, mode: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall on a borrowed fd and a static empty string.
    let r = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH,
        )
    };
    if r == 0 {
        return Ok(());
    }
    match Errno::last() {
        Errno::ENOSYS | Errno::EINVAL => {}
        e => return Err(e),
    }
    let link = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    // SAFETY: plain syscall with a valid path.
    let r = unsafe { libc::fchmodat(libc::AT_FDCWD, link.as_ptr(), mode, 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Back to blocking I/O on `fd` (after an open that used O_NONBLOCK only not to wait).
pub fn clear_nonblock(fd: BorrowedFd) -> Result<(), Errno> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let fl = OFlag::from_bits_retain(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(fl & !OFlag::O_NONBLOCK))?;
    Ok(())
}

/// One write(2) of `buf` to `fd`.
pub fn write(fd: BorrowedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: writes from a valid slice.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes all of `buf` with `write` (one write(2) or the like), retrying after EINTR and short
/// writes. Returns how many bytes were written, and the error that stopped it if any (a write
/// of 0 bytes is `WriteZero`).
pub fn write_all_with(
    mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    buf: &[u8],
) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < buf.len() {
        match write(&buf[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(k) => done += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

/// Writes all of `buf` to `fd`.
pub fn write_all(fd: BorrowedFd, buf: &[u8]) -> io::Result<()> {
    write_all_with(|b| write(fd, b), buf).1
}

/// Raises the soft limit of open files to the hard one (deep trees keep one fd per level).
pub fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Directory entries straight from getdents64 into one buffer: no allocation per entry, and the
/// names are NUL-terminated in place, ready for the *at() calls.
pub struct Dents {
    /// u64 storage keeps the kernel's 8-byte aligned records aligned.
    buf: Vec<u64>,
    len: usize,
    pos: usize,
}

/// One entry, borrowed from the buffer. `.` and `..` are never returned.
pub struct Dent<'a> {
    pub name: &'a CStr,
}

impl Dents {
    const BYTES: usize = 64 * 1024;

    pub fn new() -> Self {
        Dents {
            buf: vec![0u64; Self::BYTES / 8],
            len: 0,
            pos: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: viewing initialised u64 storage as bytes.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.buf.len() * 8) }
    }

    pub fn is_drained(&self) -> bool {
        self.pos >= self.len
    }

    /// Reads the next batch of entries. Ok(false) at the end of the directory.
    pub fn fill(&mut self, dir: BorrowedFd) -> io::Result<bool> {
        loop {
            // SAFETY: the kernel writes at most the buffer's size into it.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    dir.as_raw_fd(),
                    self.buf.as_mut_ptr().cast::<u8>(),
                    self.buf.len() * 8,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.len = 0;
                self.pos = 0;
                return Err(e);
            }
            self.len = n as usize;
            self.pos = 0;
            return Ok(n > 0);
        }
    }

    /// The next entry of the current batch, skipping `.` and `..`.
    pub fn next_entry(&mut self) -> Option<Dent<'_>> {
        while self.pos < self.len {
            let (next, name) = {
                let b = self.bytes();
                let pos = self.pos;
                // struct linux_dirent64 {
                //     u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
                let reclen = u16::from_ne_bytes([b[pos + 16], b[pos + 17]]) as usize;
                if reclen < 20 || pos + reclen > self.len {
                    // Cannot happen with a sane kernel; stop rather than read garbage.
                    (self.len, None)
                } else {
                    let name = CStr::from_bytes_until_nul(&b[pos + 19..pos + reclen])
                        .ok()
                        .filter(|n| !matches!(n.to_bytes(), b"" | b"." | b".."))
                        .map(CStr::as_ptr);
                    (pos + reclen, name)
                }
            };
            self.pos = next;
            if let Some(p) = name {
                // SAFETY: `p` points at a NUL-terminated name inside `self.buf`, which is not
                // written again before the returned borrow of `self` ends.
                return Some(Dent {
                    name: unsafe { CStr::from_ptr(p) },
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn dents_lists_every_name_once() {
        let t = crate::testutil::temp_dir("dents");
        let mut want: Vec<Vec<u8>> = (0..3000)
            .map(|i| format!("name-{i:05}-{}", "x".repeat(i % 200)).into_bytes())
            .collect();
        want.push(b"\xff\xfe odd".to_vec());
        for n in &want {
            std::fs::write(t.path().join(std::ffi::OsStr::from_bytes(n)), b"").unwrap();
        }
        let c = CString::new(t.path().as_os_str().as_bytes()).unwrap();
        let fd = openat(cwd(), &c, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let mut d = Dents::new();
        let mut got = Vec::new();
        let mut batches = 0;
        while d.fill(fd.as_fd()).unwrap() {
            batches += 1;
            while let Some(e) = d.next_entry() {
                got.push(e.name.to_bytes().to_vec());
            }
        }
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert!(batches > 1, "the test should span several getdents calls");
    }

    #[test]
    fn write_all_with_retries_short_writes_and_eintr() {
        let mut calls = 0;
        let mut got = Vec::new();
        let (n, r) = write_all_with(
            |b| {
                calls += 1;
                match calls {
                    2 => Err(io::ErrorKind::Interrupted.into()),
                    5 => Ok(0),
                    _ => {
                        got.push(b[0]);
                        Ok(1)
                    }
                }
            },
            b"abcdef",
        );
        assert_eq!((n, got.as_slice()), (3, &b"abc"[..]));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WriteZero);
    }
}
