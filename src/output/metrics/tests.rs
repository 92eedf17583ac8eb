use super::*;
use crate::testutil::temp_dir;

fn ev(tree: &[u8], op: &'static str, fsuid: u32, user: Option<&str>) -> Event {
    Event {
        op,
        tree: crate::output::TreePath::from(tree),
        fsuid,
        user: user.map(Into::into),
        ..Event::default()
    }
}

fn info() -> Info {
    Info {
        backend: "tracepoint",
        version: "1.2.3",
        start_time: 1764650000.25,
    }
}

/// The whole file for a few events: every family with HELP and TYPE, in a fixed order; the
/// event series sorted by tree, op, user; a writer without a name by its uid.
#[test]
fn exposition_text_is_exact() {
    let mut c = Counts::default();
    for e in [
        ev(b"/srv/b", "mkdir", 0, Some("root")),
        ev(b"/srv/a", "create", 0, Some("root")),
        ev(b"/srv/a", "create", 0, Some("root")),
        ev(b"/srv/a", "chmod", 4343, None),
        ev(b"/srv/a", "create", 1000, Some("alice")),
    ] {
        c.event(&e);
    }
    c.lost = 7;
    c.last_event = Some(1764650012.5);
    let got = render(&c, &info(), 2);
    let want = "\
# HELP ownwatch_events_total Offending writes reported, by watched tree (its root), op and writer (the event's user, or its fsuid when it has no name).
# TYPE ownwatch_events_total counter
ownwatch_events_total{tree=\"/srv/a\",op=\"chmod\",user=\"4343\"} 1
ownwatch_events_total{tree=\"/srv/a\",op=\"create\",user=\"alice\"} 1
ownwatch_events_total{tree=\"/srv/a\",op=\"create\",user=\"root\"} 2
ownwatch_events_total{tree=\"/srv/b\",op=\"mkdir\",user=\"root\"} 1
# HELP ownwatch_lost_events_total Events the kernel could not deliver to ownwatch (reported in-band as \"lost\").
# TYPE ownwatch_lost_events_total counter
ownwatch_lost_events_total 7
# HELP ownwatch_fixed_total Events whose object --fix gave back to the owner (\"fixed\":true).
# TYPE ownwatch_fixed_total counter
ownwatch_fixed_total 0
# HELP ownwatch_fix_errors_total Events whose object --fix could not give back (\"fixed\":false).
# TYPE ownwatch_fix_errors_total counter
ownwatch_fix_errors_total 0
# HELP ownwatch_info The running ownwatch: its version and the backend it hooks the kernel with.
# TYPE ownwatch_info gauge
ownwatch_info{backend=\"tracepoint\",version=\"1.2.3\"} 1
# HELP ownwatch_trees Directory trees watched (a tree given up no longer counts).
# TYPE ownwatch_trees gauge
ownwatch_trees 2
# HELP ownwatch_start_time_seconds When ownwatch started, in seconds since the epoch.
# TYPE ownwatch_start_time_seconds gauge
ownwatch_start_time_seconds 1764650000.250
# HELP ownwatch_last_event_timestamp_seconds When the last event was reported, in seconds since the epoch (0: none yet).
# TYPE ownwatch_last_event_timestamp_seconds gauge
ownwatch_last_event_timestamp_seconds 1764650012.500
";
    assert_eq!(got, want);
    // The same counts, whatever order the events came in: the same bytes.
    let mut c2 = Counts::default();
    for e in [
        ev(b"/srv/a", "create", 1000, Some("alice")),
        ev(b"/srv/a", "chmod", 4343, None),
        ev(b"/srv/a", "create", 0, Some("root")),
        ev(b"/srv/b", "mkdir", 0, Some("root")),
        ev(b"/srv/a", "create", 0, Some("root")),
    ] {
        c2.event(&e);
    }
    c2.lost = 7;
    c2.last_event = c.last_event;
    assert_eq!(render(&c2, &info(), 2), want);
}

/// Before any event: no event series, but every family is declared, and the last event
/// time is 0.
#[test]
fn no_events_yet() {
    let got = render(&Counts::default(), &info(), 1);
    assert!(
        got.contains("# TYPE ownwatch_events_total counter\n# HELP ownwatch_lost_events_total "),
        "{got}"
    );
    assert!(got.contains("\nownwatch_lost_events_total 0\n"), "{got}");
    assert!(got.contains("\nownwatch_trees 1\n"), "{got}");
    assert!(
        got.ends_with("\nownwatch_last_event_timestamp_seconds 0\n"),
        "{got}"
    );
    let helps = got.lines().filter(|l| l.starts_with("# HELP ")).count();
    let types = got.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!((helps, types), (8, 8), "{got}");
}

/// Label values escape backslash, double quote and newline (and nothing else); paths that
/// are not UTF-8 read with U+FFFD, and two that then read the same are one series.
#[test]
fn label_values_are_escaped() {
    assert_eq!(label_value("a\\b\"c\nd\te"), "a\\\\b\\\"c\\nd\te");
    assert_eq!(help_text("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
    let mut c = Counts::default();
    c.event(&ev(b"/srv/we\"ird\\tree\nx", "create", 0, Some("ro\"ot")));
    c.event(&ev(b"/srv/bad\xff", "unlink", 7, None));
    c.event(&ev(b"/srv/bad\xfe", "unlink", 7, None));
    let got = render(&c, &info(), 3);
    assert!(
        got.contains(
            "\nownwatch_events_total{tree=\"/srv/we\\\"ird\\\\tree\\nx\",op=\"create\",\
             user=\"ro\\\"ot\"} 1\n"
        ),
        "{got}"
    );
    assert!(
        got.contains(
            "\nownwatch_events_total{tree=\"/srv/bad\u{fffd}\",op=\"unlink\",user=\"7\"} 2\n"
        ),
        "{got}"
    );
    // One line per sample: the newline in the tree did not split it.
    assert_eq!(
        got.lines()
            .filter(|l| l.starts_with("ownwatch_events_total{"))
            .count(),
        2,
        "{got}"
    );
}

/// --fix outcomes and the last event's time.
#[test]
fn fixed_and_fix_errors() {
    let mut c = Counts::default();
    let mut e = ev(b"/srv/a", "create", 0, Some("root"));
    e.fixed = Some(true);
    c.event(&e);
    c.event(&e);
    e.fixed = Some(false);
    c.event(&e);
    e.fixed = None;
    c.event(&e);
    assert_eq!((c.fixed, c.fix_errors), (2, 1));
    let t = c.last_event.expect("set by an event");
    let now = epoch_secs(SystemTime::now());
    assert!(t <= now && now - t < 60.0, "{t} vs {now}");
    let got = render(&c, &info(), 1);
    assert!(got.contains("\nownwatch_fixed_total 2\n"), "{got}");
    assert!(got.contains("\nownwatch_fix_errors_total 1\n"), "{got}");
    assert!(
        got.contains("\nownwatch_events_total{tree=\"/srv/a\",op=\"create\",user=\"root\"} 4\n"),
        "{got}"
    );
}

/// FILE is replaced whole (mode 0644 whatever the umask), a stale or planted FILE.tmp is
/// replaced rather than written through, and the checks at start refuse a missing directory
/// or a directory at FILE.
#[test]
fn file_is_replaced_whole() {
    let d = temp_dir("metrics");
    let f = d.path().join("ownwatch.prom");
    let mut m = MetricsFile::new(&f).unwrap();
    m.write(b"one\n");
    assert_eq!(std::fs::read(&f).unwrap(), b"one\n");
    // A symlink at FILE.tmp is replaced, never followed.
    let victim = d.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    std::os::unix::fs::symlink(&victim, d.path().join("ownwatch.prom.tmp")).unwrap();
    m.write(b"two\n");
    assert_eq!(std::fs::read(&f).unwrap(), b"two\n");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert!(!d.path().join("ownwatch.prom.tmp").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
    assert!(m.failing.is_none());

    let e = MetricsFile::new(&d.path().join("nope/ownwatch.prom"))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        format!(
            "--metrics {}/nope/ownwatch.prom: directory {}/nope: No such file or directory",
            d.path().display(),
            d.path().display()
        )
    );
    let e = MetricsFile::new(d.path()).err().unwrap().to_string();
    assert!(
        e.ends_with(&format!(
            ": is a directory; give a file name in it (e.g. {}/ownwatch.prom)",
            d.path().display()
        )),
        "{e}"
    );
}

/// A write that fails (here: the directory removed) is remembered, and the agent goes on;
/// once the directory is back, FILE is written again.
#[test]
fn failed_write_is_kept_quiet_and_retried() {
    let d = temp_dir("metrics-gone");
    let dir = d.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    let f = dir.join("x.prom");
    let mut m = MetricsFile::new(&f).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    m.write(b"a\n");
    let why = m.failing.clone().expect("failing");
    assert!(why.contains("No such file or directory"), "{why}");
    m.write(b"b\n");
    assert_eq!(m.failing.as_deref(), Some(why.as_str()));
    std::fs::create_dir(&dir).unwrap();
    m.write(b"c\n");
    assert!(m.failing.is_none());
    assert_eq!(std::fs::read(&f).unwrap(), b"c\n");
}
