//! The host's mount table, and kernel walks turned into host paths with it.
//!
//! A kernel walk gives names within one superblock (plus mount crossings); the mount table
//! maps them to the path the host sees, whatever mount, namespace or chroot the writer used.

use std::fs;

use super::decode::Walk;
use crate::paths::{is_under, join, names_path, names_path_into};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Kernel encoding (major << 20 | minor), as in `super_block.s_dev`.
    pub dev: u32,
    pub root: Vec<u8>,
    pub point: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct MountTable {
    pub mounts: Vec<Mount>,
}

pub fn kernel_dev(major: u64, minor: u64) -> u32 {
    ((major << 20) | minor) as u32
}

/// `st_dev` (user-space encoding) -> the kernel's `s_dev`.
pub fn kernel_dev_of(st_dev: u64) -> u32 {
    kernel_dev(libc::major(st_dev) as u64, libc::minor(st_dev) as u64)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 4 <= field.len() {
            let oct = &field[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

impl MountTable {
    pub fn parse(text: &[u8]) -> Self {
        let mut mounts = Vec::new();
        for line in text.split(|&c| c == b'\n') {
            let f: Vec<&[u8]> = line.split(|&c| c == b' ').collect();
            if f.len() < 5 {
                continue;
            }
            let Some((maj, min)) = std::str::from_utf8(f[2])
                .ok()
                .and_then(|s| s.split_once(':'))
            else {
                continue;
            };
            let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
                continue;
            };
            mounts.push(Mount {
                dev: kernel_dev(maj, min),
                root: unescape(f[3]),
                point: unescape(f[4]),
            });
        }
        MountTable { mounts }
    }

    pub fn load() -> Self {
        Self::parse(&fs::read("/proc/self/mountinfo").unwrap_or_default())
    }

    /// The host path of `path` (absolute within the superblock `dev`). A superblock can be
    /// mounted several times (bind mounts): prefer the view under a watched root, then the
    /// fullest view (shortest mount root), then the first mounted.
    pub fn map(&self, dev: u32, path: &[u8], roots: &[Vec<u8>]) -> Option<Vec<u8>> {
        let mut views = self
            .mounts
            .iter()
            .filter(|m| m.dev == dev && is_under(path, &m.root));
        let first = views.next()?;
        let Some(second) = views.next() else {
            // (the common case, one view: nothing to prefer, one path made)
            return Some(through(first, path));
        };
        let mut best: Option<(bool, usize, Vec<u8>)> = None;
        for m in [first, second].into_iter().chain(views) {
            let p = through(m, path);
            let watched = roots.iter().any(|r| is_under(&p, r));
            let better = match &best {
                None => true,
                Some((bw, bl, _)) => (watched && !bw) || (watched == *bw && m.root.len() < *bl),
            };
            if better {
                best = Some((watched, m.root.len(), p));
            }
        }
        best.map(|(_, _, p)| p)
    }
}

impl MountTable {
    /// `path` (in our mount namespace, through whatever mount) as seen through a watched
    /// root when one holds the same directory: a bind mount of a tree, or of a directory in
    /// it, names the tree's files under another path. None when no watched view exists.
    pub fn watched_view(&self, path: &[u8], roots: &[Vec<u8>]) -> Option<Vec<u8>> {
        // The mount `path` lies in: the deepest mount point above it, the last mounted on top.
        let m = self
            .mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| is_under(path, &m.point))
            .max_by_key(|(i, m)| (m.point.len(), *i))
            .map(|(_, m)| m)?;
        let rest = if m.point == b"/" {
            path
        } else {
            &path[m.point.len()..]
        };
        let in_fs = join(&m.root, rest);
        let p = self.map(m.dev, &in_fs, roots)?;
        roots.iter().any(|r| is_under(&p, r)).then_some(p)
    }
}

/// `path` (within `m`'s superblock, under its root) as seen through the mount `m`.
fn through(m: &Mount, path: &[u8]) -> Vec<u8> {
    let rest = if m.root == b"/" {
        path
    } else {
        &path[m.root.len()..]
    };
    join(&m.point, rest)
}

/// Whether our mount table changed: `/proc/self/mountinfo` says so to poll (POLLPRI), once
/// for all changes of our mount namespace since the last poll of this open file (rootwatch.rs
/// polls its own for the roots). Cheaper than reading the table (3,000 mounts: ~6 ms per read
/// on this 6.18 host). Without the file, always.
pub struct MountsChanged(Option<fs::File>);

impl MountsChanged {
    pub fn open() -> Self {
        Self(fs::File::open("/proc/self/mountinfo").ok())
    }

    pub fn since_last(&self) -> bool {
        use std::os::fd::AsRawFd;
        let Some(f) = &self.0 else {
            return true;
        };
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one live pollfd; no wait.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n < 0 || (n > 0 && p.revents & (libc::POLLPRI | libc::POLLERR) != 0)
    }
}

/// For the kernel's `devs` map: 2 for superblocks with a mount strictly inside a watched root
/// (a walk within them cannot see the tree above), 1 for every other superblock we know.
pub fn dev_flags(mt: &MountTable, roots: &[Vec<u8>]) -> std::collections::HashMap<u32, u32> {
    let mut flags = std::collections::HashMap::new();
    for m in &mt.mounts {
        let inside = roots.iter().any(|r| m.point != *r && is_under(&m.point, r));
        let f = flags.entry(m.dev).or_insert(1);
        if inside {
            *f = 2;
        }
    }
    flags
}

thread_local! {
    /// `walk_path_from`'s path within a superblock
    static IN_FS: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Host path of a kernel walk.
pub fn walk_path(walk: &Walk, mt: &MountTable, roots: &[Vec<u8>]) -> Option<Vec<u8>> {
    walk_path_from(walk, 0, mt, roots)
}

fn walk_path_from(walk: &Walk, i: usize, mt: &MountTable, roots: &[Vec<u8>]) -> Option<Vec<u8>> {
    let seg = walk.segs.get(i)?;
    // (the path within the superblock in a buffer kept for it: it is only looked up)
    let mapped = IN_FS.with_borrow_mut(|in_fs| {
        names_path_into(in_fs, &seg.names);
        mt.map(seg.dev, in_fs, roots)
    });
    if let Some(p) = mapped {
        return Some(p);
    }
    if i + 1 < walk.segs.len() {
        // Not mounted in our namespace: place it where the writer's mount sat.
        let below = seg.below_mnt_root.unwrap_or(seg.names.len());
        let base = walk_path_from(walk, i + 1, mt, roots)?;
        return Some(join(&base, &names_path(&seg.names[..below])));
    }
    None
}

/// Like `walk_path`, and when the superblock is mounted nowhere we can see, its path within
/// the superblock: something true to show rather than nothing.
pub fn walk_path_or_raw(walk: &Walk, mt: &MountTable, roots: &[Vec<u8>]) -> Vec<u8> {
    walk_path(walk, mt, roots).unwrap_or_else(|| {
        walk.segs
            .first()
            .map(|s| names_path(&s.names))
            .unwrap_or_else(|| b"/".to_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::decode::Seg;

    const INFO: &[u8] = b"22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
30 22 0:25 / /tmp rw - tmpfs tmpfs rw\n\
31 22 254:0 /srv/app /mnt/bind\\040x rw - ext4 /dev/vda rw\n\
32 22 0:40 /sub /data rw - tmpfs tmpfs rw\n";

    fn seg<'a>(dev: u32, names: &[&'a str]) -> Seg<'a> {
        Seg {
            dev,
            names: names.iter().map(|n| n.as_bytes()).collect(),
            below_mnt_root: None,
        }
    }

    #[test]
    fn mountinfo_parse_and_unescape() {
        let mt = MountTable::parse(INFO);
        assert_eq!(mt.mounts.len(), 4);
        assert_eq!(mt.mounts[0].dev, kernel_dev(254, 0));
        assert_eq!(mt.mounts[2].point, b"/mnt/bind x");
    }

    #[test]
    fn superblock_paths_map_to_host_paths() {
        let mt = MountTable::parse(INFO);
        let none: &[Vec<u8>] = &[];
        let dev = kernel_dev(254, 0);
        // Same superblock reached through a bind mount: the fullest view wins...
        assert_eq!(mt.map(dev, b"/srv/app/f", none).unwrap(), b"/srv/app/f");
        // ...unless the other view is the watched one.
        let bind_watched = [b"/mnt/bind x".to_vec()];
        assert_eq!(
            mt.map(dev, b"/srv/app/f", &bind_watched).unwrap(),
            b"/mnt/bind x/f"
        );
        assert_eq!(mt.map(dev, b"/etc/x", none).unwrap(), b"/etc/x");
        assert_eq!(mt.map(kernel_dev(0, 25), b"/", none).unwrap(), b"/tmp");
        assert_eq!(
            mt.map(kernel_dev(0, 25), b"/a/b", none).unwrap(),
            b"/tmp/a/b"
        );
        assert_eq!(
            mt.map(kernel_dev(0, 40), b"/sub/k", none).unwrap(),
            b"/data/k"
        );
        assert!(mt.map(kernel_dev(0, 40), b"/other", none).is_none());
        assert!(mt.map(kernel_dev(7, 7), b"/", none).is_none());
    }

    #[test]
    fn walk_through_a_private_mount() {
        let mt = MountTable::parse(INFO);
        // tmpfs 0:99 is mounted nowhere we can see, at /tmp/w/m in the writer's namespace.
        let w = Walk {
            segs: smallvec::smallvec![
                seg(kernel_dev(0, 99), &["f", "d"]),
                seg(kernel_dev(0, 25), &["m", "w"]),
            ],
            tree: None,
            mode: 0,
            ..Walk::default()
        };
        assert_eq!(walk_path(&w, &mt, &[]).unwrap(), b"/tmp/w/m/d/f");
        // A bind of a subdirectory: only the names below the mount root count.
        let mut s0 = seg(kernel_dev(0, 99), &["f", "d", "hidden"]);
        s0.below_mnt_root = Some(2);
        let w = Walk {
            segs: smallvec::smallvec![s0, seg(kernel_dev(0, 25), &["m"])],
            tree: None,
            mode: 0,
            ..Walk::default()
        };
        assert_eq!(walk_path(&w, &mt, &[]).unwrap(), b"/tmp/m/d/f");
    }

    #[test]
    fn superblocks_mounted_inside_a_tree() {
        let mt = MountTable::parse(INFO);
        let f = dev_flags(&mt, &[b"/mnt".to_vec()]);
        assert_eq!(
            f[&kernel_dev(254, 0)],
            2,
            "bind at /mnt/bind x is inside /mnt"
        );
        assert_eq!(f[&kernel_dev(0, 25)], 1);
        let f = dev_flags(&mt, &[b"/tmp".to_vec()]);
        assert_eq!(
            f[&kernel_dev(0, 25)],
            1,
            "the root's own mount is not inside it"
        );
        assert_eq!(f[&kernel_dev(254, 0)], 1);
    }

    #[test]
    fn bind_mount_paths_are_named_as_in_the_tree() {
        let mt = MountTable::parse(INFO);
        let roots = [b"/srv/app".to_vec()];
        // /mnt/bind x is a bind of /srv/app: its files are the tree's.
        assert_eq!(
            mt.watched_view(b"/mnt/bind x/d/f", &roots).unwrap(),
            b"/srv/app/d/f"
        );
        assert_eq!(
            mt.watched_view(b"/mnt/bind x", &roots).unwrap(),
            b"/srv/app"
        );
        // Not a view of any tree.
        assert!(mt.watched_view(b"/tmp/x", &roots).is_none());
        assert!(mt.watched_view(b"/etc/passwd", &roots).is_none());
        // The tree itself through its own mount.
        assert_eq!(
            mt.watched_view(b"/srv/app/x", &roots).unwrap(),
            b"/srv/app/x"
        );
    }

    /// A mount and an unmount in our namespace are changes. (Other tests mount meanwhile:
    /// what was said before is taken first, and no silence is asserted.)
    #[test]
    fn mount_changes_are_said() {
        if !crate::testutil::root_or_skip("mount_changes_are_said", "mounts a tmpfs") {
            return;
        }
        let t = crate::testutil::temp_dir("mounts");
        let w = MountsChanged::open();
        while w.since_last() {}
        nix::mount::mount(
            Some("tmpfs"),
            t.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        let said = w.since_last();
        while w.since_last() {}
        nix::mount::umount(t.path()).unwrap();
        assert!(said, "a mount");
        assert!(w.since_last(), "an unmount");
    }
}
