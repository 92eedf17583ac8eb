//! Unit tests of the sink: whole lines, reopen after logrotate, what `-o` refuses, a full
//! disk, and a SIGHUP storm.

use super::*;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::testutil::temp_dir;

fn line(i: usize) -> Vec<u8> {
    // Lengths vary from 20 to ~3000 bytes so lines straddle the flush threshold.
    format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i * 37 % 3000)).into_bytes()
}

fn lines_of(data: &[u8]) -> Vec<Vec<u8>> {
    assert!(data.is_empty() || data.ends_with(b"\n"), "ends mid-line");
    data.split_inclusive(|&c| c == b'\n')
        .map(|l| l.to_vec())
        .collect()
}

#[test]
fn creates_0640_and_appends() {
    let t = temp_dir("sink");
    let p = t.path().join("out.jsonl");
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(umask);
    {
        let mut s = Sink::file(&p).unwrap();
        s.write_all(b"one\n").unwrap();
    }
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640 & !umask.bits());
    {
        let mut s = Sink::file(&p).unwrap();
        s.write_all(b"two\n").unwrap();
        s.flush().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\n");
        s.write_all(b"three\n").unwrap();
        // Buffered until flushed.
        assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\n");
    }
    assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\nthree\n");
    let e = Sink::file(t.path().join("no/such/dir/x")).err().unwrap();
    assert!(format!("{e:#}").contains("no/such/dir/x: cannot open: No such file"));
}

#[test]
fn large_buffers_are_written_in_whole_lines() {
    let t = temp_dir("sink");
    let p = t.path().join("out.jsonl");
    let mut s = Sink::file(&p).unwrap();
    let mut written = 0;
    for i in 0..200 {
        let l = line(i);
        // Each line in two pieces, as a careless caller might.
        let (a, b) = l.split_at(l.len() / 2);
        s.write_all(a).unwrap();
        let on_disk = std::fs::read(&p).unwrap();
        assert!(on_disk.is_empty() || on_disk.ends_with(b"\n"));
        s.write_all(b).unwrap();
        written += l.len();
    }
    let on_disk = std::fs::read(&p).unwrap().len();
    assert!(on_disk > 0 && on_disk < written, "{on_disk} of {written}");
    s.flush().unwrap();
    let want: Vec<_> = (0..200).map(line).collect();
    assert_eq!(lines_of(&std::fs::read(&p).unwrap()), want);
}

#[test]
fn rename_then_reopen_splits_at_a_line() {
    let t = temp_dir("sink");
    let p = t.path().join("out.jsonl");
    let old = t.path().join("out.jsonl.1");
    let mut s = Sink::file(&p).unwrap();
    for i in 0..500 {
        s.write_all(&line(i)).unwrap();
    }
    // logrotate: rename, then signal. Lines written before the reopen still belong to the
    // old file, whether or not they were buffered at the time of the rename.
    std::fs::rename(&p, &old).unwrap();
    for i in 500..600 {
        s.write_all(&line(i)).unwrap();
    }
    // A partial line at reopen time moves to the new file whole.
    s.write_all(b"{\"partial\":").unwrap();
    s.reopen().unwrap();
    s.write_all(b"true}\n").unwrap();
    for i in 600..1000 {
        s.write_all(&line(i)).unwrap();
    }
    drop(s);
    let want_old: Vec<_> = (0..600).map(line).collect();
    let mut want_new = vec![b"{\"partial\":true}\n".to_vec()];
    want_new.extend((600..1000).map(line));
    assert_eq!(lines_of(&std::fs::read(&old).unwrap()), want_old);
    assert_eq!(lines_of(&std::fs::read(&p).unwrap()), want_new);
}

#[test]
fn reopen_failure_keeps_the_old_file() {
    let t = temp_dir("sink");
    let sub = t.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let p = sub.join("out.jsonl");
    let moved = t.path().join("moved");
    let mut s = Sink::file(&p).unwrap();
    s.write_all(b"a\n").unwrap();
    std::fs::rename(&sub, &moved).unwrap(); // the path's directory is gone
    assert!(s.reopen().is_err());
    s.write_all(b"b\n").unwrap();
    s.flush().unwrap();
    assert_eq!(std::fs::read(moved.join("out.jsonl")).unwrap(), b"a\nb\n");
}

// ---- -o refuses what others planted ------------------------------------------------------

/// Why `p` is refused, after the "PATH: " that every such error starts with.
fn refusal(p: &Path) -> String {
    let e = match Sink::file(p) {
        Ok(_) => panic!("{} was accepted", p.display()),
        Err(e) => format!("{e:#}"),
    };
    let path = format!("{}: ", p.display());
    match e.strip_prefix(&path) {
        Some(why) => why.to_string(),
        None => panic!("{e:?} does not start with {path:?}"),
    }
}

/// `refusal` of the file `name` in `dir`, with `dir` shown as DIR.
fn refusal_in(dir: &Path, name: &str) -> String {
    refusal(&dir.join(name)).replace(&dir.display().to_string(), "DIR")
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
}

/// The file `name` in `dir`, holding `data`, with `mode`.
fn put(dir: &Path, name: &str, data: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    chmod(&p, mode);
    p
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The ownership checks need files of other users: only root can make them.
fn as_root(test: &str) -> bool {
    crate::testutil::root_or_skip(test, "files of other uids")
}

#[test]
fn refuses_symlinks_fifos_devices_and_directories() {
    let t = temp_dir("sink");
    let secret = put(t.path(), "secret", b"s\n", 0o600);
    let link = t.path().join("link.jsonl");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    assert_eq!(refusal(&link), "is a symbolic link; refusing to follow it");
    // Dangling: O_CREAT would otherwise create the target.
    let dangling = t.path().join("dangling.jsonl");
    std::os::unix::fs::symlink(t.path().join("made-by-us"), &dangling).unwrap();
    assert!(refusal(&dangling).ends_with("is a symbolic link; refusing to follow it"));
    assert!(!t.path().join("made-by-us").exists());
    let fifo = t.path().join("fifo.jsonl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert_eq!(refusal(&fifo), "is a FIFO, not a regular file; refusing it");
    assert!(refusal(Path::new("/dev/null")).contains("is a character device"));
    assert!(refusal(t.path()).contains("is a directory"));
    assert!(refusal(Path::new("/")).ends_with("is not a file name"));
    assert_eq!(std::fs::read(&secret).unwrap(), b"s\n");
}

#[test]
fn refuses_files_others_own_or_can_write_or_that_are_hard_links() {
    let t = temp_dir("sink");
    let open = put(t.path(), "open.jsonl", b"", 0o666);
    assert_eq!(
        refusal(&open),
        "is writable by group or others (mode 0666); refusing to append to it \
         (chmod go-w it first)"
    );
    assert_eq!(
        std::fs::metadata(&open).unwrap().permissions().mode() & 0o777,
        0o666
    );
    chmod(&open, 0o620);
    assert!(refusal(&open).contains("(mode 0620)"));
    chmod(&open, 0o600);
    Sink::file(&open).unwrap();

    let secret = put(t.path(), "secret", b"s\n", 0o600);
    let hard = t.path().join("hard.jsonl");
    std::fs::hard_link(&secret, &hard).unwrap();
    assert_eq!(refusal(&hard), "has 2 hard links; refusing to append to it");
    assert_eq!(std::fs::read(&secret).unwrap(), b"s\n");

    if !as_root("refuses_files_others_own_or_can_write_or_that_are_hard_links") {
        return;
    }
    let theirs = put(t.path(), "theirs.jsonl", b"", 0o600);
    chown(&theirs, 4343);
    assert_eq!(
        refusal(&theirs),
        "is owned by uid 4343, not by uid 0 (ownwatch itself); refusing to append to it"
    );
    assert_eq!(std::fs::metadata(&theirs).unwrap().len(), 0);
}

#[test]
fn directories_on_the_way_are_checked() {
    let t = temp_dir("sink");
    let real = t.path().join("real");
    std::fs::create_dir(&real).unwrap();
    // A symlinked directory of root's (or ours) is followed, relative or absolute.
    let ours = t.path().join("ours");
    std::os::unix::fs::symlink("real", &ours).unwrap();
    let mut s = Sink::file(ours.join("a.jsonl")).unwrap();
    s.write_all(b"a\n").unwrap();
    drop(s);
    assert_eq!(std::fs::read(real.join("a.jsonl")).unwrap(), b"a\n");
    let abs = t.path().join("abs");
    std::os::unix::fs::symlink(&ours, &abs).unwrap();
    Sink::file(abs.join("b.jsonl")).unwrap();
    assert!(real.join("b.jsonl").exists());
    // `..` and `.` on the way.
    Sink::file(real.join("../real/./c.jsonl")).unwrap();
    assert!(real.join("c.jsonl").exists());

    // A directory anyone can write to (not sticky) is refused; a sticky one is fine.
    let open = t.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    assert_eq!(
        refusal_in(&open, "x.jsonl"),
        "directory DIR is writable by others and not sticky (mode 0777); refusing it"
    );
    assert!(!open.join("x.jsonl").exists());
    chmod(&open, 0o1777);
    Sink::file(open.join("x.jsonl")).unwrap();

    if !as_root("directories_on_the_way_are_checked") {
        return;
    }
    // A user's symlink in a directory they can write: /tmp/evil -> /etc.
    let evil = t.path().join("evil");
    std::os::unix::fs::symlink(&real, &evil).unwrap();
    chown(&evil, 4343);
    assert_eq!(
        refusal_in(&evil, "d.jsonl"),
        "DIR is a symbolic link owned by uid 4343; refusing to follow it"
    );
    assert!(!real.join("d.jsonl").exists());
    // Also when reached through a symlink of ours.
    let via = t.path().join("via");
    std::os::unix::fs::symlink("evil", &via).unwrap();
    assert!(refusal(&via.join("d.jsonl")).contains("is a symbolic link owned by uid 4343"));
    assert!(!real.join("d.jsonl").exists());
}

#[test]
fn a_refused_reopen_keeps_the_old_file() {
    let t = temp_dir("sink");
    let p = t.path().join("out.jsonl");
    let secret = put(t.path(), "secret", b"s\n", 0o600);
    let mut s = Sink::file(&p).unwrap();
    s.write_all(b"a\n").unwrap();
    let old = t.path().join("out.jsonl.1");
    std::fs::rename(&p, &old).unwrap();
    std::os::unix::fs::symlink(&secret, &p).unwrap();
    let e = s.reopen().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: is a symbolic link; refusing to follow it", p.display())
    );
    s.write_all(b"b\n").unwrap();
    s.flush().unwrap();
    assert_eq!(std::fs::read(&old).unwrap(), b"a\nb\n");
    assert_eq!(std::fs::read(&secret).unwrap(), b"s\n");
    std::fs::remove_file(&p).unwrap();
    s.reopen().unwrap();
    s.write_all(b"c\n").unwrap();
    s.flush().unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"c\n");
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o022,
        0
    );
}

// ---- a full output --------------------------------------------------------------------

/// A disk with `room` bytes left: short writes, then ENOSPC; what was written in `data`.
#[derive(Clone, Default)]
struct Disk {
    room: std::rc::Rc<std::cell::Cell<usize>>,
    data: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
    err: std::rc::Rc<std::cell::Cell<i32>>,
}
impl Write for Disk {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.err.get() != 0 {
            return Err(io::Error::from_raw_os_error(self.err.get()));
        }
        let k = b.len().min(self.room.get());
        if k == 0 {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.room.set(self.room.get() - k);
        self.data.borrow_mut().extend_from_slice(&b[..k]);
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn disk_sink(room: usize, keep_max: usize) -> (Sink, Disk) {
    let d = Disk::default();
    d.room.set(room);
    let mut s = Sink::with_target(Target::Test(Box::new(d.clone())));
    s.keep_max = keep_max;
    (s, d)
}

/// `{"n":I}` padded to 20 bytes with its newline.
fn l20(i: usize) -> Vec<u8> {
    let mut l = format!("{{\"n\":{i}}}").into_bytes();
    l.resize(19, b' ');
    l.push(b'\n');
    l
}

fn lost_of(line: &[u8]) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
    assert_eq!(v["op"], "lost");
    assert_eq!(v["reason"], "output");
    v
}

#[test]
fn a_full_output_keeps_lines_then_writes_them_without_a_lost_line() {
    let (mut s, d) = disk_sink(0, 1000);
    for i in 0..10 {
        s.write_all(&l20(i)).unwrap();
    }
    for _ in 0..3 {
        s.flush().unwrap(); // retries, still full: not an error
    }
    assert!(d.data.borrow().is_empty());
    assert_eq!(s.outage, Some(libc::ENOSPC));
    d.room.set(usize::MAX);
    s.write_all(&l20(10)).unwrap();
    s.flush().unwrap();
    assert_eq!(s.outage, None);
    let want: Vec<_> = (0..11).map(l20).collect();
    assert_eq!(lines_of(&d.data.borrow()), want);
}

#[test]
fn a_line_cut_by_a_short_write_is_completed_never_dropped() {
    // 30 bytes of room: one line and half of the next get in.
    let (mut s, d) = disk_sink(30, 40);
    for i in 0..2 {
        s.write_all(&l20(i)).unwrap();
    }
    s.flush().unwrap();
    assert_eq!(d.data.borrow().len(), 30);
    // 10 bytes of the torn line are kept; one more line (20) fits in 40, the rest not.
    for i in 2..6 {
        s.write_all(&l20(i)).unwrap();
    }
    d.room.set(usize::MAX);
    s.flush().unwrap();
    let data = d.data.borrow().clone();
    let ls = lines_of(&data);
    assert_eq!(ls[..3], [l20(0), l20(1), l20(2)]);
    assert_eq!(lost_of(&ls[3])["count"], 3);
    assert_eq!(ls.len(), 4);
}

#[test]
fn beyond_the_bound_whole_lines_are_dropped_and_counted_once_writing_works() {
    let (mut s, d) = disk_sink(0, 100);
    for i in 0..5 {
        s.write_all(&l20(i)).unwrap(); // exactly 100 bytes: all kept
    }
    s.flush().unwrap();
    // A line in two pieces whose start does not fit: both pieces go, counted once.
    let l = l20(5);
    s.write_all(&l[..7]).unwrap();
    s.write_all(&l[7..]).unwrap();
    for i in 6..9 {
        s.write_all(&l20(i)).unwrap();
    }
    // Every later line is dropped too while counting, whatever its size: the lost line
    // then stands exactly where lines are missing.
    s.write_all(b"x\n").unwrap();
    assert_eq!(s.dropped, 5);
    s.flush().unwrap();
    d.room.set(50); // some of it gets out (a line is cut): still an outage, still dropping
    s.flush().unwrap();
    s.write_all(&l20(9)).unwrap();
    d.room.set(usize::MAX);
    s.flush().unwrap();
    // After the lost line, new lines are written as usual.
    s.write_all(&l20(10)).unwrap();
    s.flush().unwrap();
    let ls = lines_of(&d.data.borrow());
    assert_eq!(ls[..5], (0..5).map(l20).collect::<Vec<_>>());
    let v = lost_of(&ls[5]);
    assert_eq!(v["count"], 6);
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(ls[6..], [l20(10)]);
}

#[test]
fn a_line_whose_start_was_kept_is_dropped_whole_when_its_rest_does_not_fit() {
    let (mut s, d) = disk_sink(0, 30);
    s.write_all(&l20(0)).unwrap();
    s.flush().unwrap();
    let l = l20(1);
    s.write_all(&l[..5]).unwrap(); // fits (25)
    s.write_all(&l[5..]).unwrap(); // the rest does not: the whole line goes
    d.room.set(usize::MAX);
    s.flush().unwrap();
    let ls = lines_of(&d.data.borrow());
    assert_eq!(ls[0], l20(0));
    assert_eq!(lost_of(&ls[1])["count"], 1);
    assert_eq!(ls.len(), 2);
}

#[test]
fn text_lines_get_a_text_lost_line() {
    let (mut s, d) = disk_sink(0, 40);
    s.write_all(b"2026-01-01T00:00:00Z mkdir /a\n").unwrap();
    s.flush().unwrap();
    s.write_all(b"2026-01-01T00:00:00Z mkdir /b\n").unwrap();
    d.room.set(usize::MAX);
    s.flush().unwrap();
    let text = String::from_utf8(d.data.borrow().clone()).unwrap();
    assert!(text.ends_with(" lost 1 events (output)\n"), "{text:?}");
    assert!(!text.contains('{'));
}

#[test]
fn other_write_errors_are_still_errors() {
    let (mut s, d) = disk_sink(usize::MAX, 100);
    d.err.set(libc::EPIPE);
    s.write_all(b"a\n").unwrap();
    assert_eq!(s.flush().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    d.err.set(libc::EIO);
    assert_eq!(s.flush().unwrap_err().raw_os_error(), Some(libc::EIO));
    d.err.set(libc::EDQUOT);
    s.flush().unwrap();
    assert_eq!(s.outage, Some(libc::EDQUOT));
    d.err.set(0);
    s.flush().unwrap();
    assert_eq!(&*d.data.borrow(), b"a\n");
}

#[test]
fn a_reopen_during_an_outage_takes_the_kept_lines_to_the_new_file() {
    let t = temp_dir("sink");
    let p = t.path().join("out.jsonl");
    // The old file is on a full disk.
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut s = Sink::with_target(Target::File {
        path: p.clone(),
        file: full,
    });
    s.write_all(&l20(0)).unwrap();
    s.flush().unwrap();
    assert_eq!(s.outage, Some(libc::ENOSPC));
    s.write_all(&l20(1)).unwrap();
    s.reopen().unwrap();
    s.flush().unwrap();
    assert_eq!(s.outage, None);
    assert_eq!(lines_of(&std::fs::read(&p).unwrap()), [l20(0), l20(1)]);
}

/// A writer storm with a real SIGHUP: another thread renames the file and signals while
/// lines keep coming; the writer reopens between lines when it sees the flag. Every line
/// lands exactly once, whole, in order, the old file's lines before the new file's.
#[test]
fn sighup_reopen_under_a_write_storm() {
    static HUP: AtomicBool = AtomicBool::new(false);
    signal_hook::flag::register(libc::SIGHUP, &HUP).unwrap();
    let t = temp_dir("sink");
    let p = t.path().join("out.jsonl");
    let rotated: Arc<Vec<PathBuf>> = Arc::new(
        (1..=3)
            .map(|k| t.path().join(format!("out.jsonl.{k}")))
            .collect(),
    );
    let mut s = Sink::file(&p).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (p, rotated, done) = (p.clone(), rotated.clone(), done.clone());
        std::thread::spawn(move || {
            for r in rotated.iter() {
                std::thread::sleep(std::time::Duration::from_millis(30));
                // On a loaded machine the writer may not have flushed a line yet: each file
                // must get some before it is rotated.
                while std::fs::metadata(&p).map_or(0, |m| m.len()) == 0 {
                    std::thread::yield_now();
                }
                std::fs::rename(&p, r).unwrap();
                nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGHUP).unwrap();
                // Wait for the writer to have reopened before the next rotation.
                while !p.exists() {
                    std::thread::yield_now();
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut i = 0;
    let mut reopens = 0;
    while !done.load(Ordering::SeqCst) || i < 1000 {
        if HUP.swap(false, Ordering::SeqCst) {
            s.reopen().unwrap();
            reopens += 1;
        }
        s.write_all(format!("{{\"n\":{i}}}\n").as_bytes()).unwrap();
        if i % 97 == 0 {
            s.flush().unwrap();
        }
        i += 1;
    }
    rotator.join().unwrap();
    drop(s);
    assert_eq!(reopens, 3);
    let mut all = Vec::new();
    for f in rotated.iter().chain(std::iter::once(&p)) {
        let data = std::fs::read(f).unwrap();
        let ls = lines_of(&data);
        assert!(!ls.is_empty(), "{} is empty", f.display());
        all.extend(ls);
    }
    let want: Vec<Vec<u8>> = (0..i)
        .map(|k| format!("{{\"n\":{k}}}\n").into_bytes())
        .collect();
    assert_eq!(all.len(), want.len());
    assert!(all == want, "lines lost, duplicated, torn or out of order");
}

/// Lines rendered straight into the buffer (`write_with`) come out as `write_all` of the same
/// lines does, through a torn line, an outage with lines kept and dropped, and after it.
#[test]
fn lines_rendered_in_place_come_out_as_written_ones() {
    let run = |in_place: bool| {
        let (mut s, d) = disk_sink(30, 40);
        let mut scratch = Vec::new();
        let mut put = |s: &mut Sink, i: usize| {
            if in_place {
                s.write_with(&mut scratch, |out| out.extend_from_slice(&l20(i)))
                    .unwrap();
            } else {
                s.write_all(&l20(i)).unwrap();
            }
        };
        for i in 0..2 {
            put(&mut s, i);
        }
        s.flush().unwrap();
        for i in 2..6 {
            put(&mut s, i);
        }
        d.room.set(usize::MAX);
        s.flush().unwrap();
        for i in 6..9 {
            put(&mut s, i);
        }
        s.flush().unwrap();
        let data = d.data.borrow().clone();
        data
    };
    let (in_place, written) = (run(true), run(false));
    let ls = lines_of(&in_place);
    assert_eq!(ls[..3], [l20(0), l20(1), l20(2)]);
    assert_eq!(lost_of(&ls[3])["count"], 3);
    assert_eq!(ls[4..], [l20(6), l20(7), l20(8)]);
    // (the lost lines' times differ)
    let (a, b) = (lines_of(&written), ls);
    assert_eq!((a.len(), &a[..3], &a[4..]), (b.len(), &b[..3], &b[4..]));
}
