//! Unit tests of `-o journal`'s encoder and sender: the two field forms, the fields of an
//! event and of a note, an entry too big for a datagram (sealed memfd), and an outage of
//! journald (retry, drop and count, the `lost` entry first when it is back).

use super::*;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use crate::testutil::temp_dir;

/// The fields of a native-protocol entry, in order, decoded as journald reads them.
fn decode(mut b: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let eol = b.iter().position(|&c| c == b'\n').expect("a field ends");
        let line = &b[..eol];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            out.push((
                String::from_utf8(line[..eq].to_vec()).unwrap(),
                line[eq + 1..].to_vec(),
            ));
            b = &b[eol + 1..];
        } else {
            let key = String::from_utf8(line.to_vec()).unwrap();
            let len = u64::from_le_bytes(b[eol + 1..eol + 9].try_into().unwrap()) as usize;
            let val = b[eol + 9..eol + 9 + len].to_vec();
            assert_eq!(
                b[eol + 9 + len],
                b'\n',
                "binary field {key} ends in a newline"
            );
            out.push((key, val));
            b = &b[eol + 10 + len..];
        }
    }
    out
}

fn get<'a>(f: &'a [(String, Vec<u8>)], k: &str) -> Option<&'a [u8]> {
    let mut it = f.iter().filter(|(key, _)| key == k);
    let v = it.next().map(|(_, v)| &v[..]);
    assert!(it.next().is_none(), "{k} twice");
    v
}

#[test]
fn text_form_unless_a_newline_then_binary_safe() {
    let mut e = Entry::new();
    e.field("A", b"plain value")
        .field("B", b"non-utf8 \xff\xfe and NUL \0 and = sign")
        .field("C", b"new\nline")
        .field("D", b"")
        .num("N", 42u32);
    let mut want = Vec::new();
    want.extend_from_slice(b"A=plain value\n");
    want.extend_from_slice(b"B=non-utf8 \xff\xfe and NUL \0 and = sign\n");
    want.extend_from_slice(b"C\n");
    want.extend_from_slice(&8u64.to_le_bytes());
    want.extend_from_slice(b"new\nline\n");
    want.extend_from_slice(b"D=\n");
    want.extend_from_slice(b"N=42\n");
    assert_eq!(e.bytes(), &want[..]);
    let f = decode(e.bytes());
    assert_eq!(get(&f, "C"), Some(&b"new\nline"[..]));
    assert_eq!(
        get(&f, "B"),
        Some(&b"non-utf8 \xff\xfe and NUL \0 and = sign"[..])
    );
}

fn ev() -> Event {
    Event {
        time: "2026-11-25T13:42:15.123456789Z".into(),
        op: "rename",
        path: b"/srv/app/old\nname".to_vec(),
        new_path: Some(b"/srv/app/new\xff".to_vec()),
        tree: crate::output::TreePath::from(&b"/srv/app"[..]),
        uid: 1000,
        fsuid: 0,
        user: Some("root".into()),
        loginuid: Some(1000),
        login_user: Some("alice".into()),
        pid: 4242,
        comm: smallvec::SmallVec::from_slice(b"mv"),
        exe: Some(b"/usr/bin/mv".as_slice().into()),
        ret: Some(0),
        backend: "lsm",
        resolved: true,
        ..Event::default()
    }
}

#[test]
fn an_event_entry_has_its_fields_and_its_json_line() {
    let e = ev();
    let mut json = Vec::new();
    let entry = render(&e, &mut json);
    let f = decode(entry.bytes());
    let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "MESSAGE",
            "PRIORITY",
            "SYSLOG_IDENTIFIER",
            "OWNWATCH_OP",
            "OWNWATCH_TIME",
            "OWNWATCH_PATH",
            "OWNWATCH_NEW_PATH",
            "OWNWATCH_TREE",
            "OWNWATCH_UID",
            "OWNWATCH_USER",
            "OWNWATCH_LOGINUID",
            "OWNWATCH_LOGIN_USER",
            "OWNWATCH_PID",
            "OWNWATCH_COMM",
            "OWNWATCH_EXE",
            "OWNWATCH_BACKEND",
            "OWNWATCH_JSON",
        ]
    );
    let mut text = Vec::new();
    text_line(&e, &mut text);
    let msg = get(&f, "MESSAGE").unwrap();
    assert_eq!(
        msg,
        &text[e.time.len() + 1..text.len() - 1],
        "MESSAGE: the text line without time and newline"
    );
    assert!(msg.starts_with(b"rename \"/srv/app/old\\nname\" -> \"/srv/app/new\\xff\" by root(0)"));
    assert_eq!(get(&f, "PRIORITY"), Some(&b"4"[..]));
    assert_eq!(get(&f, "SYSLOG_IDENTIFIER"), Some(&b"ownwatch"[..]));
    assert_eq!(get(&f, "OWNWATCH_PATH"), Some(&b"/srv/app/old\nname"[..]));
    assert_eq!(get(&f, "OWNWATCH_NEW_PATH"), Some(&b"/srv/app/new\xff"[..]));
    assert_eq!(get(&f, "OWNWATCH_UID"), Some(&b"0"[..]), "the fsuid");
    assert_eq!(get(&f, "OWNWATCH_LOGINUID"), Some(&b"1000"[..]));
    assert_eq!(get(&f, "OWNWATCH_EXE"), Some(&b"/usr/bin/mv"[..]));
    assert_eq!(get(&f, "OWNWATCH_BACKEND"), Some(&b"lsm"[..]));
    let mut line = Vec::new();
    json_line(&e, &mut line);
    assert_eq!(get(&f, "OWNWATCH_JSON"), Some(&line[..line.len() - 1]));
    // The binary form where a value has a newline (the path), the text form elsewhere.
    assert!(entry.bytes().starts_with(b"MESSAGE=rename "));
    assert!(contains(entry.bytes(), b"\nOWNWATCH_PATH\n"));
    assert!(contains(
        entry.bytes(),
        b"\nOWNWATCH_NEW_PATH=/srv/app/new\xff\n"
    ));

    // What is absent stays absent; a notice-level op.
    let e = Event {
        op: "mkdir",
        path: b"/srv/app/d".to_vec(),
        new_path: None,
        loginuid: None,
        login_user: None,
        exe: None,
        user: None,
        ..ev()
    };
    let f = decode(render(&e, &mut json).bytes());
    assert_eq!(get(&f, "PRIORITY"), Some(&b"5"[..]));
    for k in [
        "OWNWATCH_NEW_PATH",
        "OWNWATCH_LOGINUID",
        "OWNWATCH_LOGIN_USER",
        "OWNWATCH_EXE",
        "OWNWATCH_USER",
        "OWNWATCH_FIXED",
    ] {
        assert_eq!(get(&f, k), None, "{k}");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn priority_per_op() {
    for op in ["chown", "chmod", "unlink", "rmdir", "rename", "truncate"] {
        assert_eq!(priority_of(op), WARNING, "{op}");
    }
    for op in [
        "create",
        "mkdir",
        "mknod",
        "symlink",
        "link",
        "write",
        "setxattr",
        "removexattr",
    ] {
        assert_eq!(priority_of(op), NOTICE, "{op}");
    }
}

#[test]
fn note_entries() {
    let f = decode(
        note_entry(
            &Note::Lost {
                count: 7,
                reason: Some("skipped"),
            },
            "T0",
        )
        .bytes(),
    );
    assert_eq!(get(&f, "MESSAGE"), Some(&b"lost 7 events (skipped)"[..]));
    assert_eq!(get(&f, "PRIORITY"), Some(&b"3"[..]));
    assert_eq!(get(&f, "OWNWATCH_OP"), Some(&b"lost"[..]));
    assert_eq!(get(&f, "OWNWATCH_COUNT"), Some(&b"7"[..]));
    assert_eq!(get(&f, "OWNWATCH_REASON"), Some(&b"skipped"[..]));
    assert_eq!(
        get(&f, "OWNWATCH_JSON"),
        Some(&b"{\"time\":\"T0\",\"op\":\"lost\",\"count\":7,\"reason\":\"skipped\"}"[..])
    );
    let f = decode(
        note_entry(
            &Note::TreeGone {
                tree: b"/srv/a b",
                why: "was deleted",
            },
            "T1",
        )
        .bytes(),
    );
    assert_eq!(
        get(&f, "MESSAGE"),
        Some(&b"tree_gone \"/srv/a b\" (was deleted)"[..])
    );
    assert_eq!(get(&f, "PRIORITY"), Some(&b"4"[..]));
    assert_eq!(get(&f, "OWNWATCH_TREE"), Some(&b"/srv/a b"[..]));
    assert_eq!(get(&f, "OWNWATCH_REASON"), Some(&b"was deleted"[..]));
}

/// A datagram from `sock`, and the fd passed with it, if any.
fn recv(sock: &UnixDatagram) -> (Vec<u8>, Option<OwnedFd>) {
    let mut data = vec![0u8; 1 << 16];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut control = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "recvmsg: {}", io::Error::last_os_error());
    data.truncate(n as usize);
    let mut fd = None;
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if !c.is_null() {
            assert_eq!(
                ((*c).cmsg_level, (*c).cmsg_type),
                (libc::SOL_SOCKET, libc::SCM_RIGHTS)
            );
            let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
            fd = Some(OwnedFd::from_raw_fd(raw));
        }
    }
    (data, fd)
}

#[test]
fn a_big_entry_goes_in_a_sealed_memfd() {
    let t = temp_dir("journal");
    let path = t.path().join("socket");
    let server = UnixDatagram::bind(&path).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut j = Journal::at(&path).unwrap();
    let mut small = Entry::new();
    small.field("MESSAGE", b"small");
    j.send(&small).unwrap();
    let (data, fd) = recv(&server);
    assert_eq!(data, small.bytes());
    assert!(fd.is_none());

    // Far beyond a datagram's limit: the socket's send buffer (~208 KiB by default; made
    // small here so no sysctl can make 1 MiB fit).
    let small_buf: libc::c_int = 64 << 10;
    let rc = unsafe {
        libc::setsockopt(
            j.sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &small_buf as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_SNDBUF: {}", io::Error::last_os_error());
    let mut big = Entry::new();
    big.field("MESSAGE", b"big")
        .field("OWNWATCH_PATH", &vec![b'x'; 1 << 20])
        .field("OWNWATCH_NEW_PATH", b"a\nb");
    j.send(&big).unwrap();
    let (data, fd) = recv(&server);
    assert!(data.is_empty(), "the datagram carries only the fd");
    let fd = fd.expect("an fd with the datagram");
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    let want = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    assert_eq!(seals & want, want, "sealed: {seals:#x}");
    let f = File::from(fd);
    let len = crate::sys::fstat(f.as_fd()).unwrap().st_size as usize;
    let mut got = vec![0u8; len];
    f.read_exact_at(&mut got, 0).unwrap();
    assert_eq!(got, big.bytes());
    assert_eq!(j.dropped, 0);
}

#[test]
fn no_journal_socket_is_one_line() {
    let t = temp_dir("journal");
    let path = t.path().join("socket");
    let e = Journal::at(&path).err().unwrap();
    assert_eq!(
        format!("{e:#}"),
        format!("-o journal: no journald socket at {}", path.display())
    );
    // A socket file nobody listens on (journald stopped without removing it).
    drop(UnixDatagram::bind(&path).unwrap());
    let e = Journal::at(&path).err().unwrap();
    assert_eq!(
        format!("{e:#}"),
        format!(
            "-o journal: journald is not listening at {}",
            path.display()
        )
    );
}

#[test]
fn journald_away_drops_and_counts_then_says_lost_first() {
    let t = temp_dir("journal");
    let path = t.path().join("socket");
    let mut j = Journal::unchecked(&path).unwrap();
    let mut one = Entry::new();
    one.field("MESSAGE", b"one");
    let started = std::time::Instant::now();
    j.send(&one).unwrap();
    let patience = started.elapsed();
    assert!(
        patience >= Duration::from_millis(RETRY_MS.iter().sum()),
        "retried for {patience:?}"
    );
    assert_eq!(j.dropped, 1);
    // During the outage: one quick try each.
    let started = std::time::Instant::now();
    j.send(&one).unwrap();
    j.flush().unwrap();
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(j.dropped, 2);

    // journald is back.
    let server = UnixDatagram::bind(&path).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    j.flush().unwrap();
    assert_eq!(j.dropped, 0);
    let (data, _) = recv(&server);
    let f = decode(&data);
    assert_eq!(get(&f, "PRIORITY"), Some(&b"3"[..]));
    assert_eq!(get(&f, "OWNWATCH_OP"), Some(&b"lost"[..]));
    assert_eq!(get(&f, "OWNWATCH_COUNT"), Some(&b"2"[..]));
    assert_eq!(get(&f, "OWNWATCH_REASON"), Some(&b"output"[..]));
    let json: serde_json::Value =
        serde_json::from_slice(get(&f, "OWNWATCH_JSON").unwrap()).unwrap();
    assert_eq!(json["op"], "lost");
    assert_eq!(json["count"], 2);
    assert_eq!(json["reason"], "output");
    j.send(&one).unwrap();
    assert_eq!(recv(&server).0, one.bytes());

    // Gone again, and back before the next send: the lost entry comes before that send.
    drop(server);
    std::fs::remove_file(&path).unwrap();
    j.send(&one).unwrap();
    assert_eq!(j.dropped, 1);
    let server = UnixDatagram::bind(&path).unwrap();
    let mut two = Entry::new();
    two.field("MESSAGE", b"two");
    j.send(&two).unwrap();
    let f = decode(&recv(&server).0);
    assert_eq!(get(&f, "OWNWATCH_COUNT"), Some(&b"1"[..]));
    assert_eq!(recv(&server).0, two.bytes());
}
