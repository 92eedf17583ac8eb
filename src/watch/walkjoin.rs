//! A record's walk comes once for several records of the same object (bpf/lib/walk.h,
//! put_kept_walk): tar creates a file, then chowns and chmods it through the same fd; a
//! chmod is followed by an unlink, a mkdir by an rmdir of the same name. The kernel sends the
//! walk with the first record only, followed by a WALKKEEP item ("CPU c keeps this walk as
//! its number s"). A later record of the same CPU whose object the kernel found on the same
//! dentries, with the same names, says so with a WALKREF item (c, s, and the object's mode
//! now) in the walk's place. `WalkJoin::join` puts the kept walk back there, before anything
//! else reads the record, so that every record looks as if its walk had been sent in full.
//!
//! A walk of another file that meets the kept walk's directory (tar's next file in it, a
//! create in the directory just made, a file a level up) sends its own names up to there,
//! then a WALKUP item (c, s, and where that directory's items begin in the kept walk), then
//! its own WALKEND: `WalkJoin::join` puts the rest of the kept walk there, all but its
//! WALKEND.
//!
//! Each CPU keeps one walk, in the kernel and here alike: a record is in the ring after every
//! record its CPU sent before it (the programs keep their CPU while they build and send one),
//! and the kernel keeps a walk only once its record is in the ring, so the walk a WALKREF
//! names is the last one this CPU's records kept.

use std::mem::{offset_of, size_of};

use super::decode::{find_item, splice, u32_at};
use crate::kernel::abi::{flag, item, ow_event, ow_walkend, ow_walkkeep, ow_walkref, ow_walkup};

/// More CPUs than this would be a malformed record, not a machine.
pub(super) const MAX_CPUS: usize = 1 << 16;

#[derive(Default)]
pub struct WalkJoin {
    /// per CPU: the number and the items (SEG ... WALKEND) of its last kept walk
    kept: Vec<(u32, Vec<u8>)>,
    /// records whose WALKREF named a walk not here (a bug: the path is then missing)
    pub misses: u64,
}

/// A WALKEND item, header included: the last of every kept walk.
const WALKEND_ITEM: usize = 4 + size_of::<ow_walkend>();

impl WalkJoin {
    /// The record with a WALKREF replaced by the walk it names, or a WALKUP by the rest of
    /// the walk it names (made in `buf`, the caller's, reused), after keeping what a WALKKEEP
    /// says; the record itself otherwise.
    pub fn join<'a>(&mut self, data: &'a [u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
        let hdr = size_of::<ow_event>();
        if data.len() < hdr {
            return data;
        }
        let flags = u32_at(data, offset_of!(ow_event, flags));
        if flags & (flag::WALKKEEP | flag::WALKREF) == 0 {
            return data;
        }
        let wanted = |kind, len| {
            (kind == item::WALKKEEP && len == size_of::<ow_walkkeep>())
                || (kind == item::WALKREF && len == size_of::<ow_walkref>())
                || (kind == item::WALKUP && len == size_of::<ow_walkup>())
        };
        let Some((kind, at, next, end)) = find_item(data, hdr, wanted) else {
            return data;
        };
        let (cpu, seq, last) = (
            u32_at(data, at + 4) as usize,
            u32_at(data, at + 8),
            u32_at(data, at + 12),
        );
        if kind == item::WALKKEEP {
            // last: the walk's length, before this item
            self.keep(cpu, seq, data, at, last as usize);
            return data;
        }
        if kind == item::WALKUP {
            self.join_up(data, (at, next, end), (cpu, seq, last as usize), buf);
            return buf;
        }
        // a WALKREF; last: the object's mode now
        let walk = match self.kept.get(cpu) {
            Some((s, walk)) if *s == seq && walk.len() >= WALKEND_ITEM => &walk[..],
            _ => {
                self.misses += 1;
                &[][..]
            }
        };
        splice(data, at, next, walk, end, buf);
        if !walk.is_empty() {
            // the kept walk ends with its WALKEND: its mode is the file's now
            let m = at + walk.len() - size_of::<ow_walkend>() + offset_of!(ow_walkend, mode);
            buf[m..m + 4].copy_from_slice(&last.to_le_bytes());
        }
        buf
    }

    /// CPU `cpu` keeps the `len` bytes of `data` before `at` as its walk number `seq`.
    fn keep(&mut self, cpu: usize, seq: u32, data: &[u8], at: usize, len: usize) {
        if len > at - size_of::<ow_event>() || cpu >= MAX_CPUS {
            return;
        }
        if self.kept.len() <= cpu {
            self.kept.resize_with(cpu + 1, Default::default);
        }
        let k = &mut self.kept[cpu];
        k.0 = seq;
        k.1.clear();
        k.1.extend_from_slice(&data[at - len..at]);
    }

    /// A WALKUP at data[at..next]: the kept walk's items from `from` on, but its WALKEND,
    /// in its place (the walk's own WALKEND follows); a walk that is not here leaves the
    /// walk cut short (counted). Then a WALKKEEP of this walk keeps it whole.
    #[inline(never)]
    fn join_up(
        &mut self,
        data: &[u8],
        (at, next, end): (usize, usize, usize),
        (cpu, seq, from): (usize, u32, usize),
        buf: &mut Vec<u8>,
    ) {
        let rest = match self.kept.get(cpu) {
            Some((s, walk))
                if *s == seq
                    && walk.len() >= WALKEND_ITEM
                    && from <= walk.len() - WALKEND_ITEM
                    && walk[walk.len() - WALKEND_ITEM] == item::WALKEND =>
            {
                Some(&walk[from..walk.len() - WALKEND_ITEM])
            }
            _ => None,
        };
        splice(data, at, next, rest.unwrap_or_default(), end, buf);
        let added = rest.map_or(0, <[u8]>::len);
        let after = at + added;
        if rest.is_none() {
            self.misses += 1;
            let walkend = |kind, len| kind == item::WALKEND && len == size_of::<ow_walkend>();
            if let Some((_, w, _, _)) = find_item(buf, after, walkend) {
                let f = w + 4 + offset_of!(ow_walkend, flags);
                let flags = u32_at(buf, f) | flag::TRUNCATED;
                buf[f..f + 4].copy_from_slice(&flags.to_le_bytes());
            }
        }
        let wanted = |kind, len| kind == item::WALKKEEP && len == size_of::<ow_walkkeep>();
        if let Some((_, k, _, _)) = find_item(buf, after, wanted) {
            // (its length counts the WALKUP, not what replaced it)
            let len = (u32_at(buf, k + 12) as usize + added).checked_sub(next - at);
            if let Some(len) = len {
                let (cpu, seq) = (u32_at(buf, k + 4) as usize, u32_at(buf, k + 8));
                self.keep(cpu, seq, buf, k, len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 0];
        v.extend_from_slice(&(body.len() as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn u32s(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn record(flags: u32, items: &[Vec<u8>], ident_at: u32) -> Vec<u8> {
        let body: Vec<u8> = items.concat();
        let ev = ow_event {
            flags,
            ident_at,
            data_len: body.len() as u32,
            ..Default::default()
        };
        let mut v = unsafe { plain::as_bytes(&ev) }.to_vec();
        v.extend_from_slice(&body);
        v
    }

    fn walk(mode: u32) -> Vec<Vec<u8>> {
        vec![
            it(item::SEG, &u32s(&[7])),
            it(item::NAME, b"f"),
            it(item::NAME, b"d"),
            it(item::WALKEND, &u32s(&[3, 0, mode, 2])),
        ]
    }

    fn slot(s: u8) -> Vec<u8> {
        it(item::SLOT, &[s])
    }

    #[test]
    fn a_walkref_gets_the_walk_its_cpu_kept_with_the_mode_it_says() {
        use crate::kernel::abi::slot::{ARGV, PATH};
        let mut j = WalkJoin::default();
        let mut buf = Vec::new();
        let w = walk(0o100600).concat();
        let keep = it(item::WALKKEEP, &u32s(&[1, 5, w.len() as u32]));
        let argv = [slot(ARGV), it(item::STR, b"tar\0-x")];
        let first = record(
            flag::WALKKEEP,
            &[
                vec![slot(PATH)],
                walk(0o100600),
                vec![keep.clone()],
                argv.to_vec(),
            ]
            .concat(),
            (4 + 1 + w.len() + keep.len() + 1) as u32,
        );
        assert_eq!(
            j.join(&first, &mut buf),
            &first[..],
            "a kept walk's record as it came"
        );

        // CPU 1's walk 5, in a chmod's record: the walk with the chmod's mode
        let r = |cpu, seq| it(item::WALKREF, &u32s(&[cpu, seq, 0o100644]));
        let later = record(
            flag::WALKREF,
            &[vec![slot(PATH), r(1, 5)], argv.to_vec()].concat(),
            (4 + 1 + 16 + 1) as u32,
        );
        let whole = record(
            flag::WALKREF,
            &[vec![slot(PATH)], walk(0o100644), argv.to_vec()].concat(),
            (4 + 1 + w.len() + 1) as u32,
        );
        assert_eq!(j.join(&later, &mut buf), &whole[..]);
        assert_eq!(j.misses, 0);

        // another CPU's, or a number this CPU kept before: not here, counted
        for (cpu, seq) in [(0, 5), (1, 4), (9, 5)] {
            let later = record(flag::WALKREF, &[vec![slot(PATH), r(cpu, seq)]].concat(), 0);
            let empty = record(flag::WALKREF, &[vec![slot(PATH)]].concat(), 0);
            assert_eq!(j.join(&later, &mut buf), &empty[..]);
        }
        assert_eq!(j.misses, 3);
    }

    #[test]
    fn a_walkup_gets_the_rest_of_the_walk_its_cpu_kept_and_is_kept_whole() {
        use crate::kernel::abi::slot::PATH;
        let mut j = WalkJoin::default();
        let mut buf = Vec::new();
        // CPU 1 keeps walk 5 of d/f: SEG, "f", "d", WALKEND; "d" begins 13 bytes in
        let w = walk(0o100600).concat();
        let keep = |seq, len: usize| it(item::WALKKEEP, &u32s(&[1, seq, len as u32]));
        let first = record(
            flag::WALKKEEP,
            &[vec![slot(PATH)], walk(0o100600), vec![keep(5, w.len())]].concat(),
            0,
        );
        j.join(&first, &mut buf);

        // g next to f: its SEG and name, then the rest of walk 5 from "d", its own WALKEND,
        // and kept in turn as walk 6
        let up = |cpu, seq, from| it(item::WALKUP, &u32s(&[cpu, seq, from]));
        let end = |flags| it(item::WALKEND, &u32s(&[3, flags, 0o100640, 2]));
        let own = [it(item::SEG, &u32s(&[7])), it(item::NAME, b"g")].concat();
        let sent = [own.clone(), up(1, 5, 13), end(0)].concat();
        let kept_as_6 = |walk: &[u8]| {
            let items = [slot(PATH), walk.to_vec(), keep(6, sent.len())];
            record(flag::WALKREF | flag::WALKKEEP, &items, 0)
        };
        let whole = [own.clone(), it(item::NAME, b"d"), end(0)].concat();
        assert_eq!(j.join(&kept_as_6(&sent), &mut buf), &kept_as_6(&whole)[..]);
        assert_eq!(j.misses, 0);

        // walk 6 is g's whole walk: a WALKREF to it gets it, with the mode it says
        let r = it(item::WALKREF, &u32s(&[1, 6, 0o100600]));
        let later = record(flag::WALKREF, &[vec![slot(PATH), r]].concat(), 0);
        let mut whole_now = whole.clone();
        let m = whole_now.len() - 8;
        whole_now[m..m + 4].copy_from_slice(&0o100600u32.to_le_bytes());
        let want = record(flag::WALKREF, &[vec![slot(PATH), whole_now]].concat(), 0);
        assert_eq!(j.join(&later, &mut buf), &want[..]);

        // a walk that is not here, or a `from` beyond it: the own names, cut short, counted
        for (seq, from) in [(5, 13), (6, 400)] {
            let sent = [own.clone(), up(1, seq, from), end(0)].concat();
            let rec = record(flag::WALKREF, &[vec![slot(PATH)], vec![sent]].concat(), 0);
            let cut = [own.clone(), end(flag::TRUNCATED)].concat();
            let want = record(flag::WALKREF, &[vec![slot(PATH)], vec![cut]].concat(), 0);
            assert_eq!(j.join(&rec, &mut buf), &want[..]);
        }
        assert_eq!(j.misses, 2);
    }

    #[test]
    fn records_without_the_flags_are_not_looked_into() {
        let mut j = WalkJoin::default();
        let mut buf = Vec::new();
        let w = walk(0).concat();
        let keep = it(item::WALKKEEP, &u32s(&[0, 1, w.len() as u32]));
        let rec = record(0, &[walk(0), vec![keep]].concat(), 0);
        assert_eq!(j.join(&rec, &mut buf), &rec[..]);
        let r = record(flag::WALKREF, &[it(item::WALKREF, &u32s(&[0, 1, 0]))], 0);
        j.join(&r, &mut buf);
        assert_eq!(j.misses, 1, "the unflagged WALKKEEP was not kept");
    }
}
