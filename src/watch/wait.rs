//! How the reader sleeps between two reads of the ring: until a record is there (the ring's
//! level), or, while records come densely, for a fixed interval that only a wakeup from the
//! kernel cuts short (pace.rs says which).
//!
//! The second is what makes a storm cheap for the reader. The ring is readable whenever a
//! record is unread, and while a writer storms one always is: waiting on that level, the reader
//! took the ring in rounds of a few records, each with its poll, its write to stdout and the
//! wakeup of whoever reads that pipe (measured on this 6.18 machine, a pipe to `cat` beside the
//! agent: ~3 µs of the agent's CPU per event in short storms, ~1.5 µs with 1 ms rounds). So
//! while records come densely the reader waits on its own epoll of the ring, edge-triggered:
//! it wakes when the interval is over or when the kernel wakes the ring's waiters, which in
//! that state it does only once the unread data reaches `wakeup_bytes` (bpf/lib/submit.h): a
//! burst never waits for the ring to fill.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The token of stdout in our epoll (the ring's is 0).
const STDOUT_TOKEN: u64 = 1;

pub struct Waiter {
    /// libbpf's epoll of the ring: readable while a record is unread
    level: RawFd,
    /// ours, of the same ring, edge-triggered: readable after a wakeup of the ring's waiters;
    /// and stdout's errors when they can be watched
    edge: OwnedFd,
    /// the reader of stdout is watched for going away
    watch_stdout: bool,
    /// stdout is in `edge` (a pipe, a socket, a terminal: not a regular file or /dev/null)
    stdout_in_edge: bool,
}

impl Waiter {
    /// `level`: the ring buffer's epoll fd (`RingBuffer::epoll_fd`); `ring`: the ring map's
    /// fd; `watch_stdout`: stop when the reader of stdout goes away.
    pub fn new(level: RawFd, ring: BorrowedFd, watch_stdout: bool) -> io::Result<Waiter> {
        // SAFETY: plain syscall; the result is a new fd we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh fd from the kernel.
        let edge = unsafe { OwnedFd::from_raw_fd(fd) };
        let (ring_events, out_events) = (
            libc::EPOLLIN | libc::EPOLLET,
            libc::EPOLLERR | libc::EPOLLHUP,
        );
        epoll_add(&edge, ring.as_raw_fd(), ring_events as u32, 0)?;
        // (epoll refuses regular files and /dev/null with EPERM: they never say either)
        let stdout_in_edge = watch_stdout
            && epoll_add(&edge, libc::STDOUT_FILENO, out_events as u32, STDOUT_TOKEN).is_ok();
        Ok(Waiter {
            level,
            edge,
            watch_stdout,
            stdout_in_edge,
        })
    }

    /// Waits up to `timeout` for a record from the kernel or for the reader of our stdout to
    /// go away: a pipe whose read end was closed says POLLERR, a hung-up terminal or socket
    /// POLLHUP; true then. Regular files and /dev/null never say either. A signal ends the
    /// wait early (false).
    pub fn for_records(&mut self, timeout: Duration) -> io::Result<bool> {
        let mut fds = [
            libc::pollfd {
                fd: self.level,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: libc::STDOUT_FILENO,
                events: 0,
                revents: 0,
            },
        ];
        let n = if self.watch_stdout { 2 } else { 1 };
        // SAFETY: `n` pollfds in a live array.
        if unsafe { libc::poll(fds.as_mut_ptr(), n, millis(timeout)) } < 0 {
            return interrupted_is_ok(io::Error::last_os_error());
        }
        let out = fds[1].revents;
        if out & libc::POLLNVAL != 0 {
            // stdout is not open: writing will say so; do not spin on it.
            self.watch_stdout = false;
            self.stdout_in_edge = false;
            return Ok(false);
        }
        Ok(out & (libc::POLLERR | libc::POLLHUP) != 0)
    }

    /// Sleeps `interval` while records come densely: only a wakeup of the ring's waiters (the
    /// unread data reached `wakeup_bytes`; or one from before, which ends this wait at once)
    /// or the reader of stdout going away ends it early (true for the latter, as
    /// [`Waiter::for_records`]). A signal ends it too (false).
    pub fn for_interval(&mut self, interval: Duration) -> io::Result<bool> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 2];
        // SAFETY: room for 2 events in a live array.
        let n = unsafe {
            libc::epoll_wait(self.edge.as_raw_fd(), evs.as_mut_ptr(), 2, millis(interval))
        };
        if n < 0 {
            return interrupted_is_ok(io::Error::last_os_error());
        }
        let gone = evs[..n as usize].iter().any(|e| {
            let (token, events) = (e.u64, e.events);
            token == STDOUT_TOKEN && events & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0
        });
        Ok(gone && self.stdout_in_edge)
    }
}

fn epoll_add(epoll: &OwnedFd, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: a live event; the kernel copies it.
    if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A timeout for poll(2) and epoll_wait(2), rounded up to a millisecond.
fn millis(d: Duration) -> i32 {
    d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
}

fn interrupted_is_ok(e: io::Error) -> io::Result<bool> {
    match e.kind() {
        io::ErrorKind::Interrupted => Ok(false),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::time::Instant;

    /// A pipe as the "ring": its read end is readable while a byte is unread.
    fn pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = nix::unistd::pipe().unwrap();
        (r, w)
    }

    #[test]
    fn the_interval_is_slept_through_while_data_waits_and_ended_by_a_new_wakeup() {
        let (r, w) = pipe();
        nix::unistd::write(&w, b"x").unwrap();
        let mut wt = Waiter::new(r.as_raw_fd(), r.as_fd(), false).unwrap();
        // the level says at once
        let t = Instant::now();
        assert!(!wt.for_records(Duration::from_secs(5)).unwrap());
        assert!(t.elapsed() < Duration::from_secs(1));
        // the edge: what was there when it was made counts once, then nothing until woken
        assert!(!wt.for_interval(Duration::from_secs(5)).unwrap());
        let t = Instant::now();
        assert!(!wt.for_interval(Duration::from_millis(30)).unwrap());
        assert!(
            t.elapsed() >= Duration::from_millis(30),
            "{:?}",
            t.elapsed()
        );
        // a wakeup (a write wakes the pipe's readers) ends it early
        let w2 = w.try_clone().unwrap();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            nix::unistd::write(&w2, b"y").unwrap();
        });
        let t = Instant::now();
        assert!(!wt.for_interval(Duration::from_secs(10)).unwrap());
        assert!(t.elapsed() < Duration::from_secs(5));
        h.join().unwrap();
    }

    #[test]
    fn millis_round_up() {
        assert_eq!(millis(Duration::from_micros(1)), 1);
        assert_eq!(millis(Duration::from_millis(1)), 1);
        assert_eq!(millis(Duration::from_micros(1001)), 2);
        assert_eq!(millis(Duration::ZERO), 0);
    }
}
