//! Writers at once: whatever does not come whole is said in-band.

use std::collections::HashSet;

use super::*;

/// Six root threads make 180 directories at once. Each comes as one mkdir event, with its
/// outcome; a run of ours the kernel skipped may cost an event or its outcome, and then the
/// agent says so (`"reason":"skipped"`), as it says an outcome the kernel could not follow
/// (`"reason":"outcome"`): the events missing or without "ret" are never more than those.
/// The kprobe backend's kretprobes get room for only one call in flight here
/// (OWNWATCH_KRETPROBE_MAXACTIVE=1): mkdirs that overlap inside vfs_mkdir make the kernel
/// miss returns, which must be counted. (How often they overlap depends on the machine:
/// under single-threaded TCG, 0 in 180 on 5.10 and 6.12.)
#[test]
fn concurrent_writers_lose_nothing_silently() {
    const THREADS: usize = 6;
    const EACH: usize = 30;
    let d = root_dir!("concurrent");
    let mut a = Agent::spawn_with(
        watch_args(&[s(&d.tree)]),
        StdoutMode::Lines,
        None,
        &[("OWNWATCH_KRETPROBE_MAXACTIVE", "1")],
    );
    let paths: Vec<String> = (0..THREADS * EACH)
        .map(|i| s(&d.t(&format!("c{i}"))).to_string())
        .collect();
    std::thread::scope(|sc| {
        for chunk in paths.chunks(EACH) {
            sc.spawn(move || {
                for p in chunk {
                    std::fs::create_dir(p).unwrap_or_else(|e| panic!("mkdir {p}: {e}"));
                }
            });
        }
    });
    let evs = a.finish_all(&d.tree);
    let want: HashSet<&str> = paths.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    let mut without_ret = 0;
    // Outcomes the kernel could not follow (its wait table refused one) or deliver, said
    // in-band: each is an event that may come without "ret". Seen once on 6.1 kprobe in a
    // local matrix (2026-12-02; before, a plain "lost" line on 5.10 and 6.1 kprobe); the
    // agent's stderr names the table's error (shown with --nocapture).
    let mut outcomes_lost = 0;
    for e in &evs {
        if e["op"] == "lost" && e["reason"] == "outcome" {
            outcomes_lost += e["count"].as_u64().expect("a count");
            continue;
        }
        let p = e["path"].as_str().unwrap_or_default();
        assert!(
            e["op"] == "mkdir" && e["fsuid"] == 0 && want.contains(p),
            "not one of ours: {e}"
        );
        assert!(seen.insert(p.to_string()), "twice: {e}");
        match e.get("ret") {
            None => without_ret += 1,
            Some(r) => assert_eq!(r, 0, "{e}"),
        }
    }
    let missing = paths.len() - seen.len();
    if outcomes_lost > 0 {
        eprintln!(
            "outcomes lost: {outcomes_lost}; the agent's stderr:\n{}",
            a.stderr_text()
        );
    }
    assert!(
        missing as u64 + without_ret as u64 <= a.skipped + outcomes_lost,
        "{missing} mkdirs missing and {without_ret} without their outcome, but the agent said \
         only {} runs were skipped and {outcomes_lost} outcomes lost",
        a.skipped
    );
    assert!(
        missing as u64 <= a.skipped,
        "{missing} mkdirs missing, but the agent said only {} runs were skipped",
        a.skipped
    );
    eprintln!(
        "concurrent mkdirs: {} events, {without_ret} without ret, {} skipped runs said, \
         {outcomes_lost} outcomes lost said",
        seen.len(),
        a.skipped
    );
}
