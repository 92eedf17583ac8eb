//! The common shape of a watch test: the root check and the test's tree in one line
//! (`root_dir!`; `root_tmp!` for a bare temporary directory), the agent started on it (`watched!`), actors run as someone and the events
//! they caused (`TestDir::act`, `By`), and the exact comparison on the tree (`TestDir::expect`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{assert_events, run_as, Agent, Creds, Exp, Lease, TestDir};

/// `needs_root!()` (return from the test where it may be skipped), then `TestDir::new(name)`.
#[macro_export]
macro_rules! root_dir {
    ($name:expr) => {{
        $crate::needs_root!();
        $crate::common::TestDir::new($name)
    }};
}

/// `needs_root!()`, then a fresh `TempDir` tagged `tag` and the path of `tree` in it (not made
/// yet): `(tmp, tree)`.
#[macro_export]
macro_rules! root_tmp {
    ($tag:expr) => {{
        $crate::needs_root!();
        let tmp = $crate::common::TempDir::new($tag);
        let tree = tmp.join("tree");
        (tmp, tree)
    }};
}

/// `needs_root!()`, then `TestDir::shared(name)`: a tree the shared agent watches.
#[macro_export]
macro_rules! shared_dir {
    ($name:expr) => {{
        $crate::needs_root!();
        $crate::common::TestDir::shared($name)
    }};
}

/// `needs_root!()`, then `TestDir::ruled(name, rules)`: a tree of its own, with its rules,
/// that the ruled shared agent watches.
#[macro_export]
macro_rules! ruled_dir {
    ($name:expr, $rules:expr) => {{
        $crate::needs_root!();
        $crate::common::TestDir::ruled($name, $rules)
    }};
}

/// `ruled_dir!(name, rules)` and a lease on it: `(d, lease)`.
#[macro_export]
macro_rules! ruled {
    ($name:expr, $rules:expr) => {{
        let d = $crate::ruled_dir!($name, $rules);
        let l = d.lease();
        (d, l)
    }};
}

/// `shared_dir!(name)` and a lease on it from the shared agent: `(d, lease)`.
#[macro_export]
macro_rules! shared {
    ($name:expr) => {{
        let d = $crate::shared_dir!($name);
        let l = d.lease();
        (d, l)
    }};
}

/// `root_dir!(name)` and `Agent::watch_tree` on its tree with `opts`: `(d, a)`.
#[macro_export]
macro_rules! watched {
    ($name:expr, $opts:expr) => {{
        let d = $crate::root_dir!($name);
        let a = $crate::common::Agent::watch_tree(&d.tree, $opts);
        (d, a)
    }};
}

/// The events one actor caused, for short expectation lists: its fsuid and pid (and uid,
/// gid, euid, fsgid), paths taken relative to `dir` (an absolute path stays as it is).
#[derive(Clone, Debug)]
pub struct By {
    pub dir: PathBuf,
    pub fsuid: u32,
    pub pid: i32,
    /// (uid, gid, euid, fsgid); `new` sets all four to the fsuid, as `Exp::new` does.
    pub ids: (u32, u32, u32, u32),
}

impl By {
    pub fn new(dir: impl AsRef<Path>, fsuid: u32, pid: i32) -> By {
        By {
            dir: dir.as_ref().to_path_buf(),
            fsuid,
            pid,
            ids: (fsuid, fsuid, fsuid, fsuid),
        }
    }
    /// The actor `run_as(creds, ..)` made: fsuid and ids as `creds` sets them.
    pub fn of(dir: impl AsRef<Path>, creds: Creds, pid: i32) -> By {
        let (fsuid, ids) = match creds {
            Creds::Root => (0, (0, 0, 0, 0)),
            Creds::User(u, g) => (u, (u, g, u, g)),
            Creds::RealUser(u, g) => (0, (u, g, 0, 0)),
            Creds::FsUser(u, g) => (u, (0, 0, 0, g)),
        };
        By {
            ids,
            ..By::new(dir, fsuid, pid)
        }
    }
    /// `op` on `rel`.
    pub fn op(&self, op: &str, rel: impl AsRef<Path>) -> Exp {
        let (uid, gid, euid, fsgid) = self.ids;
        Exp::new(op, self.dir.join(rel), self.fsuid)
            .pid(self.pid)
            .ids(uid, gid, euid, fsgid)
    }
    pub fn mkdir(&self, rel: impl AsRef<Path>, mode: u32) -> Exp {
        self.op("mkdir", rel).mode(mode)
    }
    pub fn create(&self, rel: impl AsRef<Path>, mode: u32) -> Exp {
        self.op("create", rel).mode(mode)
    }
    /// A rename of `from` to `to`.
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Exp {
        self.op("rename", from).new_path(self.dir.join(to))
    }
    /// `op` on each `(rel, mode)` in turn (create, mkdir, mknod, chmod: the ops with a mode).
    pub fn modes(&self, op: &str, each: &[(&str, u32)]) -> Vec<Exp> {
        each.iter()
            .map(|&(rel, m)| self.op(op, rel).mode(m))
            .collect()
    }
}

impl TestDir {
    /// The agent on the tree with `opts` (the shared agent for a shared tree, which takes
    /// no options), `f` run in a forked root actor, then the sentinel: every event before
    /// it, and that actor (fsuid 0, its pid, paths relative to the tree).
    pub fn root_run(
        &self,
        opts: &[&str],
        f: impl FnOnce() -> Result<(), String>,
    ) -> (Vec<Value>, By) {
        if let Some((arena, _)) = self.shared {
            assert!(
                opts.is_empty(),
                "the shared agent takes no options: {opts:?}"
            );
            let mut l = arena.lease(self);
            let pid = run_as(Creds::Root, f);
            return (l.finish(), By::new(&self.tree, 0, pid));
        }
        let mut a = Agent::watch_tree(&self.tree, opts);
        let pid = run_as(Creds::Root, f);
        (a.finish(&self.tree), By::new(&self.tree, 0, pid))
    }

    /// A lease from the shared agent on this (shared) tree, from now on.
    pub fn lease(&self) -> Lease {
        let (arena, _) = self
            .shared
            .unwrap_or_else(|| panic!("{}: not a shared tree", self.tree.display()));
        arena.lease(self)
    }

    /// `run_as(creds, f)`: that actor, paths relative to the tree.
    pub fn act(&self, creds: Creds, f: impl FnOnce() -> Result<(), String>) -> By {
        By::of(&self.tree, creds, run_as(creds, f))
    }

    /// The events must be exactly `want` (`assert_events` on this tree's watched root).
    pub fn expect(&self, evs: &[Value], want: &[Exp]) {
        assert_events(evs, want, &self.root);
    }
}
