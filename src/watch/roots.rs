//! The watched roots as they move: where each is now, which users may write in it, who owns
//! it, and which are gone (deleted, unmounted, out of reach) and given up.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use super::resolve::fd_path;
use super::rootwatch::RootWatch;
use super::Tree;
use crate::rules::TreeFilter;
use crate::users::Uids;

/// How long a root found gone still counts (see `refresh`).
const GONE_GRACE: Duration = Duration::from_millis(200);
/// How often every root is looked at though nothing said it may have moved (rootwatch.rs).
const LOOK_ANYWAY: Duration = Duration::from_secs(1);

pub struct Roots {
    /// O_PATH handles of the roots; None once a root is given up, which also lets a lazily
    /// unmounted filesystem go.
    fds: Vec<Option<OwnedFd>>,
    /// (dev, ino) of each root: its key in the kernel's `roots` map
    keys: Vec<(u32, u64)>,
    /// (st_dev, st_ino) of each root, as user space sees them (`nested`)
    ids: Vec<(u64, u64)>,
    /// roots given up since the main loop last asked (`take_gone`)
    gone_new: Vec<usize>,
    /// when each root was first found gone, while its last records may still come
    going: Vec<Option<Instant>>,
    allowed: Vec<Uids>,
    /// Who everything in each tree must belong to (--fix).
    pub owners: Vec<(u32, u32)>,
    /// Whether offending objects in each tree are given back (--fix, or the tree's `fix`).
    pub fix: Vec<bool>,
    /// Each tree's ops, ignored paths and exceptions (--config).
    pub filters: Vec<TreeFilter>,
    /// Where each root is now ("" once given up).
    pub now: Vec<Vec<u8>>,
    /// Since when each tree is watched (CLOCK_BOOTTIME ns): 0 for the trees of the start, the
    /// reload's time for one a reload added. An op before it was made in no watched tree:
    /// its record (still in the ring buffer when the reload came, its path in the new tree;
    /// the tracepoint backend leaves such paths to user space) is not the tree's event.
    since: Vec<u64>,
    /// Bumped whenever a root's path changes: what was rendered with the old one is stale.
    pub moves: u64,
    /// Says when a root may have moved (None: inotify refused; every round looks).
    watch: Option<RootWatch>,
    /// Roots whose directories could not all be watched: looked at every round.
    unwatched: Vec<bool>,
    /// Every root looks again once `watch` said something, or LOOK_ANYWAY after the last time.
    look: bool,
    looked: Instant,
}

/// A root given up by `refresh`: its last path and why.
pub struct GivenUp {
    pub path: Vec<u8>,
    pub why: &'static str,
}

impl Roots {
    pub fn new(trees: &[Tree]) -> Self {
        Roots {
            fds: trees
                .iter()
                .map(|t| Some(t.fd.try_clone().expect("dup of a root fd")))
                .collect(),
            keys: trees.iter().map(|t| (t.dev, t.ino)).collect(),
            ids: trees
                .iter()
                .map(|t| {
                    let st = crate::sys::fstat(t.fd.as_fd()).expect("fstat of a root fd");
                    (st.st_dev, st.st_ino)
                })
                .collect(),
            gone_new: Vec::new(),
            going: vec![None; trees.len()],
            allowed: trees.iter().map(|t| t.allowed.clone()).collect(),
            owners: trees.iter().map(|t| t.owner).collect(),
            fix: trees.iter().map(|t| t.fix).collect(),
            filters: trees.iter().map(|t| t.filter.clone()).collect(),
            now: trees
                .iter()
                .map(|t| t.path.as_os_str().as_bytes().to_vec())
                .collect(),
            since: vec![0; trees.len()],
            moves: 0,
            watch: RootWatch::new(),
            unwatched: vec![true; trees.len()],
            look: true,
            looked: Instant::now(),
        }
    }

    /// Where each root is now: a renamed root stays watched and its new path is reported.
    /// A root that was deleted, unmounted (`umount -l`) or moved out of this namespace has no
    /// path that leads to it: it is given up (returned, in order), never matched by the path
    /// it had, let alone by "/" (what a detached mount's root reads back as). A root found
    /// gone is given up only GONE_GRACE later, after the ring buffer was read again: the
    /// records of what happened before (its own rmdir, say) come first; and not while
    /// `awaits(path)`: an event of the tree still waits for its op's outcome (the root's own
    /// rmdir, whose outcome a slow or preempted writer sends later).
    /// A root is looked at when the kernel said it may have moved (rootwatch.rs), while it is
    /// found gone, once a second, and at every call where its directories cannot be watched.
    pub fn refresh(&mut self, awaits: impl Fn(&[u8]) -> bool) -> Vec<GivenUp> {
        let mut given_up = Vec::new();
        if self.watch.as_mut().is_some_and(RootWatch::changed)
            || self.looked.elapsed() >= LOOK_ANYWAY
        {
            self.look = true;
        }
        let look_all = std::mem::take(&mut self.look);
        if look_all {
            self.looked = Instant::now();
        }
        for i in 0..self.fds.len() {
            let Some(fd) = &self.fds[i] else {
                continue;
            };
            if !look_all && !self.unwatched[i] && self.going[i].is_none() {
                continue;
            }
            if self.unwatched[i] && look_all {
                // watched before it is looked at: a move between the two is said next time
                // (tried again only with every root's look: a refused watch costs a round
                // its readlink, not more)
                self.unwatched[i] = !self.watch.as_ref().is_some_and(|w| w.watch(&self.now[i]));
            }
            if self.going[i].is_none() && fd_path(fd).as_ref() == Some(&self.now[i]) {
                continue;
            }
            match root_now(fd) {
                Err(why) => match self.going[i] {
                    None => self.going[i] = Some(Instant::now()),
                    Some(t) if t.elapsed() >= GONE_GRACE && !awaits(&self.now[i]) => {
                        given_up.push(GivenUp {
                            path: std::mem::take(&mut self.now[i]),
                            why,
                        });
                        self.fds[i] = None;
                        self.gone_new.push(i);
                    }
                    Some(_) => {}
                },
                Ok(p) => {
                    self.going[i] = None;
                    if p != self.now[i] {
                        self.moves += 1;
                        self.now[i] = p;
                        // its new directories: watched, then looked at once more next time
                        self.unwatched[i] = true;
                        self.look = true;
                    }
                }
            }
        }
        given_up
    }

    /// Roots given up since the last call, with their kernel keys.
    pub fn take_gone(&mut self) -> Vec<(u32, u64)> {
        let gone = std::mem::take(&mut self.gone_new);
        gone.into_iter().map(|i| self.keys[i]).collect()
    }

    pub fn all_gone(&self) -> bool {
        self.fds.iter().all(Option::is_none)
    }

    /// How many roots are still watched (not given up).
    pub fn watched(&self) -> usize {
        self.fds.iter().filter(|f| f.is_some()).count()
    }

    /// The handle of root `t`, while it is watched.
    pub fn fd(&self, t: usize) -> Option<BorrowedFd<'_>> {
        self.fds.get(t)?.as_ref().map(AsFd::as_fd)
    }

    /// (st_dev, st_ino) of root `t`, as it was at start.
    pub fn id(&self, t: usize) -> (u64, u64) {
        self.ids[t]
    }

    /// New rules for the same roots (a config reload): who may write where, owners, fix
    /// and filters, in the roots' order.
    pub fn set_rules(
        &mut self,
        allowed: Vec<Uids>,
        owners: Vec<(u32, u32)>,
        fix: Vec<bool>,
        filters: Vec<TreeFilter>,
    ) {
        self.allowed = allowed;
        self.owners = owners;
        self.fix = fix;
        self.filters = filters;
    }

    /// A tree added by a config reload: its index (the next one; indexes are never reused,
    /// so a record of a removed tree still in flight cannot land in a new one).
    pub fn add(&mut self, t: &Tree) -> Result<usize, String> {
        let fd =
            t.fd.try_clone()
                .map_err(|e| format!("{}: {e}", t.path.display()))?;
        let st = crate::sys::fstat(fd.as_fd()).map_err(|e| format!("{}: {e}", t.path.display()))?;
        self.fds.push(Some(fd));
        self.keys.push((t.dev, t.ino));
        self.ids.push((st.st_dev, st.st_ino));
        self.going.push(None);
        self.allowed.push(t.allowed.clone());
        self.owners.push(t.owner);
        self.fix.push(t.fix);
        self.filters.push(t.filter.clone());
        self.now.push(t.path.as_os_str().as_bytes().to_vec());
        self.since.push(crate::output::timefmt::boot_ns());
        self.unwatched.push(true);
        self.moves += 1;
        Ok(self.now.len() - 1)
    }

    /// A tree a config reload removed: no longer watched, without a `tree_gone` (the caller
    /// took it out of the kernel's maps).
    pub fn remove(&mut self, t: usize) {
        self.fds[t] = None;
        self.going[t] = None;
        self.allowed[t].clear();
        self.now[t].clear();
        self.moves += 1;
    }

    /// The watched roots (not given up) as (tree index, dev, ino) of their kernel keys.
    pub fn watched_keys(&self) -> Vec<(u32, u32, u64)> {
        (0..)
            .zip(&self.keys)
            .zip(&self.fds)
            .filter(|(_, fd)| fd.is_some())
            .map(|((i, &(dev, ino)), _)| (i, dev, ino))
            .collect()
    }

    /// The kernel key (dev, ino) of root `t`.
    pub fn key(&self, t: usize) -> (u32, u64) {
        self.keys[t]
    }

    /// Who may write in each tree, in the roots' order.
    pub fn allowed(&self) -> &[Uids] {
        &self.allowed
    }

    /// Whether a write of `fsuid` in tree `t` at `ts_boot_ns` is reported: the tree was
    /// watched then and still is, and the user is not allowed there. (Once per record.)
    #[inline]
    pub fn offends(&self, t: usize, fsuid: u32, ts_boot_ns: u64) -> bool {
        self.fd(t).is_some()
            && ts_boot_ns >= self.since[t]
            && self.allowed.get(t).is_some_and(|a| !a.contains(&fsuid))
    }

    /// (st_dev, st_ino) of the roots other than tree `t`: a walk below `t` that meets one
    /// (a nested tree) leaves it to its own owner.
    /// (Known since start: a root's identity follows it through renames.)
    pub fn nested(&self, t: usize) -> Vec<(u64, u64)> {
        (0..self.ids.len())
            .filter(|&i| i != t && self.fds[i].is_some())
            .map(|i| self.ids[i])
            .collect()
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
        let Some(p) = fd_path(fd) else {
            break;
        };
        if let Ok(r) = nix::sys::stat::stat(std::ffi::OsStr::from_bytes(&p)) {
            if r.st_dev == st.st_dev && r.st_ino == st.st_ino {
                return Ok(p);
            }
        }
        if fd_path(fd).as_ref() == Some(&p) {
            break;
        }
    }
    Err("was unmounted or moved out of reach")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(path: &std::path::Path) -> Tree {
        let fd = std::fs::File::open(path).expect("a directory").into();
        let st = crate::sys::fstat(std::os::fd::AsFd::as_fd(&fd)).expect("fstat");
        Tree {
            path: path.to_path_buf(),
            fd,
            dev: 0,
            ino: st.st_ino,
            allowed: Uids::from_iter([1000]),
            owner: (1000, 1000),
            fix: false,
            filter: TreeFilter::default(),
        }
    }

    /// A tree a reload adds is watched from the reload on: a record of an op before it (its
    /// path in the tree, the record still unread when the reload came) is not its event; the
    /// trees of the start take every record.
    #[test]
    fn a_tree_added_later_takes_no_op_made_before_it() {
        let dir = std::env::temp_dir().join(format!("ownwatch-since-{}", std::process::id()));
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let mut roots = Roots::new(&[tree(&a)]);
        let before = crate::output::timefmt::boot_ns();
        let t = roots.add(&tree(&b)).expect("added");
        let after = crate::output::timefmt::boot_ns();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(roots.offends(0, 0, 0), "a tree of the start: any record");
        assert!(
            !roots.offends(t, 0, before.saturating_sub(1)),
            "before the reload"
        );
        assert!(roots.offends(t, 0, after), "after it");
        assert!(!roots.offends(t, 1000, after), "its allowed user");
    }
}
