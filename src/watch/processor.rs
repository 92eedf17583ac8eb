//! Records from the ring buffer -> events -> lines: made whole (ident.rs), decode (decode.rs), place the paths
//! (locate.rs), decide (roots.rs), add who and when (enrich.rs), pair with outcomes
//! (pending.rs), give back (--fix), write (output/).

use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use crate::config::Format;
use crate::fix;
use crate::kernel::abi::{flag, op, ow_outcome, slot, OP_NAMES, UNSET};
use crate::kernel::plan::Backend;
use crate::output::journal;
use crate::output::metrics::Counts;
use crate::output::timefmt::now_rfc3339;
use crate::output::{json_line_with, text_line, ActorJson, Event, Note, Output, TreePath};

use super::decode::{decode_into, identity_start, Record};
use super::enrich::{Enricher, Ident, DELETED};
use super::ident::{Id, IdentJoin};
use super::locate::{Locator, Paths};
use super::pending::Pending;
use super::rootnames::RootNames;
use super::roots::Roots;
use super::walkjoin::WalkJoin;
use super::Tree;
use crate::paths::{is_under, strip_components, tree_of};
use crate::rules::Writer;

/// The identity answers for the last record whose identity was rendered already: a
/// writer's next records carry the same bytes (`handle_record`).
struct Again {
    /// the record's bytes from its identity's start (its IDREF among them)
    tail: Vec<u8>,
    ident: Rc<Ident>,
    idref: Id,
    /// `IdentJoin::gen` and `Processor::ident_stamp` then
    gen: u64,
    stamp: (u64, u64, u64),
}

/// Records -> events -> lines. Lives for the whole run.
pub(super) struct Processor {
    pub(super) roots: Roots,
    locate: Locator,
    enrich: Enricher,
    /// the writers' exe, tty and cgroup, sent once per process
    pub(super) idents: IdentJoin,
    /// where a record joined with its writer's exe, tty and cgroup is made (reused)
    joined: Vec<u8>,
    /// walks sent once for several records of one object (walkjoin.rs), and where a record
    /// is made whole with one (reused)
    pub(super) walks: WalkJoin,
    walked: Vec<u8>,
    /// the names above a root sent once for several walks (rootnames.rs)
    above: Option<Box<RootNames>>,
    pending: Pending,
    json: bool,
    backend: &'static str,
    buf: Vec<u8>,
    /// the last line's actor fields, rendered
    actor: ActorJson,
    again: Option<Again>,
    /// each tree's root as the last event in it had it (`tree_at_op`)
    tree_paths: Vec<TreePath>,
    pub(super) out: Output,
    pub(super) out_err: Option<io::Error>,
    pub(super) fix: bool,
    /// --fix: which events say the set-id bits were dropped
    setid: SetidPairs,
    pub(super) max_events: Option<u64>,
    /// records from the kernel, and events written: the difference was decided here
    pub(super) records: u64,
    pub(super) events: u64,
    /// --metrics: what was written, by tree, op and user; lost and fixed
    pub(super) metrics: Option<Counts>,
}

impl Processor {
    pub(super) fn new(trees: &[Tree], format: Format, backend: Backend, out: Output) -> Self {
        Processor {
            roots: Roots::new(trees),
            locate: Locator::new(),
            enrich: Enricher::new(),
            idents: IdentJoin::default(),
            joined: Vec::new(),
            walks: WalkJoin::default(),
            walked: Vec::new(),
            above: Some(Box::default()),
            pending: Pending::default(),
            json: format == Format::Json,
            backend: backend.name(),
            buf: Vec::with_capacity(4096),
            actor: ActorJson::default(),
            again: None,
            tree_paths: Vec::new(),
            out,
            out_err: None,
            fix: false,
            setid: SetidPairs::default(),
            max_events: None,
            records: 0,
            events: 0,
            metrics: None,
        }
    }

    /// Where each root is now (`Roots::refresh`); a root given up is said on stderr and
    /// in-band, after its events that still waited for an outcome (without "ret": it did not
    /// come within OUTCOME_GRACE, during which the root is not given up).
    pub(super) fn refresh_roots(&mut self) {
        let now = std::time::Instant::now();
        let pending = &self.pending;
        for g in self.roots.refresh(|tree| pending.awaits(tree, now)) {
            let waiting = self.pending.take_tree(&g.path);
            self.emit_without_outcome(waiting);
            eprintln!(
                "ownwatch: {}: watched tree {}; no longer watched",
                String::from_utf8_lossy(&g.path),
                g.why
            );
            self.write_note(Note::TreeGone {
                tree: &g.path,
                why: g.why,
            });
        }
    }

    /// --max-events reached: the rest is not ours to print.
    pub(super) fn done(&self) -> bool {
        self.max_events.is_some_and(|m| self.events >= m)
    }

    /// (kept out of line: bench/agent-instr.sh counts the agent's work per record from here)
    #[inline(never)]
    pub(super) fn handle(&mut self, data: &[u8]) -> i32 {
        self.records += 1;
        if self.done() {
            return 0;
        }
        // The two record kinds have different sizes (checked at compile time in kernel/abi.rs).
        if data.len() == std::mem::size_of::<ow_outcome>() {
            return match self.pending.outcome(data) {
                Some(mut ev) => self.emit(&mut ev),
                None => 0,
            };
        }
        let mut walked = std::mem::take(&mut self.walked);
        // (out of self while the record borrows it: one pointer moved)
        let mut above = self.above.take().unwrap_or_default();
        let misses = self.walks.misses + above.misses.get();
        above.take(data);
        let data = self.walks.join(data, &mut walked);
        let mut joined = std::mem::take(&mut self.joined);
        let res = self.handle_record(data, &above, &mut joined);
        if self.walks.misses + above.misses.get() > misses && misses == 0 {
            eprintln!(
                "ownwatch: a record referred to a walk that is not here; its path is missing \
                 (please report this)"
            );
        }
        above.commit();
        self.above = Some(above);
        self.joined = joined;
        self.walked = walked;
        res
    }

    /// An event record (not an outcome); `above`: the names above roots its walks refer to;
    /// `joined`: the buffer for `IdentJoin::join`.
    fn handle_record(&mut self, raw: &[u8], above: &RootNames, joined: &mut Vec<u8>) -> i32 {
        self.enrich.revalidate(self.ident_stamp());
        // The writer's identity as rendered for an earlier record with the same bytes: then
        // only the part before it is decoded. A process's later records refer to its exe, tty
        // and cgroup (IDREF): where that names known items the record's own bytes are the key
        // and it need not be made whole.
        let raw_at = if self.json { identity_start(raw) } else { None };
        // the same bytes as the last record's that went the fast way, and nothing they depend
        // on changed since: the same answers without looking them up again
        let stamp = self.ident_stamp();
        let again = raw_at.and_then(|at| {
            let a = self.again.as_ref()?;
            (a.stamp == stamp && a.gen == self.idents.gen && raw[at..] == *a.tail)
                .then(|| (at, a.ident.clone(), a.idref))
        });
        let (raw_at, fast) = match again {
            Some((at, ident, idref)) => {
                self.idents.used_again(idref);
                (Some(at), Some((at, ident)))
            }
            None => {
                let known = raw_at.and_then(|at| Some((at, self.idents.refers_to_known(raw, at)?)));
                let raw_at = known.map(|(at, _)| at);
                let fast = raw_at.and_then(|at| Some((at, self.enrich.cached(&raw[at..])?)));
                if let (Some((at, id)), Some((_, idref))) = (&fast, known) {
                    let mut tail = self.again.take().map(|a| a.tail).unwrap_or_default();
                    tail.clear();
                    tail.extend_from_slice(&raw[*at..]);
                    self.again = Some(Again {
                        tail,
                        ident: id.clone(),
                        idref,
                        gen: self.idents.gen,
                        stamp,
                    });
                }
                (raw_at, fast)
            }
        };
        let (data, ident_at, cached) = match fast {
            Some((at, id)) => (raw, Some(at), Some(id)),
            None => {
                // every record, whatever becomes of it: a later one may refer to its exe
                let misses = self.idents.misses;
                let data = self.idents.join(raw, joined);
                if self.idents.misses > misses && misses == 0 {
                    eprintln!(
                        "ownwatch: a record came without its writer's exe, tty and cgroup (sent \
                         with an earlier record that is no longer here); the kernel sends them \
                         again next time"
                    );
                }
                let ident_at = if self.json {
                    identity_start(data)
                } else {
                    None
                };
                // (a record with a known IDREF is remembered by its own bytes, just missed)
                let cached = ident_at
                    .filter(|_| raw_at.is_none())
                    .and_then(|at| self.enrich.cached(&data[at..]));
                (data, ident_at, cached)
            }
        };
        let mut rec = Record::default();
        let part = match (&cached, ident_at) {
            (Some(_), Some(at)) => &data[..at],
            _ => data,
        };
        if let Err(e) = decode_into(part, above, &mut rec) {
            eprintln!("ownwatch: dropping a malformed record: {e}");
            return 0;
        }
        let Some((p, tree, tree_path)) = self.offending(&rec) else {
            return 0;
        };
        let mut ev = self.event(&rec, p, tree_path);
        // (a cached identity is applied below: the record was decoded without its slots)
        self.enrich.fill(
            &mut ev,
            &rec,
            cached.is_none(),
            &mut self.locate,
            &self.roots.now,
        );
        match (&cached, ident_at) {
            (Some(id), _) => Enricher::apply(&mut ev, id),
            (None, Some(at)) => {
                self.enrich.revalidate(self.ident_stamp());
                let key = match raw_at {
                    Some(raw_at) => &raw[raw_at..],
                    None => &data[at..],
                };
                self.enrich.remember(key, &ev, &rec);
            }
            _ => {}
        }
        // --config's exceptions: the writer as the event shows it (its exe by the path it
        // was run from, also once that file was deleted or replaced by an upgrade).
        let filter = &self.roots.filters[tree];
        if !filter.except.is_empty() {
            let w = Writer {
                exe: ev.exe.as_deref().map(|x| {
                    if ev.exe_deleted {
                        x.strip_suffix(DELETED).unwrap_or(x)
                    } else {
                        x
                    }
                }),
                comm: &ev.comm,
                cgroup: ev
                    .cgroup
                    .as_deref()
                    .or(cached.as_ref().and_then(|id| id.cgroup.as_deref())),
            };
            if filter.excepts(&w) {
                return 0;
            }
        }
        if rec.ev.flags & flag::PENDING != 0 {
            return match self.pending.hold(rec.ev.tid, rec.ev.ret as u32, ev) {
                Some(old) => self.emit_without_outcome(vec![old]),
                None => 0,
            };
        }
        self.emit(&mut ev)
    }

    /// What the identities rendered so far depend on besides their record bytes.
    fn ident_stamp(&self) -> (u64, u64, u64) {
        (self.locate.reloads, self.roots.moves, self.idents.regens)
    }

    /// Events whose outcome will not come (`Pending::overdue`), reported without "ret".
    pub(super) fn release_overdue(&mut self) {
        let alive =
            |pid: u32, tid: u32| std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists();
        let overdue = self.pending.overdue(std::time::Instant::now(), alive);
        self.emit_without_outcome(overdue);
    }

    /// Stopping: events whose outcome never came are reported without "ret".
    pub(super) fn drain_waiting(&mut self) {
        let waiting = self.pending.drain();
        self.emit_without_outcome(waiting);
    }

    /// Events whose outcome did not come (`Pending`), sent without "ret" and counted in-band
    /// after them (`"reason":"outcome"`): every event without "ret" is said, whatever kept
    /// its outcome away (the kernel skipped or could not deliver it, another LSM refused the
    /// op after our hook, the op still ran when we stopped or gave its tree up).
    fn emit_without_outcome(&mut self, evs: Vec<Event>) -> i32 {
        let mut sent = 0;
        let mut res = 0;
        for mut ev in evs {
            if self.done() {
                break;
            }
            res = self.emit(&mut ev);
            if res != 0 {
                break;
            }
            sent += 1;
        }
        if sent > 0 {
            self.lost(sent, Some("outcome"));
        }
        res
    }

    fn emit(&mut self, ev: &mut Event) -> i32 {
        if self.fix {
            self.give_back(ev);
        }
        self.events += 1;
        if let Some(m) = &mut self.metrics {
            m.event(ev);
        }
        let res = match &mut self.out {
            Output::Journal(j) => j.send(&journal::render(ev, &mut self.buf)),
            Output::Lines(s) => {
                let (json, actor) = (self.json, &mut self.actor);
                s.write_with(&mut self.buf, |out| {
                    if json {
                        json_line_with(ev, out, Some(actor));
                    } else {
                        text_line(ev, out);
                    }
                })
            }
        };
        self.locate.recycle(std::mem::take(&mut ev.path));
        if let Err(e) = res {
            self.out_err = Some(e);
            return -1;
        }
        0
    }

    /// A record -> its paths, its tree and the tree's root at the time of the op, if it is an
    /// offending write in a watched tree (the tree's ops, not ignored there; its exceptions
    /// are the caller's).
    fn offending(&mut self, rec: &Record) -> Option<(Paths, usize, TreePath)> {
        let ev = &rec.ev;
        if ev.op >= op::COUNT {
            return None;
        }
        self.locate.revalidate(self.roots.moves);
        let p = self.locate.paths(rec, &self.roots.now)?;
        let tree = p.path.tree?;
        if !self.roots.offends(tree, ev.fsuid, ev.ts_boot_ns)
            || !self.roots.filters[tree].wants_op(p.op)
        {
            return None;
        }
        // The root may have moved since the last look (a renamed root stays watched).
        if !is_under(&p.path.path, &self.roots.now[tree])
            && !p
                .new_path
                .as_deref()
                .is_some_and(|n| is_under(n, &self.roots.now[tree]))
        {
            self.refresh_roots();
        }
        let tree_path = self.tree_at_op(&p, tree);
        if self.ignored(tree, &tree_path, &p) {
            return None;
        }
        Some((p, tree, tree_path))
    }

    /// The event of an offending record (`offending`), without who and when (the caller's
    /// `Enricher::fill`). Returned as built, neither wrapped in an Option with its tree nor
    /// changed after: then the caller's binding is where it is built, not a copy of it (the
    /// fill here made it a 450-byte copy per record).
    fn event(&self, rec: &Record, p: Paths, tree_path: TreePath) -> Event {
        let ev = &rec.ev;
        let string_of = |s: u8| rec.slot(s).and_then(|sp| sp.string.map(<[u8]>::to_vec));
        let is_chown = p.op == op::CHOWN;
        let comm_len = ev
            .comm
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(ev.comm.len());
        Event {
            op: OP_NAMES[p.op as usize],
            mode: mode_of(rec, &p),
            truncated: truncated(rec, &p),
            path: p.path.path,
            resolved: p.path.exact,
            new_path: p.new_path,
            target: string_of(slot::TARGET),
            xattr: string_of(slot::XATTR),
            tree: tree_path,
            uid: ev.uid,
            gid: ev.gid,
            euid: ev.euid,
            fsuid: ev.fsuid,
            fsgid: ev.fsgid,
            pid: ev.pid,
            tid: ev.tid,
            ppid: ev.ppid,
            comm: smallvec::SmallVec::from_slice(&ev.comm[..comm_len]),
            new_uid: (is_chown && ev.new_uid != UNSET).then_some(ev.new_uid),
            new_gid: (is_chown && ev.new_gid != UNSET).then_some(ev.new_gid),
            // (a waiting record's ret is its outcome's key: Pending sets "ret" from the
            // outcome)
            ret: (ev.flags & (flag::NO_RET | flag::PENDING) == 0).then_some(ev.ret),
            backend: self.backend,
            exchange: ev.flags & flag::EXCHANGE != 0,
            ..Event::default()
        }
    }

    /// --config's `ignore`: every end of the op that lies in its tree (both of a rename or
    /// link within it) is ignored there.
    fn ignored(&self, tree: usize, root: &[u8], p: &Paths) -> bool {
        let f = &self.roots.filters[tree];
        if f.ignore.is_empty() {
            return false;
        }
        let ends: Vec<&[u8]> = std::iter::once(&p.path.path[..])
            .chain(p.new_path.as_deref())
            .filter(|e| is_under(e, root))
            .collect();
        !ends.is_empty()
            && ends.iter().all(|e| {
                let rel = &e[root.len()..];
                f.ignores(rel.strip_prefix(b"/").unwrap_or(rel))
            })
    }

    /// The root where it was at the time of the op: the kernel knows how deep below it the
    /// object lay (the root may have moved again since); else where it is now.
    /// Shared with the last event of the same root (`tree_paths`): most events' roots have
    /// not moved, and a line's tree is then no allocation of its own.
    fn tree_at_op(&mut self, p: &Paths, tree: usize) -> TreePath {
        let at_op = |path| p.path.depth.and_then(|k| strip_components(path, k));
        let path = if p.tree_from_new {
            p.new_path.as_deref().and_then(at_op)
        } else {
            at_op(&p.path.path)
        }
        .unwrap_or(&self.roots.now[tree]);
        if self.tree_paths.len() <= tree {
            self.tree_paths.resize(tree + 1, TreePath::default());
        }
        if *self.tree_paths[tree] != *path {
            self.tree_paths[tree] = TreePath::from(path);
        }
        self.tree_paths[tree].clone()
    }

    /// --fix: the object an offending op leaves in a tree goes back to that tree's owner, with
    /// no setuid/setgid bit (a directory keeps its own): what the writer created, moved or
    /// linked in, chowned, chmodded, wrote, truncated or changed an xattr of. New and
    /// moved-in directories with everything in them; both ends of a RENAME_EXCHANGE. The tree
    /// is the innermost one holding the object (nested trees: the inner owner decides). Only
    /// through O_PATH|O_NOFOLLOW handles from that tree's root (fix.rs): never through a
    /// symlink, never beyond a mount point. Nothing is left to check after an unlink, an rmdir,
    /// or a move out of every tree: no `fixed` then.
    fn give_back(&mut self, ev: &mut Event) {
        let mut targets: Vec<(&[u8], bool)> = Vec::with_capacity(2);
        match ev.op {
            "unlink" | "rmdir" => {}
            "link" | "rename" => {
                if let Some(p) = &ev.new_path {
                    targets.push((p, ev.op == "rename"));
                }
                if ev.exchange {
                    targets.push((&ev.path, true));
                }
            }
            "mkdir" => targets.push((&ev.path, true)),
            _ => targets.push((&ev.path, false)),
        }
        let mut fixed: Option<bool> = None;
        let mut error = None;
        let mut cleared = false;
        for (target, recurse) in targets {
            let t = tree_of(target, &self.roots.now);
            if t.is_some_and(|t| !self.roots.fix[t]) {
                // a tree whose rules say no fix (--config)
                continue;
            }
            let Some(t) = t else {
                if is_under(target, &ev.tree) {
                    // In the tree where its root was at the time of the op.
                    error = error.or(Some("the tree's root moved since: not fixed".into()));
                    fixed = Some(false);
                }
                // Else moved out of every tree: nothing of it is left to give back.
                continue;
            };
            let (uid, gid) = self.roots.owners[t];
            let res = match fix::rel_path(&self.roots.now[t], target) {
                None => Err("outside the watched tree".to_string()),
                Some(rel) => match self.roots.fd(t) {
                    Some(fd) => fix::fix_path(fd, rel, uid, gid, recurse, &self.roots.nested(t)),
                    None => Err("the watched tree is gone".to_string()),
                },
            };
            let ok = match res {
                Ok(o) => {
                    cleared |= self.setid.dropped(ev.op, ev.mode, &o);
                    let ok = o.ok();
                    if !ok {
                        error = error.or(o.first_error);
                    }
                    ok
                }
                Err(e) => {
                    error = error.or(Some(e));
                    false
                }
            };
            fixed = Some(fixed.unwrap_or(true) && ok);
        }
        ev.fixed = fixed;
        ev.fix_error = if fixed == Some(false) { error } else { None };
        ev.setid_cleared = cleared;
    }

    /// Program runs the kernel skipped (see `output::skipped_line`).
    pub(super) fn skipped(&mut self, n: u64) {
        self.write_note(Note::Lost {
            count: n,
            reason: Some("skipped"),
        });
    }

    /// Records the kernel could not deliver (reason None), or events sent without "ret"
    /// ("outcome", emit_without_outcome).
    pub(super) fn lost(&mut self, n: u64, reason: Option<&'static str>) {
        if let Some(m) = self.metrics.as_mut().filter(|_| reason.is_none()) {
            m.lost += n;
        }
        self.write_note(Note::Lost { count: n, reason });
    }

    /// An in-band line that is not an event (lost, tree_gone), stamped now; with `-o
    /// journal`, an entry of its own.
    fn write_note(&mut self, note: Note) {
        let time = now_rfc3339();
        let res = match &mut self.out {
            Output::Journal(j) => j.send(&journal::note_entry(&note, &time)),
            Output::Lines(s) => {
                self.buf.clear();
                note.line(&time, self.json, &mut self.buf);
                s.write_all(&self.buf)
            }
        };
        if let Err(e) = res {
            self.out_err.get_or_insert(e);
        }
    }

    pub(super) fn flush(&mut self) {
        if self.out_err.is_none() {
            if let Err(e) = self.out.flush() {
                self.out_err = Some(e);
            }
        }
    }
}

/// The mode an event reports: what a create, mkdir or mknod asked for, or chmod set (the
/// VFS backends' outcome says what the file got: pending.rs).
fn mode_of(rec: &Record, p: &Paths) -> Option<u32> {
    let ev = &rec.ev;
    if p.op == op::CREATE && (ev.flags & flag::TMPFILE != 0 || ev.op == op::LINK) {
        // lsm/fentry/kprobe walk the new name only and read the mode in the kernel
        match rec.slot(slot::NEW) {
            None => (ev.mode != UNSET).then_some(ev.mode),
            Some(_) => p.tmpfile_mode,
        }
    } else {
        (matches!(p.op, op::CREATE | op::MKDIR | op::MKNOD | op::CHMOD) && ev.mode != UNSET)
            .then_some(ev.mode)
    }
}

/// "truncated": a path the event reports was cut, not any walk the record carried (the walks
/// of the directories the op changed may be cut while the path is whole); a cut command line
/// has its own flag (argv_truncated).
fn truncated(rec: &Record, p: &Paths) -> bool {
    p.path.cut
        || [slot::TARGET, slot::EXE, slot::TTY, slot::CGROUP]
            .iter()
            .filter_map(|&s| rec.slot(s))
            .any(|s| s.string_truncated || rec.walk(s).is_some_and(|w| w.truncated))
}

/// --fix, per inode (st_dev, st_ino): the root chmods that set set-id bits, and the events
/// that said the bits were dropped.
#[derive(Default)]
struct SetidPairs(HashMap<(u64, u64), (u32, u32)>);

impl SetidPairs {
    /// Whether the event (op, mode) that led to the fix outcome `o` says `setid_cleared`. Each
    /// root chmod that set the bits gets one event saying they are gone, even when the chown of
    /// an earlier event's fix raced with it (stat'ed before the chmod, chowned after: the kernel
    /// dropped the bits unseen). Per inode, the chmods that set them are paired with the events
    /// that said so: a chmod whose fix found no bits says so itself when an earlier event did
    /// not already. A create starts the inode's count afresh: an inode number is reused once
    /// its file is gone (ext4 does at once), and a count left by the old file made a new
    /// file's chmod say nothing.
    fn dropped(&mut self, op: &str, mode: Option<u32>, o: &fix::FixOutcome) -> bool {
        let Some((dev, ino, setid_kind)) = o.target else {
            return o.setid_cleared > 0;
        };
        if matches!(op, "create" | "mknod" | "mkdir") {
            self.0.remove(&(dev, ino));
        }
        let sets = op == "chmod" && setid_kind && mode.is_some_and(|m| m & fix::SETID_BITS != 0);
        if !sets && o.setid_cleared == 0 {
            return false;
        }
        if self.0.len() >= 4096 {
            self.0.clear();
        }
        let (set, said) = self.0.entry((dev, ino)).or_default();
        *set += u32::from(sets);
        let dropped = o.setid_cleared > 0 || (sets && o.ok() && *said < *set);
        *said += u32::from(dropped);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ino: u64, cleared: u64) -> fix::FixOutcome {
        fix::FixOutcome {
            changed: 1,
            setid_cleared: cleared,
            target: Some((1, ino, true)),
            ..fix::FixOutcome::default()
        }
    }

    /// install -m 4755: its create's fix came after its chmod and dropped the bits (says so);
    /// the chmod's fix then finds none and says nothing. Or the create's fix came first and
    /// its chown raced with the chmod (the kernel dropped the bits, nobody saw them): the
    /// chmod says so. A file made later on the same inode number pairs afresh: before, a file
    /// created set-id (its create's fix said so, no chmod followed) left its inode number
    /// "said" once too often, and the next file there with a racing install said nothing
    /// (fix::fix_drops_setid_bits_root_leaves, once on the host under load).
    #[test]
    fn one_event_says_the_bits_went_even_on_a_reused_inode() {
        let mut p = SetidPairs::default();
        assert!(p.dropped("create", None, &outcome(7, 1)));
        assert!(!p.dropped("chmod", Some(0o4755), &outcome(7, 0)));
        // a file created set-id: its create's fix says so, no chmod comes; then it goes
        assert!(p.dropped("create", Some(0o4755), &outcome(6, 1)));
        // a new file gets inode 6, its create's chown races with its chmod
        assert!(!p.dropped("create", None, &outcome(6, 0)));
        assert!(p.dropped("chmod", Some(0o4755), &outcome(6, 0)));
        // a chmod that finds the bits itself
        assert!(p.dropped("chmod", Some(0o2755), &outcome(8, 1)));
        // a plain chmod says nothing
        assert!(!p.dropped("chmod", Some(0o755), &outcome(9, 0)));
    }
}

#[cfg(test)]
mod outcome_tests {
    use super::*;
    use crate::output::sink::Sink;

    fn held(tid: u32, path: &str) -> Event {
        Event {
            op: "mkdir",
            path: path.as_bytes().to_vec(),
            pid: 7,
            tid,
            time: format!("2026-12-06T00:00:0{tid}Z").as_str().into(),
            ..Event::default()
        }
    }

    /// Every event that goes without "ret" is counted in-band right after it, whichever way
    /// it went: its thread's next event replaced it, it was overdue, or the agent stopped.
    #[test]
    fn events_without_ret_are_counted_in_band_after_them() {
        let dir = crate::testutil::temp_dir("outcome");
        let file = dir.path().join("out");
        let out = Output::Lines(Sink::file(&file).unwrap());
        let mut p = Processor::new(&[], Format::Json, Backend::Lsm, out);
        assert!(p.pending.hold(1, 0, held(1, "/t/a")).is_none());
        let old = p
            .pending
            .hold(1, 0, held(1, "/t/b"))
            .expect("a replaced event");
        assert_eq!(p.emit_without_outcome(vec![old]), 0);
        assert!(p.pending.hold(2, 0, held(2, "/t/c")).is_none());
        p.drain_waiting();
        p.drain_waiting(); // nothing left: nothing said
        p.flush();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let shape: Vec<(String, Option<String>, Option<u64>)> = lines
            .iter()
            .map(|v| {
                assert!(v.get("ret").is_none(), "{v}");
                (
                    v["op"].as_str().unwrap().to_string(),
                    v["path"].as_str().map(str::to_string),
                    v["count"].as_u64(),
                )
            })
            .collect();
        let ev = |p: &str| ("mkdir".to_string(), Some(p.to_string()), None);
        let lost = |n| ("lost".to_string(), None, Some(n));
        assert_eq!(
            shape,
            [ev("/t/a"), lost(1), ev("/t/b"), ev("/t/c"), lost(2)]
        );
        assert!(lines
            .iter()
            .filter(|v| v["op"] == "lost")
            .all(|v| v["reason"] == "outcome"));
    }
}
