//! Issue 5, the watch side: --fix gives ownership back (never outside the tree, also against
//! a racing symlink swap), --duration and --max-events stop by themselves, -o appends to a
//! file created 0640 and reopens it on SIGHUP without losing or tearing a line.

use super::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn io(r: std::io::Result<()>) -> Result<(), String> {
    r.map_err(|e| e.to_string())
}

#[test]
fn fix_gives_new_moved_in_and_chowned_objects_back() {
    let d = ruled_dir!("fix", "fix = true");
    // Outside: a tree to move in (with a symlink pointing back outside) and a secret.
    let secret = d.outside.join("secret");
    make_file(&secret, b"s");
    chown(&secret, 5555, 5555);
    let src = d.outside.join("bundle");
    make_dir(&src);
    make_dir(src.join("inner"));
    make_file(src.join("inner/file"), b"x");
    std::os::unix::fs::symlink(&secret, src.join("to-secret")).unwrap();
    make_file(d.t("mine"), b"m");
    chown(d.t("mine"), OWNER, OWNER);

    let mut a = d.lease();
    run_as(Creds::Root, || {
        io(std::fs::create_dir_all(d.t("new/deeper")))?;
        io(std::fs::write(d.t("new/deeper/file"), b"f"))?;
        io(std::fs::write(d.t("plain"), b"p"))?;
        io(std::os::unix::fs::symlink(&secret, d.t("link-out")))?;
        io(std::fs::rename(&src, d.t("bundle")))?;
        io(std::os::unix::fs::chown(d.t("mine"), Some(0), Some(0)))?;
        Ok(())
    });
    let evs = a.finish();
    for e in &evs {
        assert_eq!(e["fixed"], true, "{e}");
        assert!(e.get("fix_error").is_none(), "{e}");
    }
    let ops: Vec<&str> = evs.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        ["mkdir", "mkdir", "create", "create", "symlink", "rename", "chown"]
    );
    for rel in [
        "new",
        "new/deeper",
        "new/deeper/file",
        "plain",
        "link-out",
        "bundle",
        "bundle/inner",
        "bundle/inner/file",
        "bundle/to-secret",
        "mine",
    ] {
        assert_eq!(owner_of(d.t(rel)), (OWNER, OWNER), "{rel}");
    }
    // Symlinks were changed themselves; what they point to was not.
    assert_eq!(owner_of(&secret), (5555, 5555));
}

#[test]
fn fix_never_acts_outside_while_a_component_is_swapped_for_a_symlink() {
    let d = ruled_dir!("fixrace", "fix = true");
    let victim = d.outside.join("victim");
    make_dir(&victim);
    for i in 0..50 {
        make_file(victim.join(format!("f{i}")), b"v");
        chown(victim.join(format!("f{i}")), 5555, 5555);
    }
    chown(&victim, 5555, 5555);
    make_dir(d.t("sw"));
    chown(d.t("sw"), OWNER, OWNER);
    std::os::unix::fs::symlink(&victim, d.t("sw-link")).unwrap();
    let mut a = d.lease();
    // Swap tree/sw and tree/sw-link atomically, over and over, as the owner: the swaps are
    // allowed, so they race the fixes without flooding the ring buffer (root's swaps lost
    // thousands of events on a slow machine).
    let swapper = Swapper::start_as(&d.t("sw"), &d.t("sw-link"), OWNER);
    run_as(Creds::Root, || {
        for i in 0..300 {
            // Creates land in tree/sw or, through the symlink, in the outside victim.
            let _ = std::fs::write(d.t(&format!("sw/f{}", i % 50)), b"w");
        }
        Ok(())
    });
    let swaps = swapper.finish();
    assert!(
        swaps > 0,
        "the owner could not swap sw and sw-link: no race was run"
    );
    let _ = a.finish();
    assert_eq!(owner_of(&victim), (5555, 5555));
    for i in 0..50 {
        assert_eq!(
            owner_of(victim.join(format!("f{i}"))),
            (5555, 5555),
            "outside f{i} was chowned"
        );
    }
}

#[test]
fn duration_and_max_events_stop_by_themselves() {
    let d = root_dir!("stops");
    let t = s(&d.tree);
    // The clock starts when the agent is attached: measure from before the spawn for the
    // lower bound and from the ready line for the upper one (start-up can be slow on a busy
    // machine: tracepoints detached by earlier agents hold the kernel's event mutex).
    // Several times: the exit used to take 4-6 s longer about one time in three (the agent,
    // not its detaching child, sometimes closed the last tracepoint link).
    for _ in 0..4 {
        let spawned = Instant::now();
        let mut a = Agent::watch(&["--duration", "1s", t]);
        let ready = Instant::now();
        let st = a.wait_exit(*TIMEOUT).expect("--duration 1s did not stop");
        assert_eq!(st.code(), Some(0));
        let total = spawned.elapsed();
        assert!(total >= Duration::from_secs(1), "{total:?}");
        let after_ready = ready.elapsed();
        // 4 s here; in the kernel matrix's emulated guests (agent timeout 240 s) a tenth of
        // the agent timeout: a 5.10 guest sharing two host CPUs with eight others took 4.6 s
        let bound = Duration::from_secs(4).max(*TIMEOUT / 10);
        assert!(
            after_ready < bound,
            "--duration 1s exited {after_ready:?} after attaching (bound {bound:?})"
        );
        assert!(a.drain().is_empty());
    }

    let mut a = Agent::watch(&["--max-events", "3", t]);
    run_as(Creds::Root, || {
        for i in 0..6 {
            io(std::fs::create_dir(d.t(&format!("m{i}"))))?;
        }
        Ok(())
    });
    let st = a.wait_exit(*TIMEOUT).expect("--max-events 3 did not stop");
    assert_eq!(st.code(), Some(0), "{}", a.stderr_text());
    let lines = a.drain();
    assert_eq!(lines.len(), 3, "{lines:?}");
    // (every line and the agent's stderr on a failure: 5.10 tracepoint once gave m0 as the
    // second line, in a full matrix run; 40 rounds alone did not do it again)
    for (i, l) in lines.iter().enumerate() {
        let e = parse_event(l);
        assert_eq!(
            e["path"],
            s(&d.t(&format!("m{i}"))),
            "line {i} of {lines:#?}\nstderr: {}",
            a.stderr_text()
        );
    }
}

#[test]
fn output_file_is_reopened_on_sighup_without_losing_or_tearing_lines() {
    let d = root_dir!("rotate");
    let log = d.outside.join("events.jsonl");
    let mut a = Agent::watch(&["-o", s(&log), s(&d.tree)]);
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // The writer storms until told to stop; each rotation waits until the current file has
    // events, so every file is really switched under load, whatever the machine's speed.
    let stopfile = d.outside.join("stop");
    let has_lines = |f: &Path| std::fs::metadata(f).map(|m| m.len() > 0).unwrap_or(false);
    let wait_for = |f: &Path| {
        let what = format!("events in {}", f.display());
        wait_until(&what, Duration::from_millis(5), || has_lines(f))
    };
    // Stop the writer on every way out, a failed assertion included: it would run on.
    struct StopOnDrop<'a>(&'a Path);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0, b"");
        }
    }
    let mut rotated = Vec::new();
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stopfile);
        let writer = s.spawn(|| {
            run_as(Creds::Root, || {
                for i in 0..200_000 {
                    if i % 16 == 0 && stopfile.exists() {
                        break;
                    }
                    io(std::fs::create_dir(d.t(&format!("r{i:06}"))))?;
                }
                Ok(())
            })
        });
        for k in 0..3 {
            wait_for(&log);
            let old = d.outside.join(format!("events.jsonl.{k}"));
            std::fs::rename(&log, &old).unwrap();
            a.signal(libc::SIGHUP);
            rotated.push(old);
        }
        wait_for(&log);
        make_file(&stopfile, b"");
        writer.join().unwrap();
    });
    let n = std::fs::read_dir(&d.tree).unwrap().count();
    // The sentinel goes to the file too: wait for it there.
    run_as(Creds::Root, || io(std::fs::create_dir(d.t("zz-sentinel"))));
    let what = format!("the sentinel in {}", log.display());
    wait_until(&what, Duration::from_millis(50), || {
        file_has(&log, "zz-sentinel")
    });
    a.stop_with(libc::SIGINT);
    assert!(a.drain().is_empty(), "with -o nothing goes to stdout");
    let mut paths = Vec::new();
    for f in rotated.iter().chain([&log]) {
        for e in json_lines(f) {
            // Runs of our programs the kernel skipped (7.x, README "Supported kernels") are
            // said in-band; whose they were shows below: every event must be there.
            if e["op"] == "lost" && e["reason"] == "skipped" {
                eprintln!("(agent said: {e})");
                continue;
            }
            assert_ne!(e["op"], "lost", "{e}");
            paths.push(e["path"].as_str().unwrap().to_string());
        }
    }
    let mut want: Vec<String> = (0..n)
        .map(|i| s(&d.t(&format!("r{i:06}"))).to_string())
        .collect();
    want.push(s(&d.t("zz-sentinel")).to_string());
    assert_eq!(
        paths.len(),
        want.len(),
        "every event once, across {} files",
        rotated.len() + 1
    );
    assert_eq!(paths, want, "in order, none lost or repeated");
    // Every file got events: the reopen really switched files under the storm.
    for f in &rotated {
        assert!(
            std::fs::metadata(f).unwrap().len() > 0,
            "{} is empty",
            f.display()
        );
    }
}
