//! lsm, fentry and kprobe see an op at its hook, before it happens: its event waits here, one
//! per thread, until the op's outcome record says whether it succeeded (`"ret"`).

use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::kernel::abi::ow_outcome;
use crate::output::Event;

/// An event waits this long for its outcome before it may go without one: the outcome
/// comes microseconds after the hook unless the op blocks (a lock, a slow filesystem).
pub const OUTCOME_GRACE: Duration = Duration::from_secs(1);
/// ... and at most this long, even while its thread still lives (a thread id reused, an op
/// blocked for good): an event is not held back from the reader for longer.
pub const OUTCOME_MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Pending {
    // (keyed by thread id: hashed by a multiplication, not SipHash, twice per event; with the
    // low 32 bits of the dentry its outcome will name)
    waiting: FxHashMap<u32, (Event, Instant, u32)>,
}

impl Pending {
    /// Holds a thread's event until its outcome, which names `key` (the record's `ret` while
    /// it waits). A thread does one op at a time: an older event still waiting never got its
    /// outcome (another LSM refused the op between hook and function, say). Whether it
    /// happened is unknown: it is returned without "ret".
    pub fn hold(&mut self, tid: u32, key: u32, ev: Event) -> Option<Event> {
        let (mut old, _, _) = self.waiting.insert(tid, (ev, Instant::now(), key))?;
        old.ret = None;
        Some(old)
    }

    /// The events whose outcome will not come, oldest first, without "ret": those that
    /// waited OUTCOME_GRACE and whose thread has ended (`alive(pid, tid)` false), and any
    /// that waited OUTCOME_MAX_WAIT. Without this, an event whose outcome the kernel
    /// skipped would wait until its thread's next op or the agent's end: hours, for a
    /// thread that wrote once.
    pub fn overdue(&mut self, now: Instant, alive: impl Fn(u32, u32) -> bool) -> Vec<Event> {
        self.take_where(|ev, at| {
            let waited = now.saturating_duration_since(at);
            waited >= OUTCOME_MAX_WAIT || (waited >= OUTCOME_GRACE && !alive(ev.pid, ev.tid))
        })
    }

    /// The waiting events `due(event, held since)` picks, oldest first, without "ret".
    fn take_where(&mut self, due: impl Fn(&Event, Instant) -> bool) -> Vec<Event> {
        let tids: Vec<u32> = self
            .waiting
            .iter()
            .filter(|(_, (ev, at, _))| due(ev, *at))
            .map(|(&tid, _)| tid)
            .collect();
        let mut out: Vec<Event> = tids
            .iter()
            .filter_map(|tid| self.waiting.remove(tid))
            .map(|(mut ev, _, _)| {
                ev.ret = None;
                ev
            })
            .collect();
        out.sort_by_key(|e| e.time);
        out
    }

    /// An outcome record: the waiting event of its thread, if the op succeeded. An outcome
    /// of another key is not that event's: the outcome of an event this side did not hold
    /// (outside every tree once placed, an exception of --config), which took the kernel's
    /// wait from an older one (whose own outcome then will not come).
    pub fn outcome(&mut self, data: &[u8]) -> Option<Event> {
        let mut o = ow_outcome::default();
        plain::copy_from_bytes(&mut o, data).ok()?;
        let (mut ev, _, _) = match self.waiting.entry(o.tid) {
            Entry::Occupied(e) if e.get().2 == o.key as u32 => e.remove(),
            _ => return None,
        };
        if o.ret != 0 {
            return None;
        }
        ev.ret = Some(0);
        // what the new inode got (umask or default ACL applied), not what was asked; what a
        // chmod left (setgid dropped for a caller outside the file's group), read at the
        // exit of notify_change, under the inode lock chmod_common holds: no other change
        // (--fix's chown dropping set-id bits) comes between
        if matches!(ev.op, "mkdir" | "mknod" | "chmod") && o.mode != 0 {
            ev.mode = Some(o.mode & 0o7777);
        }
        Some(ev)
    }

    /// Does an event of `tree` wait for an outcome that may still come (held less than
    /// OUTCOME_GRACE)?
    pub fn awaits(&self, tree: &[u8], now: Instant) -> bool {
        self.waiting.values().any(|(ev, at, _)| {
            *ev.tree == *tree && now.saturating_duration_since(*at) < OUTCOME_GRACE
        })
    }

    /// A tree given up: its events still waiting, oldest first, without "ret" (they go out
    /// before the tree's last line, never dropped).
    pub fn take_tree(&mut self, tree: &[u8]) -> Vec<Event> {
        self.take_where(|ev, _| *ev.tree == *tree)
    }

    /// Stopping: the events whose outcome never came, oldest first, without "ret".
    pub fn drain(&mut self) -> Vec<Event> {
        self.take_where(|_, _| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(tid: u32, time: &str) -> Event {
        Event {
            pid: 7,
            tid,
            time: time.into(),
            ret: Some(0),
            ..Event::default()
        }
    }

    #[test]
    fn overdue_events_go_without_ret_when_their_thread_ended_or_waited_too_long() {
        let mut p = Pending::default();
        assert!(p.hold(1, 0, ev(1, "b")).is_none());
        assert!(p.hold(2, 0, ev(2, "a")).is_none());
        assert!(p.hold(3, 0, ev(3, "c")).is_none());
        let t0 = Instant::now();
        // Within the grace period nothing goes, alive or not.
        assert!(p.overdue(t0, |_, _| false).is_empty());
        // After it: the ended threads' events, oldest first, without "ret".
        let gone = p.overdue(t0 + OUTCOME_GRACE * 2, |_, tid| tid == 3);
        let tids: Vec<u32> = gone.iter().map(|e| e.tid).collect();
        assert_eq!(tids, [2, 1]);
        assert!(gone.iter().all(|e| e.ret.is_none()));
        // A living thread's event waits, up to the limit.
        assert!(p.overdue(t0 + OUTCOME_GRACE * 2, |_, _| true).is_empty());
        let late = p.overdue(t0 + OUTCOME_MAX_WAIT * 2, |_, _| true);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].tid, 3);
        assert!(p.drain().is_empty());
    }

    fn outcome(tid: u32, key: u64, ret: i32, mode: u32) -> Vec<u8> {
        let o = ow_outcome {
            tid,
            ret,
            key,
            mode,
            ..ow_outcome::default()
        };
        unsafe { plain::as_bytes(&o) }.to_vec()
    }

    /// An outcome goes to its thread's waiting event only when it names the event's key:
    /// another one is the outcome of an event this side did not hold (placed outside every
    /// tree), which took the kernel's wait. The waiting event keeps waiting.
    #[test]
    fn an_outcome_is_its_events_only_by_key() {
        let mut p = Pending::default();
        let chmod = Event {
            op: "chmod",
            mode: Some(0o600),
            ..ev(1, "a")
        };
        assert!(p.hold(1, 0xdead_0010, chmod).is_none());
        // (the upper directory's xattr, whose event was dropped: mode 0777)
        assert!(p
            .outcome(&outcome(1, 0xffff_0000_dead_0020, 0, 0o40777))
            .is_none());
        assert!(p
            .outcome(&outcome(2, 0xffff_0000_dead_0010, 0, 0o100600))
            .is_none());
        let got = p
            .outcome(&outcome(1, 0xffff_0000_dead_0010, 0, 0o100600))
            .unwrap();
        assert_eq!((got.mode, got.ret), (Some(0o600), Some(0)));
        assert!(p.drain().is_empty());
        // a failed op: no event, and nothing left waiting
        assert!(p.hold(1, 7, ev(1, "b")).is_none());
        assert!(p.outcome(&outcome(1, 7, -13, 0)).is_none());
        assert!(p.drain().is_empty());
    }

    /// A tree going away (its root's own rmdir waits for its outcome): the tree is kept
    /// while one of its events may still get its outcome; given up, its waiting events go
    /// out, without "ret", and no other tree's.
    #[test]
    fn a_tree_given_up_takes_its_waiting_events_out_not_away() {
        let mut p = Pending::default();
        let in_tree = |tid, tree: &[u8]| Event {
            tree: crate::output::TreePath::from(tree),
            ..ev(tid, "t")
        };
        assert!(p.hold(1, 0, in_tree(1, b"/srv/a")).is_none());
        assert!(p.hold(2, 0, in_tree(2, b"/srv/b")).is_none());
        let t0 = Instant::now();
        assert!(p.awaits(b"/srv/a", t0));
        assert!(!p.awaits(b"/srv/c", t0));
        assert!(!p.awaits(b"/srv/a", t0 + OUTCOME_GRACE * 2));
        let out = p.take_tree(b"/srv/a");
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].tid, out[0].ret), (1, None));
        assert!(!p.awaits(b"/srv/a", t0));
        assert_eq!(p.drain().len(), 1);
    }
}
