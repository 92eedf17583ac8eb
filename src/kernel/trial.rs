//! Trial programs (bpf/probe.bpf.c): a backend is usable only if its trial loads, attaches
//! and fires for a real mkdirat(2). `is_supported()`-style checks alone lie here (an LSM
//! program can be refused with EPERM, or attach and never fire).

use std::mem::MaybeUninit;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::abi::probe_skel::ProbeSkelBuilder;
use super::caps::{active_lsms, ensure_tracefs, missing_funcs, BTF_PATH};
use super::plan::{Backend, Facts, Status};

pub struct Report {
    pub release: String,
    pub lsms: Option<Vec<String>>,
    pub facts: Facts,
    pub sleepable_lsm: Result<(), String>,
}

static LIBBPF_LAST: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Keeps libbpf's last complaint: its errors say more than libbpf-rs's ("failed to create
/// kprobe ... -ENOENT").
fn remember_libbpf(_: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut last) = LIBBPF_LAST.lock() {
        *last = msg.trim().trim_start_matches("libbpf: ").to_owned();
    }
}

fn errtext(e: &libbpf_rs::Error) -> String {
    let s = with_libbpf_last(e.to_string());
    let name = [
        ("os error 1)", "EPERM"),
        ("os error 2)", "ENOENT"),
        ("os error 13)", "EACCES"),
        ("os error 22)", "EINVAL"),
        ("os error 95)", "EOPNOTSUPP"),
        ("os error 524)", "ENOTSUPP"),
        ("os error 7)", "E2BIG"),
    ]
    .iter()
    .find(|(k, _)| s.contains(k))
    .map(|(_, n)| *n);
    match name {
        Some(n) => format!("{n}: {s}"),
        None => s,
    }
}

/// Trial programs in bpf/probe.bpf.c, in the order of its `hits` array.
#[derive(Clone, Copy)]
enum Trial {
    Lsm = 0,
    LsmSleepable = 1,
    Fentry = 2,
    Kprobe = 3,
    Tracepoint = 4,
}

fn trial(t: Trial) -> Result<(), String> {
    with_libbpf_reasons(|| trial_inner(t))
}

/// Runs `f` with libbpf's complaints kept for `errtext` (and off stderr).
pub fn with_libbpf_reasons<T>(f: impl FnOnce() -> T) -> T {
    let prev = libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Warn, remember_libbpf)));
    if let Ok(mut last) = LIBBPF_LAST.lock() {
        last.clear();
    }
    let r = f();
    libbpf_rs::set_print(prev);
    r
}

/// libbpf's last complaint, when `e` does not say it already.
pub fn with_libbpf_last(e: String) -> String {
    match LIBBPF_LAST.lock() {
        Ok(last) if !last.is_empty() && !e.contains(last.as_str()) => {
            format!("{e} (libbpf: {last})")
        }
        _ => e,
    }
}

fn trial_inner(t: Trial) -> Result<(), String> {
    let mut obj = MaybeUninit::uninit();
    let mut open = ProbeSkelBuilder::default()
        .open(&mut obj)
        .map_err(|e| format!("open failed: {}", errtext(&e)))?;
    if let Some(ro) = open.maps.rodata_data.as_mut() {
        ro.target_tgid = std::process::id();
    }
    match t {
        Trial::Lsm => open.progs.probe_lsm.set_autoload(true),
        Trial::LsmSleepable => open.progs.probe_lsm_sleepable.set_autoload(true),
        Trial::Fentry => open.progs.probe_fentry.set_autoload(true),
        Trial::Kprobe => open.progs.probe_kprobe.set_autoload(true),
        Trial::Tracepoint => open.progs.probe_tracepoint.set_autoload(true),
    }
    let skel = open
        .load()
        .map_err(|e| format!("load refused: {}", errtext(&e)))?;
    let prog = match t {
        Trial::Lsm => &skel.progs.probe_lsm,
        Trial::LsmSleepable => &skel.progs.probe_lsm_sleepable,
        Trial::Fentry => &skel.progs.probe_fentry,
        Trial::Kprobe => &skel.progs.probe_kprobe,
        Trial::Tracepoint => &skel.progs.probe_tracepoint,
    };
    let _link = prog.attach().map_err(|e| {
        let mut s = format!("attach failed: {}", errtext(&e));
        if matches!(t, Trial::Kprobe) && s.contains("ENOENT") {
            s.push_str(" (kprobes not built into this kernel?)");
        }
        s
    })?;
    // A self-test event: the hook must fire for a real mkdirat(2).
    let dir = std::env::temp_dir().join(format!(".ownwatch-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir(&dir);
    nix::sys::stat::mkdirat(None, &dir, nix::sys::stat::Mode::from_bits_truncate(0o700))
        .map_err(|e| format!("self-test mkdirat failed: {e}"))?;
    let _ = std::fs::remove_dir(&dir);
    let hits = skel
        .maps
        .bss_data
        .as_ref()
        .map(|b| unsafe { std::ptr::read_volatile(&b.hits[t as usize]) })
        .unwrap_or(0);
    if hits == 0 {
        return Err(match t {
            Trial::Lsm | Trial::LsmSleepable => {
                "loaded and attached but never fired (BPF LSM not active?)".into()
            }
            _ => "loaded and attached but never fired".into(),
        });
    }
    Ok(())
}

/// Probes the kernel and runs the trials of `wanted` backends (the others: "not probed").
pub fn probe_some(wanted: &[Backend]) -> Report {
    let btf = Path::new(BTF_PATH).exists();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let lsms = active_lsms();
    let run = |b: Backend, t: Trial| -> Result<(), String> {
        if !wanted.contains(&b) {
            return Err("not probed".into());
        }
        if !btf {
            return Err("no kernel BTF".into());
        }
        // The VFS backends hook security_path_*, which exist only with CONFIG_SECURITY_PATH.
        let missing = match b {
            Backend::Lsm => missing_funcs(&["bpf_lsm_path_mkdir"]),
            Backend::Fentry | Backend::Kprobe => missing_funcs(&["security_path_mkdir"]),
            Backend::Tracepoint => None,
        };
        if let Some(f) = missing {
            return Err(format!(
                "{f} is not in the kernel's BTF (kernel built without CONFIG_SECURITY_PATH)"
            ));
        }
        match (b, &lsms) {
            (Backend::Lsm, Some(l)) if !l.iter().any(|x| x == "bpf") => Err(format!(
                "BPF LSM not active (lsm={}); boot with lsm=...,bpf",
                l.join(",")
            )),
            (Backend::Tracepoint, _) => ensure_tracefs().and_then(|()| trial(t)),
            _ => trial(t),
        }
    };
    let statuses = vec![
        Status {
            backend: Backend::Lsm,
            works: run(Backend::Lsm, Trial::Lsm),
        },
        Status {
            backend: Backend::Fentry,
            works: run(Backend::Fentry, Trial::Fentry),
        },
        Status {
            backend: Backend::Kprobe,
            works: run(Backend::Kprobe, Trial::Kprobe),
        },
        Status {
            backend: Backend::Tracepoint,
            works: run(Backend::Tracepoint, Trial::Tracepoint),
        },
    ];
    // informational (`probe`): no backend needs it, so `watch` does not pay for the trial
    let sleepable_lsm = if wanted.len() == Backend::ALL.len() {
        run(Backend::Lsm, Trial::LsmSleepable)
    } else {
        Err("not probed".into())
    };
    Report {
        release,
        lsms,
        facts: Facts { btf, statuses },
        sleepable_lsm,
    }
}
