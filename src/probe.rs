//! `ownwatch probe`: what this kernel allows, measured (kernel::trial), as JSON.

use anyhow::Result;
use serde_json::json;
use std::io::Write;

use crate::kernel::caps::require_root;
use crate::kernel::features;
use crate::kernel::load::load_check;
use crate::kernel::plan::{self, Backend, BackendReq};
use crate::kernel::trial::{probe_some, Report};

pub fn report_json(r: &Report) -> serde_json::Value {
    let backends: Vec<_> = Backend::ALL
        .iter()
        .map(|&b| {
            let works = r
                .facts
                .statuses
                .iter()
                .find(|s| s.backend == b)
                .map(|s| s.works.clone());
            let usable = r.facts.usable(b);
            let mut v = json!({
                "name": b.name(),
                "usable": usable.is_ok(),
                "kernel_allows": matches!(works, Some(Ok(()))),
                "coverage": coverage(b),
            });
            if let Err(why) = usable {
                v["reason"] = json!(why);
            }
            v
        })
        .collect();
    let choice = plan::choose(&r.facts, BackendReq::Auto);
    json!({
        "kernel": {
            "release": r.release,
            "btf": r.facts.btf,
            "lsm": r.lsms,
            "bpf_lsm_active": r.lsms.as_ref().map(|l| l.iter().any(|x| x == "bpf")),
            "sleepable_lsm": match &r.sleepable_lsm { Ok(()) => json!(true), Err(e) => json!(e) },
        },
        "backends": backends,
        "choice": choice.as_ref().map(|b| b.name()).ok(),
        "choice_error": choice.err(),
    })
}

fn coverage(b: Backend) -> &'static str {
    match b {
        Backend::Tracepoint => {
            "syscalls: only those that succeeded are reported, with ret; io_uring file \
             operations (open, mkdir, rename, unlink, link, symlink) are seen when submitted \
             and reported without ret (their outcome is not known); paths given as strings \
             are exact where the kernel has the ctime tracepoints (6.13+), else resolved in \
             user space after the fact"
        }
        _ => {
            "VFS hooks (security_path_*, file_open, inode xattr): every route, syscalls and \
             io_uring alike; tree and path decided in the kernel; the outcome comes from the \
             function that does the op (vfs_*, notify_change), only successes are reported"
        }
    }
}

pub fn run() -> Result<u8> {
    require_root()?;
    libbpf_rs::set_print(None);
    let mut r = probe_some(&Backend::ALL);
    // usable = loads exactly what watch would load, not only the trial
    for s in &mut r.facts.statuses {
        if s.works.is_ok() {
            s.works = load_check(s.backend)
                .map_err(|e| format!("its trial passed but its programs do not load: {e}"));
        }
    }
    let mut v = report_json(&r);
    v["kernel"]["features"] = features::detect()
        .iter()
        .map(|f| {
            (
                f.name.to_owned(),
                json!({"present": f.present, "effect": f.effect}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    // `ownwatch probe | head -3`: a reader that went away is no error (exit 0, as watch and
    // scan do), and never a panic as println! would make it
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", serde_json::to_string_pretty(&v)?).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        r => Ok(r.map(|()| 0)?),
    }
}
