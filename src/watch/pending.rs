//! lsm, fentry and kprobe see an op at its hook, before it happens: its event waits here, one
//! per thread, until the op's outcome record says whether it succeeded (`"ret"`).

use std::collections::HashMap;

use crate::kernel::abi::ow_outcome;
use crate::output::Event;

#[derive(Default)]
pub struct Pending {
    waiting: HashMap<u32, Event>,
}

impl Pending {
    /// Holds a thread's event until its outcome. A thread does one op at a time: an older
    /// event still waiting never got its outcome (another LSM refused the op between hook
    /// and function, say). Whether it happened is unknown: it is returned without "ret".
    pub fn hold(&mut self, tid: u32, ev: Event) -> Option<Event> {
        let mut old = self.waiting.insert(tid, ev)?;
        old.ret = None;
        Some(old)
    }

    /// An outcome record: the waiting event of its thread, if the op succeeded.
    pub fn outcome(&mut self, data: &[u8]) -> Option<Event> {
        let mut o = ow_outcome::default();
        plain::copy_from_bytes(&mut o, data).ok()?;
        let mut ev = self.waiting.remove(&o.tid)?;
        if o.ret != 0 {
            return None;
        }
        ev.ret = Some(0);
        // what the new inode got (umask or default ACL applied), not what was asked
        if matches!(ev.op, "mkdir" | "mknod") && o.mode != 0 {
            ev.mode = Some(o.mode & 0o7777);
        }
        Some(ev)
    }

    /// A tree given up: its waiting events go with it.
    pub fn forget_tree(&mut self, tree: &[u8]) {
        self.waiting.retain(|_, ev| ev.tree != tree);
    }

    /// Stopping: the events whose outcome never came, oldest first, without "ret".
    pub fn drain(&mut self) -> Vec<Event> {
        let mut left: Vec<Event> = self.waiting.drain().map(|(_, e)| e).collect();
        left.sort_by(|a, b| a.time.cmp(&b.time));
        for ev in &mut left {
            ev.ret = None;
        }
        left
    }
}
