//! Who did it, and when: the writer's identity the kernel captured at the write (exe, argv,
//! tty, cgroup and container, login uid and session, parents), user and group names, the
//! time. A writer's identity is rendered once and reused for its next records.

use std::rc::Rc;

use crate::kernel::abi::{slot, UNSET};
use crate::output::timefmt::{boot_to_realtime_offset, Stamper};
use crate::output::{identity_json, Event};
use crate::users::Names;

use super::decode::{Record, Spec};
use super::locate::Locator;
use crate::paths::names_path;

/// The identity part of an event, rendered once per writer.
pub struct Ident {
    json: Rc<[u8]>,
    tty: Option<Rc<str>>,
    /// also in `json`; kept apart for `-o journal`'s OWNWATCH_EXE
    exe: Option<Rc<[u8]>>,
    exe_deleted: bool,
    /// also in `json`; for --config's exceptions (unit, cgroup)
    pub cgroup: Option<Vec<u8>>,
    /// the exe, tty or cgroup was cut short (the event's `truncated`; argv has its own)
    truncated: bool,
}

const IDENTS_KEPT: usize = 32;

/// What follows a deleted executable's path in `exe`, as in /proc/PID/exe.
pub const DELETED: &[u8] = b" (deleted)";

pub struct Enricher {
    names: Names,
    boot_offset: i128,
    /// the events' times
    stamper: Stamper,
    /// Identities rendered lately, by the record bytes they came from (`identity_start`; a
    /// record's own, IDREF included, where that names known items, else the record made
    /// whole): a storm's records all carry the writer's. Emptied when the mount table or a
    /// root's path changes (the exe path depends on them) or an IDREF's items do (`stamp`);
    /// the rest depends on the bytes.
    idents: Vec<(Vec<u8>, Rc<Ident>)>,
    /// (mount table reloads, root moves, IdentJoin's regens) when `idents` was last valid
    stamp: (u64, u64, u64),
}

impl Enricher {
    pub fn new() -> Self {
        Enricher {
            names: Names::default(),
            boot_offset: boot_to_realtime_offset(),
            stamper: Stamper::default(),
            idents: Vec::new(),
            stamp: (0, 0, 0),
        }
    }

    /// Drops the rendered identities when the paths they name may have changed.
    pub fn revalidate(&mut self, stamp: (u64, u64, u64)) {
        if stamp != self.stamp {
            self.idents.clear();
            self.stamp = stamp;
        }
    }

    /// The identity rendered for these record bytes (the record's tail), if any.
    pub fn cached(&self, key: &[u8]) -> Option<Rc<Ident>> {
        self.idents
            .iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, id)| id.clone())
    }

    /// Puts a cached identity into an event.
    pub fn apply(ev: &mut Event, id: &Ident) {
        ev.tty = id.tty.clone();
        ev.exe = id.exe.clone();
        ev.exe_deleted = id.exe_deleted;
        ev.truncated |= id.truncated;
        ev.identity_json = Some(id.json.clone());
    }

    /// Renders the event's identity once for the writer's next records with the same bytes.
    pub fn remember(&mut self, key: &[u8], ev: &Event, rec: &Record) {
        let truncated = [slot::EXE, slot::TTY, slot::CGROUP]
            .iter()
            .filter_map(|&s| rec.slot(s))
            .any(|s| s.string_truncated || rec.walk(s).is_some_and(|w| w.truncated));
        let id = Rc::new(Ident {
            json: identity_json(ev).into(),
            tty: ev.tty.clone(),
            exe: ev.exe.clone(),
            exe_deleted: ev.exe_deleted,
            cgroup: ev.cgroup.clone(),
            truncated,
        });
        if self.idents.len() >= IDENTS_KEPT {
            self.idents.remove(0);
        }
        self.idents.push((key.to_vec(), id));
    }

    /// Who and when: the time, user and group names, and (`identity`: not rendered already,
    /// see `apply`) the writer's identity from the record's slots.
    pub fn fill(
        &mut self,
        e: &mut Event,
        rec: &Record,
        identity: bool,
        locate: &mut Locator,
        roots: &[Vec<u8>],
    ) {
        let ev = &rec.ev;
        let loginuid = (ev.loginuid != UNSET).then_some(ev.loginuid);
        e.login_user = loginuid.and_then(|l| self.names.user(l));
        e.loginuid = loginuid;
        e.sessionid = (ev.sessionid != UNSET).then_some(ev.sessionid);
        e.time = self.stamper.stamp(ev.ts_boot_ns as i128 + self.boot_offset);
        e.user = self.names.user(ev.fsuid);
        e.group = self.names.group(ev.fsgid);
        if identity {
            Self::fill_identity(e, rec, locate, roots);
        }
    }

    /// The writer's exe, tty, command line, ancestors, cgroup and container from the record.
    fn fill_identity(e: &mut Event, rec: &Record, locate: &mut Locator, roots: &[Vec<u8>]) {
        let spec = |s: u8| rec.slot(s);
        let argv_spec = spec(slot::ARGV).filter(|sp| sp.string.is_some());
        let cgroup = rec
            .slot_walk(slot::CGROUP)
            .map(|w| names_path(w.segs.first().map(|s| &s.names[..]).unwrap_or_default()));
        let exe = rec.slot_walk(slot::EXE);
        e.exe_deleted = exe.is_some_and(|w| w.unlinked);
        e.exe = exe.map(|w| {
            let mut p = locate.walk_path(w, roots);
            // (as /proc/PID/exe says it: the file at that path is no longer the one running)
            if w.unlinked {
                p.extend_from_slice(DELETED);
            }
            p.into()
        });
        e.tty = spec(slot::TTY)
            .and_then(|sp| sp.string)
            .filter(|t| !t.is_empty())
            .map(|t| tty_name(t).into());
        e.argv = argv_spec.and_then(|sp| sp.string).map(split_argv);
        e.argv_truncated = argv_spec.is_some_and(|sp: &Spec| sp.string_truncated);
        e.parents = spec(slot::PARENTS)
            .map(|sp| {
                sp.parents
                    .iter()
                    .map(|&(pid, c)| (pid, c.to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        e.container_id = cgroup.as_deref().and_then(container_id);
        e.cgroup = cgroup;
    }
}

/// NUL-separated command line -> arguments. A missing final NUL (cut short, or a process that
/// rewrote its argv) keeps the last piece.
pub fn split_argv(raw: &[u8]) -> Vec<Vec<u8>> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&c| c == 0).map(<[u8]>::to_vec).collect()
}

/// The kernel names pseudo-terminals "pts3"; people and `ps` say "pts/3".
pub fn tty_name(kernel: &[u8]) -> String {
    let s = String::from_utf8_lossy(kernel);
    match s.strip_prefix("pts") {
        Some(n) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => format!("pts/{n}"),
        _ => s.into_owned(),
    }
}

/// A container id in a cgroup path: a 64-hex-digit name, bare or as systemd scopes name them
/// (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope).
pub fn container_id(cgroup: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(cgroup).ok()?;
    for comp in s.split('/').rev() {
        let comp = comp.strip_suffix(".scope").unwrap_or(comp);
        let id = comp.rsplit(['-', ':']).next().unwrap_or(comp);
        if id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Some(id.to_ascii_lowercase());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv() {
        assert_eq!(
            split_argv(b"mkdir\0-p\0a b\0"),
            vec![b"mkdir".to_vec(), b"-p".to_vec(), b"a b".to_vec()]
        );
        assert_eq!(
            split_argv(b"x\0\0y\0"),
            vec![b"x".to_vec(), b"".to_vec(), b"y".to_vec()]
        );
        assert_eq!(split_argv(b"cut-sho"), vec![b"cut-sho".to_vec()]);
        assert!(split_argv(b"").is_empty());
    }

    #[test]
    fn ttys() {
        assert_eq!(tty_name(b"pts3"), "pts/3");
        assert_eq!(tty_name(b"tty1"), "tty1");
        assert_eq!(tty_name(b"ttyS0"), "ttyS0");
        assert_eq!(tty_name(b"ptsx"), "ptsx");
    }

    #[test]
    fn containers() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        for (cgroup, want) in [
            (format!("/system.slice/docker-{id}.scope"), Some(id)),
            (
                format!("/kubepods/besteffort/pod1/cri-containerd-{id}.scope"),
                Some(id),
            ),
            (format!("/docker/{id}"), Some(id)),
            (
                format!("/machine.slice/libpod-{id}.scope/container"),
                Some(id),
            ),
            ("/user.slice/user-1000.slice/session-3.scope".into(), None),
            ("/".into(), None),
        ] {
            assert_eq!(container_id(cgroup.as_bytes()).as_deref(), want, "{cgroup}");
        }
    }
}
