//! Integration tests for `ownwatch watch` and `ownwatch probe`: the real binary, real BPF,
//! real syscalls made by forked actors with chosen credentials. Run as root:
//! `cargo test --test watch`. Environment:
//! - CI=true: never skip (a non-root run fails).
//! - OWNWATCH_TEST_BACKEND=lsm|fentry|kprobe|tracepoint: pass `--backend` and expect it in events.
//! - OWNWATCH_EXPECT_CHOICE: what `probe` must choose here (default "tracepoint", the dev/CI
//!   machine; the qemu matrix sets it per kernel).
//!
//! One test binary, `watch`, by topic: `ops` and `attrs` (every op through every syscall),
//! `uring` (the same through io_uring), `actors` (who counts as offending), `concurrency`
//! (writers at once: nothing lost silently), `negatives` (what
//! must not be reported), `paths` (path forms), `names` (deep paths, long and odd names), `cli`
//! (output formats, -v), `kernel_wide` (usage, bad input, probe: the same whatever the backend;
//! the kernel matrix runs it once per kernel) and `lifecycle` (signals, closed stdout, roots
//! that go away).
//! Below: the syscall helpers the forked actors share.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod actors;
mod attrs;
mod cli;
mod concurrency;
mod cron;
mod fix;
mod identity;
mod kernel_wide;
mod lifecycle;
mod names;
mod negatives;
mod ops;
mod paths;
mod python;
mod tools;
mod uring;

use std::ffi::CString;
use std::path::Path;

use common::*;
use libc::c_long;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn dirfd(p: &Path) -> Result<c_long, String> {
    sc!(
        nr::SYS_open,
        cp(p),
        libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC
    )
}

fn rdonly(p: &Path) -> Result<c_long, String> {
    sc!(nr::SYS_open, cp(p), libc::O_RDONLY | libc::O_CLOEXEC)
}

/// openat(AT_FDCWD, p, flags | O_CLOEXEC, 0600): the fd.
fn open_fd(p: &Path, flags: i32) -> Result<c_long, String> {
    sc!(
        libc::SYS_openat,
        libc::AT_FDCWD,
        cp(p),
        flags | libc::O_CLOEXEC,
        0o600
    )
}

/// openat(AT_FDCWD, p, O_CREAT|O_WRONLY, mode) + close: one `create`.
fn create(p: &Path, mode: u32) -> Result<(), String> {
    let fd = sc!(
        libc::SYS_openat,
        libc::AT_FDCWD,
        cp(p),
        libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL | libc::O_CLOEXEC,
        mode
    )?;
    close(fd);
    Ok(())
}

/// open(p, flags, mode) + close.
fn open_close(p: &Path, flags: i32, mode: u32) -> Result<(), String> {
    let fd = sc!(nr::SYS_open, cp(p), flags, mode)?;
    close(fd);
    Ok(())
}

/// openat(dfd, name, flags, mode) + close.
fn openat_close(dfd: impl SysArg, name: CString, flags: i32, mode: u32) -> Result<(), String> {
    let fd = sc!(libc::SYS_openat, dfd, name, flags, mode)?;
    close(fd);
    Ok(())
}

/// Name the O_TMPFILE file open as `fd` `name` in `dfd` through its /proc/self/fd link
/// (linkat with AT_SYMLINK_FOLLOW), then close `fd`.
fn link_tmpfile(fd: c_long, dfd: c_long, name: &str) -> Result<(), String> {
    sc!(
        libc::SYS_linkat,
        libc::AT_FDCWD,
        cs(format!("/proc/self/fd/{fd}")),
        dfd,
        cs(name),
        libc::AT_SYMLINK_FOLLOW
    )?;
    close(fd);
    Ok(())
}

fn openat2(dfd: c_long, path: &CString, flags: i32, mode: u32) -> Result<c_long, String> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve: 0,
    };
    sc!(
        libc::SYS_openat2,
        dfd,
        path,
        &how as *const OpenHow,
        std::mem::size_of::<OpenHow>()
    )
}

/// This thread's CPU from now on (for ops whose records the kernel relates per CPU).
fn pin_to_cpu(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    check("sched_setaffinity", r.into()).map(|_| ())
}

fn mkdir(p: &Path, mode: u32) -> Result<(), String> {
    sc!(nr::SYS_mkdir, cp(p), mode)?;
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<(), String> {
    sc!(nr::SYS_rename, cp(from), cp(to))?;
    Ok(())
}

fn chdir(p: &Path) -> Result<(), String> {
    sc!(libc::SYS_chdir, cp(p))?;
    Ok(())
}
