//! Event -> one JSON line (schema v1) or one readable text line.
//!
//! Written by hand rather than through a serde struct so the field order is the documented one
//! and fields that do not apply are simply absent. Strings are escaped as serde_json would
//! (`json_str`, tested against it).

pub mod sink;
pub mod timefmt;

use std::io::Write;

/// An event ready for output: every path absolute, every name looked up.
#[derive(Debug, Default, Clone)]
pub struct Event {
    pub time: String,
    pub op: &'static str,
    pub path: Vec<u8>,
    pub new_path: Option<Vec<u8>>,
    pub target: Option<Vec<u8>>,
    pub xattr: Option<Vec<u8>>,
    pub tree: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    /// audit login uid and session; None when unset
    pub loginuid: Option<u32>,
    pub login_user: Option<String>,
    pub sessionid: Option<u32>,
    pub tty: Option<String>,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub comm: Vec<u8>,
    pub exe: Option<Vec<u8>>,
    pub argv: Option<Vec<Vec<u8>>>,
    pub argv_truncated: bool,
    /// ancestors (pid, comm), nearest first
    pub parents: Vec<(u32, Vec<u8>)>,
    pub cgroup: Option<Vec<u8>>,
    pub container_id: Option<String>,
    /// exe through container_id already rendered (`identity_json`), in place of those fields:
    /// the same writer's records carry the same identity, rendered once.
    pub identity_json: Option<std::rc::Rc<[u8]>>,
    pub mode: Option<u32>,
    pub new_uid: Option<u32>,
    pub new_gid: Option<u32>,
    pub ret: Option<i32>,
    pub backend: &'static str,
    pub exchange: bool,
    pub truncated: bool,
    /// --fix: whether ownership was given back, and why not
    pub fixed: Option<bool>,
    pub fix_error: Option<String>,
    /// --fix dropped setuid/setgid bits of what it gave back
    pub setid_cleared: bool,
    /// false when the path is a lexical guess (the tracepoint backend looked too late)
    pub resolved: bool,
}

/// The one JSON object writer, for watch's events and scan's lines: fields in the order
/// written, strings escaped as serde_json escapes them.
pub(crate) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }
    pub fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
    pub(crate) fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        json_str(v, self.out);
    }
    pub(crate) fn num(&mut self, k: &str, v: impl itoa_like::Num) {
        self.key(k);
        v.write(self.out);
    }
    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => {
                self.key(k);
                self.out.extend_from_slice(b"null");
            }
        }
    }
    pub(crate) fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }
    /// Bytes that may not be UTF-8: a lossy string, and `<k>_b64` with the exact bytes.
    pub(crate) fn bytes(&mut self, k: &str, v: &[u8]) {
        match std::str::from_utf8(v) {
            Ok(s) => self.str(k, s),
            Err(_) => {
                self.str(k, &String::from_utf8_lossy(v));
                self.key(&format!("{k}_b64"));
                self.out.push(b'"');
                base64(v, self.out);
                self.out.push(b'"');
            }
        }
    }
    /// A value already rendered as JSON.
    pub(crate) fn raw(&mut self, k: &str, json: &[u8]) {
        self.key(k);
        self.out.extend_from_slice(json);
    }
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

mod itoa_like {
    pub trait Num {
        fn write(self, out: &mut Vec<u8>);
    }
    /// Decimal digits of `v`, without the formatting machinery (a dozen per event).
    pub fn write_u64(mut v: u64, out: &mut Vec<u8>) {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        out.extend_from_slice(&buf[i..]);
    }
    impl Num for u64 {
        fn write(self, out: &mut Vec<u8>) {
            write_u64(self, out);
        }
    }
    impl Num for u32 {
        fn write(self, out: &mut Vec<u8>) {
            write_u64(self.into(), out);
        }
    }
    impl Num for i32 {
        fn write(self, out: &mut Vec<u8>) {
            if self < 0 {
                out.push(b'-');
            }
            write_u64(self.unsigned_abs().into(), out);
        }
    }
}

/// A JSON string, escaped exactly as serde_json escapes it (quote, backslash, control
/// characters; \b \f \n \r \t short forms, else \u00xx), copying unescaped runs whole.
pub fn json_str(v: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = v.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let short = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            out.extend_from_slice(&[b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

pub fn base64(data: &[u8], out: &mut Vec<u8>) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(A[(n >> 18) as usize & 63]);
        out.push(A[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63]
        } else {
            b'='
        });
    }
}

pub fn mode_str(m: u32) -> String {
    format!("{:04o}", m & 0o7777)
}

pub fn json_line(e: &Event, out: &mut Vec<u8>) {
    let mut o = Obj::new(out);
    o.str("time", &e.time);
    o.str("op", e.op);
    o.bytes("path", &e.path);
    if let Some(p) = &e.new_path {
        o.bytes("new_path", p);
    }
    if let Some(t) = &e.target {
        o.bytes("target", t);
    }
    if let Some(x) = &e.xattr {
        o.bytes("xattr", x);
    }
    o.bytes("tree", &e.tree);
    o.num("uid", e.uid);
    o.num("gid", e.gid);
    o.num("euid", e.euid);
    o.num("fsuid", e.fsuid);
    o.num("fsgid", e.fsgid);
    o.opt_str("user", e.user.as_deref());
    o.opt_str("group", e.group.as_deref());
    if let Some(l) = e.loginuid {
        o.num("loginuid", l);
        o.opt_str("login_user", e.login_user.as_deref());
    }
    if let Some(s) = e.sessionid {
        o.num("sessionid", s);
    }
    if let Some(t) = &e.tty {
        o.str("tty", t);
    }
    o.num("pid", e.pid);
    o.num("tid", e.tid);
    o.num("ppid", e.ppid);
    o.bytes("comm", &e.comm);
    match &e.identity_json {
        Some(f) => o.out.extend_from_slice(f),
        None => identity_fields(&mut o, e),
    }
    if let Some(m) = e.mode {
        o.str("mode", &mode_str(m));
    }
    if let Some(u) = e.new_uid {
        o.num("new_uid", u);
    }
    if let Some(g) = e.new_gid {
        o.num("new_gid", g);
    }
    if let Some(r) = e.ret {
        o.num("ret", r);
    }
    if e.exchange {
        o.bool("exchange", true);
    }
    if e.truncated {
        o.bool("truncated", true);
    }
    if let Some(f) = e.fixed {
        o.bool("fixed", f);
        if e.setid_cleared {
            o.bool("setid_cleared", true);
        }
        if let Some(err) = &e.fix_error {
            o.str("fix_error", err);
        }
    }
    if !e.resolved {
        o.bool("resolved", false);
    }
    o.str("backend", e.backend);
    o.end();
    out.push(b'\n');
}

/// The fields exe, argv, argv_b64, argv_truncated, parents, cgroup, container_id of a JSON
/// line, each preceded by a comma (they never come first).
pub fn identity_json(e: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let mut o = Obj {
        out: &mut out,
        first: false,
    };
    identity_fields(&mut o, e);
    out
}

fn identity_fields(o: &mut Obj, e: &Event) {
    if let Some(x) = &e.exe {
        o.bytes("exe", x);
    }
    if let Some(argv) = &e.argv {
        o.key("argv");
        o.out.push(b'[');
        for (i, a) in argv.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            json_str(&String::from_utf8_lossy(a), o.out);
        }
        o.out.push(b']');
        if argv.iter().any(|a| std::str::from_utf8(a).is_err()) {
            o.key("argv_b64");
            o.out.push(b'[');
            for (i, a) in argv.iter().enumerate() {
                if i > 0 {
                    o.out.push(b',');
                }
                o.out.push(b'"');
                base64(a, o.out);
                o.out.push(b'"');
            }
            o.out.push(b']');
        }
        if e.argv_truncated {
            o.bool("argv_truncated", true);
        }
    }
    if !e.parents.is_empty() {
        o.key("parents");
        o.out.push(b'[');
        for (i, (pid, comm)) in e.parents.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            let mut p = Obj::new(o.out);
            p.num("pid", *pid);
            p.bytes("comm", comm);
            p.end();
        }
        o.out.push(b']');
    }
    if let Some(c) = &e.cgroup {
        o.bytes("cgroup", c);
    }
    if let Some(c) = &e.container_id {
        o.str("container_id", c);
    }
}

/// Bytes for a text line: printable as is, anything else as \xNN, so one event stays one line.
fn text_bytes(v: &[u8], out: &mut Vec<u8>) {
    let s = String::from_utf8_lossy(v);
    if std::str::from_utf8(v).is_ok() && !s.chars().any(|c| c.is_control() || c == '\\') {
        out.extend_from_slice(v);
        return;
    }
    for &b in v {
        if b.is_ascii_graphic() && b != b'\\' || b == b' ' {
            out.push(b);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

pub fn text_line(e: &Event, out: &mut Vec<u8>) {
    let _ = write!(out, "{} {} ", e.time, e.op);
    text_bytes(&e.path, out);
    if let Some(p) = &e.new_path {
        out.extend_from_slice(b" -> ");
        text_bytes(p, out);
    }
    if let Some(t) = &e.target {
        out.extend_from_slice(b" => ");
        text_bytes(t, out);
    }
    if let Some(m) = e.mode {
        let _ = write!(out, " mode={}", mode_str(m));
    }
    if let Some(f) = e.fixed {
        let _ = write!(out, " fixed={f}");
        if e.setid_cleared {
            out.extend_from_slice(b" setid_cleared=true");
        }
    }
    if e.new_uid.is_some() || e.new_gid.is_some() {
        let f = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let _ = write!(out, " owner={}:{}", f(e.new_uid), f(e.new_gid));
    }
    let _ = write!(
        out,
        " by {}({}) pid={} comm=",
        e.user.as_deref().unwrap_or("?"),
        e.fsuid,
        e.pid
    );
    text_bytes(&e.comm, out);
    if let Some(l) = e.loginuid {
        let _ = write!(
            out,
            " login={}({l})",
            e.login_user.as_deref().unwrap_or("?")
        );
    }
    if let Some(t) = &e.tty {
        let _ = write!(out, " tty={t}");
    }
    out.push(b'\n');
}

pub fn lost_line(time: &str, count: u64, json: bool, out: &mut Vec<u8>) {
    lost_line_why(time, count, None, json, out)
}

/// `lost_line` for events the agent had but could not write out (`-o` on a full disk):
/// `"reason":"output"`, so they are told apart from records the kernel could not deliver.
pub fn lost_output_line(time: &str, count: u64, json: bool, out: &mut Vec<u8>) {
    lost_line_why(time, count, Some("output"), json, out)
}

fn lost_line_why(time: &str, count: u64, reason: Option<&str>, json: bool, out: &mut Vec<u8>) {
    if json {
        let mut o = Obj::new(out);
        o.str("time", time);
        o.str("op", "lost");
        o.num("count", count);
        if let Some(r) = reason {
            o.str("reason", r);
        }
        o.end();
        out.push(b'\n');
    } else {
        let _ = write!(out, "{time} lost {count} events");
        if let Some(r) = reason {
            let _ = write!(out, " ({r})");
        }
        out.push(b'\n');
    }
}

/// A watched root that was deleted, unmounted or moved out of reach: given up, said once.
pub fn tree_gone_line(time: &str, tree: &[u8], why: &str, json: bool, out: &mut Vec<u8>) {
    if json {
        let mut o = Obj::new(out);
        o.str("time", time);
        o.str("op", "tree_gone");
        o.bytes("tree", tree);
        o.str("reason", why);
        o.end();
        out.push(b'\n');
    } else {
        let _ = writeln!(
            out,
            "{time} tree_gone {} ({why})",
            String::from_utf8_lossy(tree)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Event {
        Event {
            time: "2026-11-25T13:42:15.123456789Z".into(),
            op: "mkdir",
            path: b"/srv/app/x".to_vec(),
            tree: b"/srv/app".to_vec(),
            user: Some("root".into()),
            group: None,
            comm: b"mkdir".to_vec(),
            mode: Some(0o755),
            ret: Some(0),
            backend: "tracepoint",
            resolved: true,
            ..Event::default()
        }
    }

    #[test]
    fn field_order_and_absent_fields() {
        let mut out = Vec::new();
        json_line(&ev(), &mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "{\"time\":\"2026-11-25T13:42:15.123456789Z\",\"op\":\"mkdir\",\"path\":\"/srv/app/x\",\
\"tree\":\"/srv/app\",\"uid\":0,\"gid\":0,\"euid\":0,\"fsuid\":0,\"fsgid\":0,\"user\":\"root\",\
\"group\":null,\"pid\":0,\"tid\":0,\"ppid\":0,\"comm\":\"mkdir\",\"mode\":\"0755\",\"ret\":0,\
\"backend\":\"tracepoint\"}\n"
        );
    }

    #[test]
    fn fix_fields_after_truncated_and_in_text() {
        let mut e = ev();
        e.op = "chmod";
        e.mode = Some(0o4755);
        e.fixed = Some(true);
        e.setid_cleared = true;
        let mut out = Vec::new();
        json_line(&e, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.ends_with(
                "\"mode\":\"4755\",\"ret\":0,\"fixed\":true,\"setid_cleared\":true,\
                 \"backend\":\"tracepoint\"}\n"
            ),
            "{s}"
        );
        e.fixed = Some(false);
        e.setid_cleared = false;
        e.fix_error = Some("on another mount".into());
        let mut out = Vec::new();
        json_line(&e, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.ends_with(
                "\"fixed\":false,\"fix_error\":\"on another mount\",\"backend\":\"tracepoint\"}\n"
            ),
            "{s}"
        );
        e.fixed = Some(true);
        e.setid_cleared = true;
        e.fix_error = None;
        let mut out = Vec::new();
        text_line(&e, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains(" mode=4755 fixed=true setid_cleared=true by "),
            "{s}"
        );
    }

    #[test]
    fn odd_names_stay_one_line_and_lossless() {
        let mut e = ev();
        e.path = b"/srv/app/a\"b\\c\nd\x01e\xff\xfe".to_vec();
        let mut out = Vec::new();
        json_line(&e, &mut out);
        assert_eq!(out.iter().filter(|&&c| c == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["path"], "/srv/app/a\"b\\c\nd\u{1}e\u{fffd}\u{fffd}");
        let mut b64 = Vec::new();
        base64(&e.path, &mut b64);
        assert_eq!(v["path_b64"], String::from_utf8(b64).unwrap());
        let mut t = Vec::new();
        text_line(&e, &mut t);
        assert_eq!(t.iter().filter(|&&c| c == b'\n').count(), 1);
        assert!(String::from_utf8_lossy(&t).contains("a\"b\\x5cc\\x0ad\\x01e\\xff\\xfe"));
    }

    #[test]
    fn identity_fields_in_schema_order() {
        let mut e = ev();
        e.loginuid = Some(1000);
        e.login_user = Some("alice".into());
        e.sessionid = Some(3);
        e.tty = Some("pts/1".into());
        e.exe = Some(b"/usr/bin/mkdir".to_vec());
        e.argv = Some(vec![b"mkdir".to_vec(), b"-p".to_vec(), b"c\xffx".to_vec()]);
        e.parents = vec![(4200, b"bash".to_vec()), (4100, b"sudo".to_vec())];
        e.cgroup = Some(b"/user.slice/user-1000.slice/session-3.scope".to_vec());
        let mut out = Vec::new();
        json_line(&e, &mut out);
        let s = String::from_utf8(out).unwrap();
        let order = [
            "\"group\"",
            "\"loginuid\":1000",
            "\"login_user\":\"alice\"",
            "\"sessionid\":3",
            "\"tty\":\"pts/1\"",
            "\"pid\"",
            "\"comm\"",
            "\"exe\":\"/usr/bin/mkdir\"",
            "\"argv\":[\"mkdir\",\"-p\",\"c\u{fffd}x\"]",
            "\"argv_b64\":[\"bWtkaXI=\",\"LXA=\",\"Y/94\"]",
            "\"parents\":[{\"pid\":4200,\"comm\":\"bash\"},{\"pid\":4100,\"comm\":\"sudo\"}]",
            "\"cgroup\":\"/user.slice/user-1000.slice/session-3.scope\"",
            "\"mode\"",
        ];
        let mut at = 0;
        for k in order {
            let i = s[at..]
                .find(k)
                .unwrap_or_else(|| panic!("{k} missing or out of order in {s}"));
            at += i;
        }
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["argv"][2], "c\u{fffd}x");
        // Rendered once and reused: the same line.
        let pre = Event {
            identity_json: Some(identity_json(&e).into()),
            exe: None,
            argv: None,
            parents: Vec::new(),
            cgroup: None,
            container_id: Some("ignored: the rendered part stands for it".into()),
            ..e.clone()
        };
        let mut again = Vec::new();
        json_line(&pre, &mut again);
        assert_eq!(String::from_utf8(again).unwrap(), s);
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        let mut all = String::new();
        for c in (0u8..0x80).map(char::from) {
            all.push(c);
        }
        for v in [
            "",
            "plain",
            "a\"b\\c",
            "\u{7f}\u{80}é☃𝄞",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}x",
            all.as_str(),
        ] {
            let mut got = Vec::new();
            json_str(v, &mut got);
            assert_eq!(got, serde_json::to_vec(v).unwrap(), "{v:?}");
        }
        for n in [0u64, 7, 10, 4242, u32::MAX as u64, u64::MAX] {
            let mut got = Vec::new();
            itoa_like::Num::write(n, &mut got);
            assert_eq!(got, n.to_string().as_bytes());
        }
        for n in [0i32, -1, -13, i32::MIN, i32::MAX] {
            let mut got = Vec::new();
            itoa_like::Num::write(n, &mut got);
            assert_eq!(got, n.to_string().as_bytes());
        }
    }

    #[test]
    fn base64_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            base64(i.as_bytes(), &mut out);
            assert_eq!(out, o.as_bytes());
        }
    }

    #[test]
    fn lost_record() {
        let mut out = Vec::new();
        lost_line("T", 7, true, &mut out);
        assert_eq!(out, b"{\"time\":\"T\",\"op\":\"lost\",\"count\":7}\n");
        out.clear();
        lost_output_line("T", 7, true, &mut out);
        assert_eq!(
            out,
            b"{\"time\":\"T\",\"op\":\"lost\",\"count\":7,\"reason\":\"output\"}\n"
        );
        out.clear();
        lost_output_line("T", 7, false, &mut out);
        assert_eq!(out, b"T lost 7 events (output)\n");
    }
}
