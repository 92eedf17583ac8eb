//! The test's own file system work, as root in the test process: the ids trees belong to,
//! making and inspecting files, temporary directories and the mounts made in them.

use std::os::fd::RawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{cp, cs, next_id};

/// The uid:gid that owns every test tree. Not in /etc/passwd: `user` is null.
pub const OWNER: u32 = 4242;
/// Another uid:gid that is neither root nor the owner. Not in /etc/passwd either.
pub const OTHER: u32 = 4343;
/// A named user that exists on Debian systems.
pub const NOBODY: u32 = 65534;

/// A test path as a string (every path the tests make is UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

/// Create a regular file (root, test process) with some content.
pub fn make_file(p: impl AsRef<Path>, content: &[u8]) {
    std::fs::write(p.as_ref(), content)
        .unwrap_or_else(|e| panic!("create {}: {e}", p.as_ref().display()));
}

pub fn make_dir(p: impl AsRef<Path>) {
    std::fs::create_dir(p.as_ref())
        .unwrap_or_else(|e| panic!("mkdir {}: {e}", p.as_ref().display()));
}

/// Copy an executable the tests will exec, by another process: a write fd of ours would be
/// inherited by children that other test threads fork meanwhile, and exec of the copy would
/// fail with ETXTBSY until each of them has exec'd.
pub fn copy_exe(src: impl AsRef<Path>, dst: impl AsRef<Path>) {
    let (src, dst) = (src.as_ref(), dst.as_ref());
    let st = std::process::Command::new("cp")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap_or_else(|e| panic!("cp {} {}: {e}", src.display(), dst.display()));
    assert!(st.success(), "cp {} {}: {st}", src.display(), dst.display());
}

/// lchown: a final symlink is changed itself.
pub fn chown(p: impl AsRef<Path>, uid: u32, gid: u32) {
    let c = cp(p.as_ref());
    let r = unsafe { libc::lchown(c.as_ptr(), uid, gid) };
    assert_eq!(
        r,
        0,
        "chown {}: {}",
        p.as_ref().display(),
        std::io::Error::last_os_error()
    );
}

pub fn chmod(p: impl AsRef<Path>, mode: u32) {
    std::fs::set_permissions(p.as_ref(), std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.as_ref().display()));
}

fn lstat(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
}

/// Owner uid:gid of a path (not following a final symlink).
pub fn owner_of(p: impl AsRef<Path>) -> (u32, u32) {
    let m = lstat(p.as_ref());
    (m.uid(), m.gid())
}

/// Permission bits (with setuid, setgid, sticky) of a path, not following a final symlink.
pub fn mode_of(p: impl AsRef<Path>) -> u32 {
    lstat(p.as_ref()).mode() & 0o7777
}

/// Owner uid:gid of `name` in the directory open as `dir`, not following a final symlink: for
/// paths longer than a path can name.
pub fn owner_at(dir: RawFd, name: &[u8]) -> (u32, u32) {
    use nix::fcntl::AtFlags;
    let st = nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .unwrap_or_else(|e| panic!("fstatat {:?}: {e}", String::from_utf8_lossy(name)));
    (st.st_uid, st.st_gid)
}

/// A thread exchanging two names (renameat2 RENAME_EXCHANGE) as fast as it can, until
/// finished or dropped (a failing assertion then still stops it before the tree is removed).
pub struct Swapper {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl Swapper {
    /// As root (the test's own credentials): every exchange must succeed.
    pub fn start(a: &Path, b: &Path) -> Swapper {
        Swapper::spawn(a, b, None)
    }

    /// With the thread's fsuid and fsgid set to `id` (they are per thread), so that the
    /// exchanges are that user's; counts the exchanges that succeeded.
    pub fn start_as(a: &Path, b: &Path, id: u32) -> Swapper {
        Swapper::spawn(a, b, Some(id))
    }

    fn spawn(a: &Path, b: &Path, id: Option<u32>) -> Swapper {
        use nix::fcntl::{renameat2, RenameFlags};
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, a, b) = (stop.clone(), a.to_path_buf(), b.to_path_buf());
        let handle = std::thread::spawn(move || {
            if let Some(id) = id {
                // SAFETY: plain syscalls; they change this thread's credentials only.
                unsafe {
                    libc::setfsgid(id);
                    libc::setfsuid(id);
                }
            }
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let r = renameat2(None, &a, None, &b, RenameFlags::RENAME_EXCHANGE);
                match (r, id) {
                    (Ok(()), _) => n += 1,
                    (Err(_), Some(_)) => {}
                    (Err(e), None) => panic!("renameat2: {e}"),
                }
            }
            n
        });
        Swapper {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the thread; the number of exchanges it made.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// `mount --bind src dst` in the host mount namespace; panics with the reason if refused.
pub fn bind_mount(src: &Path, dst: &Path) {
    let r = mount(&cp(src), dst, None, libc::MS_BIND, None);
    assert_eq!(
        r,
        0,
        "mount --bind {} {}: {}",
        src.display(),
        dst.display(),
        std::io::Error::last_os_error()
    );
}

/// A fresh tmpfs on `at` with mount options `opts` (e.g. "size=256k").
pub fn mount_tmpfs(at: &Path, opts: &str) -> std::io::Result<()> {
    match mount(&cs("tmpfs"), at, Some("tmpfs"), 0, Some(opts)) {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

fn mount(
    src: &std::ffi::CStr,
    dst: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> libc::c_int {
    let d = cp(dst);
    let fstype = fstype.map(cs);
    let data = data.map(cs);
    let ptr = |c: &Option<std::ffi::CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: NUL-terminated strings (or null) that outlive the call.
    unsafe {
        libc::mount(
            src.as_ptr(),
            d.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

/// A fresh directory under /tmp (root-owned, mode 0755, its real path), removed with
/// everything below on drop, after every mount registered with it is detached (last first).
pub struct TempDir {
    pub path: PathBuf,
    mounts: Mutex<Vec<PathBuf>>,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = PathBuf::from(format!(
            "/tmp/ownwatch-it-{tag}-{}-{}",
            std::process::id(),
            next_id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        make_dir(&path);
        chmod(&path, 0o755);
        let path = std::fs::canonicalize(&path).expect("canonicalize a temp dir");
        TempDir {
            path,
            mounts: Mutex::new(Vec::new()),
        }
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Detach whatever is mounted on `p` on drop (also after a failed assertion): for mounts
    /// made some other way, or that a rename moves.
    pub fn unmount_on_drop(&self, p: impl AsRef<Path>) {
        self.mounts.lock().unwrap().push(p.as_ref().to_path_buf());
    }

    /// `bind_mount`, undone on drop.
    pub fn bind_mount(&self, src: &Path, dst: &Path) {
        bind_mount(src, dst);
        self.unmount_on_drop(dst);
    }

    /// `mount_tmpfs`, undone on drop.
    pub fn mount_tmpfs(&self, at: &Path, opts: &str) -> std::io::Result<()> {
        mount_tmpfs(at, opts)?;
        self.unmount_on_drop(at);
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        for m in self.mounts.lock().unwrap().drain(..).rev() {
            let c = cp(&m);
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("cleanup {}: {e}", self.path.display());
        }
    }
}

/// A directory for a watched tree: made, owned by `id`:`id`, mode 0777 (so others can write in
/// it too).
pub fn make_tree(p: impl AsRef<Path>, id: u32) {
    make_dir(p.as_ref());
    chown(p.as_ref(), id, id);
    chmod(p.as_ref(), 0o777);
}

/// A `TempDir` (`base`) holding:
/// - `tree`: the watched tree, owned by OWNER:OWNER, mode 0777 (so OTHER can write in it too);
/// - `outside`: a root-owned sibling directory that is not watched.
///
/// Everything (and every host mount registered with `bind_mount`) is removed on drop.
///
/// `TestDir::shared` puts the tree in the shared agent's arena instead (see `shared`): it is
/// left there on drop (removing it would be root's writes in a watched tree), and the arena
/// goes when the test process exits.
pub struct TestDir {
    pub base: PathBuf,
    pub tree: PathBuf,
    pub outside: PathBuf,
    /// The watched root: `tree`, or the arena that holds it. Events carry it as "tree".
    pub root: PathBuf,
    /// A shared tree's arena and key there (`Arena::register`).
    pub shared: Option<(&'static super::Arena, u32)>,
    dir: TempDir,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let dir = TempDir::new(name);
        let tree = dir.join("tree");
        TestDir::with_tree(dir, tree.clone(), tree)
    }

    /// A tree in the shared agent's arena (`shared::Arena`), which is started if it is not
    /// yet; `outside` as with `new`.
    pub fn shared(name: &str) -> TestDir {
        let dir = TempDir::new(name);
        let arena = super::Arena::get();
        let tree = arena.root.join(format!("{name}-{}", next_id()));
        let key = arena.register(&tree, &dir.path);
        let mut d = TestDir::with_tree(dir, tree, arena.root.clone());
        d.shared = Some((arena, key));
        d
    }

    /// A tree laid out as with `new`, to be watched by the ruled shared agent (`Arena::ruled`,
    /// started if it is not yet) as a `[[tree]]` of its own with `rules` (TOML lines, e.g.
    /// `ops = "mkdir"`; "" for the defaults; `{tree}` for the tree's path): from the `lease`
    /// on (what comes before is set-up, unwatched, as before an agent's start) until the
    /// `TestDir` goes.
    pub fn ruled(name: &str, rules: &str) -> TestDir {
        let dir = TempDir::new(name);
        let tree = dir.join("tree");
        let arena = super::Arena::ruled();
        let mut d = TestDir::with_tree(dir, tree.clone(), tree);
        let key = arena.register_ruled(&d.tree, &d.base, rules);
        d.shared = Some((arena, key));
        d
    }

    fn with_tree(dir: TempDir, tree: PathBuf, root: PathBuf) -> TestDir {
        make_tree(&tree, OWNER);
        let outside = dir.join("outside");
        make_dir(&outside);
        chmod(&outside, 0o755);
        TestDir {
            base: dir.path.clone(),
            tree,
            outside,
            root,
            shared: None,
            dir,
        }
    }

    /// Is the tree watched by a shared agent (in its arena, or ruled)?
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// A path inside the tree.
    pub fn t(&self, rel: &str) -> PathBuf {
        self.tree.join(rel)
    }

    /// A path in the unwatched sibling directory.
    pub fn o(&self, rel: &str) -> PathBuf {
        self.outside.join(rel)
    }

    /// Bind-mount `src` on `dst` in the host mount namespace; unmounted on drop.
    pub fn bind_mount(&self, src: &Path, dst: &Path) {
        self.dir.bind_mount(src, dst);
    }

    /// See `TempDir::unmount_on_drop`.
    pub fn unmount_on_drop(&self, p: impl AsRef<Path>) {
        self.dir.unmount_on_drop(p);
    }

    /// An overlayfs on `at` of `lower` and `upper` (its work directory made beside `upper`),
    /// unmounted on drop; panics if refused.
    pub fn mount_overlay(&self, at: &Path, lower: &Path, upper: &Path) {
        let work = upper.with_extension("work");
        make_dir(&work);
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        let r = mount(&cs("overlay"), at, Some("overlay"), 0, Some(&opts));
        assert_eq!(
            r,
            0,
            "mount overlay on {}: {}",
            at.display(),
            std::io::Error::last_os_error()
        );
        self.unmount_on_drop(at);
    }

    /// A tmpfs on `at`, unmounted on drop; panics if refused.
    pub fn mount_tmpfs(&self, at: &Path, opts: &str) {
        self.dir
            .mount_tmpfs(at, opts)
            .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", at.display()));
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if let Some((a, k)) = self.shared {
            a.unregister(k);
        }
    }
}

/// The cgroup v2 mount (unified hierarchy), wherever this machine has it.
pub fn cgroup2_root() -> std::path::PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if let Some(sep) = f.iter().position(|x| *x == "-") {
            if f.get(sep + 1) == Some(&"cgroup2") {
                return std::path::PathBuf::from(f[4]);
            }
        }
    }
    panic!("no cgroup2 mount: cgroups cannot be checked");
}

/// A cgroup of the test's own, removed on drop (once its writers have exited: then it is
/// empty, which may take the kernel a moment to see).
pub struct Cgroup(pub std::path::PathBuf);
impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
