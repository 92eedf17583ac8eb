//! Expected events and their exact comparison with what the agent printed.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{bytes, expected_backend, ACTOR_COMM, OTHER, OWNER, TIMEOUT};

/// One expected event. Fields not set here are checked against defaults:
/// new_path/target/new_uid/new_gid/xattr absent, exchange/truncated absent or false, mode
/// present (octal) exactly for create/mkdir/mknod/chmod, uid/euid = fsuid, gid/fsgid =
/// fsuid's group (same number), ret 0, backend as expected, tree = the watched tree.
#[derive(Clone, Debug)]
pub struct Exp {
    pub op: String,
    pub path: Vec<u8>,
    pub fsuid: u32,
    pub new_path: Option<Vec<u8>>,
    pub target: Option<Vec<u8>>,
    pub mode: Option<u32>,
    pub new_uid: Option<u32>,
    pub new_gid: Option<u32>,
    pub xattr: Option<String>,
    pub exchange: bool,
    pub truncated: bool,
    pub pid: Option<i32>,
    /// Defaults to `pid`.
    pub tid: Option<i32>,
    pub comm: Option<String>,
    pub tree: Option<PathBuf>,
    /// Done through io_uring: by any thread of `pid` (an io-wq worker, "iou-wrk-N", or the
    /// submitter); the tracepoint backend sees only the submission, so no "ret".
    pub io_uring: bool,
    /// (uid, gid, euid, fsgid)
    pub ids: (u32, u32, u32, u32),
    pub fields: Vec<(String, Value)>,
}

impl Exp {
    pub fn new(op: &str, path: impl AsRef<Path>, fsuid: u32) -> Exp {
        Exp {
            op: op.to_string(),
            path: bytes(path),
            fsuid,
            new_path: None,
            target: None,
            mode: None,
            new_uid: None,
            new_gid: None,
            xattr: None,
            exchange: false,
            truncated: false,
            pid: None,
            tid: None,
            comm: Some(ACTOR_COMM.to_string()),
            tree: None,
            io_uring: false,
            ids: (fsuid, fsuid, fsuid, fsuid),
            fields: Vec::new(),
        }
    }
    pub fn new_path(mut self, p: impl AsRef<Path>) -> Exp {
        self.new_path = Some(bytes(p));
        self
    }
    pub fn target(mut self, t: impl AsRef<[u8]>) -> Exp {
        self.target = Some(t.as_ref().to_vec());
        self
    }
    pub fn mode(mut self, m: u32) -> Exp {
        self.mode = Some(m);
        self
    }
    pub fn owner(mut self, uid: Option<u32>, gid: Option<u32>) -> Exp {
        self.new_uid = uid;
        self.new_gid = gid;
        self
    }
    pub fn xattr(mut self, name: &str) -> Exp {
        self.xattr = Some(name.to_string());
        self
    }
    pub fn exchange(mut self) -> Exp {
        self.exchange = true;
        self
    }
    pub fn pid(mut self, pid: i32) -> Exp {
        self.pid = Some(pid);
        self
    }
    pub fn tid(mut self, tid: i32) -> Exp {
        self.tid = Some(tid);
        self
    }
    pub fn io_uring(mut self) -> Exp {
        self.io_uring = true;
        self
    }
    pub fn any_comm(mut self) -> Exp {
        self.comm = None;
        self
    }
    pub fn tree(mut self, t: impl AsRef<Path>) -> Exp {
        self.tree = Some(t.as_ref().to_path_buf());
        self
    }
    /// uid, gid, euid, fsgid (fsuid is given to `new`).
    pub fn ids(mut self, uid: u32, gid: u32, euid: u32, fsgid: u32) -> Exp {
        self.ids = (uid, gid, euid, fsgid);
        self
    }
    pub fn field(mut self, k: &str, v: Value) -> Exp {
        self.fields.push((k.to_string(), v));
        self
    }
    /// `--fix` gave it back: `"fixed":true`.
    pub fn fixed(self) -> Exp {
        self.field("fixed", Value::Bool(true))
    }
    /// `--fix` gave it back without its set-id bits: `"fixed":true,"setid_cleared":true`.
    pub fn fixed_setid(self) -> Exp {
        self.fixed().field("setid_cleared", Value::Bool(true))
    }
    /// `--fix` left it as it is: `"fixed":false` and this `fix_error`.
    pub fn fix_failed(self, error: &str) -> Exp {
        self.field("fixed", Value::Bool(false))
            .field("fix_error", Value::from(error))
    }
}

/// The `fix_error` (of scan and watch) for what lies on another mount than the tree.
pub const BEYOND_MOUNT: &str =
    "on another mount than the tree (a mount point or below one): not changed";

/// Event fields of schema version 1.
const KNOWN_FIELDS: &[&str] = &[
    "time",
    "op",
    "path",
    "path_b64",
    "new_path",
    "new_path_b64",
    "target",
    "target_b64",
    "tree",
    "tree_b64",
    "uid",
    "gid",
    "euid",
    "fsuid",
    "fsgid",
    "user",
    "group",
    "loginuid",
    "login_user",
    "sessionid",
    "tty",
    "pid",
    "tid",
    "ppid",
    "comm",
    "exe",
    "argv",
    "argv_b64",
    "argv_truncated",
    "parents",
    "cgroup",
    "container_id",
    "mode",
    "new_uid",
    "new_gid",
    "xattr",
    "ret",
    "backend",
    "exchange",
    "truncated",
    "fixed",
    "setid_cleared",
    "fix_error",
    "count",
    "resolved",
];

pub fn b64decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    }
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn check_path_field(ev: &Value, key: &str, want: &Option<Vec<u8>>, errs: &mut Vec<String>) {
    let b64key = format!("{key}_b64");
    match want {
        None => {
            if ev.get(key).is_some() {
                errs.push(format!("{key} present ({}) but not expected", ev[key]));
            }
            if ev.get(&b64key).is_some() {
                errs.push(format!("{b64key} present but not expected"));
            }
        }
        Some(w) => {
            let lossy = String::from_utf8_lossy(w);
            match ev.get(key).and_then(Value::as_str) {
                Some(s) if s == lossy => {}
                Some(s) => errs.push(format!("{key} = {s:?}, want {lossy:?}")),
                None => errs.push(format!("{key} missing or not a string, want {lossy:?}")),
            }
            let valid = std::str::from_utf8(w).is_ok();
            match ev.get(&b64key) {
                None if valid => {}
                None => errs.push(format!("{b64key} missing for non-UTF-8 {key} {lossy:?}")),
                Some(v) => match v.as_str().and_then(b64decode) {
                    Some(d) if &d == w => {}
                    Some(d) => errs.push(format!(
                        "{b64key} decodes to {:?}, want {:?}",
                        String::from_utf8_lossy(&d),
                        lossy
                    )),
                    None => errs.push(format!("{b64key} = {v} is not base64")),
                },
            }
        }
    }
}

fn want_num(ev: &Value, key: &str, want: u64, errs: &mut Vec<String>) {
    match ev.get(key).and_then(Value::as_u64) {
        Some(v) if v == want => {}
        _ => errs.push(format!(
            "{key} = {}, want {want}",
            ev.get(key).unwrap_or(&Value::Null)
        )),
    }
}

fn want_absent_or_false(ev: &Value, key: &str, errs: &mut Vec<String>) {
    match ev.get(key) {
        None | Some(Value::Bool(false)) => {}
        Some(v) => errs.push(format!("{key} = {v}, want absent")),
    }
}

/// Names as the agent should print them: "root" for 0, a name from /etc/passwd for a few
/// known ids, null for the test ids that do not exist.
fn expected_name(id: u32) -> Option<Value> {
    match id {
        0 => Some(Value::from("root")),
        OWNER | OTHER => Some(Value::Null),
        _ => None,
    }
}

/// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.fraction]Z".
pub fn parse_time(t: &str) -> Option<f64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !t.ends_with('Z') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = match &t[19..t.len() - 1] {
        "" => 0.0,
        f if f.starts_with('.') && f.len() > 1 && f[1..].bytes().all(|c| c.is_ascii_digit()) => {
            format!("0{f}").parse::<f64>().ok()?
        }
        _ => return None,
    };
    // days from civil (Howard Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + mi * 60 + sec) as f64 + frac)
}

/// Compare one event with an expectation; returns the list of differences.
pub fn check_event(ev: &Value, w: &Exp, tree: &Path) -> Vec<String> {
    let mut errs = Vec::new();
    if ev.get("op").and_then(Value::as_str) != Some(w.op.as_str()) {
        errs.push(format!(
            "op = {}, want {:?}",
            ev.get("op").unwrap_or(&Value::Null),
            w.op
        ));
    }
    check_path_field(ev, "path", &Some(w.path.clone()), &mut errs);
    check_path_field(ev, "new_path", &w.new_path, &mut errs);
    check_path_field(ev, "target", &w.target, &mut errs);
    want_num(ev, "fsuid", w.fsuid as u64, &mut errs);
    let (uid, gid, euid, fsgid) = w.ids;
    want_num(ev, "uid", uid as u64, &mut errs);
    want_num(ev, "gid", gid as u64, &mut errs);
    want_num(ev, "euid", euid as u64, &mut errs);
    want_num(ev, "fsgid", fsgid as u64, &mut errs);
    if let Some(n) = expected_name(w.fsuid) {
        if ev.get("user") != Some(&n) {
            errs.push(format!("user = {:?}, want {n}", ev.get("user")));
        }
    }
    if let Some(n) = expected_name(fsgid) {
        if ev.get("group") != Some(&n) {
            errs.push(format!("group = {:?}, want {n}", ev.get("group")));
        }
    }
    // mode
    let mode_ops = ["create", "mkdir", "mknod", "chmod"];
    if mode_ops.contains(&w.op.as_str()) {
        match ev.get("mode").and_then(Value::as_str) {
            Some(s) if !s.is_empty() && s.bytes().all(|c| (b'0'..=b'7').contains(&c)) => {
                let m = u32::from_str_radix(s, 8).unwrap_or(u32::MAX);
                if let Some(want) = w.mode {
                    if m & 0o7777 != want {
                        errs.push(format!("mode = {s:?}, want {want:04o}"));
                    }
                }
                if s.len() < 4 {
                    errs.push(format!("mode = {s:?} does not look like \"0755\""));
                }
            }
            _ => errs.push(format!(
                "mode = {}, want an octal string{}",
                ev.get("mode").unwrap_or(&Value::Null),
                w.mode.map(|m| format!(" {m:04o}")).unwrap_or_default()
            )),
        }
    } else if ev.get("mode").is_some() {
        errs.push(format!("mode = {} present for op {}", ev["mode"], w.op));
    }
    for (key, want) in [("new_uid", w.new_uid), ("new_gid", w.new_gid)] {
        match want {
            Some(n) => want_num(ev, key, n as u64, &mut errs),
            None => {
                if ev.get(key).is_some() {
                    errs.push(format!("{key} = {}, want absent", ev[key]));
                }
            }
        }
    }
    match &w.xattr {
        Some(x) => {
            if ev.get("xattr").and_then(Value::as_str) != Some(x.as_str()) {
                errs.push(format!("xattr = {:?}, want {x:?}", ev.get("xattr")));
            }
        }
        None => {
            if ev.get("xattr").is_some() {
                errs.push(format!("xattr = {}, want absent", ev["xattr"]));
            }
        }
    }
    if w.exchange {
        if ev.get("exchange") != Some(&Value::Bool(true)) {
            errs.push(format!("exchange = {:?}, want true", ev.get("exchange")));
        }
    } else {
        want_absent_or_false(ev, "exchange", &mut errs);
    }
    if w.truncated {
        if ev.get("truncated") != Some(&Value::Bool(true)) {
            errs.push(format!("truncated = {:?}, want true", ev.get("truncated")));
        }
    } else {
        want_absent_or_false(ev, "truncated", &mut errs);
    }
    let tree = w.tree.as_deref().unwrap_or(tree);
    check_path_field(ev, "tree", &Some(bytes(tree)), &mut errs);
    // "resolved": false says the agent guessed a caller's string lexically because its
    // directory was gone when it looked (`rmdir a/x/y/z` then `rm -r a/x` at once): only
    // where user space resolves strings (tracepoint before 6.13); or because the path is
    // longer than /proc can name (resolve.rs: 4,000 bytes), where the tracepoint backend
    // got the caller's string rather than a whole walk (7.3 amd64 and arm64, the
    // deepest-path test, now and then). The guess must still be the exact path, checked
    // above like any other.
    let long = ev
        .get("path")
        .and_then(Value::as_str)
        .is_some_and(|p| p.len() >= 4000);
    match ev.get("resolved") {
        None => {}
        Some(Value::Bool(false))
            if !super::kernel_decides_string_paths()
                || (long && expected_backend() == "tracepoint") =>
        {
            eprintln!(
                "note: {} {} guessed lexically (\"resolved\": false, its directory gone \
                 by then); the path is exact",
                ev.get("op").and_then(Value::as_str).unwrap_or("?"),
                ev.get("path")
                    .and_then(Value::as_str)
                    .map(abbrev)
                    .unwrap_or_default()
            );
        }
        Some(v) => errs.push(format!(
            "resolved = {v}, want absent (the kernel decides this path here)"
        )),
    }
    let backend = expected_backend();
    match ev.get("ret") {
        None if w.io_uring && backend == "tracepoint" => {}
        Some(v) if v.as_i64() == Some(0) && !(w.io_uring && backend == "tracepoint") => {}
        v => errs.push(format!("ret = {v:?}, want 0")),
    }
    if ev.get("backend").and_then(Value::as_str) != Some(backend.as_str()) {
        errs.push(format!(
            "backend = {:?}, want {backend:?}",
            ev.get("backend")
        ));
    }
    match ev
        .get("time")
        .and_then(Value::as_str)
        .map(|t| (t, parse_time(t)))
    {
        Some((t, Some(secs))) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            // (the real time, not a stale or made-up one; the window grows with the agent
            // timeout: a loaded arm64 guest took over 2 minutes from an event to this check)
            let window = TIMEOUT.as_secs_f64().max(60.0) * 2.0;
            if (now - secs).abs() > window {
                errs.push(format!("time = {t:?} is not within {window:.0} s of now"));
            }
        }
        t => errs.push(format!(
            "time = {:?}, want RFC 3339 UTC like 2026-11-25T13:42:15.123456789Z",
            t.map(|t| t.0)
        )),
    }
    for k in ["pid", "tid", "ppid"] {
        if ev.get(k).and_then(Value::as_u64).is_none() {
            errs.push(format!("{k} missing or not a number"));
        }
    }
    if let Some(pid) = w.pid {
        want_num(ev, "pid", pid as u64, &mut errs);
        if !w.io_uring {
            want_num(ev, "tid", w.tid.unwrap_or(pid) as u64, &mut errs);
        }
        want_num(ev, "ppid", std::process::id() as u64, &mut errs);
    }
    match (&w.comm, ev.get("comm").and_then(Value::as_str)) {
        (Some(c), Some(g)) if w.io_uring && (g == c || g.starts_with("iou-wrk-")) => {}
        (_, None) => errs.push("comm missing or not a string".into()),
        (Some(c), Some(g)) if c != g => errs.push(format!("comm = {g:?}, want {c:?}")),
        _ => {}
    }
    for (k, v) in &w.fields {
        if ev.get(k) != Some(v) {
            errs.push(format!("{k} = {:?}, want {v}", ev.get(k)));
        }
    }
    if let Some(obj) = ev.as_object() {
        for k in obj.keys() {
            if !KNOWN_FIELDS.contains(&k.as_str()) {
                errs.push(format!("unknown field {k:?}"));
            }
        }
    }
    errs
}

/// Long strings (deep paths) cut in the middle so that failure reports stay readable.
pub fn abbrev(s: &str) -> String {
    const KEEP: usize = 120;
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 3 * KEEP {
        return s.to_string();
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!("{head}…[{} chars]…{tail}", chars.len())
}

pub fn abbrev_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k:?}:{}", abbrev(&v.to_string())))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        v => abbrev(&v.to_string()),
    }
}

fn show_exp(w: &Exp) -> String {
    let mut s = format!(
        "{} {:?} fsuid={}",
        w.op,
        abbrev(&String::from_utf8_lossy(&w.path)),
        w.fsuid
    );
    if let Some(n) = &w.new_path {
        s += &format!(" new_path={:?}", abbrev(&String::from_utf8_lossy(n)));
    }
    if let Some(t) = &w.target {
        s += &format!(" target={:?}", abbrev(&String::from_utf8_lossy(t)));
    }
    if let Some(m) = w.mode {
        s += &format!(" mode={m:04o}");
    }
    s
}

/// The events must be exactly `want`, in order. On mismatch, panic with both lists and
/// every difference.
pub fn assert_events(got: &[Value], want: &[Exp], tree: &Path) {
    const MAX_PROBLEMS: usize = 25;
    let mut report = Vec::new();
    let n = got.len().max(want.len());
    let bad_len = got.len() != want.len();
    let mut problems = 0;
    let mut ok_run: Option<(usize, usize)> = None;
    let flush = |report: &mut Vec<String>, run: &mut Option<(usize, usize)>| match run.take() {
        Some((a, b)) if a == b => report.push(format!("  [{a}] ok    {}", show_exp(&want[a]))),
        Some((a, b)) => report.push(format!("  [{a}..={b}] ok")),
        None => {}
    };
    for i in 0..n {
        let line = match (got.get(i), want.get(i)) {
            (Some(g), Some(w)) => {
                let errs = check_event(g, w, tree);
                if errs.is_empty() {
                    ok_run = Some(match ok_run {
                        Some((a, _)) => (a, i),
                        None => (i, i),
                    });
                    continue;
                }
                let errs: Vec<String> = errs.iter().map(|e| abbrev(e)).collect();
                format!(
                    "  [{i}] DIFF  want {}\n        got  {}\n        - {}",
                    show_exp(w),
                    abbrev_json(g),
                    errs.join("\n        - ")
                )
            }
            (Some(g), None) => format!("  [{i}] EXTRA got {}", abbrev_json(g)),
            (None, Some(w)) => format!("  [{i}] MISSING want {}", show_exp(w)),
            (None, None) => unreachable!(),
        };
        flush(&mut report, &mut ok_run);
        problems += 1;
        if problems <= MAX_PROBLEMS {
            report.push(line);
        }
    }
    flush(&mut report, &mut ok_run);
    if problems > MAX_PROBLEMS {
        report.push(format!(
            "  ... {} more differences",
            problems - MAX_PROBLEMS
        ));
    }
    if bad_len || problems > 0 {
        panic!(
            "events differ (got {}, want {}):\n{}",
            got.len(),
            want.len(),
            report.join("\n")
        );
    }
}
