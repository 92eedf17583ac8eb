//! Facts about this kernel that need no program: root, BTF, tracefs, the active LSMs, which
//! tracepoints and kernel functions exist.

use std::path::Path;

use anyhow::{bail, Result};

pub const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
/// Where tracefs may be mounted, in libbpf's order.
pub const TRACING_DIRS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

pub fn require_root() -> Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!(
            "must run as root (loading BPF programs needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)"
        );
    }
    Ok(())
}

/// libbpf finds tracepoint ids through tracefs; minimal hosts and CI machines often have it
/// unmounted.
pub fn ensure_tracefs() -> Result<(), String> {
    if TRACING_DIRS
        .iter()
        .any(|d| Path::new(d).join("events").exists())
    {
        return Ok(());
    }
    mount_pseudo("tracefs", TRACING_DIRS[0])
}

fn mount_pseudo(fstype: &str, at: &str) -> Result<(), String> {
    nix::mount::mount(
        Some(fstype),
        at,
        Some(fstype),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("{fstype} is not mounted at {at} and mounting it failed: {e}"))
}

pub fn active_lsms() -> Option<Vec<String>> {
    let path = "/sys/kernel/security/lsm";
    if !Path::new(path).exists() {
        let _ = mount_pseudo("securityfs", "/sys/kernel/security");
    }
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().split(',').map(str::to_owned).collect())
}

pub fn tracepoint_exists(category: &str, name: &str) -> bool {
    TRACING_DIRS.iter().any(|d| {
        Path::new(d)
            .join("events")
            .join(category)
            .join(name)
            .exists()
    })
}

/// The first of these kernel functions that the kernel's BTF lacks.
pub fn missing_funcs(names: &[&'static str]) -> Option<&'static str> {
    let btf = libbpf_rs::btf::Btf::from_vmlinux().ok()?;
    names
        .iter()
        .find(|n| btf.type_by_name::<libbpf_rs::btf::types::Func>(n).is_none())
        .copied()
}
