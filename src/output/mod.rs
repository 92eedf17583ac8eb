//! Event -> one JSON line (schema v1) or one readable text line; also the `lost` and
//! `tree_gone` lines.
//!
//! Written field by field with [`json::Obj`] rather than through a serde struct, so the field
//! order is the documented one and fields that do not apply are simply absent. Strings are
//! escaped by `json::json_str` (by hand, byte for byte as serde_json would; tested against it).

pub mod journal;
pub mod json;
pub mod metrics;
pub mod sink;
pub mod timefmt;

use std::io::Write;
use std::rc::Rc;

use smallvec::SmallVec;

use json::{json_str, Obj};

/// A tree's root path as events carry it: one copy shared by the events of a root that has not
/// moved (`Processor::tree_at_op`), not one allocation per event; the empty default shared too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreePath(Rc<[u8]>);

thread_local! {
    static NO_TREE: TreePath = TreePath(Rc::from(&b""[..]));
}

impl Default for TreePath {
    fn default() -> Self {
        NO_TREE.with(TreePath::clone)
    }
}

impl From<&[u8]> for TreePath {
    fn from(p: &[u8]) -> Self {
        TreePath(Rc::from(p))
    }
}

impl std::ops::Deref for TreePath {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// An event ready for output: every path absolute, every name looked up.
#[derive(Debug, Default, Clone)]
pub struct Event {
    pub time: timefmt::Stamp,
    pub op: &'static str,
    pub path: Vec<u8>,
    pub new_path: Option<Vec<u8>>,
    pub target: Option<Vec<u8>>,
    pub xattr: Option<Vec<u8>>,
    /// the tree's root at the time of the op; most events share the root's own copy
    pub tree: TreePath,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub user: Option<Rc<str>>,
    pub group: Option<Rc<str>>,
    /// audit login uid and session; None when unset
    pub loginuid: Option<u32>,
    pub login_user: Option<Rc<str>>,
    pub sessionid: Option<u32>,
    pub tty: Option<Rc<str>>,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    /// the kernel's comm: at most 15 bytes, kept in place
    pub comm: SmallVec<[u8; 16]>,
    /// as /proc/PID/exe says it: "<path> (deleted)" when `exe_deleted`
    pub exe: Option<Rc<[u8]>>,
    /// the executable was deleted or replaced since the writer ran it
    pub exe_deleted: bool,
    pub argv: Option<Vec<Vec<u8>>>,
    pub argv_truncated: bool,
    /// ancestors (pid, comm), nearest first
    pub parents: Vec<(u32, Vec<u8>)>,
    pub cgroup: Option<Vec<u8>>,
    pub container_id: Option<String>,
    /// exe through container_id already rendered (`identity_json`), in place of those fields:
    /// the same writer's records carry the same identity, rendered once.
    pub identity_json: Option<Rc<[u8]>>,
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

/// A mode's permission bits as four octal digits ("0755").
pub fn mode_digits(m: u32) -> [u8; 4] {
    let d = |i: u32| b'0' + ((m >> (3 * i)) & 7) as u8;
    [d(3), d(2), d(1), d(0)]
}

pub fn mode_str(m: u32) -> String {
    mode_digits(m).iter().map(|&c| char::from(c)).collect()
}

pub fn json_line(e: &Event, out: &mut Vec<u8>) {
    json_line_with(e, out, None);
}

/// The fields from uid through the identity (uid .. comm, exe .. container_id) of the last
/// line written with it, rendered: a writer's lines repeat them, so a line whose actor is the
/// last one's copies them rather than rendering a dozen fields again. Only lines whose identity
/// was rendered once (`Event::identity_json`) use it: that rendering is part of the key.
#[derive(Default)]
pub struct ActorJson {
    last: Option<Actor>,
    json: Vec<u8>,
}

/// What the actor's fields are made of.
struct Actor {
    /// uid, gid, euid, fsuid, fsgid, pid, tid, ppid
    ids: [u32; 8],
    loginuid: Option<u32>,
    sessionid: Option<u32>,
    comm: SmallVec<[u8; 16]>,
    user: Option<Rc<str>>,
    group: Option<Rc<str>>,
    login_user: Option<Rc<str>>,
    tty: Option<Rc<str>>,
    identity: Rc<[u8]>,
}

fn actor_ids(e: &Event) -> [u32; 8] {
    [e.uid, e.gid, e.euid, e.fsuid, e.fsgid, e.pid, e.tid, e.ppid]
}

impl Actor {
    fn of(e: &Event, identity: &Rc<[u8]>) -> Self {
        Actor {
            ids: actor_ids(e),
            loginuid: e.loginuid,
            sessionid: e.sessionid,
            comm: e.comm.clone(),
            user: e.user.clone(),
            group: e.group.clone(),
            login_user: e.login_user.clone(),
            tty: e.tty.clone(),
            identity: identity.clone(),
        }
    }

    fn is(&self, e: &Event, identity: &Rc<[u8]>) -> bool {
        self.ids == actor_ids(e)
            && self.loginuid == e.loginuid
            && self.sessionid == e.sessionid
            && self.comm == e.comm
            && same(&self.identity, identity)
            && same_name(&self.user, &e.user)
            && same_name(&self.group, &e.group)
            && same_name(&self.login_user, &e.login_user)
            && same_name(&self.tty, &e.tty)
    }
}

/// (the pointers first: the same writer's events share their names and rendered identity,
/// and Rc's own `==` compares the bytes of an unsized value)
fn same<T: PartialEq + ?Sized>(a: &Rc<T>, b: &Rc<T>) -> bool {
    Rc::ptr_eq(a, b) || **a == **b
}

fn same_name(a: &Option<Rc<str>>, b: &Option<Rc<str>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// `json_line`, with the actor's fields copied from `actor` where they are the last line's.
pub fn json_line_with(e: &Event, out: &mut Vec<u8>, actor: Option<&mut ActorJson>) {
    let mut o = Obj::new(out);
    // (our own strings: nothing to escape)
    o.plain("time", &e.time);
    o.plain("op", e.op);
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
    match (actor, &e.identity_json) {
        (Some(a), Some(id)) => {
            if a.last.as_ref().is_some_and(|l| l.is(e, id)) {
                o.fields(&a.json);
            } else {
                let start = o.len();
                actor_fields(&mut o, e);
                a.json.clear();
                a.json.extend_from_slice(o.since(start));
                a.last = Some(Actor::of(e, id));
            }
        }
        _ => actor_fields(&mut o, e),
    }
    if let Some(m) = e.mode {
        // (without a String per event)
        let [a, b, c, d] = mode_digits(m);
        o.raw("mode", &[b'"', a, b, c, d, b'"']);
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
    o.plain("backend", e.backend);
    o.end();
    out.push(b'\n');
}

/// uid through comm, then the identity: each field with its leading comma.
fn actor_fields(o: &mut Obj, e: &Event) {
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
        Some(f) => o.fields(f),
        None => identity_fields(o, e),
    }
}

/// The fields exe, argv, argv_b64, argv_truncated, parents, cgroup, container_id of a JSON
/// line, each preceded by a comma (they never come first).
pub fn identity_json(e: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    identity_fields(&mut Obj::continuing(&mut out), e);
    out
}

fn identity_fields(o: &mut Obj, e: &Event) {
    if let Some(x) = &e.exe {
        o.bytes("exe", x);
    }
    if let Some(argv) = &e.argv {
        o.array("argv", argv, |a, out| {
            json_str(&String::from_utf8_lossy(a), out)
        });
        if argv.iter().any(|a| std::str::from_utf8(a).is_err()) {
            o.array("argv_b64", argv, |a, out| json::b64_str(a, out));
        }
        if e.argv_truncated {
            o.bool("argv_truncated", true);
        }
    }
    if !e.parents.is_empty() {
        o.array("parents", &e.parents, |(pid, comm), out| {
            let mut p = Obj::new(out);
            p.num("pid", *pid);
            p.bytes("comm", comm);
            p.end();
        });
    }
    if let Some(c) = &e.cgroup {
        o.bytes("cgroup", c);
    }
    if let Some(c) = &e.container_id {
        o.str("container_id", c);
    }
}

/// A name in a text line. Printed as it is when that is unambiguous: UTF-8 without spaces,
/// quotes, backslashes or control characters. Otherwise (and when empty) in double quotes,
/// with C escapes: `\"`, `\\`, `\n`, `\t`, `\r`, and `\xNN` for other control characters and
/// bytes that are not UTF-8; so one event stays one line and a name with spaces reads as one.
fn text_bytes(v: &[u8], out: &mut Vec<u8>) {
    let plain = |c: char| !(c.is_control() || c.is_whitespace() || matches!(c, '"' | '\\' | '\''));
    if let Ok(s) = std::str::from_utf8(v) {
        if !s.is_empty() && s.chars().all(plain) {
            out.extend_from_slice(v);
            return;
        }
    }
    out.push(b'"');
    for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\r' => out.extend_from_slice(b"\\r"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                c => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push(b'"');
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

#[cfg(test)]
pub fn lost_line(time: &str, count: u64, json: bool, out: &mut Vec<u8>) {
    lost_line_why(time, count, None, json, out)
}

/// `lost_line` for events the agent had but could not write out (`-o` on a full disk):
/// `"reason":"output"`, so they are told apart from records the kernel could not deliver.
pub fn lost_output_line(time: &str, count: u64, json: bool, out: &mut Vec<u8>) {
    lost_line_why(time, count, Some("output"), json, out)
}

/// Runs of our programs the kernel skipped (a program already running on that CPU: its
/// recursion guard): each may have been an event, or a record's outcome or exact path.
/// `"reason":"skipped"`, so they are told apart from records that could not be delivered.
#[cfg(test)]
pub fn skipped_line(time: &str, count: u64, json: bool, out: &mut Vec<u8>) {
    lost_line_why(time, count, Some("skipped"), json, out)
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

/// An in-band line that is not an event.
pub enum Note<'a> {
    /// `lost_line` (reason None), `lost_output_line` ("output"), `skipped_line` ("skipped")
    Lost {
        count: u64,
        reason: Option<&'static str>,
    },
    /// `tree_gone_line`
    TreeGone { tree: &'a [u8], why: &'a str },
}

impl Note<'_> {
    pub fn line(&self, time: &str, json: bool, out: &mut Vec<u8>) {
        match self {
            Note::Lost { count, reason } => lost_line_why(time, *count, *reason, json, out),
            Note::TreeGone { tree, why } => tree_gone_line(time, tree, why, json, out),
        }
    }
}

/// Where events go: lines (stdout or `-o FILE`), or journal entries (`-o journal`).
pub enum Output {
    Lines(sink::Sink),
    Journal(journal::Journal),
}

impl Output {
    pub fn is_stdout(&self) -> bool {
        matches!(self, Output::Lines(s) if s.is_stdout())
    }

    /// SIGHUP: a file is reopened; the journal has nothing to reopen.
    pub fn reopen(&mut self) -> std::io::Result<()> {
        match self {
            Output::Lines(s) => s.reopen(),
            Output::Journal(_) => Ok(()),
        }
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Lines(s) => s.flush(),
            Output::Journal(j) => j.flush(),
        }
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
        let _ = write!(out, "{time} tree_gone ");
        text_bytes(tree, out);
        let _ = writeln!(out, " ({why})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event's `--format text` line.
    fn text_of(e: &Event) -> String {
        let mut out = Vec::new();
        text_line(e, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn ev() -> Event {
        Event {
            time: "2026-11-25T13:42:15.123456789Z".into(),
            op: "mkdir",
            path: b"/srv/app/x".to_vec(),
            tree: TreePath::from(&b"/srv/app"[..]),
            user: Some("root".into()),
            group: None,
            comm: SmallVec::from_slice(b"mkdir"),
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
        let s = text_of(&e);
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
        assert_eq!(v["path_b64"], "L3Nydi9hcHAvYSJiXGMKZAFl//4=");
        let mut t = Vec::new();
        text_line(&e, &mut t);
        assert_eq!(t.iter().filter(|&&c| c == b'\n').count(), 1);
        assert!(
            String::from_utf8_lossy(&t).contains(" \"/srv/app/a\\\"b\\\\c\\nd\\x01e\\xff\\xfe\" "),
            "{}",
            String::from_utf8_lossy(&t)
        );
    }

    /// --format text: a name that needs it is double-quoted with C escapes, so a name with
    /// spaces reads as one and "a b -> c" cannot be mistaken for a rename.
    #[test]
    fn text_names_quoted_when_needed() {
        let name = |v: &[u8]| {
            let mut out = Vec::new();
            text_bytes(v, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            name(b"/srv/app/plain-\xc3\xa9.txt"),
            "/srv/app/plain-\u{e9}.txt"
        );
        assert_eq!(name(b"/srv/app/my file"), "\"/srv/app/my file\"");
        assert_eq!(name(b"/srv/a -> b"), "\"/srv/a -> b\"");
        assert_eq!(name(b"tab\there"), "\"tab\\there\"");
        assert_eq!(name(b"q\"uote"), "\"q\\\"uote\"");
        assert_eq!(name(b"it's"), "\"it's\"");
        assert_eq!(name(b"\x1b[2J\r"), "\"\\x1b[2J\\r\"");
        assert_eq!(name(b"\xff"), "\"\\xff\"");
        assert_eq!(name(b"nbsp\xc2\xa0x"), "\"nbsp\u{a0}x\"");
        assert_eq!(name(b""), "\"\"");
        let mut e = ev();
        e.op = "rename";
        e.path = b"/srv/app/old name".to_vec();
        e.new_path = Some(b"/srv/app/new".to_vec());
        e.comm = SmallVec::from_slice(b"Web Content");
        let t = text_of(&e);
        assert!(
            t.contains(" rename \"/srv/app/old name\" -> /srv/app/new mode=0755 "),
            "{t}"
        );
        assert!(t.contains(" comm=\"Web Content\""), "{t}");
    }

    #[test]
    fn identity_fields_in_schema_order() {
        let mut e = ev();
        e.loginuid = Some(1000);
        e.login_user = Some("alice".into());
        e.sessionid = Some(3);
        e.tty = Some("pts/1".into());
        e.exe = Some(b"/usr/bin/mkdir".as_slice().into());
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

    /// A line with the actor's fields copied from the last line's is the line rendered
    /// whole, whichever of those fields changes between two lines.
    #[test]
    fn the_actor_fields_are_copied_only_when_they_are_the_last_lines() {
        let mut base = ev();
        base.loginuid = Some(1000);
        base.login_user = Some("alice".into());
        base.sessionid = Some(3);
        base.tty = Some("pts/1".into());
        base.exe = Some(b"/usr/bin/mkdir".as_slice().into());
        base.argv = Some(vec![b"mkdir".to_vec(), b"x".to_vec()]);
        base.identity_json = Some(identity_json(&base).into());
        let other_identity = {
            let mut e = base.clone();
            e.argv = Some(vec![b"mkdir".to_vec(), b"y".to_vec()]);
            identity_json(&e)
        };
        type Change = Box<dyn Fn(&mut Event)>;
        let variants: Vec<Change> = vec![
            Box::new(|_| {}),
            Box::new(|e| e.uid = 7),
            Box::new(|e| e.gid = 7),
            Box::new(|e| e.euid = 7),
            Box::new(|e| e.fsuid = 7),
            Box::new(|e| e.fsgid = 7),
            Box::new(|e| e.pid = 7),
            Box::new(|e| e.tid = 7),
            Box::new(|e| e.ppid = 7),
            Box::new(|e| e.loginuid = None),
            Box::new(|e| e.login_user = Some("bob".into())),
            Box::new(|e| e.sessionid = None),
            Box::new(|e| e.tty = None),
            Box::new(|e| e.user = None),
            Box::new(|e| e.group = Some("wheel".into())),
            Box::new(|e| e.comm = SmallVec::from_slice(b"cp")),
            Box::new(move |e| e.identity_json = Some(other_identity.clone().into())),
            // the same identity rendered again (another Rc): still the same fields
            Box::new(|e| e.identity_json = Some(identity_json(e).into())),
            // no rendered identity: the fields themselves, never the copy
            Box::new(|e| {
                e.identity_json = None;
                e.argv = Some(vec![b"touch".to_vec()]);
            }),
            Box::new(|e| {
                e.op = "chmod";
                e.path = b"/srv/app/y".to_vec();
            }),
        ];
        let mut actor = ActorJson::default();
        for change in &variants {
            let mut e = base.clone();
            change(&mut e);
            for line in [&base, &e, &e, &base] {
                let (mut whole, mut copied) = (Vec::new(), Vec::new());
                json_line(line, &mut whole);
                json_line_with(line, &mut copied, Some(&mut actor));
                assert_eq!(
                    String::from_utf8(copied).unwrap(),
                    String::from_utf8(whole).unwrap()
                );
            }
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
        out.clear();
        skipped_line("T", 3, true, &mut out);
        assert_eq!(
            out,
            b"{\"time\":\"T\",\"op\":\"lost\",\"count\":3,\"reason\":\"skipped\"}\n"
        );
    }
}
