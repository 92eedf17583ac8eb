//! Acting as other users: forked actors with chosen credentials and a known comm.

use std::ffi::CString;

use super::{check, errno};

/// The comm every forked actor sets, so events can be checked to come from it.
pub const ACTOR_COMM: &str = "owt-actor";

/// Credentials of a forked actor.
#[derive(Clone, Copy, Debug)]
pub enum Creds {
    /// Unchanged: uid 0, fsuid 0.
    Root,
    /// All of real/effective/saved/fs uid and gid set; no supplementary groups.
    User(u32, u32),
    /// Real uid/gid set, effective, saved and fs ids stay 0 (a setuid-root program).
    RealUser(u32, u32),
    /// Real/effective/saved stay 0; only fsuid/fsgid set (setfsuid).
    FsUser(u32, u32),
}

fn apply_creds(c: Creds) -> Result<(), String> {
    unsafe {
        match c {
            Creds::Root => {}
            Creds::User(u, g) => {
                check("setgroups", libc::setgroups(0, std::ptr::null()) as _)?;
                check("setresgid", libc::setresgid(g, g, g) as _)?;
                check("setresuid", libc::setresuid(u, u, u) as _)?;
            }
            Creds::RealUser(u, g) => {
                check("setgroups", libc::setgroups(0, std::ptr::null()) as _)?;
                check("setresgid", libc::setresgid(g, 0, 0) as _)?;
                check("setresuid", libc::setresuid(u, 0, 0) as _)?;
            }
            Creds::FsUser(u, g) => {
                libc::setfsgid(g);
                libc::setfsuid(u);
                // setfsuid returns the previous value: asking again must return the new one.
                if libc::setfsgid(g) as u32 != g || libc::setfsuid(u) as u32 != u {
                    return Err("setfsuid/setfsgid did not take".into());
                }
            }
        }
        let name = CString::new(ACTOR_COMM).unwrap();
        libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
        libc::umask(0);
    }
    Ok(())
}

/// Fork; in the child set `creds` (and comm = ACTOR_COMM, umask 0), run `f`, `_exit(0)` on
/// Ok, `_exit(1)` on Err or panic. The parent waits and panics with the child's error.
/// Returns the child's pid (the `pid`/`tid` of the events it caused).
pub fn run_as<F: FnOnce() -> Result<(), String>>(creds: Creds, f: F) -> i32 {
    let mut fds = [0i32; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        unsafe { libc::close(fds[0]) };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply_creds(creds)?;
            f()
        }));
        let msg = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(p) => Some(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
            ),
        };
        unsafe {
            if let Some(m) = msg {
                libc::write(fds[1], m.as_ptr() as *const libc::c_void, m.len());
                libc::_exit(1);
            }
            libc::_exit(0);
        }
    }
    unsafe { libc::close(fds[1]) };
    let mut status = 0;
    loop {
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        assert!(
            r < 0 && errno() == libc::EINTR,
            "waitpid: {}",
            std::io::Error::last_os_error()
        );
    }
    // The child is gone: whatever it wrote is in the pipe. Read without waiting for EOF (a
    // concurrently forked child of another test may hold a copy of the write end).
    unsafe { libc::fcntl(fds[0], libc::F_SETFL, libc::O_NONBLOCK) };
    let mut msg = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n <= 0 {
            break;
        }
        msg.extend_from_slice(&buf[..n as usize]);
    }
    unsafe { libc::close(fds[0]) };
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(
        ok,
        "actor {creds:?} (pid {pid}) failed (status {status:#x}): {}",
        String::from_utf8_lossy(&msg)
    );
    pid
}
