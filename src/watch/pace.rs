//! When the reader sleeps, for how long, and what it tells the kernel about it.
//!
//! A wakeup costs the writer an irq_work (a self-IPI: in a VM a trap to the hypervisor, tens
//! of microseconds, and with the wakeup of the reader on another CPU most of what an event
//! costs the writer beyond our programs) and the reader a context switch. While records flow
//! the reader polls on a short timer instead, and says so in the programs' .bss
//! (`reader_state`, bpf/lib/submit.h): its records then go without a wakeup. Idle, it sleeps
//! until the first record wakes it.

use std::time::Duration;

use crate::kernel::abi::main_skel::types::ow_reader;

/// Poll timeout while records flow: bounds how long an unwoken record waits.
const POLL_FLOWING: Duration = Duration::from_millis(5);
/// Poll timeout when idle (the first record wakes the reader).
const POLL_IDLE: Duration = Duration::from_millis(100);

pub struct Pace {
    /// `reader_state` in the skeleton's mapped .bss; null without one (the programs then wake
    /// the reader at most once per WAKEUP_GAP, as they do for an idle reader)
    state: *mut u32,
    /// polls in a row that brought no record (capped at 2)
    quiet: u32,
}

impl Pace {
    /// `state`: see the field; must stay valid as long as this lives.
    pub fn new(state: *mut u32) -> Pace {
        let p = Pace { state, quiet: 2 };
        p.say(ow_reader::OW_READER_IDLE);
        p
    }

    /// About to sleep: for how long. While records flow (the last poll brought some), the
    /// kernel is told the reader will look by itself. The first quiet poll after a flow
    /// already says IDLE but still sleeps short: a program that read POLLS or AWAKE just
    /// before sends its record without a wakeup, microseconds later, and that record is then
    /// read a few milliseconds later, not after POLL_IDLE.
    pub fn sleep(&self) -> Duration {
        self.say(if self.quiet == 0 {
            ow_reader::OW_READER_POLLS
        } else {
            ow_reader::OW_READER_IDLE
        });
        if self.quiet < 2 {
            POLL_FLOWING
        } else {
            POLL_IDLE
        }
    }

    /// Woken (or the sleep is over): the reader reads the ring before it sleeps again.
    pub fn awake(&self) {
        self.say(ow_reader::OW_READER_AWAKE);
    }

    /// What the ring gave after the sleep.
    pub fn got(&mut self, records: bool) {
        self.quiet = if records { 0 } else { (self.quiet + 1).min(2) };
    }

    fn say(&self, what: ow_reader) {
        if !self.state.is_null() {
            // SAFETY: a u32 in the skeleton's mapped .bss, alive while the skeleton is (the
            // caller's promise, `new`); the programs only read it.
            unsafe { std::ptr::write_volatile(self.state, what.0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_polls_only_while_records_flow_and_cools_down_before_sleeping_long() {
        let mut cell = 7u32;
        let st: *mut u32 = &mut cell;
        let mut p = Pace::new(st);
        // SAFETY: `cell` outlives the test
        let read = || ow_reader(unsafe { std::ptr::read_volatile(st) });
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
        // idle: sleeps long, to be woken
        assert_eq!(p.sleep(), POLL_IDLE);
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
        p.awake();
        assert_eq!(read(), ow_reader::OW_READER_AWAKE);
        // records came: short sleeps, without wakeups
        p.got(true);
        assert_eq!(p.sleep(), POLL_FLOWING);
        assert_eq!(read(), ow_reader::OW_READER_POLLS);
        p.awake();
        p.got(true);
        assert_eq!(p.sleep(), POLL_FLOWING);
        assert_eq!(read(), ow_reader::OW_READER_POLLS);
        // one quiet poll: to be woken, but still a short sleep
        p.awake();
        p.got(false);
        assert_eq!(p.sleep(), POLL_FLOWING);
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
        // two: a long sleep
        p.awake();
        p.got(false);
        assert_eq!(p.sleep(), POLL_IDLE);
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
        // a record wakes it: flowing again
        p.awake();
        p.got(true);
        assert_eq!(p.sleep(), POLL_FLOWING);
        assert_eq!(read(), ow_reader::OW_READER_POLLS);
    }
}
