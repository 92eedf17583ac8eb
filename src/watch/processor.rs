//! Records from the ring buffer -> events -> lines, with the watched roots as they move.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::config::Format;
use crate::fix;
use crate::kernel::abi::{flag, op, slot, OP_NAMES, UNSET};
use crate::kernel::plan::Backend;
use crate::output::sink::Sink;
use crate::output::timefmt;
use crate::output::{identity_json, json_line, lost_line, text_line, tree_gone_line, Event};
use crate::users::Names;
use crate::watch::decode::{decode, identity_start, Record, Spec};
use crate::watch::identity;
use crate::watch::resolve::{self, MountTable, StrPath};

use super::Tree;

/// How long a root found gone still counts (see `refresh_roots`).
const GONE_GRACE: Duration = Duration::from_millis(200);

/// Records -> events -> lines. Lives for the whole run; caches names and the mount table.
pub(super) struct Processor {
    /// O_PATH handles of the roots; None once a root is given up (`give_up`), which also lets
    /// a lazily unmounted filesystem go.
    roots_fd: Vec<Option<OwnedFd>>,
    /// (dev, ino) of each root: its key in the kernel's `roots` map
    root_keys: Vec<(u32, u64)>,
    /// (st_dev, st_ino) of each root, as user space sees them (`nested_roots`)
    root_ids: Vec<(u64, u64)>,
    /// roots found gone since the main loop last asked (`take_gone`)
    gone_new: Vec<usize>,
    /// when each root was first found gone, while its last records may still come
    going: Vec<Option<Instant>>,
    allowed: Vec<HashSet<u32>>,
    pub(super) roots_now: Vec<Vec<u8>>,
    mounts: MountTable,
    /// when `mounts` was read, on the boot clock of event timestamps
    mounts_boot_ns: u64,
    names: Names,
    boot_offset: i128,
    json: bool,
    backend: &'static str,
    buf: Vec<u8>,
    pub(super) out: Sink,
    pub(super) out_err: Option<io::Error>,
    owners: Vec<(u32, u32)>,
    pub(super) fix: bool,
    pub(super) max_events: Option<u64>,
    /// records from the kernel, and events written: the difference was decided here
    pub(super) records: u64,
    pub(super) events: u64,
    /// lsm/fentry/kprobe: each thread's last event, until the op's outcome arrives
    waiting: HashMap<u32, Event>,
    /// Identities rendered lately, by the record bytes they came from (`identity_start`):
    /// a storm's records all carry the writer's. Emptied when the mount table or a root's
    /// path changes (the exe path depends on them); the rest depends on the bytes alone.
    idents: Vec<(Vec<u8>, Rc<Ident>)>,
}

/// The identity part of an event, rendered once per writer.
struct Ident {
    json: Rc<[u8]>,
    tty: Option<String>,
    /// the exe, tty or cgroup was cut short (the event's `truncated`; argv has its own)
    truncated: bool,
}

const IDENTS_KEPT: usize = 32;

impl Processor {
    pub(super) fn new(trees: &[Tree], format: Format, backend: Backend, out: Sink) -> Self {
        Processor {
            roots_fd: trees
                .iter()
                .map(|t| Some(t.fd.try_clone().expect("dup of a root fd")))
                .collect(),
            root_keys: trees.iter().map(|t| (t.dev, t.ino)).collect(),
            root_ids: trees
                .iter()
                .map(|t| {
                    let st = crate::sys::fstat(t.fd.as_fd()).expect("fstat of a root fd");
                    (st.st_dev, st.st_ino)
                })
                .collect(),
            gone_new: Vec::new(),
            going: vec![None; trees.len()],
            allowed: trees.iter().map(|t| t.allowed.clone()).collect(),
            roots_now: trees
                .iter()
                .map(|t| t.path.as_os_str().as_bytes().to_vec())
                .collect(),
            mounts: MountTable::load(),
            mounts_boot_ns: crate::output::timefmt::boot_ns(),
            names: Names::default(),
            boot_offset: timefmt::boot_to_realtime_offset(),
            json: format == Format::Json,
            backend: backend.name(),
            buf: Vec::with_capacity(4096),
            out,
            out_err: None,
            owners: trees.iter().map(|t| t.owner).collect(),
            fix: false,
            max_events: None,
            records: 0,
            events: 0,
            waiting: HashMap::new(),
            idents: Vec::new(),
        }
    }

    /// Where each root is now: a renamed root stays watched and its new path is reported.
    /// A root that was deleted, unmounted (`umount -l`) or moved out of this namespace has no
    /// path that leads to it: it is given up (said on stderr and in-band), never matched by
    /// the path it had, let alone by "/" (what a detached mount's root reads back as).
    /// A root found gone is given up only GONE_GRACE later, after the ring buffer was read
    /// again: the records of what happened before (its own rmdir, say) come first.
    pub(super) fn refresh_roots(&mut self) {
        for i in 0..self.roots_fd.len() {
            let Some(fd) = &self.roots_fd[i] else {
                continue;
            };
            if self.going[i].is_none() && resolve::fd_path(fd).as_ref() == Some(&self.roots_now[i])
            {
                continue;
            }
            match root_now(fd) {
                Err(why) => match self.going[i] {
                    None => self.going[i] = Some(Instant::now()),
                    Some(t) if t.elapsed() >= GONE_GRACE => self.give_up(i, why),
                    Some(_) => {}
                },
                Ok(p) => {
                    self.going[i] = None;
                    if p != self.roots_now[i] {
                        self.idents.clear();
                        self.roots_now[i] = p;
                    }
                }
            }
        }
    }

    fn give_up(&mut self, i: usize, why: &str) {
        let path = std::mem::take(&mut self.roots_now[i]);
        self.roots_fd[i] = None;
        self.waiting.retain(|_, ev| ev.tree != path);
        self.gone_new.push(i);
        eprintln!(
            "ownwatch: {}: watched tree {why}; no longer watched",
            String::from_utf8_lossy(&path)
        );
        let json = self.json;
        self.write_note(|time, buf| tree_gone_line(time, &path, why, json, buf));
    }

    /// Roots given up since the last call, with their kernel keys.
    pub(super) fn take_gone(&mut self) -> Vec<(u32, u64)> {
        let gone = std::mem::take(&mut self.gone_new);
        gone.into_iter().map(|i| self.root_keys[i]).collect()
    }

    pub(super) fn all_gone(&self) -> bool {
        self.roots_fd.iter().all(Option::is_none)
    }

    /// Reads the mount table again. Identities rendered so far named the exe through the
    /// old one: they go too.
    fn reload_mounts(&mut self) {
        self.mounts = MountTable::load();
        self.mounts_boot_ns = crate::output::timefmt::boot_ns();
        self.idents.clear();
    }

    fn walk_path(&mut self, w: &crate::watch::decode::Walk) -> Vec<u8> {
        if w.truncated {
            // Too deep for one record: the names nearest the object, under the tree they are in.
            let names =
                resolve::names_path(w.segs.first().map(|s| &s.names[..]).unwrap_or_default());
            let top = match w.tree.and_then(|t| self.roots_now.get(t as usize)) {
                Some(root) => root.clone(),
                None => Vec::new(),
            };
            return [top, b"/\xe2\x80\xa6".to_vec(), names].concat();
        }
        if let Some(p) = resolve::walk_path(w, &self.mounts, &self.roots_now) {
            return p;
        }
        // Mounts change: look again, but not on every event.
        if crate::output::timefmt::boot_ns().saturating_sub(self.mounts_boot_ns) > 200_000_000 {
            self.reload_mounts();
        }
        resolve::walk_path_or_raw(w, &self.mounts, &self.roots_now)
    }

    /// Path of one slot, whether it was resolved on disk, and its tree.
    fn spec_path(
        &mut self,
        spec: &Spec,
        rec: &Record,
        nofollow: bool,
        cwd: Option<&[u8]>,
    ) -> Resolved {
        match (&spec.string, &spec.walk) {
            // The walk is the object: AT_EMPTY_PATH on an fd, or the caller's own
            // "/proc/self/fd/N" walked in the kernel (the fd is gone by now).
            (Some(s), w)
                if !(rec.ev.flags & flag::EMPTY_PATH != 0 && s.is_empty()
                    || rec.ev.flags & flag::PROC_FD != 0 && is_proc_fd(s)) =>
            {
                let base = match w {
                    Some(w) => self.walk_path(w),
                    None => b"/".to_vec(),
                };
                let absolute = s.first() == Some(&b'/');
                let (path, exact) = resolve::resolve_str(&StrPath {
                    base: &base,
                    string: s,
                    absolute,
                    nofollow,
                    cwd,
                    pid: rec.ev.pid,
                    tid: rec.ev.tid,
                });
                let mut path = path;
                let mut tree = resolve::tree_of(&path, &self.roots_now);
                if tree.is_none() && exact {
                    // Through a bind mount of (part of) a tree: name it as in the tree.
                    // (a mount table read before the op may miss the mount it went through)
                    if self.mounts_boot_ns < rec.ev.ts_boot_ns {
                        self.reload_mounts();
                    }
                    // An op on the name itself (create, unlink, rename...) acts in the
                    // directory holding it, even where a mount now covers that name.
                    let view = if nofollow {
                        let name = final_component(&path).to_vec();
                        self.mounts
                            .watched_view(parent_of(&path), &self.roots_now)
                            .map(|d| resolve::join(&d, &name))
                    } else {
                        self.mounts.watched_view(&path, &self.roots_now)
                    };
                    if let Some(p) = view {
                        tree = resolve::tree_of(&p, &self.roots_now);
                        path = p;
                    }
                }
                let cut = spec.string_truncated || w.as_ref().is_some_and(|w| w.truncated);
                (path, exact, tree, None, cut)
            }
            (_, Some(w)) => {
                let path = self.walk_path(w);
                let tree = match w.tree {
                    Some(t) => Some(t as usize),
                    None => resolve::tree_of(&path, &self.roots_now),
                };
                let depth = w
                    .tree
                    .filter(|_| !w.truncated)
                    .map(|_| w.tree_depth as usize);
                // (a string the kernel had no room for at all: the walk is only its base)
                let cut =
                    w.truncated || spec.string.is_none() && rec.ev.flags & flag::TRUNCATED != 0;
                (path, true, tree, depth, cut)
            }
            (_, None) => (Vec::new(), false, None, None, true),
        }
    }

    /// --max-events reached: the rest is not ours to print.
    pub(super) fn done(&self) -> bool {
        self.max_events.is_some_and(|m| self.events >= m)
    }

    pub(super) fn handle(&mut self, data: &[u8]) -> i32 {
        self.records += 1;
        if self.done() {
            return 0;
        }
        if data.len() == std::mem::size_of::<crate::kernel::abi::ow_outcome>() {
            return self.outcome(data);
        }
        // The writer's identity as rendered for its previous record, if the bytes are the
        // same: then only the part before it is decoded.
        let ident_at = if self.json {
            identity_start(data)
        } else {
            None
        };
        let cached = ident_at.and_then(|at| {
            let key = &data[at..];
            self.idents
                .iter()
                .find(|(k, _)| k.as_slice() == key)
                .map(|(_, id)| id.clone())
        });
        let rec = match decode(match (&cached, ident_at) {
            (Some(_), Some(at)) => &data[..at],
            _ => data,
        }) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("ownwatch: dropping a malformed record: {e}");
                return 0;
            }
        };
        let Some(mut ev) = self.event(&rec) else {
            return 0;
        };
        match (cached, ident_at) {
            (Some(id), _) => {
                ev.tty = id.tty.clone();
                ev.truncated |= id.truncated;
                ev.identity_json = Some(id.json.clone());
            }
            (None, Some(at)) => {
                let truncated = [slot::EXE, slot::TTY, slot::CGROUP]
                    .iter()
                    .filter_map(|&s| rec.slots[s as usize].as_ref())
                    .any(|s| s.string_truncated || s.walk.as_ref().is_some_and(|w| w.truncated));
                let id = Rc::new(Ident {
                    json: identity_json(&ev).into(),
                    tty: ev.tty.clone(),
                    truncated,
                });
                if self.idents.len() >= IDENTS_KEPT {
                    self.idents.remove(0);
                }
                self.idents.push((data[at..].to_vec(), id));
            }
            _ => {}
        }
        if rec.ev.flags & flag::PENDING != 0 {
            // A thread does one op at a time: an older event still waiting never got its
            // outcome (another LSM refused the op between hook and function, say). Whether
            // it happened is unknown: reported without "ret".
            if let Some(mut old) = self.waiting.insert(rec.ev.tid, ev) {
                old.ret = None;
                return self.emit(old);
            }
            return 0;
        }
        self.emit(ev)
    }

    /// The op of a thread's waiting event returned: report it if it succeeded.
    fn outcome(&mut self, data: &[u8]) -> i32 {
        let mut o = crate::kernel::abi::ow_outcome::default();
        if plain::copy_from_bytes(&mut o, data).is_err() {
            return 0;
        }
        match self.waiting.remove(&o.tid) {
            Some(mut ev) if o.ret == 0 => {
                ev.ret = Some(0);
                // what the new inode got (umask or default ACL applied), not what was asked
                if matches!(ev.op, "mkdir" | "mknod") && o.mode != 0 {
                    ev.mode = Some(o.mode & 0o7777);
                }
                self.emit(ev)
            }
            _ => 0,
        }
    }

    /// Stopping: events whose outcome never came are reported without "ret".
    pub(super) fn drain_waiting(&mut self) {
        let mut left: Vec<Event> = self.waiting.drain().map(|(_, e)| e).collect();
        left.sort_by(|a, b| a.time.cmp(&b.time));
        for mut ev in left {
            ev.ret = None;
            if self.done() || self.emit(ev) != 0 {
                break;
            }
        }
    }

    fn emit(&mut self, mut ev: Event) -> i32 {
        if self.fix {
            self.give_back(&mut ev);
        }
        self.events += 1;
        self.buf.clear();
        if self.json {
            json_line(&ev, &mut self.buf);
        } else {
            text_line(&ev, &mut self.buf);
        }
        if let Err(e) = self.out.write_all(&self.buf) {
            self.out_err = Some(e);
            return -1;
        }
        0
    }

    fn event(&mut self, rec: &Record) -> Option<Event> {
        let ev = &rec.ev;
        let mut opn = ev.op;
        if opn >= op::COUNT {
            return None;
        }
        let cwd = match &rec.slots[slot::CWD as usize] {
            Some(Spec { walk: Some(w), .. }) => Some(self.walk_path(w)),
            _ => None,
        };
        let nofollow = ev.flags & flag::NOFOLLOW != 0;
        let seen: Vec<Seen> = rec
            .seen
            .iter()
            .map(|w| Seen {
                path: self.walk_path(w),
                cut: w.truncated,
                tree: w.tree.map(|t| t as usize),
                // a truncated walk's path is not the full chain: no depth to count from
                depth: (!w.truncated).then_some(w.tree_depth as usize),
                dir: w.is_dir(),
                mode: w.mode,
                leaf: w.leaf().map(<[u8]>::to_vec),
            })
            .collect();
        let attr = matches!(
            opn,
            op::CHMOD | op::CHOWN | op::TRUNCATE | op::SETXATTR | op::REMOVEXATTR
        );
        let names: Vec<&[u8]> = [slot::PATH, slot::NEW]
            .iter()
            .filter_map(|&s| rec.slots[s as usize].as_ref()?.string.as_deref())
            .map(final_component)
            .collect();
        let path_spec = rec.slots[slot::PATH as usize].as_ref()?;
        // The old name of a link is an existing file: no directory of the op holds it.
        let (mut path, mut exact, mut tree, mut depth, mut cut) = if opn == op::LINK {
            self.spec_path(path_spec, rec, nofollow, cwd.as_deref())
        } else {
            let r = self.refine(&seen, path_spec, attr, &names);
            self.settle(r, path_spec, rec, nofollow, cwd.as_deref())
        };
        let mut new_path = None;
        let mut tmpfile_mode = None;
        let mut tree_from_new = false;
        if let Some(spec) = &rec.slots[slot::NEW as usize] {
            let r = self.refine(&seen, spec, false, &names);
            let (p, e, t, dp, c) = self.settle(r, spec, rec, true, cwd.as_deref());
            // Naming an O_TMPFILE file creates it: report the name it got.
            let tmpfile = ev.flags & flag::TMPFILE != 0
                || (opn == op::LINK
                    && !nofollow
                    && path_spec.string.as_deref().is_some_and(is_proc_fd));
            if tmpfile {
                opn = op::CREATE;
                // Its mode: the linked inode, as the kernel saw it during the link.
                let name = final_component(spec.string.as_deref().unwrap_or_default());
                tmpfile_mode = seen
                    .iter()
                    .find(|w| !w.dir && w.mode != 0 && w.leaf.as_deref() == Some(name))
                    .map(|w| w.mode & 0o7777)
                    .or_else(|| {
                        std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(&p))
                            .ok()
                            .map(|m| m.mode() & 0o7777)
                    });
                (path, exact, tree, depth, cut) = (p, e, t, dp, c);
            } else {
                // A rename or link counts when either end is in a tree: moves in, out, within.
                exact &= e;
                cut |= c;
                if t.is_some() {
                    tree = t;
                    tree_from_new = true;
                    depth = dp;
                }
                new_path = Some(p);
            }
        }
        let tree = tree?;
        if self.roots_fd.get(tree)?.is_none() || self.allowed.get(tree)?.contains(&ev.fsuid) {
            return None;
        }
        // The root may have moved since the last look (a renamed root stays watched).
        if !resolve::is_under(&path, &self.roots_now[tree])
            && !new_path
                .as_deref()
                .is_some_and(|n| resolve::is_under(n, &self.roots_now[tree]))
        {
            self.refresh_roots();
        }
        // The root where it was at the time of the op: the kernel knows how deep below it the
        // object lay (the root may have moved again since); else where it is now.
        let at_op = |p: &[u8]| depth.and_then(|k| strip_components(p, k));
        let tree_path = if tree_from_new {
            new_path.as_deref().and_then(at_op)
        } else {
            at_op(&path)
        }
        .unwrap_or_else(|| self.roots_now[tree].clone());
        let string_of = |s: u8| {
            rec.slots[s as usize]
                .as_ref()
                .and_then(|sp| sp.string.clone())
        };
        // "truncated": a path the event reports was cut, not any walk the record carried (the
        // walks of the directories the op changed may be cut while the path is whole); a cut
        // command line has its own flag (argv_truncated).
        let truncated = cut
            || [slot::TARGET, slot::EXE, slot::TTY, slot::CGROUP]
                .iter()
                .filter_map(|&s| rec.slots[s as usize].as_ref())
                .any(|s| s.string_truncated || s.walk.as_ref().is_some_and(|w| w.truncated));
        let mode = if opn == op::CREATE && (ev.flags & flag::TMPFILE != 0 || ev.op == op::LINK) {
            // lsm/fentry/kprobe walk the new name only and read the mode in the kernel
            match &rec.slots[slot::NEW as usize] {
                None => (ev.mode != UNSET).then_some(ev.mode),
                Some(_) => tmpfile_mode,
            }
        } else {
            (matches!(opn, op::CREATE | op::MKDIR | op::MKNOD | op::CHMOD) && ev.mode != UNSET)
                .then_some(ev.mode)
        };
        let is_chown = opn == op::CHOWN;
        let comm_len = ev
            .comm
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(ev.comm.len());
        let spec = |s: u8| rec.slots[s as usize].as_ref();
        let exe = spec(slot::EXE)
            .and_then(|sp| sp.walk.as_ref())
            .map(|w| self.walk_path(w));
        let argv_spec = spec(slot::ARGV).filter(|sp| sp.string.is_some());
        let cgroup = spec(slot::CGROUP)
            .and_then(|sp| sp.walk.as_ref())
            .map(|w| resolve::names_path(w.segs.first().map(|s| &s.names[..]).unwrap_or_default()));
        let loginuid = (ev.loginuid != UNSET).then_some(ev.loginuid);
        Some(Event {
            login_user: loginuid.and_then(|l| self.names.user(l)),
            loginuid,
            sessionid: (ev.sessionid != UNSET).then_some(ev.sessionid),
            tty: spec(slot::TTY)
                .and_then(|sp| sp.string.as_deref())
                .filter(|t| !t.is_empty())
                .map(identity::tty_name),
            exe,
            argv: argv_spec
                .and_then(|sp| sp.string.as_deref())
                .map(identity::split_argv),
            argv_truncated: argv_spec.is_some_and(|sp| sp.string_truncated),
            parents: spec(slot::PARENTS)
                .map(|sp| sp.parents.clone())
                .unwrap_or_default(),
            container_id: cgroup.as_deref().and_then(identity::container_id),
            cgroup,
            time: timefmt::rfc3339(ev.ts_boot_ns as i128 + self.boot_offset),
            op: OP_NAMES[opn as usize],
            path,
            new_path,
            target: string_of(slot::TARGET),
            xattr: string_of(slot::XATTR),
            tree: tree_path,
            uid: ev.uid,
            gid: ev.gid,
            euid: ev.euid,
            fsuid: ev.fsuid,
            fsgid: ev.fsgid,
            user: self.names.user(ev.fsuid),
            group: self.names.group(ev.fsgid),
            pid: ev.pid,
            tid: ev.tid,
            ppid: ev.ppid,
            comm: ev.comm[..comm_len].to_vec(),
            mode,
            new_uid: (is_chown && ev.new_uid != UNSET).then_some(ev.new_uid),
            new_gid: (is_chown && ev.new_gid != UNSET).then_some(ev.new_gid),
            ret: (ev.flags & flag::NO_RET == 0).then_some(ev.ret),
            backend: self.backend,
            exchange: ev.flags & flag::EXCHANGE != 0,
            truncated,
            resolved: exact,
            fixed: None,
            identity_json: None,
            fix_error: None,
            setid_cleared: false,
        })
    }

    /// What the kernel saw during the op beats a string resolved after the fact: the directory
    /// it really changed, whatever namespace, bind mount or race the string went through.
    /// Decided from the record alone: the string is resolved on disk (`settle`) only when the
    /// kernel's walks leave the answer open, which is the expensive part of an event.
    fn refine(&self, seen: &[Seen], spec: &Spec, attr: bool, names: &[&[u8]]) -> Refined {
        let Some(s) = &spec.string else {
            return Refined::Open;
        };
        if seen.is_empty() || s.is_empty() {
            return Refined::Open;
        }
        let tree_of =
            |p: &[u8], t: Option<usize>| t.or_else(|| resolve::tree_of(p, &self.roots_now));
        if attr {
            // chmod, chown, truncate, xattrs change the ctime of their object only.
            let o = &seen[0];
            if o.cut {
                return Refined::Open;
            }
            return Refined::Kernel((
                o.path.clone(),
                true,
                tree_of(&o.path, o.tree),
                o.tree.and(o.depth),
                false,
            ));
        }
        let name = final_component(s);
        if matches!(name, b"" | b"." | b"..") {
            return Refined::Open;
        }
        // Parent directories: directories changed by the op that are not themselves the object
        // (a moved or removed directory sits, named as the op says, in another seen directory).
        let is_object = |w: &Seen| {
            w.leaf.as_deref().is_some_and(|l| names.contains(&l))
                && seen.iter().any(|o| o.dir && o.path == parent_of(&w.path))
        };
        let dirs = seen.iter().filter(|w| w.dir && !is_object(w));
        // A walk cut short cannot name its directory, nor tell which end of a move this is:
        // the string decides then.
        if dirs.clone().any(|w| w.cut) {
            return Refined::Open;
        }
        let mut cands: Vec<Resolved> = dirs
            .map(|d| {
                let p = resolve::join(&d.path, name);
                let t = tree_of(&p, d.tree);
                (p, true, t, d.tree.and(d.depth).map(|k| k + 1), false)
            })
            .collect();
        match cands.len() {
            0 => Refined::Open,
            1 => Refined::Kernel(cands.remove(0)),
            // A move between two directories: the string tells which end this is.
            _ => Refined::Pick(cands),
        }
    }

    /// The path of a slot from `refine`'s answer, resolving the string on disk only when the
    /// kernel's walks did not decide it.
    fn settle(
        &mut self,
        r: Refined,
        spec: &Spec,
        rec: &Record,
        nofollow: bool,
        cwd: Option<&[u8]>,
    ) -> Resolved {
        match r {
            Refined::Kernel(k) => k,
            Refined::Open => self.spec_path(spec, rec, nofollow, cwd),
            Refined::Pick(cands) => {
                let r = self.spec_path(spec, rec, nofollow, cwd);
                cands.into_iter().find(|c| c.0 == r.0).unwrap_or(r)
            }
        }
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
            let Some(t) = resolve::tree_of(target, &self.roots_now) else {
                if resolve::is_under(target, &ev.tree) {
                    // In the tree where its root was at the time of the op.
                    error = error.or(Some("the tree's root moved since: not fixed".into()));
                    fixed = Some(false);
                }
                // Else moved out of every tree: nothing of it is left to give back.
                continue;
            };
            let (uid, gid) = self.owners[t];
            let res = match fix::rel_path(&self.roots_now[t], target) {
                None => Err("outside the watched tree".to_string()),
                Some(rel) => match &self.roots_fd[t] {
                    Some(fd) => {
                        fix::fix_path(fd.as_fd(), rel, uid, gid, recurse, &self.nested_roots(t))
                    }
                    None => Err("the watched tree is gone".to_string()),
                },
            };
            let ok = match res {
                Ok(o) => {
                    cleared |= o.setid_cleared > 0;
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

    /// (st_dev, st_ino) of the roots other than tree `t`: a walk below `t` that meets one
    /// (a nested tree) leaves it to its own owner.
    /// (Known since start: a root's identity follows it through renames.)
    fn nested_roots(&self, t: usize) -> Vec<(u64, u64)> {
        (0..self.root_ids.len())
            .filter(|&i| i != t && self.roots_fd[i].is_some())
            .map(|i| self.root_ids[i])
            .collect()
    }

    pub(super) fn lost(&mut self, n: u64) {
        let json = self.json;
        self.write_note(|time, buf| lost_line(time, n, json, buf));
    }

    /// An in-band line that is not an event (lost, tree_gone), stamped now.
    fn write_note(&mut self, line: impl FnOnce(&str, &mut Vec<u8>)) {
        self.buf.clear();
        line(&timefmt::now_rfc3339(), &mut self.buf);
        if let Err(e) = self.out.write_all(&self.buf) {
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

/// Where the root behind `fd` is now (a path that leads to it), or why none does.
fn root_now(fd: &OwnedFd) -> Result<Vec<u8>, &'static str> {
    let Ok(st) = nix::sys::stat::fstat(fd.as_raw_fd()) else {
        return Err("cannot be examined");
    };
    if st.st_nlink == 0 {
        return Err("was deleted");
    }
    // A root being renamed (or its parents) can move between reading where it is and
    // looking there: look again while the answer keeps changing.
    for _ in 0..8 {
        let Some(p) = resolve::fd_path(fd) else {
            break;
        };
        if let Ok(r) = nix::sys::stat::stat(std::ffi::OsStr::from_bytes(&p)) {
            if r.st_dev == st.st_dev && r.st_ino == st.st_ino {
                return Ok(p);
            }
        }
        if resolve::fd_path(fd).as_ref() == Some(&p) {
            break;
        }
    }
    Err("was unmounted or moved out of reach")
}

/// A dentry the op changed, as the kernel saw it.
struct Seen {
    path: Vec<u8>,
    /// the walk was cut short: `path` is not the whole chain
    cut: bool,
    tree: Option<usize>,
    depth: Option<usize>,
    dir: bool,
    mode: u32,
    leaf: Option<Vec<u8>>,
}

/// (path, resolved on disk, tree, names below the tree's root when the kernel saw it, cut
/// short)
type Resolved = (Vec<u8>, bool, Option<usize>, Option<usize>, bool);

/// What the kernel's walks of the changed dentries say about a slot's path.
enum Refined {
    /// They decide it.
    Kernel(Resolved),
    /// One of these, whichever the string resolves to (else the string's resolution).
    Pick(Vec<Resolved>),
    /// Nothing: resolve the string.
    Open,
}

/// Last component of a path string, ignoring trailing slashes.
fn final_component(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 1 && s[end - 1] == b'/' {
        end -= 1;
    }
    let s = &s[..end];
    match s.iter().rposition(|&c| c == b'/') {
        Some(i) => &s[i + 1..],
        None => s,
    }
}

/// `p` without its last `k` components; None if it has fewer.
fn strip_components(p: &[u8], k: usize) -> Option<Vec<u8>> {
    let mut end = p.len();
    for _ in 0..k {
        end = p[..end].iter().rposition(|&c| c == b'/')?;
    }
    Some(if end == 0 {
        b"/".to_vec()
    } else {
        p[..end].to_vec()
    })
}

fn parent_of(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&c| c == b'/') {
        Some(0) => b"/",
        Some(i) => &p[..i],
        None => p,
    }
}

/// "/proc/self/fd/3", "/proc/123/fd/3": how an O_TMPFILE file is linked without
/// CAP_DAC_READ_SEARCH.
fn is_proc_fd(s: &[u8]) -> bool {
    let Some(rest) = s.strip_prefix(b"/proc/") else {
        return false;
    };
    let mut parts = rest.split(|&c| c == b'/');
    let who = parts.next().unwrap_or_default();
    let okwho = who == b"self" || (!who.is_empty() && who.iter().all(u8::is_ascii_digit));
    okwho
        && parts.next() == Some(b"fd")
        && parts
            .next()
            .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_stripped() {
        assert_eq!(strip_components(b"/a/b/c", 0).unwrap(), b"/a/b/c");
        assert_eq!(strip_components(b"/a/b/c", 1).unwrap(), b"/a/b");
        assert_eq!(strip_components(b"/a/b/c", 3).unwrap(), b"/");
        assert!(strip_components(b"/a/b/c", 4).is_none());
    }

    #[test]
    fn proc_fd_links() {
        assert!(is_proc_fd(b"/proc/self/fd/3"));
        assert!(is_proc_fd(b"/proc/4242/fd/10"));
        assert!(!is_proc_fd(b"/proc/self/fd/"));
        assert!(!is_proc_fd(b"/proc/self/fd/3/x"));
        assert!(!is_proc_fd(b"/proc/self/cwd"));
        assert!(!is_proc_fd(b"/srv/proc/self/fd/3"));
    }
}
