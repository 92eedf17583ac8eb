//! A record's slot -> the host path it names, the tree it is in and how sure we are: from the
//! kernel's walks where they decide it, else from the caller's string resolved on disk.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;

use smallvec::SmallVec;

use crate::kernel::abi::{flag, op, slot};
use crate::output::timefmt::boot_ns;

use super::decode::{Record, Spec, Walk};
use super::mounts::{walk_path, walk_path_or_raw, MountTable, MountsChanged};
use super::resolve::{resolve_str, StrPath};
use crate::paths::{
    final_component, is_proc_fd, is_under, join, join_into, names_path, parent_of, tree_of,
};

/// Where a slot's path is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located {
    pub path: Vec<u8>,
    /// Resolved exactly (else a lexical guess: the tracepoint backend looked too late).
    pub exact: bool,
    pub tree: Option<usize>,
    /// Names below the tree's root when the kernel saw it (the root may have moved since).
    pub depth: Option<usize>,
    /// Cut short: too deep for one record.
    pub cut: bool,
}

/// A dentry the op changed, as the kernel saw it.
pub struct Seen<'a> {
    /// Its walk's host path (`cut`: not the whole chain), shared with `Locator::recent`: a
    /// changed directory is most often one placed lately, and only the op's own path (a name
    /// joined to it) becomes the event's.
    pub path: Rc<[u8]>,
    /// The tree the kernel found it in, and how many names below that tree's root.
    pub tree: Option<usize>,
    pub depth: Option<usize>,
    pub cut: bool,
    pub dir: bool,
    pub mode: u32,
    pub leaf: Option<&'a [u8]>,
}

/// A walk's host path: shared from `Locator::recent`, or placed now.
enum Placed {
    Recent(Rc<[u8]>),
    New(Vec<u8>),
    /// placed now, and kept in `recent` as the second
    Kept(Vec<u8>, Rc<[u8]>),
}

/// Names below the root of the tree the kernel found a walk in; none for a walk cut short
/// (its path is not the full chain: no depth to count from).
fn walk_depth(w: &Walk) -> Option<usize> {
    w.tree
        .filter(|_| !w.truncated)
        .map(|_| w.tree_depth as usize)
}

/// What the kernel's walks of the changed dentries say about a slot's path.
enum Refined {
    /// They decide it.
    Kernel(Located),
    /// One of these, whichever the string resolves to (else the string's resolution).
    Pick(SmallVec<[Located; 2]>),
    /// Nothing: resolve the string.
    Open,
}

/// The paths of one record's slots (`Locator::paths`).
pub struct Paths {
    pub path: Located,
    pub new_path: Option<Vec<u8>>,
    /// The tree was found through the new name of a rename or link.
    pub tree_from_new: bool,
    /// The op as reported: naming an O_TMPFILE file is a create.
    pub op: u32,
    /// A linked O_TMPFILE file's mode.
    pub tmpfile_mode: Option<u32>,
}

/// What every slot of one record is placed with.
#[derive(Clone, Copy)]
struct Ctx<'a, 'r> {
    rec: &'a Record<'r>,
    /// The op acts on the name itself (a final symlink is not followed).
    nofollow: bool,
    /// The caller's cwd, for "/proc/self/cwd/..." strings.
    cwd: Option<&'a [u8]>,
    roots: &'a [Vec<u8>],
}

/// Host paths from kernel walks, through the mount table (re-read when it is stale).
pub struct Locator {
    mounts: MountTable,
    /// whether the mount table changed since `mounts` was read (mountinfo's word)
    mounts_changed: MountsChanged,
    /// when `mounts` was read, on the boot clock of event timestamps
    mounts_boot_ns: u64,
    /// Bumped whenever the mount table is read again: what was rendered with the old one
    /// (an exe path) is stale.
    pub reloads: u64,
    /// When the op being placed ran (`paths`), on the same clock.
    event_boot_ns: u64,
    /// Host paths of walks placed lately (a storm's ops change the same few directories),
    /// replaced in turn. Only answers the mount table placed in their tree; emptied when the
    /// table is read again or the roots change (`revalidate`).
    recent: Vec<(WalkKey, Rc<[u8]>)>,
    next_recent: usize,
    /// `Roots::moves` the entries of `recent` were placed with
    roots_stamp: u64,
    /// Paths of events already written, their buffers kept for the next events' (`recycle`).
    spare: Vec<Vec<u8>>,
}

/// How many buffers `spare` keeps, and how large each may be.
const SPARE: usize = 4;
const SPARE_MAX: usize = 4096;

/// How many walks `recent` keeps.
const RECENT: usize = 8;

/// What `walk_path` reads of a walk that is not cut: its tree and each segment's device,
/// mount root and names, packed in one buffer (per segment: the device, the names below the
/// mount root or u32::MAX, the count of names, then each name as a u16 length and its bytes),
/// and a fingerprint of a few of them that most other walks differ in (`fingerprint`).
#[derive(Debug, Default)]
struct WalkKey {
    fp: u64,
    tree: Option<u32>,
    packed: Vec<u8>,
}

/// A walk's tree, device, number of names and its object's name's length and first bytes:
/// what tells most walks apart in a few instructions, before `WalkKey::is` compares names.
fn fingerprint(w: &Walk) -> u64 {
    let Some(seg) = w.segs.first() else {
        return u64::from(w.tree.unwrap_or(u32::MAX));
    };
    let leaf = seg.names.first().copied().unwrap_or_default();
    let mut head = [0u8; 8];
    let n = leaf.len().min(8);
    head[..n].copy_from_slice(&leaf[..n]);
    let mix = |h: u64, v: u64| (h.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    let h = mix(u64::from(w.tree.unwrap_or(u32::MAX)), u64::from(seg.dev));
    let h = mix(
        h,
        (w.segs.len() as u64) << 32 | (seg.names.len() as u64) << 16 | leaf.len() as u64,
    );
    mix(h, u64::from_le_bytes(head))
}

impl WalkKey {
    /// This key made `w`'s, its buffer reused.
    fn set(&mut self, w: &Walk) {
        self.fp = fingerprint(w);
        self.tree = w.tree;
        let p = &mut self.packed;
        p.clear();
        for s in &w.segs {
            p.extend_from_slice(&s.dev.to_le_bytes());
            let below = s.below_mnt_root.map_or(u32::MAX, |b| b as u32);
            p.extend_from_slice(&below.to_le_bytes());
            p.extend_from_slice(&(s.names.len() as u16).to_le_bytes());
            for n in &s.names {
                p.extend_from_slice(&(n.len() as u16).to_le_bytes());
                p.extend_from_slice(n);
            }
        }
    }

    /// Whether this is `w`'s key (`fp`: `fingerprint(w)`).
    fn is(&self, fp: u64, w: &Walk) -> bool {
        if self.fp != fp || self.tree != w.tree {
            return false;
        }
        let p = &self.packed[..];
        let mut at = 0;
        for s in &w.segs {
            let Some(head) = p.get(at..at + 10) else {
                return false;
            };
            let below = s.below_mnt_root.map_or(u32::MAX, |b| b as u32);
            if head[..4] != s.dev.to_le_bytes()
                || head[4..8] != below.to_le_bytes()
                || head[8..10] != (s.names.len() as u16).to_le_bytes()
            {
                return false;
            }
            at += 10;
            for n in &s.names {
                let Some(len) = p.get(at..at + 2) else {
                    return false;
                };
                let len = u16::from_le_bytes([len[0], len[1]]) as usize;
                if len != n.len() || p.get(at + 2..at + 2 + len) != Some(*n) {
                    return false;
                }
                at += 2 + len;
            }
        }
        at == p.len()
    }
}

impl Locator {
    pub fn new() -> Self {
        Locator {
            mounts_changed: MountsChanged::open(),
            mounts: MountTable::load(),
            mounts_boot_ns: boot_ns(),
            reloads: 0,
            event_boot_ns: 0,
            recent: Vec::new(),
            next_recent: 0,
            roots_stamp: 0,
            spare: Vec::new(),
        }
    }

    /// An event's path once its line is written: its buffer makes a later event's path (a
    /// name joined to a changed directory) without an allocation.
    pub fn recycle(&mut self, path: Vec<u8>) {
        if self.spare.len() < SPARE && path.capacity() <= SPARE_MAX {
            self.spare.push(path);
        }
    }

    /// The roots as `Roots::moves` says (bumped whenever a root's path, or the set of roots,
    /// changes): walks placed with other roots are placed again.
    pub fn revalidate(&mut self, roots_stamp: u64) {
        if roots_stamp != self.roots_stamp {
            self.recent.clear();
            self.roots_stamp = roots_stamp;
        }
    }

    fn recent_path(&self, w: &Walk) -> Option<Rc<[u8]>> {
        let fp = fingerprint(w);
        self.recent
            .iter()
            .find(|(k, _)| k.is(fp, w))
            .map(|(_, p)| p.clone())
    }

    /// `p` as `w`'s path in `recent`, in place of the oldest entry once it is full (whose
    /// key's buffer is reused); the shared path returned.
    fn remember_path(&mut self, w: &Walk, p: &[u8]) -> Rc<[u8]> {
        let path: Rc<[u8]> = Rc::from(p);
        if self.recent.len() < RECENT {
            let mut k = WalkKey::default();
            k.set(w);
            self.recent.push((k, path.clone()));
        } else {
            let (k, old) = &mut self.recent[self.next_recent];
            k.set(w);
            *old = path.clone();
            self.next_recent = (self.next_recent + 1) % RECENT;
        }
        path
    }

    /// Whether the mount table was read before the op being placed ran: a mount the op went
    /// through may be missing from it.
    fn table_older_than_op(&self) -> bool {
        self.mounts_boot_ns < self.event_boot_ns
    }

    fn reload_mounts(&mut self) {
        // (taken before the read: a change after it is said next time)
        let _ = self.mounts_changed.since_last();
        self.mounts = MountTable::load();
        self.mounts_boot_ns = boot_ns();
        self.reloads += 1;
        self.recent.clear();
    }

    /// A kernel walk as a host path.
    pub fn walk_path(&mut self, w: &Walk, roots: &[Vec<u8>]) -> Vec<u8> {
        match self.place(w, roots) {
            Placed::Recent(p) => {
                // (into an earlier event's buffer: no allocation)
                let mut v = self.spare.pop().unwrap_or_default();
                v.clear();
                v.extend_from_slice(&p);
                v
            }
            Placed::New(p) | Placed::Kept(p, _) => p,
        }
    }

    /// A kernel walk as a host path, as `recent` shares it where it has it.
    fn place(&mut self, w: &Walk, roots: &[Vec<u8>]) -> Placed {
        if w.truncated {
            // Too deep for one record: the names nearest the object, under the tree they are in.
            let names = names_path(w.segs.first().map(|s| &s.names[..]).unwrap_or_default());
            let top = match w.tree.and_then(|t| roots.get(t as usize)) {
                Some(root) => root.clone(),
                None => Vec::new(),
            };
            return Placed::New([top, b"/\xe2\x80\xa6".to_vec(), names].concat());
        }
        // A walk the kernel placed in no tree (it stayed in its superblock) is placed by the
        // table alone: one read before a mount made since (a directory bind-mounted into a
        // tree, written in at once) would place it at its outside path. Read it again when
        // mountinfo says it changed.
        if w.tree.is_none() && self.table_older_than_op() && self.mounts_changed.since_last() {
            self.reload_mounts();
        }
        if let Some(p) = self.recent_path(w) {
            return Placed::Recent(p);
        }
        if let Some(p) = walk_path(w, &self.mounts, roots) {
            let in_its_tree = match w.tree.and_then(|t| roots.get(t as usize)) {
                Some(root) if !root.is_empty() => is_under(&p, root),
                _ => true,
            };
            if in_its_tree {
                // (the same table places it the same way next time)
                let kept = self.remember_path(w, &p);
                return Placed::Kept(p, kept);
            }
            if !self.table_older_than_op() {
                return Placed::New(p);
            }
            // The kernel found the walk in a tree, the mount table places it outside: the
            // table misses a mount made since it was read, e.g. an outside directory mounted
            // into the tree, whose files the table finds at their outside path (the same
            // superblock). Read it again, once per op at most.
            self.reload_mounts();
            return Placed::New(walk_path(w, &self.mounts, roots).unwrap_or(p));
        }
        // Mounts change: look again, but not on every event.
        if boot_ns().saturating_sub(self.mounts_boot_ns) > 200_000_000 {
            self.reload_mounts();
        }
        Placed::New(walk_path_or_raw(w, &self.mounts, roots))
    }

    /// The paths of a record's PATH and NEW slots, and the tree the op counts in.
    pub fn paths(&mut self, rec: &Record, roots: &[Vec<u8>]) -> Option<Paths> {
        let ev = &rec.ev;
        self.event_boot_ns = ev.ts_boot_ns;
        let cwd = rec.slot_walk(slot::CWD).map(|w| self.walk_path(w, roots));
        let cx = Ctx {
            rec,
            nofollow: ev.flags & flag::NOFOLLOW != 0,
            cwd: cwd.as_deref(),
            roots,
        };
        let seen = self.seen(rec, roots);
        let attr = matches!(
            ev.op,
            op::CHMOD | op::CHOWN | op::TRUNCATE | op::SETXATTR | op::REMOVEXATTR
        );
        // (the final names of the two strings, on the stack)
        let mut names: [&[u8]; 2] = [&[]; 2];
        let mut n = 0;
        for s in [slot::PATH, slot::NEW] {
            if let Some(string) = rec.slot(s).and_then(|sp| sp.string) {
                names[n] = final_component(string);
                n += 1;
            }
        }
        let names = &names[..n];
        let path_spec = rec.slot(slot::PATH)?;
        // The old name of a link is an existing file: no directory of the op holds it.
        let mut path = if ev.op == op::LINK {
            self.spec_path(path_spec, cx)
        } else {
            let whole = attr && ev.flags & flag::SEEN_OBJECT != 0;
            let r = refine(&seen, path_spec, attr, whole, names, roots, &mut self.spare);
            self.settle(r, path_spec, cx)
        };
        let mut out = Paths {
            path: Located::default(),
            new_path: None,
            tree_from_new: false,
            op: ev.op,
            tmpfile_mode: None,
        };
        if let Some(spec) = rec.slot(slot::NEW) {
            let r = refine(&seen, spec, false, false, names, roots, &mut self.spare);
            let new = self.settle(
                r,
                spec,
                Ctx {
                    nofollow: true,
                    ..cx
                },
            );
            // Naming an O_TMPFILE file creates it: report the name it got.
            let tmpfile = ev.flags & flag::TMPFILE != 0
                || (ev.op == op::LINK && !cx.nofollow && path_spec.string.is_some_and(is_proc_fd));
            if tmpfile {
                out.op = op::CREATE;
                out.tmpfile_mode = tmpfile_mode(&seen, spec, &new.path);
                path = new;
            } else {
                // A rename or link counts when either end is in a tree: moves in, out, within.
                path.exact &= new.exact;
                path.cut |= new.cut;
                if new.tree.is_some() {
                    path.tree = new.tree;
                    path.depth = new.depth;
                    out.tree_from_new = true;
                }
                out.new_path = Some(new.path);
            }
        }
        out.path = path;
        Some(out)
    }

    /// A kernel walk located: its path, the tree the kernel found it in and how deep.
    fn walk_located(&mut self, w: &Walk, roots: &[Vec<u8>]) -> Located {
        Located {
            path: self.walk_path(w, roots),
            exact: true,
            tree: w.tree.map(|t| t as usize),
            depth: walk_depth(w),
            cut: w.truncated,
        }
    }

    /// The dentries the op changed, as host paths.
    fn seen<'a>(&mut self, rec: &Record<'a>, roots: &[Vec<u8>]) -> SmallVec<[Seen<'a>; 2]> {
        rec.seen
            .iter()
            .map(|w| Seen {
                path: match self.place(w, roots) {
                    Placed::Recent(p) | Placed::Kept(_, p) => p,
                    Placed::New(p) => Rc::from(p),
                },
                tree: w.tree.map(|t| t as usize),
                depth: walk_depth(w),
                cut: w.truncated,
                dir: w.is_dir(),
                mode: w.mode,
                leaf: w.leaf(),
            })
            .collect()
    }

    /// Path of one slot, whether it was resolved on disk, and its tree.
    fn spec_path<'r>(&mut self, spec: &Spec<'r>, cx: Ctx<'_, 'r>) -> Located {
        let (rec, roots) = (cx.rec, cx.roots);
        match (&spec.string, rec.walk(spec)) {
            // The walk is the object: AT_EMPTY_PATH on an fd, or the caller's own
            // "/proc/self/fd/N" walked in the kernel (the fd is gone by now).
            (Some(s), w)
                if !(rec.ev.flags & flag::EMPTY_PATH != 0 && s.is_empty()
                    || rec.ev.flags & flag::PROC_FD != 0 && is_proc_fd(s)) =>
            {
                self.string_path(s, w, spec, cx)
            }
            (_, Some(w)) => {
                let mut at = self.walk_located(w, roots);
                at.tree = at.tree.or_else(|| tree_of(&at.path, roots));
                // (a string the kernel had no room for at all: the walk is only its base)
                at.cut |= spec.string.is_none() && rec.ev.flags & flag::TRUNCATED != 0;
                at
            }
            (_, None) => Located {
                cut: true,
                ..Located::default()
            },
        }
    }

    /// A caller's string, resolved on disk against the walked directory (or "/").
    fn string_path(&mut self, s: &[u8], w: Option<&Walk>, spec: &Spec, cx: Ctx<'_, '_>) -> Located {
        let (rec, roots, nofollow) = (cx.rec, cx.roots, cx.nofollow);
        let base = match w {
            Some(w) => self.walk_path(w, roots),
            None => b"/".to_vec(),
        };
        let (mut path, exact) = resolve_str(&StrPath {
            base: &base,
            string: s,
            absolute: s.first() == Some(&b'/'),
            nofollow,
            cwd: cx.cwd,
            pid: rec.ev.pid,
            tid: rec.ev.tid,
        });
        let mut tree = tree_of(&path, roots);
        if tree.is_none() && exact {
            // Through a bind mount of (part of) a tree: name it as in the tree.
            // (a mount table read before the op may miss the mount it went through)
            if self.table_older_than_op() {
                self.reload_mounts();
            }
            // An op on the name itself (create, unlink, rename...) acts in the directory
            // holding it, even where a mount now covers that name.
            let view = if nofollow {
                let name = final_component(&path).to_vec();
                self.mounts
                    .watched_view(parent_of(&path), roots)
                    .map(|d| join(&d, &name))
            } else {
                self.mounts.watched_view(&path, roots)
            };
            if let Some(p) = view {
                tree = tree_of(&p, roots);
                path = p;
            }
        }
        Located {
            path,
            exact,
            tree,
            depth: None,
            cut: spec.string_truncated || w.is_some_and(|w| w.truncated),
        }
    }

    /// The path of a slot from `refine`'s answer, resolving the string on disk only when the
    /// kernel's walks did not decide it.
    fn settle<'r>(&mut self, r: Refined, spec: &Spec<'r>, cx: Ctx<'_, 'r>) -> Located {
        match r {
            Refined::Kernel(k) => k,
            Refined::Open => self.spec_path(spec, cx),
            Refined::Pick(cands) => {
                let r = self.spec_path(spec, cx);
                cands.into_iter().find(|c| c.path == r.path).unwrap_or(r)
            }
        }
    }
}

/// What the kernel saw during the op beats a string resolved after the fact: the directory
/// it really changed, whatever namespace, bind mount or race the string went through.
/// Decided from the record alone: the string is resolved on disk (`settle`) only when the
/// kernel's walks leave the answer open, which is the expensive part of an event.
/// `spare`: buffers for the paths it makes.
/// `whole`: the kernel found the first seen walk to be an attribute op's object, whole and
/// by its only name, and sent no string (flag::SEEN_OBJECT).
fn refine(
    seen: &[Seen],
    spec: &Spec,
    attr: bool,
    whole: bool,
    names: &[&[u8]],
    roots: &[Vec<u8>],
    spare: &mut Vec<Vec<u8>>,
) -> Refined {
    let string = spec.string.filter(|s| !s.is_empty());
    if seen.is_empty() || string.is_none() && !whole {
        return Refined::Open;
    }
    let tree_of = |p: &[u8], t: Option<usize>| t.or_else(|| tree_of(p, roots));
    if attr {
        // chmod, chown, truncate, xattrs change the ctime of their object only; the kernel
        // says when the first walk is that object under the name the op used (whole: not a
        // hard link's other name).
        let o = &seen[0];
        if o.cut || !whole {
            return Refined::Open;
        }
        return Refined::Kernel(Located {
            path: o.path.to_vec(),
            exact: true,
            tree: tree_of(&o.path, o.tree),
            depth: o.depth,
            cut: false,
        });
    }
    let Some(s) = string else {
        return Refined::Open;
    };
    let name = final_component(s);
    if matches!(name, b"" | b"." | b"..") {
        return Refined::Open;
    }
    // Parent directories: directories changed by the op that are not themselves the object
    // (a moved or removed directory sits, named as the op says, in another seen directory).
    let is_object = |w: &Seen| {
        w.leaf.is_some_and(|l| names.contains(&l))
            && seen.iter().any(|o| o.dir && *o.path == *parent_of(&w.path))
    };
    let dirs = seen.iter().filter(|w| w.dir && !is_object(w));
    // A walk cut short cannot name its directory, nor tell which end of a move this is:
    // the string decides then.
    if dirs.clone().any(|w| w.cut) {
        return Refined::Open;
    }
    let mut located = |d: &Seen| {
        let mut path = spare.pop().unwrap_or_default();
        join_into(&mut path, &d.path, name);
        Located {
            tree: tree_of(&path, d.tree),
            path,
            exact: true,
            depth: d.depth.map(|k| k + 1),
            cut: false,
        }
    };
    // (the one directory of most ops without a vector around it)
    let mut dirs = dirs;
    match (dirs.next(), dirs.next()) {
        (None, _) => Refined::Open,
        (Some(d), None) => Refined::Kernel(located(d)),
        // A move between two directories: the string tells which end this is.
        (Some(a), Some(b)) => Refined::Pick([a, b].into_iter().chain(dirs).map(located).collect()),
    }
}

/// A linked O_TMPFILE file's mode: the linked inode as the kernel saw it during the link,
/// else as it is now.
fn tmpfile_mode(seen: &[Seen], spec: &Spec, path: &[u8]) -> Option<u32> {
    let name = final_component(spec.string.unwrap_or_default());
    seen.iter()
        .find(|w| !w.dir && w.mode != 0 && w.leaf == Some(name))
        .map(|w| w.mode & 0o7777)
        .or_else(|| {
            std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(path))
                .ok()
                .map(|m| m.mode() & 0o7777)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::decode::Seg;
    use crate::watch::mounts::kernel_dev;

    fn walk<'a>(names: &[&'a [u8]], tree: Option<u32>) -> Walk<'a> {
        Walk {
            segs: smallvec::smallvec![Seg {
                dev: kernel_dev(0, 25),
                names: names.into(),
                below_mnt_root: None,
            }],
            tree,
            ..Walk::default()
        }
    }

    #[test]
    fn walks_placed_lately_are_placed_again_only_when_they_are_the_same() {
        let mut l = Locator::new();
        l.mounts = MountTable::parse(
            b"22 1 254:0 / / rw - ext4 /dev/vda rw\n30 22 0:25 / /tmp rw - tmpfs tmpfs rw\n",
        );
        let roots = vec![b"/tmp/d".to_vec()];
        let f = walk(&[b"f", b"d"], Some(0));
        assert_eq!(l.walk_path(&f, &roots), b"/tmp/d/f");
        assert_eq!(l.recent.len(), 1);
        assert_eq!(l.walk_path(&f, &roots), b"/tmp/d/f");
        // the same names split otherwise, another name, another tree, another mount root
        // marker or device: not the same walk, by the fingerprint or (given the key's own,
        // as a collision would) by the names
        let k = &l.recent[0].0;
        assert!(k.is(fingerprint(&f), &f));
        let mut marked = f.clone();
        marked.segs[0].below_mnt_root = Some(1);
        let mut two = f.clone();
        two.segs.push(two.segs[0].clone());
        let mut dev = f.clone();
        dev.segs[0].dev += 1;
        for other in [
            walk(&[b"fd"], Some(0)),
            walk(&[b"f"], Some(0)),
            walk(&[b"f", b"d", b"x"], Some(0)),
            walk(&[b"f", b"e"], Some(0)),
            walk(&[b"f", b"d"], None),
            marked,
            two,
            dev,
        ] {
            assert!(!k.is(fingerprint(&other), &other), "{other:?}");
            assert!(!k.is(k.fp, &other), "{other:?}");
        }
        assert_eq!(
            l.walk_path(&walk(&[b"g", b"d"], Some(0)), &roots),
            b"/tmp/d/g"
        );
        // kept in turn, RECENT of them
        for i in 0..2 * RECENT {
            let n = format!("n{i}");
            let w = walk(&[n.as_bytes(), b"d"], Some(0));
            assert_eq!(l.walk_path(&w, &roots), format!("/tmp/d/n{i}").as_bytes());
        }
        assert_eq!(l.recent.len(), RECENT);
        // other roots: placed anew
        l.revalidate(1);
        assert!(l.recent.is_empty());
        // a walk the table places outside its tree is not kept (its placing may read the
        // table again)
        let other = vec![b"/srv".to_vec()];
        l.walk_path(&f, &other);
        assert!(l.recent.is_empty());
    }

    #[test]
    fn an_attribute_ops_object_is_the_first_seen_walk_only_where_the_kernel_says_so() {
        let roots = vec![b"/srv/d".to_vec()];
        let seen = |cut| Seen {
            path: Rc::from(&b"/srv/d/sub/f"[..]),
            tree: Some(0),
            depth: Some(2),
            cut,
            dir: false,
            mode: 0o100644,
            leaf: Some(&b"f"[..]),
        };
        let no_string = Spec::default();
        let refined = |seen: &[Seen], spec: &Spec, attr, whole| match refine(
            seen,
            spec,
            attr,
            whole,
            &[],
            &roots,
            &mut Vec::new(),
        ) {
            Refined::Kernel(k) => Some((k.path, k.tree, k.depth, k.exact)),
            _ => None,
        };
        assert_eq!(
            refined(&[seen(false)], &no_string, true, true),
            Some((b"/srv/d/sub/f".to_vec(), Some(0), Some(2), true))
        );
        // the string decides where the kernel did not say the walk is the object (it may be
        // another name of a file with hard links), where the walk is cut, or with no walk
        assert_eq!(refined(&[seen(false)], &no_string, true, false), None);
        assert_eq!(refined(&[seen(true)], &no_string, true, true), None);
        assert_eq!(refined(&[], &no_string, true, true), None);
        let string = Spec {
            string: Some(b"sub/f"),
            ..Spec::default()
        };
        assert_eq!(refined(&[seen(false)], &string, true, false), None);
    }
}
