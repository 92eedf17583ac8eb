//! systemd's readiness protocol (sd_notify(3)) without libsystemd: under `Type=notify`,
//! systemd passes a datagram socket in `NOTIFY_SOCKET` and waits for `READY=1` before it calls
//! the service started. We say it only once every hook is attached, so `systemctl start
//! ownwatch && deploy` cannot miss the deploy's writes; then `STATUS=` with the backend, the
//! trees and the counts (`systemctl status`), and `STOPPING=1` on the way out.

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The socket systemd listens on, or nothing when not started by systemd (or when the socket
/// cannot be used: readiness is then systemd's problem to report, never a reason not to watch).
pub(super) struct Notify {
    sock: UnixDatagram,
    addr: SocketAddr,
    /// the last STATUS= sent: sent again only when it changes
    status: String,
}

impl Notify {
    /// From `NOTIFY_SOCKET`: a path, or `@name` for an abstract socket.
    pub(super) fn from_env() -> Option<Notify> {
        let v = std::env::var_os("NOTIFY_SOCKET")?;
        let v = v.as_encoded_bytes();
        let addr = match v.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name).ok()?,
            None if v.starts_with(b"/") => SocketAddr::from_pathname(OsStr::from_bytes(v)).ok()?,
            None => return None,
        };
        let sock = UnixDatagram::unbound().ok()?;
        Some(Notify {
            sock,
            addr,
            status: String::new(),
        })
    }

    /// One datagram of `KEY=value` lines. A failure is ignored: systemd may be restarting.
    fn send(&self, msg: &str) {
        let _ = self.sock.send_to_addr(msg.as_bytes(), &self.addr);
    }

    /// Every hook is attached: the service is up.
    pub(super) fn ready(&mut self, status: String) {
        self.send(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ));
        self.status = status;
    }

    pub(super) fn status(&mut self, status: String) {
        if status != self.status {
            self.send(&format!("STATUS={status}"));
            self.status = status;
        }
    }

    pub(super) fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify");
        let l = UnixDatagram::bind(&p).unwrap();
        l.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        (dir, p, l)
    }

    fn recv(l: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = l.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn ready_status_and_stopping_reach_the_socket() {
        let (_d, p, l) = listener();
        let addr = SocketAddr::from_pathname(&p).unwrap();
        let mut n = Notify {
            sock: UnixDatagram::unbound().unwrap(),
            addr,
            status: String::new(),
        };
        n.ready("up".into());
        let m = recv(&l);
        assert!(m.starts_with("READY=1\nSTATUS=up\nMAINPID="), "{m:?}");
        n.status("up".into()); // unchanged: not sent again
        n.status("busy".into());
        assert_eq!(recv(&l), "STATUS=busy");
        n.stopping();
        assert_eq!(recv(&l), "STOPPING=1");
    }

    /// NOTIFY_SOCKET: a path, `@name` (abstract), or nothing usable.
    #[test]
    fn notify_socket_forms() {
        let name = format!("ownwatch-notify-test-{}", std::process::id());
        let l = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        l.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let (_d, p, lp) = listener();
        // (the only test that touches NOTIFY_SOCKET)
        for (v, l) in [(format!("@{name}"), &l), (p.display().to_string(), &lp)] {
            std::env::set_var("NOTIFY_SOCKET", &v);
            Notify::from_env().expect(&v).stopping();
            assert_eq!(recv(l), "STOPPING=1", "{v}");
        }
        for v in ["", "relative/path"] {
            std::env::set_var("NOTIFY_SOCKET", v);
            assert!(Notify::from_env().is_none(), "{v:?}");
        }
        std::env::remove_var("NOTIFY_SOCKET");
        assert!(Notify::from_env().is_none());
    }
}
