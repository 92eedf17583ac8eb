//! Who the actor is: the fsuid decides (not the real or effective uid), per thread; the
//! owner is the tree's unless --owner says otherwise, each tree has its own, and --any-user
//! reports the owner too.

use super::*;

use serde_json::Value;

#[test]
fn actor_is_the_fsuid() {
    needs_root!();
    let d = TestDir::new("fsuid");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &[]);
    // real uid = owner, effective/fs uid 0 (a setuid-root program run by the owner): reported.
    let p1 = run_as(Creds::RealUser(OWNER, OWNER), || {
        mkdir(&d.t("a1"), 0o755)?;
        create(&d.t("a1f"), 0o644)
    });
    // real uid 0, fsuid = owner: not reported (and the files really are the owner's).
    run_as(Creds::FsUser(OWNER, OWNER), || {
        mkdir(&d.t("a2"), 0o755)?;
        create(&d.t("a2f"), 0o644)
    });
    assert_eq!(owner_of(d.t("a2")), (OWNER, OWNER));
    assert_eq!(owner_of(d.t("a2f")), (OWNER, OWNER));
    // another uid: reported with its fsuid.
    let p3 = run_as(Creds::User(OTHER, OTHER), || {
        mkdir(&d.t("a3"), 0o755)?;
        create(&d.t("a3f"), 0o644)
    });
    // the owner itself: not reported.
    run_as(Creds::User(OWNER, OWNER), || mkdir(&d.t("a4"), 0o755));
    // a second thread of a non-owner process: pid is the process, tid the thread.
    let p5 = run_as(Creds::User(OTHER, OTHER), || {
        let dir = d.t("threads");
        mkdir(&dir, 0o777)?;
        std::thread::spawn(move || {
            let tid = unsafe { libc::syscall(libc::SYS_gettid) };
            mkdir(&dir.join(format!("tid-{tid}")), 0o755)
        })
        .join()
        .map_err(|_| "thread panicked".to_string())?
    });
    let tid: i32 = std::fs::read_dir(d.t("threads"))
        .unwrap()
        .next()
        .expect("the thread's directory")
        .unwrap()
        .file_name()
        .to_str()
        .unwrap()
        .strip_prefix("tid-")
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(tid, p5);
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("a1"), 0)
                .pid(p1)
                .ids(OWNER, OWNER, 0, 0)
                .mode(0o755),
            Exp::new("create", d.t("a1f"), 0)
                .pid(p1)
                .ids(OWNER, OWNER, 0, 0)
                .mode(0o644),
            Exp::new("mkdir", d.t("a3"), OTHER).pid(p3).mode(0o755),
            Exp::new("create", d.t("a3f"), OTHER).pid(p3).mode(0o644),
            Exp::new("mkdir", d.t("threads"), OTHER).pid(p5).mode(0o777),
            Exp::new("mkdir", d.t(&format!("threads/tid-{tid}")), OTHER)
                .pid(p5)
                .tid(tid)
                .mode(0o755),
        ],
        t,
    );
}

#[test]
fn owner_option_overrides_the_directory_owner() {
    needs_root!();
    let d = TestDir::new("ownerflag");
    let t = &d.tree;
    let o = format!("{OTHER}:{OTHER}");
    let mut a = Agent::watch_tree(t, &["--owner", &o]);
    run_as(Creds::User(OTHER, OTHER), || {
        mkdir(&d.t("by_new_owner"), 0o755)
    });
    let p1 = run_as(Creds::User(OWNER, OWNER), || {
        mkdir(&d.t("by_dir_owner"), 0o755)
    });
    let p2 = run_as(Creds::Root, || mkdir(&d.t("by_root"), 0o755));
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("by_dir_owner"), OWNER)
                .pid(p1)
                .mode(0o755),
            Exp::new("mkdir", d.t("by_root"), 0).pid(p2).mode(0o755),
        ],
        t,
    );
}

#[test]
fn owner_option_by_name() {
    needs_root!();
    let d = TestDir::new("ownername");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &["--owner", "nobody"]);
    run_as(Creds::User(NOBODY, NOBODY), || {
        mkdir(&d.t("by_nobody"), 0o755)
    });
    let p1 = run_as(Creds::User(OWNER, OWNER), || {
        mkdir(&d.t("by_dir_owner"), 0o755)
    });
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[Exp::new("mkdir", d.t("by_dir_owner"), OWNER)
            .pid(p1)
            .mode(0o755)],
        t,
    );
}

#[test]
fn each_tree_has_its_own_default_owner() {
    needs_root!();
    let d1 = TestDir::new("two-a");
    let d2 = TestDir::new("two-b");
    chown(&d2.tree, OTHER, OTHER);
    let mut a = Agent::watch(&[s(&d1.tree), s(&d2.tree)]);
    let p1 = run_as(Creds::User(OWNER, OWNER), || {
        mkdir(&d1.t("owner_in_own"), 0o755)?;
        mkdir(&d2.t("owner_in_other"), 0o755)
    });
    let p2 = run_as(Creds::User(OTHER, OTHER), || {
        mkdir(&d2.t("other_in_own"), 0o755)?;
        mkdir(&d1.t("other_in_other"), 0o755)
    });
    let p3 = run_as(Creds::Root, || {
        mkdir(&d1.t("root1"), 0o755)?;
        mkdir(&d2.t("root2"), 0o755)
    });
    let evs = a.finish(&d1.tree);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d2.t("owner_in_other"), OWNER)
                .pid(p1)
                .mode(0o755)
                .tree(&d2.tree),
            Exp::new("mkdir", d1.t("other_in_other"), OTHER)
                .pid(p2)
                .mode(0o755),
            Exp::new("mkdir", d1.t("root1"), 0).pid(p3).mode(0o755),
            Exp::new("mkdir", d2.t("root2"), 0)
                .pid(p3)
                .mode(0o755)
                .tree(&d2.tree),
        ],
        &d1.tree,
    );
}

#[test]
fn any_user_reports_the_owner_too() {
    needs_root!();
    let d = TestDir::new("anyuser");
    let t = &d.tree;
    let mut a = Agent::watch_tree(t, &["--any-user"]);
    let p1 = run_as(Creds::User(OWNER, OWNER), || mkdir(&d.t("by_owner"), 0o755));
    let p2 = run_as(Creds::User(OTHER, OTHER), || {
        create(&d.t("by_other"), 0o644)
    });
    let p3 = run_as(Creds::User(NOBODY, NOBODY), || {
        mkdir(&d.t("by_nobody"), 0o700)
    });
    let p4 = run_as(Creds::Root, || mkdir(&d.t("by_root"), 0o755));
    let evs = a.finish(t);
    assert_events(
        &evs,
        &[
            Exp::new("mkdir", d.t("by_owner"), OWNER)
                .pid(p1)
                .mode(0o755),
            Exp::new("create", d.t("by_other"), OTHER)
                .pid(p2)
                .mode(0o644),
            Exp::new("mkdir", d.t("by_nobody"), NOBODY)
                .pid(p3)
                .mode(0o700)
                .field("user", Value::from("nobody")),
            Exp::new("mkdir", d.t("by_root"), 0).pid(p4).mode(0o755),
        ],
        t,
    );
}
