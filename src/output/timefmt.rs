//! Kernel boot-clock timestamps -> RFC 3339 UTC with nanoseconds, without a date crate.

use nix::time::{clock_gettime, ClockId};

/// Offset to add to a CLOCK_BOOTTIME reading (what bpf_ktime_get_boot_ns gives) to get
/// wall-clock nanoseconds since the epoch.
pub fn boot_to_realtime_offset() -> i128 {
    let ns = |c| {
        clock_gettime(c)
            .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
            .unwrap_or(0)
    };
    let b1 = ns(ClockId::CLOCK_BOOTTIME);
    let r = ns(ClockId::CLOCK_REALTIME);
    let b2 = ns(ClockId::CLOCK_BOOTTIME);
    r - (b1 + b2) / 2
}

/// Now on the kernel's boot clock (the clock of event timestamps).
pub fn boot_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn rfc3339(epoch_ns: i128) -> String {
    // (in i64 when it fits, until 2262: an i128 division is a library call, one per event)
    let (secs, nanos) = match i64::try_from(epoch_ns) {
        Ok(n) => (
            n.div_euclid(1_000_000_000),
            n.rem_euclid(1_000_000_000) as u32,
        ),
        Err(_) => (
            epoch_ns.div_euclid(1_000_000_000) as i64,
            epoch_ns.rem_euclid(1_000_000_000) as u32,
        ),
    };
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    if !(0..=9999).contains(&y) {
        return format!(
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        );
    }
    // One per event: digits by hand rather than through the formatting machinery.
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y as u32);
    put(5, 2, mo);
    put(8, 2, d);
    put(11, 2, sod / 3600);
    put(14, 2, sod % 3600 / 60);
    put(17, 2, sod % 60);
    put(20, 9, nanos);
    String::from_utf8_lossy(&b).into_owned()
}

/// An event's time as written (`rfc3339`), kept in place: one per event, so no allocation.
/// Any i64 second fits (at most 39 bytes); a longer string would be cut.
#[derive(Clone, Copy)]
pub struct Stamp {
    len: u8,
    buf: [u8; Stamp::CAP],
}

impl Stamp {
    const CAP: usize = 47;

    pub fn as_str(&self) -> &str {
        let b = &self.buf[..self.len as usize];
        debug_assert!(std::str::from_utf8(b).is_ok());
        // SAFETY: only UTF-8 goes in: a &str cut at a char boundary (From<&str>), or the ASCII
        // digits and punctuation Stamper::stamp writes. (Checking it again cost 150
        // instructions per event: a fifth of writing the line's numbers.)
        unsafe { std::str::from_utf8_unchecked(b) }
    }
}

impl Default for Stamp {
    fn default() -> Stamp {
        Stamp {
            len: 0,
            buf: [0; Stamp::CAP],
        }
    }
}

impl From<&str> for Stamp {
    fn from(s: &str) -> Stamp {
        let mut n = s.len().min(Stamp::CAP);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        let mut t = Stamp {
            len: n as u8,
            ..Stamp::default()
        };
        t.buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        t
    }
}

impl std::ops::Deref for Stamp {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Stamp {
    fn eq(&self, o: &Stamp) -> bool {
        self.as_str() == o.as_str()
    }
}

impl Eq for Stamp {}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, o: &Stamp) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Stamp {
    fn cmp(&self, o: &Stamp) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

/// "00" to "99": two digits per division.
const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839\
404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// `rfc3339` for a stream of close instants (the events'): the date and time of day formatted
/// once per second, then only the nanoseconds (no division for the date, no validation of
/// the whole string, per event).
#[derive(Default)]
pub struct Stamper {
    /// the second of `head`, and "YYYY-MM-DDTHH:MM:SS." for it
    sec: Option<i64>,
    head: [u8; 20],
}

impl Stamper {
    pub fn stamp(&mut self, epoch_ns: i128) -> Stamp {
        let Ok(n) = i64::try_from(epoch_ns) else {
            return Stamp::from(rfc3339(epoch_ns).as_str());
        };
        let sec = n.div_euclid(1_000_000_000);
        if self.sec != Some(sec) {
            let whole = rfc3339(epoch_ns);
            // (years 0-9999 only: the others are as long as they need)
            if whole.len() == 30 {
                self.head.copy_from_slice(&whole.as_bytes()[..20]);
                self.sec = Some(sec);
            }
            return Stamp::from(whole.as_str());
        }
        let mut v = n.rem_euclid(1_000_000_000) as u32;
        let mut s = Stamp {
            len: 30,
            ..Stamp::default()
        };
        s.buf[..20].copy_from_slice(&self.head);
        s.buf[29] = b'Z';
        // nine digits: the last alone, then two at a time
        s.buf[28] = b'0' + (v % 10) as u8;
        v /= 10;
        for at in [26, 24, 22, 20] {
            let p = (v % 100) as usize * 2;
            s.buf[at..at + 2].copy_from_slice(&PAIRS[p..p + 2]);
            v /= 100;
        }
        s
    }
}

pub fn now_rfc3339() -> String {
    let t = clock_gettime(ClockId::CLOCK_REALTIME)
        .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
        .unwrap_or(0);
    rfc3339(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2026-11-25T13:42:15.123456789Z
        assert_eq!(
            rfc3339(1_795_614_135_123_456_789),
            "2026-11-25T13:42:15.123456789Z"
        );
        // leap day
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn the_stamper_says_what_rfc3339_says() {
        let mut st = Stamper::default();
        // within a second, across seconds, days and years, back in time, before 1970, and
        // years rfc3339 writes longer
        let mut at: Vec<i128> = vec![
            1_795_614_135_123_456_789,
            1_795_614_135_999_999_999,
            1_795_614_136_000_000_000,
            1_795_614_136_000_000_001,
            1_795_614_135_000_000_007,
            1_798_761_599_999_999_999, // 2026-12-31T23:59:59.999999999Z
            1_798_761_600_000_000_000,
            -1,
            -1_000_000_000,
            0,
            253_402_300_800_000_000_000, // 10000-01-01
            253_402_300_800_000_000_001,
            i128::from(i64::MAX) + 5,
        ];
        at.extend((0..2_000).map(|i| 1_795_614_135_000_000_000 + i * 1_234_567));
        for ns in at {
            assert_eq!(st.stamp(ns).as_str(), rfc3339(ns), "{ns}");
        }
    }

    /// A stamp orders as its text does (pending events are sorted by it), and whatever is
    /// longer than its room is cut at a character, never panics.
    #[test]
    fn stamps_order_as_text_and_cut_long_input() {
        let a = Stamp::from("2026-12-04T10:00:00.000000001Z");
        let b = Stamp::from("2026-12-04T10:00:00.00000001Z");
        assert!(a < b && a.as_str() < b.as_str());
        assert_eq!(Stamp::default().as_str(), "");
        let long = "é".repeat(40);
        let cut = Stamp::from(long.as_str());
        assert_eq!(cut.as_str(), "é".repeat(23));
        assert_eq!(format!("{cut}"), cut.as_str());
    }

    /// Against the `time` crate, over 400 years in uneven steps (leap years, centuries,
    /// month ends) and every nanosecond digit.
    #[test]
    fn agrees_with_the_time_crate() {
        let mut ns: i128 = -2_208_988_800 * 1_000_000_000; // 1900-01-01
        let end: i128 = 11_000_000_000 * 1_000_000_000; // 2318
        while ns < end {
            let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap();
            let want = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.nanosecond()
            );
            assert_eq!(rfc3339(ns), want, "{ns}");
            ns += 86_399_987_654_321 * 3 + 123_456_789;
        }
    }
}
