//! The writer's exe, tty and cgroup come once per process (bpf/lib/identity.h): the record
//! that sends them says what they depend on (an IDGEN item: process, exec, exe, tty, cgroup),
//! the process's later records say the same in their place (IDREF) while none of it changed.
//! `IdentJoin::join` gives every record back whole, as if the kernel had sent them each time,
//! before anything else reads it.

use std::mem::{offset_of, size_of};

use rustc_hash::FxHashMap;

use crate::kernel::abi::{item, ow_ident, slot};

use super::decode::{find_item, slot_start, splice, u32_at};
use crate::kernel::load::IDENTS as KERNEL_IDENTS;

/// How many IDGENs' items are kept here. Both sides forget the least recently used first:
/// the kernel refers only to the last IDGEN of a process it still remembers, which is one
/// whose records came here among the last KERNEL_IDENTS processes' too. Four times as many
/// leaves room for the kernel's LRU being approximate.
const KEPT: usize = 4 * KERNEL_IDENTS as usize;

/// An IDGEN's or IDREF's content (struct ow_ident).
const ID: usize = size_of::<ow_ident>();
pub type Id = [u8; ID];

#[derive(Default)]
pub struct IdentJoin {
    /// IDGEN -> (the items it came with, when they were last used)
    /// (FxHash: the key is the kernel's process, exec and object pointers, not a caller's
    /// bytes; looked up once per record)
    known: FxHashMap<Id, (Box<[u8]>, u64)>,
    tick: u64,
    /// processes (tgid) whose IDREF named items not here: the kernel is told to forget them,
    /// so that their next record sends the items again
    pub unknown: Vec<u32>,
    /// how many records came without their exe, tty and cgroup that way
    pub misses: u64,
    /// how many IDGENs brought other items for an id already here (the kernel forgot the
    /// process and walked its exe again, which may have moved): what was rendered from the
    /// old items is stale
    pub regens: u64,
    /// bumped whenever `known` changes: an answer of `refers_to_known` holds while it stays
    pub gen: u64,
    /// an id used since without a lookup (`used_again`), marked used at the next lookup or
    /// before any is forgotten
    pending: Option<Id>,
}

/// A record's IDGEN or IDREF item, looked for from the item at `from` (0: the first):
/// (kind, where it starts, where it ends, where the record's items end).
fn ident_item(data: &[u8], from: usize) -> Option<(u8, usize, usize, usize)> {
    find_item(data, from, |kind, len| {
        (kind == item::IDGEN || kind == item::IDREF) && len == ID
    })
}

impl IdentJoin {
    /// The record with its exe, tty and cgroup items in place of an IDGEN or IDREF item, made
    /// in `buf` (the caller's, reused: no allocation per record once it is big enough); the
    /// record itself when it has neither (an outcome, a record from before the kernel knew
    /// of them).
    pub fn join<'a>(&mut self, data: &'a [u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
        let Some((kind, at, next, end)) = ident_item(data, 0) else {
            return data;
        };
        self.mark_pending();
        let id: Id = data[at + 4..next].try_into().unwrap();
        self.tick += 1;
        if kind == item::IDGEN {
            // (the ancestors' slot ends what an IDGEN came with)
            let upto = slot_start(data, next, end, slot::PARENTS).unwrap_or(end);
            self.remember(id, &data[next..upto]);
            splice(data, at, next, &[], end, buf);
            return buf;
        }
        if !self.known.contains_key(&id) {
            self.misses += 1;
            self.unknown.push(u32_at(&id, offset_of!(ow_ident, tgid)));
        }
        let tick = self.tick;
        let items: &[u8] = match self.known.get_mut(&id) {
            Some((items, used)) => {
                *used = tick;
                items
            }
            None => &[],
        };
        splice(data, at, next, items, end, buf);
        buf
    }

    /// Whether the record refers (IDREF) to items that are here, which are then marked used
    /// as `join` would: the record's own bytes, IDREF included, then stand for its whole
    /// identity (until `regens` changes). `from`: an item at or before the IDREF (the
    /// identity's start), where the search begins.
    /// Returns the id it refers to, when known.
    pub fn refers_to_known(&mut self, data: &[u8], from: usize) -> Option<Id> {
        let Some((item::IDREF, at, next, _)) = ident_item(data, from) else {
            return None;
        };
        let id: Id = data[at + 4..next].try_into().unwrap();
        self.mark_pending();
        self.tick += 1;
        let tick = self.tick;
        let (_, used) = self.known.get_mut(&id)?;
        *used = tick;
        Some(id)
    }

    /// `id`, which `refers_to_known` found here while `gen` has not changed since, is used
    /// again by a record with the same bytes: marked used later, without a lookup now.
    pub fn used_again(&mut self, id: Id) {
        if self.pending.is_some_and(|p| p != id) {
            self.mark_pending();
        }
        self.pending = Some(id);
    }

    fn mark_pending(&mut self) {
        if let Some(id) = self.pending.take() {
            self.tick += 1;
            let tick = self.tick;
            if let Some((_, used)) = self.known.get_mut(&id) {
                *used = tick;
            }
        }
    }

    fn remember(&mut self, id: Id, items: &[u8]) {
        self.mark_pending();
        self.gen += 1;
        if self.known.len() >= KEPT {
            // forget the older half
            let mut ticks: Vec<u64> = self.known.values().map(|(_, t)| *t).collect();
            let mid = ticks.len() / 2;
            let cut = *ticks.select_nth_unstable(mid).1;
            self.known.retain(|_, (_, t)| *t > cut);
        }
        if self.known.get(&id).is_some_and(|(old, _)| **old != *items) {
            self.regens += 1;
        }
        self.known.insert(id, (items.into(), self.tick));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::abi::ow_event;

    /// An ow_ident of process `tgid` in state `n`.
    fn id(tgid: u32, n: u64) -> Vec<u8> {
        let i = ow_ident {
            tgid,
            exe: n,
            ..Default::default()
        };
        unsafe { plain::as_bytes(&i) }.to_vec()
    }

    fn it(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 0];
        v.extend_from_slice(&(body.len() as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn record(pid: u32, items: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = items.concat();
        let ev = ow_event {
            pid,
            data_len: body.len() as u32,
            ..Default::default()
        };
        let mut v = unsafe { plain::as_bytes(&ev) }.to_vec();
        v.extend_from_slice(&body);
        v
    }

    fn exe_items() -> Vec<Vec<u8>> {
        vec![
            it(item::SLOT, &[slot::EXE]),
            it(item::SEG, &[1, 0, 0, 0]),
            it(item::NAME, b"touch"),
            it(item::SLOT, &[slot::CGROUP]),
            it(item::NAME, b"x.service"),
        ]
    }

    fn parents() -> Vec<Vec<u8>> {
        vec![it(item::SLOT, &[slot::PARENTS]), it(item::PARENT, &[7; 20])]
    }

    #[test]
    fn an_idref_gets_the_items_its_idgen_came_with_and_both_records_look_as_if_sent_whole() {
        let argv = vec![it(item::SLOT, &[slot::ARGV]), it(item::STR, b"touch\0x")];
        let whole = |pid| record(pid, &[argv.clone(), exe_items(), parents()].concat());
        let mut j = IdentJoin::default();
        let mut b = Vec::new();
        let first = record(
            10,
            &[
                argv.clone(),
                vec![it(item::IDGEN, &id(10, 5))],
                exe_items(),
                parents(),
            ]
            .concat(),
        );
        assert_eq!(j.join(&first, &mut b), whole(10).as_slice());
        let later = record(
            10,
            &[argv.clone(), vec![it(item::IDREF, &id(10, 5))], parents()].concat(),
        );
        assert_eq!(j.join(&later, &mut b), whole(10).as_slice());
        // a record without either is left as it is
        let w = whole(10);
        assert!(std::ptr::eq(j.join(&w, &mut b), w.as_slice()));
        assert_eq!((j.misses, j.unknown.len()), (0, 0));
        // an IDREF to items not here: the record without them, the process to forget
        let lost = record(
            11,
            &[argv.clone(), vec![it(item::IDREF, &id(11, 6))], parents()].concat(),
        );
        assert_eq!(
            j.join(&lost, &mut b),
            record(11, &[argv, parents()].concat()).as_slice()
        );
        assert_eq!((j.misses, j.unknown.as_slice()), (1, &[11][..]));
    }

    #[test]
    fn a_known_idref_is_said_and_marked_used_and_new_items_for_an_id_count_as_a_regen() {
        let mut j = IdentJoin::default();
        let mut b = Vec::new();
        let gen = |n: &[u8]| {
            record(
                4,
                &[
                    vec![it(item::IDGEN, &id(4, 1))],
                    vec![it(item::SLOT, &[slot::EXE]), it(item::NAME, n)],
                ]
                .concat(),
            )
        };
        let idref = |g: u64| record(4, &[it(item::IDREF, &id(4, g))]);
        assert!(
            j.refers_to_known(&idref(1), 0).is_none(),
            "nothing here yet"
        );
        assert!(
            j.refers_to_known(&gen(b"a"), 0).is_none(),
            "an IDGEN is not a reference"
        );
        j.join(&gen(b"a"), &mut b);
        assert!(j.refers_to_known(&idref(1), 0).is_some());
        assert!(j.refers_to_known(&idref(2), 0).is_none());
        assert_eq!((j.misses, j.regens), (0, 0), "asking is not missing");
        // the same items again: nothing changed; other ones: what was rendered is stale
        j.join(&gen(b"a"), &mut b);
        assert_eq!(j.regens, 0);
        j.join(&gen(b"b"), &mut b);
        assert_eq!(j.regens, 1);
        // used by a reference, kept while others come and go
        for g in 10..(KEPT as u64 + 20) {
            j.join(&record(5, &[it(item::IDGEN, &id(5, g))]), &mut b);
            assert!(j.refers_to_known(&idref(1), 0).is_some());
        }
    }

    #[test]
    fn an_id_used_again_without_a_lookup_is_kept_as_one_looked_up() {
        let mut j = IdentJoin::default();
        let mut b = Vec::new();
        let idgen = |tgid, g| record(tgid, &[it(item::IDGEN, &id(tgid, g))]);
        let idref = record(4, &[it(item::IDREF, &id(4, 1))]);
        j.join(&idgen(4, 1), &mut b);
        let found: Id = j.refers_to_known(&idref, 0).expect("found");
        assert_eq!(found[..], id(4, 1)[..]);
        // every change to what is here moves gen (a stale answer is never reused)
        let mut gen = j.gen;
        for g in 10..(4 * KEPT as u64) {
            j.join(&idgen(5, g), &mut b);
            assert!(j.gen > gen);
            gen = j.gen;
            j.used_again(found);
        }
        assert!(
            j.refers_to_known(&idref, 0).is_some(),
            "forgotten though used"
        );
        // not used again: forgotten in turn
        for g in 0..(4 * KEPT as u64) {
            j.join(&idgen(6, g), &mut b);
        }
        assert!(j.refers_to_known(&idref, 0).is_none());
    }

    #[test]
    fn an_idgen_without_ancestors_after_it_holds_the_rest() {
        let mut j = IdentJoin::default();
        let mut b = Vec::new();
        let r = record(3, &[vec![it(item::IDGEN, &id(3, 9))], exe_items()].concat());
        assert_eq!(j.join(&r, &mut b), record(3, &exe_items()).as_slice());
        let r2 = record(3, &[it(item::IDREF, &id(3, 9))]);
        assert_eq!(j.join(&r2, &mut b), record(3, &exe_items()).as_slice());
    }

    #[test]
    fn the_most_recently_used_are_kept() {
        let mut j = IdentJoin::default();
        let mut b = Vec::new();
        let idgen = |g: u64| record(1, &[vec![it(item::IDGEN, &id(1, g))], exe_items()].concat());
        let idref = |g: u64| record(1, &[it(item::IDREF, &id(1, g))]);
        j.join(&idgen(1), &mut b);
        for g in 2..=(KEPT as u64 + 10) {
            j.join(&idgen(g), &mut b);
            // 1 is used all along
            j.join(&idref(1), &mut b);
        }
        assert!(j.known.len() <= KEPT);
        assert_eq!(
            j.join(&idref(1), &mut b),
            record(1, &exe_items()).as_slice()
        );
        assert_eq!(j.misses, 0);
        j.join(&idref(2), &mut b);
        assert_eq!(j.misses, 1, "the oldest unused one went");
    }
}
