//! What the unit tests of several modules share: fresh temporary directories, and the rule
//! for tests that need root (in CI they fail instead of skipping; elsewhere they say why).

/// A fresh directory `/tmp/ownwatch-unit-TAG-…` (mode 0700), removed with everything in it
/// when dropped.
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ownwatch-unit-{tag}-"))
        .tempdir_in("/tmp")
        .expect("creating a temporary directory in /tmp")
}

/// True when running as root. Otherwise: a panic under CI, else a printed reason and false.
pub fn root_or_skip(test: &str, why: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let ci = std::env::var("CI")
        .map(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
        .unwrap_or(false);
    if ci {
        panic!("{test}: must run as root in CI ({why})");
    }
    eprintln!("SKIPPED {test}: not root ({why})");
    false
}

/// Makes `entries` below `root`: a name ending in `/` is a directory, any other a file holding
/// "x"; missing parents are made too.
pub fn make(root: &std::path::Path, entries: &[&str]) {
    for e in entries {
        let p = root.join(e);
        let dir = if e.ends_with('/') {
            &*p
        } else {
            p.parent().unwrap()
        };
        std::fs::create_dir_all(dir).unwrap();
        if !e.ends_with('/') {
            std::fs::write(&p, b"x").unwrap();
        }
    }
}
