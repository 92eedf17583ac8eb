//! When the reader sleeps, for how long, and what it tells the kernel about it.
//!
//! A wakeup costs the writer an irq_work (a self-IPI: in a VM a trap to the hypervisor, tens
//! of microseconds, and with the wakeup of the reader on another CPU most of what an event
//! costs the writer beyond our programs) and the reader a context switch. While records come
//! densely (a storm, an extraction) the reader sleeps a fixed short interval instead and takes
//! what came meanwhile in one round (wait.rs), and says so in the programs' .bss
//! (`reader_state`, bpf/lib/submit.h): their records then go without a wakeup. Otherwise a
//! record wakes it at once (at most one per 500 µs): a record read late costs exactness where
//! a path is resolved on disk (the tracepoint backend before 6.13, where the kernel's walks of
//! the changed directories do not decide it), because the next command may already have
//! renamed or removed what it names; sparse records make few wakeups.

use std::time::Duration;

use crate::kernel::abi::main_skel::types::ow_reader;

/// Poll timeout while records flow: bounds how long an unwoken record waits.
const POLL_FLOWING: Duration = Duration::from_millis(5);
/// Poll timeout when idle (the first record wakes the reader).
const POLL_IDLE: Duration = Duration::from_millis(100);
/// The sleep between two rounds while records come densely: a round then takes what came in
/// it (at 100,000 records a second, ~100 records), and a record waits at most this long more
/// than the round's work.
pub const DENSE_ROUND: Duration = Duration::from_millis(1);
/// Records in one wait-and-read round from which they count as dense: at the 5 ms poll, 3,200
/// a second. A shell running commands one after another gives one or two.
const DENSE: u64 = 16;

/// How the reader sleeps next ([`Pace::sleep`]).
#[derive(Debug, PartialEq)]
pub struct Sleep {
    /// at most this long
    pub timeout: Duration,
    /// read the ring once more before sleeping
    pub read_first: bool,
    /// the whole `timeout` though records are there: only the kernel's wakeup (the ring
    /// filling) or a signal ends it early (wait.rs `Waiter::for_interval`)
    pub dense: bool,
}

pub struct Pace {
    /// `reader_state` in the skeleton's mapped .bss; null without one (the programs then wake
    /// the reader at most once per WAKEUP_GAP, as they do for an idle reader)
    state: *mut u32,
    /// polls in a row that brought no record (capped at 2)
    quiet: u32,
    /// the last round brought DENSE records or more
    dense: bool,
    /// AWAKE said since the last sleep
    awake: bool,
}

impl Pace {
    /// `state`: see the field; must stay valid as long as this lives.
    pub fn new(state: *mut u32) -> Pace {
        let p = Pace {
            state,
            quiet: 2,
            dense: false,
            awake: false,
        };
        p.say(ow_reader::OW_READER_IDLE);
        p
    }

    /// About to sleep: for how long, and whether to read the ring once more first. While
    /// records come densely, the kernel is told the reader will look by itself, and it sleeps
    /// DENSE_ROUND whether records are there or not. After a round with records the sleep is
    /// short, dense or not; the first quiet poll after them already says IDLE but still sleeps
    /// short: a program that read POLLS or AWAKE just before sends its record without a
    /// wakeup, microseconds later, and that record is then read a few milliseconds later, not
    /// after POLL_IDLE. Saying IDLE after AWAKE, the reader reads the ring before it sleeps
    /// (`read_first`): what came while it worked did not wake it.
    pub fn sleep(&mut self) -> Sleep {
        let dense = self.quiet == 0 && self.dense;
        self.say(if dense {
            ow_reader::OW_READER_POLLS
        } else {
            ow_reader::OW_READER_IDLE
        });
        let read_first = !dense && self.awake;
        self.awake = false;
        let timeout = if dense {
            DENSE_ROUND
        } else if self.quiet < 2 {
            POLL_FLOWING
        } else {
            POLL_IDLE
        };
        Sleep {
            timeout,
            read_first,
            dense,
        }
    }

    /// Woken (or the sleep is over): the reader reads the ring before it sleeps again.
    pub fn awake(&mut self) {
        self.say(ow_reader::OW_READER_AWAKE);
        self.awake = true;
    }

    /// How many records the ring gave after the sleep.
    pub fn got(&mut self, records: u64) {
        self.quiet = if records > 0 {
            0
        } else {
            (self.quiet + 1).min(2)
        };
        self.dense = records >= DENSE;
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
    fn says_polls_only_while_records_come_densely_and_cools_down_before_sleeping_long() {
        let mut cell = 7u32;
        let st: *mut u32 = &mut cell;
        let mut p = Pace::new(st);
        // SAFETY: `cell` outlives the test
        let read = || ow_reader(unsafe { std::ptr::read_volatile(st) });
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
        let flowing = |read_first| Sleep {
            timeout: POLL_FLOWING,
            read_first,
            dense: false,
        };
        let dense = Sleep {
            timeout: DENSE_ROUND,
            read_first: false,
            dense: true,
        };
        // idle: sleeps long, to be woken
        assert_eq!(p.sleep().timeout, POLL_IDLE);
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
        p.awake();
        assert_eq!(read(), ow_reader::OW_READER_AWAKE);
        // a few records: a short sleep, but each record still wakes it; what came while it
        // worked is read before it sleeps
        p.got(1);
        assert_eq!(p.sleep(), flowing(true));
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
        // (not twice: nothing was said in between)
        assert_eq!(p.sleep(), flowing(false));
        // dense: a fixed short sleep whatever waits, without wakeups
        p.awake();
        p.got(DENSE);
        assert_eq!(p.sleep(), dense);
        assert_eq!(read(), ow_reader::OW_READER_POLLS);
        p.awake();
        p.got(1000);
        // the timer will read what comes: nothing to read first
        assert_eq!(p.sleep(), dense);
        assert_eq!(read(), ow_reader::OW_READER_POLLS);
        // fewer again: woken by the next record
        p.awake();
        p.got(DENSE - 1);
        assert_eq!(p.sleep(), flowing(true));
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
        // one quiet poll: still a short sleep; two: a long one
        p.awake();
        p.got(0);
        assert_eq!(p.sleep(), flowing(true));
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
        p.awake();
        p.got(0);
        assert_eq!(p.sleep().timeout, POLL_IDLE);
        assert_eq!(read(), ow_reader::OW_READER_IDLE);
    }
}
