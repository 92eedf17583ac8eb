//! The environment of a test run: root or not, CI or not, timeouts and the knobs the kernel
//! matrix sets (OWNWATCH_TEST_BACKEND, OWNWATCH_EXPECT_CHOICE, OWNWATCH_TEST_TIMEOUT,
//! OWNWATCH_NO_CTIME_HOOKS).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long the agent may take to start, report, stop. 20 s; more where everything is slow
/// (the kernel matrix runs under emulation): OWNWATCH_TEST_TIMEOUT=seconds.
pub static TIMEOUT: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    let s = std::env::var("OWNWATCH_TEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(s)
});

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number not handed out before in this test process (for unique names).
pub fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// CI=true (any value but empty, 0 or false): nothing may be skipped.
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"),
        Err(_) => false,
    }
}

/// True when the test can run. Outside CI a non-root run is skipped with a printed reason;
/// in CI (CI=true) a non-root run is a failure, never a skip. Tests call it through
/// `needs_root!()`, which knows their name.
pub fn require_root(test: &str) -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if in_ci() {
        panic!(
            "{test}: integration tests must run as root in CI (they load BPF programs, act as \
             other uids and give files to them)"
        );
    }
    // `test` is the test's path: its first part is the test binary.
    let bin = test.split("::").next().unwrap_or(test);
    eprintln!(
        "SKIPPED {test}: not root; these tests load BPF programs, act as other uids and give \
         files to them (run as root, e.g. `sudo -E cargo test --test {bin}`)"
    );
    false
}

/// The first statement of every test that needs root: `needs_root!();` returns from the test
/// when `require_root` says it may be skipped (not root, not in CI), naming the test by its
/// path (e.g. `watch::ops::root_create_variants`); in CI a non-root run panics there.
#[macro_export]
macro_rules! needs_root {
    () => {{
        fn here() {}
        let name = std::any::type_name_of_val(&here);
        if !$crate::common::require_root(name.strip_suffix("::here").unwrap_or(name)) {
            return;
        }
    }};
}

/// Whether paths given as strings are decided by the kernel: always with lsm, fentry and
/// kprobe; with the tracepoint backend only where the kernel has the ctime tracepoints
/// (6.13+). Without them (the matrix's 6.1 and 6.12) user space resolves the string after
/// the fact (README "Backends"): a path through a process's private fd table or mount
/// namespace, gone by then, or a symlink swapped since, cannot be known. Tests of exactly
/// those forms check them where they are promised and say so where they are not.
pub fn kernel_decides_string_paths() -> bool {
    if expected_backend() != "tracepoint" {
        return true;
    }
    if std::env::var_os("OWNWATCH_NO_CTIME_HOOKS").is_some() {
        return false;
    }
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|d| {
            Path::new(d)
                .join("events/timestamp/inode_set_ctime_to_ts")
                .exists()
        })
}

/// `kernel_decides_string_paths()`, printing why a case is left out when it is false.
pub fn string_paths_promised(what: &str) -> bool {
    let yes = kernel_decides_string_paths();
    if !yes {
        eprintln!(
            "NOT CHECKED {what}: the tracepoint backend on a kernel without the ctime \
             tracepoints (< 6.13) resolves such paths in user space after the fact"
        );
    }
    yes
}

/// The backend the events must carry: OWNWATCH_TEST_BACKEND (also passed as --backend),
/// else OWNWATCH_EXPECT_CHOICE, else "tracepoint" (what `auto` picks on the dev/CI machine).
pub fn expected_backend() -> String {
    if let Ok(b) = std::env::var("OWNWATCH_TEST_BACKEND") {
        if !b.is_empty() {
            return b;
        }
    }
    expected_choice()
}

/// What `ownwatch probe` must choose on the machine running the tests.
pub fn expected_choice() -> String {
    match std::env::var("OWNWATCH_EXPECT_CHOICE") {
        Ok(c) if !c.is_empty() => c,
        _ => "tracepoint".to_string(),
    }
}
