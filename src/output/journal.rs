//! `-o journal`: each event (and each in-band note: lost, tree_gone) as one journal entry,
//! sent to systemd-journald over its native protocol without libsystemd.
//!
//! An entry is one datagram of fields to [`SOCKET`]: `KEY=value\n` when the value has no
//! newline, else the binary-safe `KEY\n<u64 LE length><bytes>\n` (paths, comm and exe are
//! arbitrary bytes; journald keeps them as they are). An entry too big for a datagram
//! (EMSGSIZE, ENOBUFS) goes, as sd_journal_sendv(3) sends it, in a sealed memfd passed with
//! SCM_RIGHTS in an otherwise empty datagram.
//!
//! journald restarting (the socket gone or refusing: ENOENT, ECONNREFUSED) or too slow to
//! keep up (EAGAIN after [`SEND_TIMEOUT`]) does not stop the agent and loses nothing
//! silently: the send is retried for a moment ([`RETRY_MS`]), then the entry is dropped and
//! counted; while that lasts each new entry gets one quick try. Once a send works again, an
//! entry `{"time":…,"op":"lost","count":N,"reason":"output"}` (PRIORITY 3) goes first, as a
//! full `-o FILE` does it; stderr says when the outage starts and when it ends.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

use super::{json_line, text_line, Event, Note};

/// journald's native socket.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// How long one send waits for room in journald's queue before it is EAGAIN.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// Pauses between the tries of an entry when journald stops taking them (≈ 0.3 s in all).
const RETRY_MS: [u64; 5] = [10, 20, 40, 80, 160];

/// syslog priorities (PRIORITY=)
pub const ERR: u8 = 3;
pub const WARNING: u8 = 4;
pub const NOTICE: u8 = 5;

/// The priority of an event: warning for what takes away or changes what the owner has
/// (chown, chmod, unlink, rmdir, rename, truncate), notice for the rest (what adds to the
/// tree: create, mkdir, mknod, symlink, link, write, setxattr, removexattr).
pub fn priority_of(op: &str) -> u8 {
    match op {
        "chown" | "chmod" | "unlink" | "rmdir" | "rename" | "truncate" => WARNING,
        _ => NOTICE,
    }
}

/// One journal entry in the native protocol, built field by field.
#[derive(Default)]
pub struct Entry {
    buf: Vec<u8>,
}

impl Entry {
    pub fn new() -> Entry {
        Entry {
            buf: Vec::with_capacity(2048),
        }
    }

    /// `key` must be a journal field name (A-Z, 0-9, _; not starting with _).
    pub fn field(&mut self, key: &str, value: &[u8]) -> &mut Entry {
        debug_assert!(key
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'));
        self.buf.extend_from_slice(key.as_bytes());
        if value.contains(&b'\n') {
            self.buf.push(b'\n');
            self.buf
                .extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            self.buf.push(b'=');
        }
        self.buf.extend_from_slice(value);
        self.buf.push(b'\n');
        self
    }

    pub fn num(&mut self, key: &str, v: impl itoa::Integer) -> &mut Entry {
        let mut b = itoa::Buffer::new();
        self.field(key, b.format(v).as_bytes())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// MESSAGE, PRIORITY, SYSLOG_IDENTIFIER: the fields every entry of ours starts with.
    /// `text` is a `--format text` line: its time (the journal stamps each entry) and newline
    /// are left out.
    fn start(text: &[u8], time: &str, priority: u8) -> Entry {
        let msg = text.strip_suffix(b"\n").unwrap_or(text);
        let msg = msg
            .strip_prefix(time.as_bytes())
            .map_or(msg, |m| m.strip_prefix(b" ").unwrap_or(m));
        let mut e = Entry::new();
        e.field("MESSAGE", msg)
            .num("PRIORITY", priority)
            .field("SYSLOG_IDENTIFIER", b"ownwatch");
        e
    }
}

/// The entry of an event: the fields README "-o journal" lists, and its JSON line (`json`,
/// as stdout would carry it, newline included) in OWNWATCH_JSON without the newline.
pub fn event_entry(ev: &Event, json: &[u8]) -> Entry {
    let mut text = Vec::with_capacity(256);
    text_line(ev, &mut text);
    let mut e = Entry::start(&text, &ev.time, priority_of(ev.op));
    e.field("OWNWATCH_OP", ev.op.as_bytes())
        .field("OWNWATCH_TIME", ev.time.as_bytes())
        .field("OWNWATCH_PATH", &ev.path);
    if let Some(p) = &ev.new_path {
        e.field("OWNWATCH_NEW_PATH", p);
    }
    if let Some(t) = &ev.target {
        e.field("OWNWATCH_TARGET", t);
    }
    if let Some(x) = &ev.xattr {
        e.field("OWNWATCH_XATTR", x);
    }
    e.field("OWNWATCH_TREE", &ev.tree)
        .num("OWNWATCH_UID", ev.fsuid);
    if let Some(u) = &ev.user {
        e.field("OWNWATCH_USER", u.as_bytes());
    }
    if let Some(l) = ev.loginuid {
        e.num("OWNWATCH_LOGINUID", l);
        if let Some(u) = &ev.login_user {
            e.field("OWNWATCH_LOGIN_USER", u.as_bytes());
        }
    }
    e.num("OWNWATCH_PID", ev.pid)
        .field("OWNWATCH_COMM", &ev.comm);
    if let Some(x) = &ev.exe {
        e.field("OWNWATCH_EXE", x);
    }
    if let Some(f) = ev.fixed {
        e.field("OWNWATCH_FIXED", if f { b"true" } else { b"false" });
    }
    e.field("OWNWATCH_BACKEND", ev.backend.as_bytes());
    e.field("OWNWATCH_JSON", json.strip_suffix(b"\n").unwrap_or(json));
    e
}

/// The entry of an in-band note (lost, tree_gone), stamped `time`: priority 3 (err) for
/// losses, 4 (warning) for a tree given up.
pub fn note_entry(note: &Note, time: &str) -> Entry {
    let (mut json, mut text) = (Vec::new(), Vec::new());
    note.line(time, true, &mut json);
    note.line(time, false, &mut text);
    let priority = match note {
        Note::Lost { .. } => ERR,
        Note::TreeGone { .. } => WARNING,
    };
    let mut e = Entry::start(&text, time, priority);
    match note {
        Note::Lost { count, reason } => {
            e.field("OWNWATCH_OP", b"lost")
                .num("OWNWATCH_COUNT", *count);
            if let Some(r) = reason {
                e.field("OWNWATCH_REASON", r.as_bytes());
            }
        }
        Note::TreeGone { tree, why } => {
            e.field("OWNWATCH_OP", b"tree_gone")
                .field("OWNWATCH_TREE", tree)
                .field("OWNWATCH_REASON", why.as_bytes());
        }
    }
    e.field("OWNWATCH_TIME", time.as_bytes());
    e.field("OWNWATCH_JSON", json.strip_suffix(b"\n").unwrap_or(&json));
    e
}

/// Errors that mean "journald is not taking entries right now" (restarting, or its queue is
/// full): retry, then drop and count. Anything else ends the agent (exit 2).
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::ENOENT | libc::EAGAIN | libc::ENOTCONN)
    )
}

/// The connection to journald: an unbound datagram socket that names the journal socket in
/// each send, so a journald that restarted (a new socket at the same path) is found again.
pub struct Journal {
    sock: UnixDatagram,
    path: PathBuf,
    /// Entries dropped in the current outage; non-zero while it lasts.
    dropped: u64,
}

impl Journal {
    /// To journald's socket, which must be there and take datagrams: otherwise the one-line
    /// error `-o journal: no journald socket at /run/systemd/journal/socket` (or what else is
    /// wrong with it).
    pub fn open() -> Result<Journal> {
        Journal::at(Path::new(SOCKET))
    }

    pub fn at(path: &Path) -> Result<Journal> {
        let probe = UnixDatagram::unbound()?;
        if let Err(e) = probe.connect(path) {
            match e.raw_os_error() {
                Some(libc::ENOENT) => {
                    bail!("-o journal: no journald socket at {}", path.display())
                }
                Some(libc::ECONNREFUSED) => bail!(
                    "-o journal: journald is not listening at {}",
                    path.display()
                ),
                _ => bail!("-o journal: {}: {e}", path.display()),
            }
        }
        Ok(Journal::unchecked(path)?)
    }

    fn unchecked(path: &Path) -> io::Result<Journal> {
        let sock = UnixDatagram::unbound()?;
        sock.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(Journal {
            sock,
            path: path.to_path_buf(),
            dropped: 0,
        })
    }

    /// Sends an entry. While journald does not take entries this is Ok and the entry is
    /// counted as dropped; an error is one that retrying cannot mend.
    pub fn send(&mut self, entry: &Entry) -> io::Result<()> {
        if self.dropped > 0 && !self.recover()? {
            self.dropped += 1;
            return Ok(());
        }
        match self.deliver(entry.bytes(), true) {
            Err(e) if is_transient(&e) => {
                eprintln!(
                    "ownwatch: journal: {}: {}; dropping entries (they will be counted in a \
                     \"lost\" entry) until journald takes them again",
                    self.path.display(),
                    e.raw_os_error()
                        .map(|c| nix::errno::Errno::from_raw(c).desc().to_string())
                        .unwrap_or_else(|| e.to_string())
                );
                self.dropped = 1;
                Ok(())
            }
            r => r,
        }
    }

    /// After each batch of events: during an outage, one quick try to end it.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.dropped > 0 {
            self.recover()?;
        }
        Ok(())
    }

    /// During an outage: sends the `lost` entry for what was dropped (one quick try). True
    /// when it went: the outage is over.
    fn recover(&mut self) -> io::Result<bool> {
        let note = Note::Lost {
            count: self.dropped,
            reason: Some("output"),
        };
        let entry = note_entry(&note, &super::timefmt::now_rfc3339());
        match self.deliver(entry.bytes(), false) {
            Ok(()) => {
                eprintln!(
                    "ownwatch: journal: journald takes entries again; {} were dropped and are \
                     reported as lost",
                    self.dropped
                );
                self.dropped = 0;
                Ok(true)
            }
            Err(e) if is_transient(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One entry, retried over RETRY_MS while journald is away when `patient`; else one try
    /// that does not wait.
    fn deliver(&self, data: &[u8], patient: bool) -> io::Result<()> {
        let flags = if patient { 0 } else { libc::MSG_DONTWAIT };
        let mut pauses = RETRY_MS.iter().filter(|_| patient);
        loop {
            let res = match self.sendmsg(data, None, flags) {
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE | libc::ENOBUFS)) => {
                    self.send_memfd(data, flags)
                }
                r => r,
            };
            match res {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_transient(&e) => match pauses.next() {
                    Some(&ms) => std::thread::sleep(Duration::from_millis(ms)),
                    None => return Err(e),
                },
                r => return r,
            }
        }
    }

    /// An entry too big for a datagram: in a sealed memfd, passed in an empty datagram (what
    /// journald's native protocol and sd_journal_sendv do).
    fn send_memfd(&self, data: &[u8], flags: i32) -> io::Result<()> {
        let name = CString::new("ownwatch-journal").unwrap();
        // SAFETY: a NUL-terminated name; the new fd is ours.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_ALLOW_SEALING | libc::MFD_CLOEXEC)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd nobody else owns.
        let mut f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        f.write_all(data)?;
        let seals =
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on our open fd.
        if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(io::Error::last_os_error());
        }
        self.sendmsg(&[], Some(f.as_raw_fd()), flags)
    }

    /// sendmsg(2) of `data` (and `fd` with SCM_RIGHTS) to the journal socket.
    fn sendmsg(&self, data: &[u8], fd: Option<RawFd>, flags: i32) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain old data, zero is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let path = self.path.as_os_str().as_bytes();
        if path.len() >= addr.sun_path.len() {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        for (d, &s) in addr.sun_path.iter_mut().zip(path) {
            *d = s as libc::c_char;
        }
        let addr_len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + path.len() + 1;
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: plain old data, zero is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = &mut addr as *mut libc::sockaddr_un as *mut libc::c_void;
        msg.msg_namelen = addr_len as libc::socklen_t;
        if !data.is_empty() {
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
        }
        // Room for one cmsghdr with one int, aligned as cmsghdr needs.
        let mut control = [0u64; 4];
        if let Some(fd) = fd {
            let int = std::mem::size_of::<libc::c_int>() as u32;
            // SAFETY: control is large enough (checked) and aligned; the header and data are
            // written where CMSG_FIRSTHDR/CMSG_DATA say, inside it.
            unsafe {
                let space = libc::CMSG_SPACE(int) as usize;
                assert!(space <= std::mem::size_of_val(&control));
                msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
                msg.msg_controllen = space as _;
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(int) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::c_int, fd);
            }
        }
        // SAFETY: msg points at live buffers for the duration of the call.
        let n = unsafe { libc::sendmsg(self.sock.as_raw_fd(), &msg, flags | libc::MSG_NOSIGNAL) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.dropped > 0 && !matches!(self.recover(), Ok(true)) {
            eprintln!(
                "ownwatch: journal: journald still takes no entries at exit; {} dropped \
                 entries are lost",
                self.dropped
            );
        }
    }
}

/// The JSON line of an event and its entry, for `-o journal` (`json` is reused scratch).
pub fn render(ev: &Event, json: &mut Vec<u8>) -> Entry {
    json.clear();
    json_line(ev, json);
    event_entry(ev, json)
}

#[cfg(test)]
mod tests;
