//! Who the actor is: the fsuid decides (not the real or effective uid), per thread; the
//! owner is the tree's unless --owner says otherwise, each tree has its own, and --any-user
//! reports the owner too.

use super::*;

use serde_json::Value;

#[test]
fn actor_is_the_fsuid() {
    let (d, mut a) = shared!("fsuid");
    // real uid = owner, effective/fs uid 0 (a setuid-root program run by the owner): reported.
    let setuid = d.act(Creds::RealUser(OWNER, OWNER), || {
        mkdir(&d.t("a1"), 0o755)?;
        create(&d.t("a1f"), 0o644)
    });
    // real uid 0, fsuid = owner: not reported (and the files really are the owner's).
    d.act(Creds::FsUser(OWNER, OWNER), || {
        mkdir(&d.t("a2"), 0o755)?;
        create(&d.t("a2f"), 0o644)
    });
    assert_eq!(owner_of(d.t("a2")), (OWNER, OWNER));
    assert_eq!(owner_of(d.t("a2f")), (OWNER, OWNER));
    // another uid: reported with its fsuid.
    let other = d.act(Creds::User(OTHER, OTHER), || {
        mkdir(&d.t("a3"), 0o755)?;
        create(&d.t("a3f"), 0o644)
    });
    // the owner itself: not reported.
    mkdir_as(&d, Creds::User(OWNER, OWNER), "a4");
    // a second thread of a non-owner process: pid is the process, tid the thread.
    let threads = d.act(Creds::User(OTHER, OTHER), || {
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
    assert_ne!(tid, threads.pid);
    a.expect(&[
        setuid.mkdir("a1", 0o755),
        setuid.create("a1f", 0o644),
        other.mkdir("a3", 0o755),
        other.create("a3f", 0o644),
        threads.mkdir("threads", 0o777),
        threads.mkdir(format!("threads/tid-{tid}"), 0o755).tid(tid),
    ]);
}

/// `creds` makes `rel` (0755) in the tree of `d`: that actor.
fn mkdir_as(d: &TestDir, creds: Creds, rel: &str) -> By {
    d.act(creds, || mkdir(&d.t(rel), 0o755))
}

#[test]
fn owner_option_overrides_the_directory_owner() {
    let o = format!("{OTHER}:{OTHER}");
    let (d, mut a) = watched!("ownerflag", &["--owner", &o]);
    mkdir_as(&d, Creds::User(OTHER, OTHER), "by_new_owner");
    let owner = mkdir_as(&d, Creds::User(OWNER, OWNER), "by_dir_owner");
    let root = mkdir_as(&d, Creds::Root, "by_root");
    a.expect(&[
        owner.mkdir("by_dir_owner", 0o755),
        root.mkdir("by_root", 0o755),
    ]);
}

#[test]
fn owner_option_by_name() {
    let (d, mut a) = watched!("ownername", &["--owner", "nobody"]);
    mkdir_as(&d, Creds::User(NOBODY, NOBODY), "by_nobody");
    let owner = mkdir_as(&d, Creds::User(OWNER, OWNER), "by_dir_owner");
    a.expect(&[owner.mkdir("by_dir_owner", 0o755)]);
}

#[test]
fn each_tree_has_its_own_default_owner() {
    needs_root!();
    let d1 = TestDir::new("two-a");
    let d2 = TestDir::new("two-b");
    chown(&d2.tree, OTHER, OTHER);
    let mut a = Agent::watch(&[s(&d1.tree), s(&d2.tree)]);
    let owner = d1.act(Creds::User(OWNER, OWNER), || {
        mkdir(&d1.t("owner_in_own"), 0o755)?;
        mkdir(&d2.t("owner_in_other"), 0o755)
    });
    let other = d1.act(Creds::User(OTHER, OTHER), || {
        mkdir(&d2.t("other_in_own"), 0o755)?;
        mkdir(&d1.t("other_in_other"), 0o755)
    });
    let root = d1.act(Creds::Root, || {
        mkdir(&d1.t("root1"), 0o755)?;
        mkdir(&d2.t("root2"), 0o755)
    });
    // (paths in d2 are absolute: `By` keeps them as they are)
    a.expect_in(
        &d1.tree,
        Sentinel::Mkdir,
        &[
            owner.mkdir(d2.t("owner_in_other"), 0o755).tree(&d2.tree),
            other.mkdir("other_in_other", 0o755),
            root.mkdir("root1", 0o755),
            root.mkdir(d2.t("root2"), 0o755).tree(&d2.tree),
        ],
    );
}

/// The programs' first test knows up to 8 users allowed in every tree by heart
/// (allowed_fast, bpf/lib/maps.h), with more it asks the allowed map; after the walk the
/// tree's own list decides again. With 8 and with 9 --allow users, the last one is allowed,
/// the owner too, the others are reported.
#[test]
fn many_allowed_users() {
    for n in [8u32, 9] {
        let mut args: Vec<String> = (1..n).map(|i| (60100 + i).to_string()).collect();
        args.push(OTHER.to_string());
        let args: Vec<String> = args
            .into_iter()
            .flat_map(|u| ["--allow".into(), u])
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (d, mut a) = watched!(&format!("allow{n}"), &args);
        mkdir_as(&d, Creds::User(OTHER, OTHER), "by_allowed");
        mkdir_as(&d, Creds::User(OWNER, OWNER), "by_owner");
        let nobody = mkdir_as(&d, Creds::User(NOBODY, NOBODY), "by_nobody");
        let root = mkdir_as(&d, Creds::Root, "by_root");
        a.expect(&[
            nobody.mkdir("by_nobody", 0o755),
            root.mkdir("by_root", 0o755),
        ]);
    }
}

#[test]
fn any_user_reports_the_owner_too() {
    let (d, mut a) = watched!("anyuser", &["--any-user"]);
    let owner = mkdir_as(&d, Creds::User(OWNER, OWNER), "by_owner");
    let other = d.act(Creds::User(OTHER, OTHER), || {
        create(&d.t("by_other"), 0o644)
    });
    let nobody = d.act(Creds::User(NOBODY, NOBODY), || {
        mkdir(&d.t("by_nobody"), 0o700)
    });
    let root = mkdir_as(&d, Creds::Root, "by_root");
    a.expect(&[
        owner.mkdir("by_owner", 0o755),
        other.create("by_other", 0o644),
        nobody
            .mkdir("by_nobody", 0o700)
            .field("user", Value::from("nobody")),
        root.mkdir("by_root", 0o755),
    ]);
}
