//! Option values: op lists, durations, ring sizes, the output format. Pure
//! parsing, unit-tested without privileges (user and group names: users.rs).

use anyhow::{bail, Result};

use crate::kernel::abi::{op, OP_NAMES};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// Comma-separated op names -> bit mask over `enum ow_op`.
pub fn parse_ops(s: &str) -> Result<u32> {
    let mut mask = 0u32;
    for name in s.split(',').map(str::trim) {
        if name.is_empty() {
            continue;
        }
        if name == "all" {
            mask |= all_ops();
            continue;
        }
        match OP_NAMES.iter().position(|n| *n == name) {
            Some(i) => mask |= 1 << i,
            None => bail!("unknown op {name:?} (known: {})", OP_NAMES.join(",")),
        }
    }
    if mask == 0 {
        bail!("--ops names no op");
    }
    Ok(mask)
}

/// "30s", "10m", "1h", "2d", "1h30m": numbers, each with its unit. A bare number is refused:
/// `--duration 2` could mean seconds, minutes or hours.
pub fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let bad =
        || anyhow::anyhow!("bad duration {s:?} (units: s, m, h, d; examples: 30s, 10m, 1h, 1h30m)");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if t.bytes().all(|c| c.is_ascii_digit()) {
        if t.bytes().all(|c| c == b'0') {
            anyhow::bail!("bad duration {s:?}: it must be more than 0 (e.g. 30s, 10m, 1h)");
        }
        anyhow::bail!(
            "bad duration {s:?}: a number needs a unit: s, m, h or d (e.g. {t}s, {t}m, 1h30m)"
        );
    }
    let total = duration_units(t).ok_or_else(bad)?;
    if total == 0 {
        anyhow::bail!("bad duration {s:?}: it must be more than 0");
    }
    // Far beyond any use, and the deadline must fit the clock.
    if total > MAX_DURATION_SECS {
        anyhow::bail!("bad duration {s:?}: at most 100 years (36500d)");
    }
    Ok(std::time::Duration::from_secs(total))
}

const MAX_DURATION_SECS: u64 = 36500 * 86400;

/// Seconds of "1h30m"-style text; None when malformed or beyond u64.
fn duration_units(t: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
        let n: u64 = num.parse().ok()?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v))?;
        num.clear();
    }
    num.is_empty().then_some(total)
}

/// `--ring-size`: bytes, with an optional K/M/G suffix (powers of 1024). The kernel wants a
/// power of two that is a multiple of the page size.
pub fn parse_ring_size(s: &str, page: u64) -> Result<u32> {
    let bad = || {
        anyhow::anyhow!(
            "bad --ring-size {s:?}: must be a power of two from 64K to 1G and a multiple of \
             the page size ({page} bytes) (examples: 256K, 4M, 16M)"
        )
    };
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(mul).ok_or_else(bad)?;
    if !bytes.is_power_of_two() || bytes % page != 0 || !(MIN_RING..=MAX_RING).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u32)
}

/// `--ring-size` bounds, as README "Usage" documents them: a smaller ring only loses more (64K
/// is the smallest the loss tests use), and all of a ring is resident.
const MIN_RING: u64 = 64 << 10;
const MAX_RING: u64 = 1 << 30;

pub fn all_ops() -> u32 {
    (1u32 << op::COUNT) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes() {
        assert_eq!(parse_ring_size("16M", 4096).unwrap(), 16 << 20);
        assert_eq!(parse_ring_size("64k", 4096).unwrap(), 64 << 10);
        assert_eq!(parse_ring_size("1G", 4096).unwrap(), 1 << 30);
        assert_eq!(parse_ring_size("65536", 4096).unwrap(), 65536);
        assert_eq!(parse_ring_size("64K", 65536).unwrap(), 65536);
        for bad in [
            "", "M", "3M", "2K", "1000", "2G", "-4M", "4MB", "0", "4K", "8192", "32K", "2048M",
        ] {
            let e = parse_ring_size(bad, 4096).unwrap_err().to_string();
            assert!(e.starts_with("bad --ring-size"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations() {
        use std::time::Duration as D;
        assert_eq!(parse_duration("30s").unwrap(), D::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), D::from_secs(600));
        assert_eq!(parse_duration("1h").unwrap(), D::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), D::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), D::from_secs(172800));
        assert_eq!(parse_duration("1d12h").unwrap(), D::from_secs(129600));
        // A bare number could mean seconds, minutes or hours: refused, naming the units.
        for bare in ["2", "45", "007"] {
            let e = parse_duration(bare).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "bad duration {bare:?}: a number needs a unit: s, m, h or d"
                )),
                "{bare}: {e}"
            );
        }
        // 0 with any unit is no duration: the hint does not suggest "0s".
        for zero in ["0", "00", "0s", "0h0m"] {
            let e = parse_duration(zero).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("bad duration {zero:?}: it must be more than 0")),
                "{zero}: {e}"
            );
        }
        assert_eq!(
            parse_duration("36500d").unwrap(),
            D::from_secs(36500 * 86400)
        );
        for bad in [
            "",
            "10x",
            "m",
            "1.5h",
            "-3s",
            "10m5",
            "99999999999999999999s",
        ] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.starts_with("bad duration"), "{bad}: {e}");
        }
        // Zero in every spelling, and what the clock cannot hold, are refused alike.
        for bad in [
            "0",
            "00",
            "0s",
            "0h0m",
            "9223372036854775807",
            "36501d",
            "18446744073709551615",
        ] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("bad duration {bad:?}: ")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn op_lists() {
        assert_eq!(parse_ops("mkdir").unwrap(), 1 << op::MKDIR);
        assert_eq!(
            parse_ops("create, rename,write").unwrap(),
            (1 << op::CREATE) | (1 << op::RENAME) | (1 << op::WRITE)
        );
        assert_eq!(parse_ops("all").unwrap(), all_ops());
        assert!(parse_ops("mkdir,frobnicate").is_err());
        assert!(parse_ops(",").is_err());
    }
}
