//! A walk that finds a watched root stops there when its CPU sent the names above that root
//! lately and the kernel found them unchanged (bpf/lib/walk.h, put_root_ref): a ROOTREF item
//! ("CPU c's names above a root, number s") stands where they would be. A walk that sends
//! them whole follows them with a ROOTKEEP item (c, s, their length), at most one per record,
//! and the record says so in its flags. `RootNames` keeps each CPU's last names; the decoder
//! reads a ROOTREF's from here into the walk's segment (decode.rs), so that every walk is as
//! if it had gone on to its superblock's root, and nothing of the record is copied.
//!
//! The names above a root are the same for every walk in it (the kernel compares the dentries
//! up to the superblock's root, their names and the mount's root among them), and where the
//! root was at the time of each op is still told by the kernel: a root renamed or moved with
//! what is above it is placed as it was when the op ran.
//!
//! Each CPU keeps one set, in the kernel and here alike (as walkjoin.rs keeps one walk): the
//! kernel keeps a ROOTKEEP's names once its record is in the ring, so a ROOTREF names the
//! names of the last ROOTKEEP its CPU's records sent before it. A ROOTKEEP counts from the
//! end of its record (`take`, before the record is read; `commit`, after).

use std::cell::Cell;
use std::mem::{offset_of, size_of};

use super::decode::{find_item, u32_at};
use super::walkjoin::MAX_CPUS;
use crate::kernel::abi::{flag, item, ow_event, ow_rootkeep};

/// One CPU's names above a root: their NAME and MNTROOT items as the kernel sent them, where
/// each name is in them (nearest the root first), and how many come before a MNTROOT.
#[derive(Default)]
pub struct Kept {
    seq: u32,
    items: Vec<u8>,
    names: Vec<(u32, u32)>,
    pub below_mnt_root: Option<usize>,
}

impl Kept {
    /// The names, nearest the root first.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.names
            .iter()
            .map(|&(a, b)| &self.items[a as usize..b as usize])
    }

    /// `items` read: false when they are not all NAME and MNTROOT items.
    fn parse(&mut self) -> bool {
        self.names.clear();
        self.below_mnt_root = None;
        let d = &self.items[..];
        let mut at = 0;
        while at + 4 <= d.len() {
            let (kind, len) = (d[at], u16::from_le_bytes([d[at + 2], d[at + 3]]) as usize);
            let next = at + 4 + len;
            if next > d.len() {
                return false;
            }
            match kind {
                item::NAME => self.names.push(((at + 4) as u32, next as u32)),
                item::MNTROOT => self.below_mnt_root = Some(self.names.len()),
                _ => return false,
            }
            at = next;
        }
        at == d.len()
    }
}

#[derive(Default)]
pub struct RootNames {
    /// per CPU: its last names above a root
    kept: Vec<Kept>,
    /// the record being read keeps names: its CPU, and them
    next: Option<usize>,
    next_names: Kept,
    /// ROOTREFs to names not here (a bug: the walk is then placed as one cut short)
    pub misses: Cell<u64>,
}

impl RootNames {
    /// A record as it came from the kernel (before walkjoin.rs puts a kept walk in it, whose
    /// ROOTKEEP, if it had one, was counted with its own record): the names it keeps, if it
    /// keeps some, to be this CPU's from `commit` on.
    #[inline]
    pub fn take(&mut self, data: &[u8]) {
        let hdr = size_of::<ow_event>();
        if data.len() >= hdr && u32_at(data, offset_of!(ow_event, flags)) & flag::ROOTKEEP != 0 {
            self.take_keep(data);
        }
    }

    #[inline(never)]
    fn take_keep(&mut self, data: &[u8]) {
        let hdr = size_of::<ow_event>();
        let wanted = |kind, len| kind == item::ROOTKEEP && len == size_of::<ow_rootkeep>();
        let Some((_, at, _, _)) = find_item(data, hdr, wanted) else {
            return;
        };
        let (cpu, seq, n) = (
            u32_at(data, at + 4) as usize,
            u32_at(data, at + 8),
            u32_at(data, at + 12) as usize,
        );
        // (its names are the n bytes before it)
        if cpu >= MAX_CPUS || seq == 0 || n > at - hdr {
            return;
        }
        let k = &mut self.next_names;
        k.seq = seq;
        k.items.clear();
        k.items.extend_from_slice(&data[at - n..at]);
        if k.parse() {
            self.next = Some(cpu);
        }
    }

    /// The record is read: the names it kept are its CPU's.
    #[inline]
    pub fn commit(&mut self) {
        if let Some(cpu) = self.next.take() {
            self.commit_keep(cpu);
        }
    }

    #[inline(never)]
    fn commit_keep(&mut self, cpu: usize) {
        if self.kept.len() <= cpu {
            self.kept.resize_with(cpu + 1, Default::default);
        }
        // (the old one's buffers serve the next ROOTKEEP)
        std::mem::swap(&mut self.kept[cpu], &mut self.next_names);
    }

    /// CPU `cpu`'s names number `seq`; None (counted) when they are not here.
    pub fn get(&self, cpu: u32, seq: u32) -> Option<&Kept> {
        match self.kept.get(cpu as usize) {
            Some(k) if k.seq == seq && seq != 0 => Some(k),
            _ => {
                self.misses.set(self.misses.get() + 1);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::abi::slot;
    use crate::watch::decode::decode_into;
    use crate::watch::decode::tests::{record, Items};
    use crate::watch::decode::Record;

    fn ev(flags: u32) -> ow_event {
        ow_event {
            flags,
            ..Default::default()
        }
    }

    /// The names of the record's PATH walk, its tree depth and whether it was cut.
    fn path_walk(raw: &[u8], above: &RootNames) -> (Vec<Vec<u8>>, Option<usize>, bool) {
        let mut rec = Record::default();
        decode_into(raw, above, &mut rec).unwrap();
        let w = rec.slot_walk(slot::PATH).unwrap();
        let seg = &w.segs[0];
        (
            seg.names.iter().map(|n| n.to_vec()).collect(),
            seg.below_mnt_root,
            w.truncated,
        )
    }

    fn names(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_rootref_gets_the_names_its_cpu_kept_from_the_end_of_their_record() {
        let mut above = RootNames::default();
        // CPU 1 walks srv/app/f whole (a bind mount's root at srv) and keeps "app", "srv"
        let mut it = Items::default();
        it.slot(slot::PATH).seg(5).name(b"f");
        let start = it.0.len();
        it.name(b"app").mntroot().name(b"srv");
        let len = (it.0.len() - start) as u32;
        it.rootkeep(1, 7, len).end_depth(0, 0, 0, 1);
        // ... and in the same record, a walk that refers to what CPU 1 kept before: not here
        it.slot(slot::NEW).seg(5).name(b"g").rootref(1, 7).end(0, 0);
        let first = record(ev(flag::ROOTKEEP), &it);
        above.take(&first);
        let mut rec = Record::default();
        decode_into(&first, &above, &mut rec).unwrap();
        let w = rec.slot_walk(slot::PATH).unwrap();
        assert_eq!(w.segs[0].names.len(), 3);
        assert!(!w.truncated);
        let new = rec.slot_walk(slot::NEW).unwrap();
        assert!(
            new.truncated,
            "names kept by the record are not its own walks'"
        );
        assert_eq!(above.misses.get(), 1);
        drop(rec);
        above.commit();

        // a later record of CPU 1: its walk stopped at the root
        let mut it = Items::default();
        it.slot(slot::PATH)
            .seg(5)
            .name(b"x")
            .name(b"d")
            .rootref(1, 7)
            .end_depth(0, 0, 0, 2);
        let later = record(ev(0), &it);
        above.take(&later);
        assert_eq!(
            path_walk(&later, &above),
            (names(&["x", "d", "app", "srv"]), Some(3), false)
        );
        above.commit();
        assert_eq!(above.misses.get(), 1);

        // another CPU's, or another number: not here, placed as cut and counted
        for (cpu, seq) in [(0, 7), (1, 6), (1, 0), (9, 7)] {
            let mut it = Items::default();
            it.slot(slot::PATH)
                .seg(5)
                .name(b"x")
                .rootref(cpu, seq)
                .end(0, 0);
            let (n, _, cut) = path_walk(&record(ev(0), &it), &above);
            assert_eq!((n, cut), (names(&["x"]), true));
        }
        assert_eq!(above.misses.get(), 5);
    }

    #[test]
    fn only_a_record_flagged_so_keeps_names() {
        // a kept walk put back by walkjoin.rs carries its old ROOTKEEP: the flag is the
        // record's own, and a ROOTKEEP in a record without it is not taken
        let mut above = RootNames::default();
        let mut it = Items::default();
        it.slot(slot::PATH).seg(5).name(b"f").name(b"app");
        it.rootkeep(0, 2, 7).end(0, 0);
        above.take(&record(ev(0), &it));
        above.commit();
        assert!(above.get(0, 2).is_none());
        above.take(&record(ev(flag::ROOTKEEP), &it));
        assert!(above.get(0, 2).is_none(), "from the end of the record on");
        above.commit();
        let k = above.get(0, 2).unwrap();
        assert_eq!(k.names().collect::<Vec<_>>(), [&b"app"[..]]);
        assert_eq!(k.below_mnt_root, None);
        // a length beyond the record, a CPU past any machine's: not taken
        for (cpu, len) in [(0, 900), (1 << 20, 7)] {
            let mut it = Items::default();
            it.slot(slot::PATH).seg(5).name(b"app");
            it.rootkeep(cpu, 3, len).end(0, 0);
            above.take(&record(ev(flag::ROOTKEEP), &it));
            above.commit();
            assert!(above.get(cpu, 3).is_none());
        }
    }

    #[test]
    fn names_that_are_not_names_are_not_kept() {
        let mut above = RootNames::default();
        let mut it = Items::default();
        it.slot(slot::PATH).seg(5).string(b"x");
        it.rootkeep(0, 1, 5).end(0, 0);
        above.take(&record(ev(flag::ROOTKEEP), &it));
        above.commit();
        assert!(above.get(0, 1).is_none());
    }
}
