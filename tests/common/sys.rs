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

/// syscall(nr, args...) with up to six arguments (missing ones are 0).
pub fn raw_syscall(nr: libc::c_long, a: &[libc::c_long]) -> libc::c_long {
    assert!(a.len() <= 6);
    let g = |i: usize| a.get(i).copied().unwrap_or(0);
    unsafe { libc::syscall(nr, g(0), g(1), g(2), g(3), g(4), g(5)) }
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
