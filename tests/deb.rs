//! Issue 15, `make deb`: the Debian package of the binary under test (`make deb-files`),
//! installed with dpkg into a fresh root (its own dpkg database; the maintainer scripts run
//! outside it with DPKG_ROOT set, as for any install into another root), then the installed
//! binary runs: `probe`, `check-config`, and a short `watch --config` of the example config
//! edited to two trees with different owners and an exception, which reports exactly the
//! writes the rules say. Removing keeps the conffiles (the edited config, logrotate);
//! purging takes them.
//!
//! Its own test binary, host only (the package is the same whatever the kernel). Root only;
//! in CI (CI=true) it never skips.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::*;
use serde_json::Value;

/// `prog args`: must succeed; its stdout.
fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every non-directory below `root` outside dpkg's database, relative to it.
fn files_under(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            if rel == "var/lib/dpkg" {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn make_deb_package_installs_runs_and_purges() {
    needs_root!();
    let repo = env!("CARGO_MANIFEST_DIR");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let debdir = t.join("deb");
    let out = run(
        "make",
        &[
            "-C",
            repo,
            "--no-print-directory",
            "deb-files",
            &format!("BIN={}", bin()),
            &format!("DEBDIR={}", debdir.display()),
        ],
    );
    let deb = out.trim().to_string();
    let arch = run("dpkg", &["--print-architecture"]);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        deb,
        format!(
            "{}/ownwatch_{version}_{}.deb",
            debdir.display(),
            arch.trim()
        )
    );
    let fields = run(
        "dpkg-deb",
        &["-f", &deb, "Package", "Version", "Architecture"],
    );
    assert_eq!(
        fields,
        format!(
            "Package: ownwatch\nVersion: {version}\nArchitecture: {}\n",
            arch.trim()
        )
    );
    let ctl = t.join("ctl");
    run("dpkg-deb", &["-e", &deb, ctl.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(ctl.join("conffiles")).unwrap(),
        "/etc/ownwatch/ownwatch.toml\n/etc/logrotate.d/ownwatch\n"
    );

    // A fresh root with an empty dpkg database.
    let root = t.join("root");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(root.join("var/lib/dpkg").join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let r = format!("--root={}", root.display());
    // (--force-depends: libc6, libelf and zlib are the host's, not in this root)
    let dpkg = |args: &[&str]| {
        let mut a = vec![
            r.as_str(),
            "--log=/dev/null",
            "--force-script-chrootless",
            "--force-depends",
        ];
        a.extend_from_slice(args);
        run("dpkg", &a)
    };
    dpkg(&["-i", &deb]);
    let installed = files_under(&root);
    for f in [
        "usr/bin/ownwatch",
        "usr/lib/systemd/system/ownwatch.service",
        "usr/lib/systemd/system/ownwatch@.service",
        "usr/share/man/man8/ownwatch.8.gz",
        "usr/share/bash-completion/completions/ownwatch",
        "etc/ownwatch/ownwatch.toml",
        "etc/logrotate.d/ownwatch",
    ] {
        assert!(installed.contains(f), "{f} not installed: {installed:?}");
    }
    assert_eq!(
        std::fs::read(root.join("usr/bin/ownwatch")).unwrap(),
        std::fs::read(bin()).unwrap()
    );
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/ownwatch.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/ownwatch "), "{unit}");
    assert!(run("dpkg", &[&r, "-s", "ownwatch"]).contains("Status: install ok installed"));

    // The installed binary: probe, then a short watch.
    let ow = root.join("usr/bin/ownwatch");
    let ow = ow.to_str().unwrap();
    let probe: Value = serde_json::from_str(&run(ow, &["probe"])).expect("probe's JSON");
    assert!(probe["choice"].is_string(), "{probe}");
    // The example config edited to two trees with different owners (nobody, daemon) and an
    // exception (install's writes in the first), then watched by the installed binary.
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ta, tb) = (t.join("a"), t.join("b"));
    for (d, uid) in [(&ta, 65534), (&tb, 1)] {
        std::fs::create_dir(d).unwrap();
        std::os::unix::fs::chown(d, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let conf = root.join("etc/ownwatch/ownwatch.toml");
    std::fs::write(
        &conf,
        format!(
            "[[tree]]\npath = \"{}\"\nowner = \"65534\"\n[[tree.except]]\nexe = \"/usr/bin/install\"\n\n\
             [[tree]]\npath = \"{}\"\nowner = \"daemon\"\n",
            ta.display(),
            tb.display()
        ),
    )
    .unwrap();
    assert!(
        run(ow, &["check-config", conf.to_str().unwrap()]).contains("except  exe=/usr/bin/install")
    );
    let mut agent = Command::new(ow)
        .args(["watch", "--duration", "4s", "--config"])
        .arg(&conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(agent.stderr.take().unwrap());
    let t0 = Instant::now();
    let mut line = String::new();
    while !line.starts_with("ownwatch: watching ") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "the installed agent stopped before watching"
        );
        assert!(t0.elapsed() < *TIMEOUT, "no 'watching' line");
    }
    let p = |d: &Path, n: &str| d.join(n).to_str().unwrap().to_string();
    run("/usr/bin/install", &["-d", &p(&ta, "by_install")]); // excepted
    run("/usr/bin/mkdir", &[&p(&ta, "by_mkdir")]); // root in a: reported
    let nobody = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/usr/bin/mkdir",
    ];
    run("setpriv", &[&nobody[..], &[&p(&ta, "by_owner")]].concat()); // a's owner
    run("setpriv", &[&nobody[..], &[&p(&tb, "by_nobody")]].concat()); // not b's: reported
    let out = agent.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", out.status);
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String, u64, String)> = events
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap_or("?").to_string(),
                e["path"].as_str().unwrap_or("?").to_string(),
                e["fsuid"].as_u64().unwrap_or(u64::MAX),
                e["tree"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let want = vec![
        (
            "mkdir".to_string(),
            p(&ta, "by_mkdir"),
            0,
            ta.to_str().unwrap().to_string(),
        ),
        (
            "mkdir".to_string(),
            p(&tb, "by_nobody"),
            65534,
            tb.to_str().unwrap().to_string(),
        ),
    ];
    assert_eq!(got, want, "{events:?}");
    assert_eq!(events[0]["exe"], "/usr/bin/mkdir");

    // Remove keeps the conffiles (the edited config too); purge takes them.
    // Remove keeps the conffiles; purge takes them.
    dpkg(&["-r", "ownwatch"]);
    let left: BTreeSet<String> = ["etc/logrotate.d/ownwatch", "etc/ownwatch/ownwatch.toml"]
        .map(String::from)
        .into();
    assert_eq!(files_under(&root), left);
    dpkg(&["-P", "ownwatch"]);
    assert_eq!(files_under(&root), BTreeSet::new());
}
