//! Raw syscalls as the actors make them: C strings of paths and raw bytes, `sc!` (exactly
//! one syscall, every argument a long) and `fails!` (that syscall must fail with an errno).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub fn bytes(p: impl AsRef<Path>) -> Vec<u8> {
    p.as_ref().as_os_str().as_bytes().to_vec()
}

/// A C string from a path or from raw bytes.
pub fn cs(p: impl AsRef<[u8]>) -> CString {
    CString::new(p.as_ref().to_vec()).expect("no NUL in test paths")
}

/// A C string of a path.
pub fn cp(p: impl AsRef<Path>) -> CString {
    cs(bytes(p))
}

/// `dir` joined with raw name bytes (which may be non-UTF-8).
pub fn join_bytes(dir: impl AsRef<Path>, name: &[u8]) -> PathBuf {
    dir.as_ref().join(std::ffi::OsStr::from_bytes(name))
}

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Turn a raw syscall result into a Result with a readable error.
pub fn check(what: &str, r: libc::c_long) -> Result<libc::c_long, String> {
    if r < 0 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(r)
    }
}

/// A syscall argument: integers as they are, C strings and raw pointers as addresses.
pub trait SysArg {
    fn arg(&self) -> libc::c_long;
}
macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl SysArg for $t {
            fn arg(&self) -> libc::c_long {
                *self as libc::c_long
            }
        }
    )*};
}
int_arg!(i32, u32, i64, u64, usize, isize, u16, i16);
impl SysArg for CString {
    fn arg(&self) -> libc::c_long {
        self.as_ptr() as libc::c_long
    }
}
impl SysArg for std::ffi::CStr {
    fn arg(&self) -> libc::c_long {
        self.as_ptr() as libc::c_long
    }
}
impl<T> SysArg for *const T {
    fn arg(&self) -> libc::c_long {
        *self as libc::c_long
    }
}
impl<T> SysArg for *mut T {
    fn arg(&self) -> libc::c_long {
        *self as libc::c_long
    }
}
impl<T: SysArg + ?Sized> SysArg for &T {
    fn arg(&self) -> libc::c_long {
        (**self).arg()
    }
}

/// syscall(nr, args...) with up to six arguments (missing ones are 0). `nr` may be one of
/// `nr`'s stand-ins (negative), made into its `*at` form here.
pub fn raw_syscall(nr: libc::c_long, a: &[libc::c_long]) -> libc::c_long {
    assert!(a.len() <= 6);
    let (nr, a) = nr::at_form(nr, a);
    let g = |i: usize| a.get(i).copied().unwrap_or(0);
    unsafe { libc::syscall(nr, g(0), g(1), g(2), g(3), g(4), g(5)) }
}

/// The path syscalls without a dirfd (`open`, `mkdir`, `rename`, ...) for `sc!` and `fails!`:
/// the libc crate's numbers where the architecture has them (x86_64). The generic syscall
/// table (arm64) has only their `*at` forms: there the names stand for those, called with
/// AT_FDCWD, which the kernel treats the same (one code path, the same events).
#[allow(non_upper_case_globals)]
pub mod nr {
    #[cfg(target_arch = "x86_64")]
    #[allow(unused_imports)] // (not every test binary makes them all)
    pub use libc::{
        SYS_access, SYS_chmod, SYS_chown, SYS_creat, SYS_lchown, SYS_link, SYS_mkdir, SYS_mknod,
        SYS_open, SYS_rename, SYS_rmdir, SYS_stat, SYS_symlink, SYS_unlink,
    };

    /// x86_64: `nr` and `a` as they are.
    #[cfg(target_arch = "x86_64")]
    pub fn at_form(nr: libc::c_long, a: &[libc::c_long]) -> (libc::c_long, Vec<libc::c_long>) {
        (nr, a.to_vec())
    }

    #[cfg(not(target_arch = "x86_64"))]
    mod standins {
        use libc::c_long;
        pub const SYS_open: c_long = -1;
        pub const SYS_creat: c_long = -2;
        pub const SYS_mkdir: c_long = -3;
        pub const SYS_mknod: c_long = -4;
        pub const SYS_symlink: c_long = -5;
        pub const SYS_link: c_long = -6;
        pub const SYS_rename: c_long = -7;
        pub const SYS_unlink: c_long = -8;
        pub const SYS_rmdir: c_long = -9;
        pub const SYS_chmod: c_long = -10;
        pub const SYS_chown: c_long = -11;
        pub const SYS_lchown: c_long = -12;
        pub const SYS_stat: c_long = -13;
        pub const SYS_access: c_long = -14;
    }
    #[cfg(not(target_arch = "x86_64"))]
    #[allow(unused_imports)]
    pub use standins::*;

    /// A stand-in as its `*at` syscall with AT_FDCWD; any other `nr` as it is.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn at_form(nr: libc::c_long, a: &[libc::c_long]) -> (libc::c_long, Vec<libc::c_long>) {
        let cwd = libc::AT_FDCWD as libc::c_long;
        let g = |i: usize| a.get(i).copied().unwrap_or(0);
        let creat = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as libc::c_long;
        let nofollow = libc::AT_SYMLINK_NOFOLLOW as libc::c_long;
        let rmdir = libc::AT_REMOVEDIR as libc::c_long;
        match nr {
            SYS_open => (libc::SYS_openat, vec![cwd, g(0), g(1), g(2)]),
            SYS_creat => (libc::SYS_openat, vec![cwd, g(0), creat, g(1)]),
            SYS_mkdir => (libc::SYS_mkdirat, vec![cwd, g(0), g(1)]),
            SYS_mknod => (libc::SYS_mknodat, vec![cwd, g(0), g(1), g(2)]),
            SYS_symlink => (libc::SYS_symlinkat, vec![g(0), cwd, g(1)]),
            SYS_link => (libc::SYS_linkat, vec![cwd, g(0), cwd, g(1), 0]),
            SYS_rename => (libc::SYS_renameat, vec![cwd, g(0), cwd, g(1)]),
            SYS_unlink => (libc::SYS_unlinkat, vec![cwd, g(0), 0]),
            SYS_rmdir => (libc::SYS_unlinkat, vec![cwd, g(0), rmdir]),
            SYS_chmod => (libc::SYS_fchmodat, vec![cwd, g(0), g(1), 0]),
            SYS_chown => (libc::SYS_fchownat, vec![cwd, g(0), g(1), g(2), 0]),
            SYS_lchown => (libc::SYS_fchownat, vec![cwd, g(0), g(1), g(2), nofollow]),
            SYS_stat => (libc::SYS_newfstatat, vec![cwd, g(0), g(1), 0]),
            SYS_access => (libc::SYS_faccessat, vec![cwd, g(0), g(1)]),
            _ => (nr, a.to_vec()),
        }
    }
}

/// `sc!(libc::SYS_x, args...)`: exactly that syscall, every argument passed as a long
/// (`cp(path)` temporaries live to the end of the statement); `?`-able Result.
#[macro_export]
macro_rules! sc {
    ($nr:expr $(, $a:expr)* $(,)?) => {
        // The scrutinee's temporaries (C strings) live until the call has returned.
        match [$($crate::common::SysArg::arg(&($a))),*] {
            args => $crate::common::check(
                concat!(stringify!($nr), "(", stringify!($($a),*), ")"),
                $crate::common::raw_syscall($nr, &args),
            ),
        }
    };
}

/// `fails!(errno, libc::SYS_x, args...)`: the syscall must fail with that errno.
#[macro_export]
macro_rules! fails {
    ($err:expr, $nr:expr $(, $a:expr)* $(,)?) => {{
        let r = match [$($crate::common::SysArg::arg(&($a))),*] {
            args => $crate::common::raw_syscall($nr, &args),
        };
        let e = $crate::common::errno();
        let what = concat!(stringify!($nr), "(", stringify!($($a),*), ")");
        if r >= 0 {
            Err(format!("{what} succeeded, expected errno {}", $err))
        } else if e != $err {
            Err(format!(
                "{what} failed with errno {e} ({}), expected errno {}",
                std::io::Error::from_raw_os_error(e),
                $err
            ))
        } else {
            Ok(())
        }
    }};
}

pub fn close(fd: libc::c_long) {
    unsafe {
        libc::close(fd as i32);
    }
}
