//! Switching on, loading and attaching the programs of one backend, and detaching them.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::btf::types::Func;
use libbpf_rs::btf::Btf;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, PrintLevel, ProgramAttachType};

use super::abi::main_skel::types::bss as Bss;
use super::abi::main_skel::{OpenOwnwatchSkel, OwnwatchSkel, OwnwatchSkelBuilder};
use super::abi::{self, prog};
use super::args;
use super::caps::tracepoint_exists as tracepoint_exists_in;
use super::kretprobe::{self, Events};
use super::plan::{self, Backend, BackendReq};
use super::trial::{probe_some, with_libbpf_last, with_libbpf_reasons};

use crate::users::Uids;

/// A record wakes the reader when the last wakeup is older than this (bpf submit()).
pub const WAKEUP_GAP: Duration = Duration::from_micros(500);

/// A watched root as the kernel's maps know it.
pub struct Root<'a> {
    pub dev: u32,
    pub ino: u64,
    /// Users whose writes are allowed in it.
    pub allowed: &'a Uids,
}

/// What to load: the same whichever backend is tried.
pub struct Spec<'a> {
    pub roots: Vec<Root<'a>>,
    pub op_mask: u32,
    pub ring_size: u32,
}

/// A backend loaded and attached.
pub struct Started<'obj> {
    pub backend: Backend,
    pub skel: OwnwatchSkel<'obj>,
    pub links: Links,
    /// Time spent in trials.
    pub probe_time: Duration,
    /// Of the chosen backend's start: its programs' load (the kernel's verifier), then their
    /// attach.
    pub load_time: Duration,
    pub attach_time: Duration,
    /// Better backends that failed, "name: why", for a warning each.
    pub failures: Vec<String>,
}

/// The one best-first choice (`plan::candidates`): each candidate must pass its trial (loads,
/// attaches, fires) and then load and attach in full; a trial runs only when the better ones
/// failed, so start-up pays for one in the usual case. A forced backend must pass its own.
/// `objs` holds one object per candidate (a failed start leaves its object unusable).
pub fn start_best<'obj>(
    objs: &'obj mut Vec<MaybeUninit<OpenObject>>,
    req: BackendReq,
    spec: &Spec,
) -> Result<Started<'obj>> {
    let candidates = plan::candidates(req);
    objs.clear();
    objs.resize_with(candidates.len(), MaybeUninit::uninit);
    let mut failures = Vec::new();
    let mut probe_time = Duration::ZERO;
    for (obj, &b) in objs.iter_mut().zip(&candidates) {
        let t = Instant::now();
        let report = probe_some(&[b]);
        probe_time += t.elapsed();
        if let Err(why) = plan::choose(&report.facts, b.into()) {
            if req != BackendReq::Auto {
                bail!(why);
            }
            failures.push(format!(
                "{}: {}",
                b.name(),
                report.facts.usable(b).unwrap_err()
            ));
            continue;
        }
        match start(obj, b, spec) {
            Ok((skel, links, (load_time, attach_time))) => {
                return Ok(Started {
                    backend: b,
                    skel,
                    links,
                    probe_time,
                    load_time,
                    attach_time,
                    failures,
                })
            }
            Err(e) => failures.push(format!("{}: {e:#}", b.name())),
        }
    }
    if req == BackendReq::Auto {
        bail!("no backend is usable ({})", failures.join("; "));
    }
    bail!("no backend could start ({})", failures.join("; "))
}

/// What `probe` asks of a backend whose trial passed: that its programs load and attach as
/// `watch` would load them (`start`, with no tree).
pub fn load_check(backend: Backend) -> Result<(), String> {
    let spec = Spec {
        roots: Vec::new(),
        op_mask: u32::MAX,
        ring_size: 1 << 18,
    };
    let mut obj = MaybeUninit::uninit();
    with_libbpf_reasons(|| {
        start(&mut obj, backend, &spec)
            .map(drop)
            .map_err(|e| with_libbpf_last(format!("{e:#}")))
    })
}

/// ctime tracepoints (6.13+): which inodes a syscall changed, see bpf/hooks/ctime.h.
fn ctime_hook_available(name: &str) -> bool {
    // For tests: behave as on a kernel before 6.13 (the kernel matrix's 6.1 and 6.12).
    if std::env::var_os("OWNWATCH_NO_CTIME_HOOKS").is_some() {
        return false;
    }
    prog::CTIME
        .iter()
        .any(|(p, tp)| *p == name && tracepoint_exists_in("timestamp", tp))
}

/// -v, -vv: libbpf's messages on stderr, each once prefixed (libbpf starts its own with
/// "libbpf: ", which would double it).
pub fn libbpf_log(level: PrintLevel, msg: String) {
    let _ = level;
    eprint!("{}", libbpf_line(&msg));
}

fn libbpf_line(msg: &str) -> String {
    let body = msg.strip_prefix("libbpf: ").unwrap_or(msg);
    let nl = if body.ends_with('\n') { "" } else { "\n" };
    format!("ownwatch: libbpf: {body}{nl}")
}

/// A root's key in the kernel's `roots` map: `struct root_key` (bpf/lib/maps.h).
pub fn root_key(dev: u32, ino: u64) -> Vec<u8> {
    [u64::from(dev).to_ne_bytes(), ino.to_ne_bytes()].concat()
}

/// The programs' copy of the roots for the walk's step (`roots_fast` in bpf/lib/maps.h):
/// `roots` (tree index, dev, ino) written into the copy not in use, then switched to with one
/// store; with none or more than fit, the count 0: the `roots` map decides.
///
/// # Safety
/// `bss` points to the skeleton's .bss (mapped), alive for the call; the programs only read
/// these fields.
pub unsafe fn set_roots_fast(bss: *mut Bss, roots: &[(u32, u32, u64)]) {
    use std::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
    let n = addr_of_mut!((*bss).roots_fast_n);
    let keys = addr_of_mut!((*bss).roots_fast);
    // the walks the programs kept were found with the roots before this call: no later
    // record refers to them (put_kept_walk in bpf/lib/walk.h)
    let gen = addr_of_mut!((*bss).roots_gen);
    write_volatile(gen, read_volatile(gen).wrapping_add(1));
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    // bit 8: the copy switched to last, which a program may still read (also while the
    // count is 0); the other one is free
    let last = read_volatile(addr_of!(*n)) & 1 << 8;
    if roots.is_empty() || roots.len() > (*keys)[0].len() {
        // the map decides (no roots: it finds none)
        write_volatile(n, last);
        return;
    }
    let c = usize::from(last == 0);
    for (i, &(tree, dev, ino)) in roots.iter().enumerate() {
        let k = addr_of_mut!((*keys)[c][i]);
        write_volatile(addr_of_mut!((*k).dev), u64::from(dev));
        write_volatile(addr_of_mut!((*k).ino), ino);
        write_volatile(addr_of_mut!((*bss).roots_fast_tree[c][i]), tree);
    }
    write_volatile(n, roots.len() as u32 | (c as u32) << 8);
}

/// Opens, configures, loads and attaches the programs of one backend; also says how long the
/// load and the attach took.
fn start<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    backend: Backend,
    spec: &Spec,
) -> Result<(OwnwatchSkel<'obj>, Links, (Duration, Duration))> {
    let mut open = OwnwatchSkelBuilder::default()
        .open(obj)
        .context("opening BPF object")?;
    // The VFS backends hook kernel functions: what this kernel has, and where their
    // arguments are, comes from its BTF.
    let btf = match backend {
        // only for which io_uring programs can read their requests: without BTF, CO-RE decides
        Backend::Tracepoint => Btf::from_vmlinux().ok(),
        _ => Some(Btf::from_vmlinux().context("reading kernel BTF")?),
    };
    configure(&mut open, backend, spec, btf.as_ref())?;
    switch_on(&mut open, backend, btf.as_ref())?;
    let t = Instant::now();
    let mut skel = open.load().context("loading BPF programs")?;
    let load_time = t.elapsed();
    fill_maps(&mut skel, spec)?;
    if backend == Backend::Tracepoint {
        fill_exit_body(&skel)?;
    }
    let t = Instant::now();
    let links = attach(&skel)?;
    Ok((skel, links, (load_time, t.elapsed())))
}

/// The mask of every tree, for n trees (at most 64).
pub fn all_trees(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// How many processes the kernel remembers the exe, tty and cgroup sent of (the `idents`
/// map, bpf/lib/maps.h; watch/ident.rs keeps more).
pub const IDENTS: u32 = 2048;

/// Whether tracing programs may keep a task's data in task storage, with the task from
/// bpf_get_current_task_btf() (both 5.11+).
fn task_storage(btf: &Btf) -> bool {
    args::has_helper(btf, "task_storage_get") && args::has_helper(btf, "get_current_task_btf")
}

/// The constants and map sizes set between open and load.
fn configure(
    open: &mut OpenOwnwatchSkel,
    backend: Backend,
    spec: &Spec,
    btf: Option<&Btf>,
) -> Result<()> {
    let ro = open
        .maps
        .rodata_data
        .as_mut()
        .context("no rodata in BPF object")?;
    ro.op_mask = spec.op_mask;
    ro.self_tgid = std::process::id();
    open.maps
        .bss_data
        .as_mut()
        .context("no bss in BPF object")?
        .all_trees = all_trees(spec.roots.len());
    ro.backend_id = abi::backend_id(backend);
    ro.pin_cpu = u32::from(pin_programs(btf));
    ro.task_btf = u32::from(
        backend != Backend::Tracepoint
            && btf.is_some_and(|b| args::has_helper(b, "get_current_task_btf")),
    );
    ro.core_cast = u32::from(core_cast(btf));
    // A thread's pending op (tracepoint) or wait for an outcome (the VFS backends): in its
    // task storage where the kernel has it, else (and where the kernel will not make one:
    // bpf/lib/maps.h, `task_storage_off`) in a hash by thread id. Only the maps this backend
    // and kernel use are made.
    let task_storage = btf.is_some_and(task_storage);
    ro.task_storage = u32::from(task_storage);
    let tp = backend == Backend::Tracepoint;
    for (map, on) in [
        (&mut open.maps.inflight_task, tp && task_storage),
        (&mut open.maps.inflight, tp),
        (&mut open.maps.vfs_wait_task, !tp && task_storage),
        (&mut open.maps.vfs_wait, !tp),
        (&mut open.maps.exit_body, tp),
    ] {
        map.set_autocreate(on).context("leaving out a map")?;
    }
    if let Some(btf) = btf.filter(|_| backend != Backend::Tracepoint) {
        args::fill(btf, &mut ro.fn_args, backend == Backend::Kprobe)?;
    }
    // Wake the reader once an eighth of the ring is unread, and for a record after a quiet
    // spell (see submit() in the BPF side); the poll below picks up the rest.
    ro.wakeup_bytes = u64::from(spec.ring_size / 8);
    ro.wakeup_gap_ns = WAKEUP_GAP.as_nanos() as u64;
    open.maps
        .events
        .set_max_entries(spec.ring_size)
        .context("sizing the ring buffer")?;
    open.maps
        .idents
        .set_max_entries(IDENTS)
        .context("sizing the idents map")?;
    let cpus = libbpf_rs::num_possible_cpus().context("counting CPUs")? as u32;
    open.maps
        .heap
        .set_max_entries(cpus)
        .context("sizing scratch map")?;
    Ok(())
}

/// Switches on the chosen family only. The tracepoint backend: an enter and an exit program
/// per syscall this kernel has (setxattrat is 6.13+, fchmodat2 6.6+), the exit program they
/// go on in, the ctime hooks where they exist. lsm, fentry, kprobe: the hooks, plus fexit
/// (lsm, fentry) or kprobe+kretprobe on the functions that do the ops, for their outcome, and
/// the program that drops an ending thread's wait.
/// Hooks this kernel lacks stay off (file_truncate is 6.2+; before it ftruncate and O_TRUNC
/// call path_truncate).
fn switch_on(open: &mut OpenOwnwatchSkel, backend: Backend, btf: Option<&Btf>) -> Result<()> {
    let has_func = |f: &str| btf.is_some_and(|b| b.type_by_name::<Func>(f).is_some());
    let uring = uring_program(btf);
    let struct_args = btf.is_some_and(args::trampolines_take_structs);
    let rename_noflags = btf.is_some_and(|b| args::has_params(b, "bpf_lsm_path_rename", 4));
    let do_rmdir = btf.is_some_and(|b| args::has_params(b, "do_rmdir", 2));
    let session = kprobe_session(btf);
    let multi = backend == Backend::Kprobe && kprobe_multi_hooks(btf);
    // README "Kernel matrix": the verifier's figures (4) or log (1, 2), all programs or one
    let verifier_log = std::env::var("OWNWATCH_VERIFIER_STATS").ok().map(|l| {
        let only = std::env::var("OWNWATCH_VERIFIER_PROG").unwrap_or_default();
        (l.parse().unwrap_or(4), only)
    });
    for mut p in open.open_object_mut().progs_mut() {
        let name = p.name().to_string_lossy().into_owned();
        let on = match backend {
            Backend::Tracepoint => tracepoint_prog_on(&name, uring),
            _ => {
                let (hook_prefix, done_prefix) = prog::vfs_prefixes(backend);
                name == prog::VFS_WAIT_EXIT
                    || ((name.starts_with(hook_prefix) || name.starts_with(done_prefix))
                        && kernel_has_target(&name, backend, &has_func)
                        && chown_hook_on(&name, backend, struct_args)
                        && rmdir_done_on(&name, do_rmdir)
                        && lsm_rename_on(&name, rename_noflags)
                        && ((name != prog::KP_DONE && name != prog::KP_OPEN_SESSION) || session))
            }
        };
        p.set_autoload(on);
        if on && multi && is_kprobe_hook(&name) {
            p.set_attach_type(ProgramAttachType::KprobeMulti);
        }
        if let Some((level, only)) = &verifier_log {
            if only.is_empty() || *only == name {
                p.set_log_level(*level);
            }
        }
    }
    Ok(())
}

/// Whether the kprobe backend loads `kp_done`, the kprobe.session program (bpf/hooks/vfs.h):
/// where the kernel has kprobe sessions (`args::has_kprobe_session`).
/// OWNWATCH_KPROBE_SESSION=0 leaves it off (benchmarks: the pairs on the same kernel).
fn kprobe_session(btf: Option<&Btf>) -> bool {
    std::env::var("OWNWATCH_KPROBE_SESSION").as_deref() != Ok("0")
        && btf.is_some_and(args::has_kprobe_session)
}

/// Whether the kprobe backend's hooks go on as kprobe_multi attachments of one function each
/// (fprobe, where the kernel has it: `args::has_fprobe`) rather than as kprobes: the same
/// programs, ~50-140 instructions less per op of issue 14's storm (6.12, 7.3 under icount)
/// and no perf event each. OWNWATCH_KPROBE_MULTI=0: kprobes (benchmarks).
fn kprobe_multi_hooks(btf: Option<&Btf>) -> bool {
    std::env::var("OWNWATCH_KPROBE_MULTI").as_deref() != Ok("0")
        && btf.is_some_and(args::has_fprobe)
}

/// A kprobe backend hook program (`kp_<hook>`), not one on a completing function.
fn is_kprobe_hook(name: &str) -> bool {
    name.starts_with(prog::vfs_prefixes(Backend::Kprobe).0)
        && !name.starts_with(prog::KP_ARM)
        && name != prog::KP_DONE
        && name != prog::KP_OPEN_SESSION
}

/// rmdir's outcome: from do_rmdir, the one caller of the rmdir hook, where this kernel has it
/// as the programs expect (two arguments); else from vfs_rmdir. Not from both: each is a
/// trampoline (or kprobe) every rmdir on the machine passes, allowed writers' included, and
/// vfs_rmdir's also every nfsd, overlayfs or ksmbd rmdir, which the hook never sees.
fn rmdir_done_on(name: &str, do_rmdir: bool) -> bool {
    if name.ends_with(prog::DO_RMDIR) {
        do_rmdir
    } else if name.ends_with(prog::VFS_RMDIR) {
        !do_rmdir
    } else {
        true
    }
}

/// Hooks and functions some kernels lack: file_truncate (6.2+), the POSIX ACL hooks and
/// vfs_{set,remove}_acl (6.2+; before, ACLs pass the xattr hooks).
fn kernel_has_target(name: &str, backend: Backend, has_func: &dyn Fn(&str) -> bool) -> bool {
    let hook = |h: &str| match backend {
        Backend::Lsm => has_func(&format!("bpf_lsm_{h}")),
        _ => has_func(&format!("security_{h}")),
    };
    if name.ends_with("_ftruncate") {
        hook("file_truncate")
    } else if name.ends_with("_setacl") {
        hook("inode_set_acl")
    } else if name.ends_with("_removeacl") {
        hook("inode_remove_acl")
    } else if let Some(f) = ["vfs_set_acl", "vfs_remove_acl"]
        .into_iter()
        .find(|f| name.ends_with(f))
    {
        has_func(f)
    } else {
        true
    }
}

/// chown: the security hook where trampolines take its kuid_t and kgid_t (6.1+), else
/// chown_common (lsm and fentry; a kprobe reads them from registers on every kernel).
fn chown_hook_on(name: &str, backend: Backend, struct_args: bool) -> bool {
    if name.ends_with(prog::CHOWN_COMMON) {
        !struct_args
    } else if name.ends_with("_chown") && backend != Backend::Kprobe {
        struct_args
    } else {
        true
    }
}

/// lsm rename: the hook where it has the flags (5.19+), else security_path_rename.
fn lsm_rename_on(name: &str, noflags: bool) -> bool {
    if name.ends_with(prog::RENAME_NOFLAGS) {
        noflags
    } else if name.strip_prefix(prog::vfs_prefixes(Backend::Lsm).0) == Some("rename") {
        !noflags
    } else {
        true
    }
}

/// Whether our programs turn preemption off while they run (bpf/lib/pin.h): on kernels
/// that run them preemptibly and allow it, those with preemptible syscall tracepoints (7.x;
/// their verifiers take global functions with preemption off, which came in 6.14) and the
/// bpf_preempt_disable kfunc. OWNWATCH_PIN_CPU=1 or 0 decides instead (tests).
pub fn pin_programs(btf: Option<&Btf>) -> bool {
    match std::env::var("OWNWATCH_PIN_CPU").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => btf.is_some_and(|b| {
            args::faultable_syscall_tracepoints(b)
                && b.type_by_name::<Func>("bpf_preempt_disable").is_some()
        }),
    }
}

/// Whether our programs read kernel objects with direct loads through bpf_rdonly_cast (the
/// kfunc is 6.2+; bpf/lib/filter.h, `core_cast`) rather than bpf_probe_read_kernel calls.
/// OWNWATCH_CORE_CAST=1 or 0 decides instead (benchmarks: the same kernel both ways).
pub fn core_cast(btf: Option<&Btf>) -> bool {
    match std::env::var("OWNWATCH_CORE_CAST").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => btf.is_some_and(args::has_rdonly_cast),
    }
}

/// Whether a tracepoint-backend program is switched on here: a syscall's enter and exit
/// programs where the kernel has both its tracepoints; the mount calls' and the core dump's
/// with the ctime programs.
fn tracepoint_prog_on(name: &str, uring: Option<&str>) -> bool {
    let syscall_on = |sc: &str| {
        ["enter", "exit"]
            .iter()
            .all(|e| tracepoint_exists_in("syscalls", &format!("sys_{e}_{sc}")))
    };
    let mount_call = name
        .strip_prefix(prog::TP_MNT_ENTER)
        .or_else(|| name.strip_prefix(prog::TP_MNT_EXIT));
    let any_ctime = || prog::CTIME.iter().any(|(p, _)| ctime_hook_available(p));
    if let Some(sc) = mount_call {
        return syscall_on(sc) && any_ctime();
    }
    let syscall = name
        .strip_prefix(prog::TP_ENTER)
        .or_else(|| name.strip_prefix(prog::TP_EXIT));
    match syscall {
        Some(sc) => syscall_on(sc),
        None => match name {
            prog::TP_SYS_EXIT => true,
            prog::TP_URING_REQ | prog::TP_URING_SQE => uring == Some(name),
            prog::TP_CORE_BEGIN | prog::TP_CORE_END => any_ctime(),
            _ => ctime_hook_available(name),
        },
    }
}

/// The tracepoint backend's io_uring program for this kernel, if it can see io_uring: on its
/// submission tracepoint (6.4+ name, else the older one), which must pass the request (5.19+)
/// whose paths it can read. (Without BTF, CO-RE decides.)
pub fn uring_program(btf: Option<&Btf>) -> Option<&'static str> {
    let (prog, tp) = [
        (prog::TP_URING_REQ, "io_uring_submit_req"),
        (prog::TP_URING_SQE, "io_uring_submit_sqe"),
    ]
    .into_iter()
    .find(|(_, tp)| tracepoint_exists_in("io_uring", tp))?;
    let usable = btf.is_none_or(|b| {
        args::uring_tracepoint_passes_request(b, tp) && args::uring_paths_readable(b)
    });
    usable.then_some(prog)
}

/// The kernel's `allowed` map: uid -> bit mask of the trees (in order) where it may write.
pub fn allowed_masks<'a>(sets: impl Iterator<Item = &'a Uids>) -> HashMap<u32, u64> {
    let mut masks: HashMap<u32, u64> = HashMap::new();
    for (i, set) in sets.enumerate() {
        for &u in set {
            *masks.entry(u).or_default() |= 1 << i;
        }
    }
    masks
}

/// The users whose mask holds every tree of `all`, in order: the programs' `allowed_fast`.
pub fn allowed_everywhere(masks: &HashMap<u32, u64>, all: u64) -> Vec<u32> {
    let mut v: Vec<u32> = masks
        .iter()
        .filter(|&(_, &m)| m & all == all)
        .map(|(&u, _)| u)
        .collect();
    v.sort_unstable();
    v
}

/// Which trees each root is and which users are allowed where.
fn fill_maps(skel: &mut OwnwatchSkel, spec: &Spec) -> Result<()> {
    for (i, t) in spec.roots.iter().enumerate() {
        skel.maps
            .roots
            .update(
                &root_key(t.dev, t.ino),
                &(i as u32).to_ne_bytes(),
                MapFlags::ANY,
            )
            .context("filling roots map")?;
    }
    let masks = allowed_masks(spec.roots.iter().map(|t| t.allowed));
    for (u, m) in &masks {
        skel.maps
            .allowed
            .update(&u.to_ne_bytes(), &m.to_ne_bytes(), MapFlags::ANY)
            .context("filling allowed map")?;
    }
    // the users allowed everywhere, for the programs' first test (bpf/lib/maps.h)
    let everywhere = allowed_everywhere(&masks, all_trees(spec.roots.len()));
    let bss = skel
        .maps
        .bss_data
        .as_deref_mut()
        .context("no .bss in BPF object")?;
    for (slot, u) in bss.allowed_fast.iter_mut().zip(&everywhere) {
        *slot = *u;
    }
    bss.allowed_fast_n = everywhere.len() as u32;
    let roots: Vec<(u32, u32, u64)> = (0..)
        .zip(&spec.roots)
        .map(|(i, t)| (i, t.dev, t.ino))
        .collect();
    // SAFETY: the skeleton's .bss, borrowed mutably here
    unsafe { set_roots_fast(bss, &roots) };
    Ok(())
}

/// The tracepoint backend's exit programs go on in tp_sys_exit (bpf/hooks/syscall_exit.h).
fn fill_exit_body(skel: &OwnwatchSkel) -> Result<()> {
    use std::os::fd::{AsFd, AsRawFd};
    let body = skel
        .object()
        .progs()
        .find(|p| p.name() == prog::TP_SYS_EXIT)
        .context("no exit program in the BPF object")?;
    let fd = body.as_fd().as_raw_fd();
    skel.maps
        .exit_body
        .update(&0u32.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
        .context("filling exit_body map")
}

/// Attaches what was switched on (tp_sys_exit is reached by tail calls only); kretprobes
/// with room for many calls in flight (`kretprobe`); `kp_done` where it was loaded and the
/// kernel can attach it, and then not the pairs it replaces. On an error `links` goes,
/// detaching what was attached.
fn attach(skel: &OwnwatchSkel) -> Result<Links> {
    let mut links = Links::default();
    let loaded = |name: &str| {
        skel.object()
            .progs()
            .find(|p| p.autoload() && p.name() == name)
    };
    if let Some(p) = loaded(prog::KP_DONE) {
        let (funcs, cookies): (Vec<&str>, Vec<u64>) = args::session_functions().unzip();
        match attach_session(&p, &funcs, cookies) {
            Ok(l) => {
                links.session = true;
                links.push_multi(l);
            }
            Err(e) => links.session_error = Some(format!("{e:#}")),
        }
    }
    // the file_open hook as a session too, where kp_done could be one; else kp_open
    let mut open_session = false;
    if let Some(p) = loaded(prog::KP_OPEN_SESSION).filter(|_| links.session) {
        match attach_session(&p, &["security_file_open"], vec![0]) {
            Ok(l) => {
                open_session = true;
                links.push_multi(l);
            }
            Err(e) => links.session_error = Some(format!("{e:#}")),
        }
    }
    for prog in skel.object().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if !prog.autoload()
            || name == prog::TP_SYS_EXIT
            || name == prog::KP_DONE
            || name == prog::KP_OPEN_SESSION
            || (links.session && replaced_by_session(&name))
            || (open_session && name == prog::KP_OPEN)
        {
            continue;
        }
        if matches!(prog.attach_type(), ProgramAttachType::KprobeMulti) {
            let func = prog
                .section()
                .to_str()
                .and_then(|s| s.strip_prefix("kprobe/"))
                .with_context(|| format!("{name}: no function in its section"))?;
            let link = prog
                .attach_kprobe_multi(false, vec![func])
                .with_context(|| format!("attaching {name} to {func} (kprobe_multi)"))?;
            links.push_multi(link);
            continue;
        }
        let link = match kretprobe::func_of(&prog) {
            Some(func) => links.events.attach(&prog, func)?,
            None => prog.attach().with_context(|| format!("attaching {name}"))?,
        };
        links.all.push(link);
    }
    Ok(links)
}

/// A kprobe session program on `funcs`, each with its cookie: `kp_done` on every function
/// `args::session_functions` lists, in one attachment (6.10-6.13 give it a pool of
/// return-probe instances for all of them; only a call that ends a wait holds one), or
/// `kp_open_session` on security_file_open. An error where the kernel has no fprobe
/// (CONFIG_FPROBE).
fn attach_session(p: &libbpf_rs::Program, funcs: &[&str], mut cookies: Vec<u64>) -> Result<Link> {
    use libbpf_rs::AsRawLibbpf;
    use std::ffi::CString;
    let names: Vec<CString> = funcs
        .iter()
        .map(|f| CString::new(*f).expect("a function name"))
        .collect();
    let mut syms: Vec<*const libc::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let opts = libbpf_rs::libbpf_sys::bpf_kprobe_multi_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_kprobe_multi_opts>() as _,
        syms: syms.as_mut_ptr(),
        cookies: cookies.as_mut_ptr(),
        cnt: syms.len() as _,
        session: true,
        ..Default::default()
    };
    // SAFETY: the program is loaded; names, syms and cookies outlive the call, which copies them.
    let ptr = unsafe {
        libbpf_rs::libbpf_sys::bpf_program__attach_kprobe_multi_opts(
            p.as_libbpf_object().as_ptr(),
            std::ptr::null(),
            &opts,
        )
    };
    // libbpf 1.x returns NULL with errno set on an error
    match std::ptr::NonNull::new(ptr) {
        // SAFETY: a link libbpf made, ours to destroy.
        Some(l) => Ok(unsafe { Link::from_ptr(l) }),
        None => Err(std::io::Error::last_os_error())
            .with_context(|| format!("attaching {}", p.name().to_string_lossy())),
    }
}

/// The programs `kp_done` does the work of: the kprobe + kretprobe pairs of its functions, and
/// rmdir's outcome from do_rmdir (it has vfs_rmdir's).
fn replaced_by_session(name: &str) -> bool {
    let kr = name.strip_prefix(prog::KR_DONE);
    kr == Some(prog::DO_RMDIR)
        || args::session_functions().any(|(f, _)| name.strip_prefix(prog::KP_ARM).or(kr) == Some(f))
}

/// Attachments. Each syscall tracepoint waits for RCU grace periods when it goes: 70 of them
/// keep a stopping process alive for seconds, and a pipeline (`| head -1`, Ctrl-C) waits with
/// it. So a child without stdio takes the last references and detaches them after we exit;
/// the programs run on for those seconds with nobody reading, which changes nothing. The
/// child waits for our exit (the end of a pipe only we hold) before it closes anything:
/// whoever closes last pays, and that used to be us about one time in three. The kprobe
/// events made for kretprobes go after their links (the kernel keeps an event in use).
#[derive(Default)]
pub struct Links {
    pub all: Vec<Link>,
    pub events: Events,
    /// `kp_done` is attached (the first of `all`).
    session: bool,
    /// Which of `all` are kprobe_multi attachments (fprobe): they count their own misses.
    multi: Vec<usize>,
    /// `kp_done` was loaded (the kernel has kprobe sessions) but would not attach: why.
    session_error: Option<String>,
}

impl Links {
    /// Whether `kp_done` was attached, in place of the pairs.
    pub fn session(&self) -> bool {
        self.session
    }

    fn push_multi(&mut self, l: Link) {
        self.multi.push(self.all.len());
        self.all.push(l);
    }

    /// Calls our probes missed (kretprobes without a free instance, fprobe's recursion
    /// guard, the session's pool empty): their programs did not run.
    pub fn missed(&self) -> u64 {
        let multi = self.multi.iter().map(|&i| multi_missed(&self.all[i]));
        self.events.missed() + multi.sum::<u64>()
    }

    /// Why `kp_done` was loaded but not attached (the pairs went on instead), for -v.
    pub fn session_error(&self) -> Option<&str> {
        self.session_error.as_deref()
    }
}

/// A kprobe_multi link's missed calls: one read of its info with no address or cookie array
/// asked for (the kernel then fills count, flags and missed only; 6.7+, else 0).
fn multi_missed(l: &Link) -> u64 {
    use libbpf_rs::libbpf_sys::{bpf_link_get_info_by_fd, bpf_link_info};
    use std::os::fd::{AsFd, AsRawFd};
    // SAFETY: bpf_link_info is plain data; all zeros asks for no arrays.
    let mut info: bpf_link_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: info is a bpf_link_info of len bytes; the fd is the link's.
    let rc = unsafe { bpf_link_get_info_by_fd(l.as_fd().as_raw_fd(), &mut info, &mut len) };
    if rc != 0 || info.type_ != libbpf_rs::libbpf_sys::BPF_LINK_TYPE_KPROBE_MULTI {
        return 0;
    }
    // SAFETY: the kernel filled the kprobe_multi member (the link's type says so)
    unsafe { info.__bindgen_anon_1.kprobe_multi.missed }
}

impl Drop for Links {
    fn drop(&mut self) {
        let links = std::mem::take(&mut self.all);
        let mut events = std::mem::take(&mut self.events);
        if links.is_empty() && events.is_empty() {
            return;
        }
        match fork_detacher() {
            // Our copies of the fds close cheaply at exit: the child holds the last ones.
            Detacher::Parent => std::mem::forget(links),
            Detacher::Child => {
                drop(links);
                events.remove();
                // SAFETY: the child ends here, without our atexit work.
                unsafe { libc::_exit(0) }
            }
            Detacher::Us => {
                drop(links);
                events.remove();
            }
        }
    }
}

/// Who detaches: the forked child once we exit, or we now (no pipe, no fork).
enum Detacher {
    Parent,
    Child,
    Us,
}

/// Forks the child that detaches after we exit; in the child, returns once we have exited.
fn fork_detacher() -> Detacher {
    let mut p = [0i32; 2];
    // SAFETY: a two-int array for pipe2.
    if unsafe { libc::pipe2(p.as_mut_ptr(), 0) } != 0 {
        return Detacher::Us;
    }
    // SAFETY: the child only reads, closes fds, writes kprobe_events and exits; no locks are
    // taken after fork.
    match unsafe { libc::fork() } {
        0 => unsafe {
            libc::setsid();
            libc::close(p[1]);
            for fd in 0..3 {
                libc::close(fd);
            }
            // EOF once the parent (the only holder of the write end) has exited
            let mut b = 0u8;
            while libc::read(p[0], (&mut b as *mut u8).cast(), 1) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
            Detacher::Child
        },
        pid if pid > 0 => unsafe {
            libc::close(p[0]);
            Detacher::Parent
        },
        _ => unsafe {
            libc::close(p[0]);
            libc::close(p[1]);
            Detacher::Us
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{chown_hook_on, kernel_has_target, lsm_rename_on, Backend};
    use super::{libbpf_line, prog, replaced_by_session, rmdir_done_on, set_roots_fast, Bss};
    use super::{MaybeUninit, OpenSkel, OwnwatchSkelBuilder, SkelBuilder};

    /// The object's own program names (opening it needs no privilege).
    fn prog_names() -> Vec<String> {
        let mut obj = MaybeUninit::uninit();
        let open = OwnwatchSkelBuilder::default().open(&mut obj).unwrap();
        let names = open
            .open_object()
            .progs()
            .map(|p| p.name().to_string_lossy().into_owned())
            .collect();
        names
    }

    /// A hook's verdict program (`fentry_v_mkdir` for `fentry_mkdir`, bpf/hooks/vfs.h) is
    /// switched on exactly where its hook is, whatever the kernel has; fentry has one for
    /// every path and file_open hook.
    #[test]
    fn a_hooks_verdict_goes_on_and_off_with_it() {
        let names = prog_names();
        let verdicts: Vec<&String> = names.iter().filter(|n| n.contains("_v_")).collect();
        for h in [
            "mkdir",
            "mknod",
            "symlink",
            "link",
            "rename",
            "unlink",
            "rmdir",
            "truncate",
            "ftruncate",
            "chmod",
            "chown",
            "open",
            "chown_common",
        ] {
            let v = format!("fentry_v_{h}");
            assert!(verdicts.contains(&&v), "{v} in {verdicts:?}");
        }
        for v in ["lsm_v_chown_common", "lsm_v_rename_noflags"] {
            assert!(verdicts.iter().any(|n| *n == v), "{v} in {verdicts:?}");
        }
        for v in verdicts {
            let (prefix, rest) = v.split_once("_v_").expect("a verdict's name");
            let hook = format!("{prefix}_{rest}");
            assert!(names.contains(&hook), "{v}: no {hook}");
            let backend = if prefix == "lsm" {
                Backend::Lsm
            } else {
                Backend::Fentry
            };
            for (structs, noflags, has) in (0..8).map(|i| (i & 1 != 0, i & 2 != 0, i & 4 != 0)) {
                let on = |n: &str| {
                    kernel_has_target(n, backend, &|_: &str| has)
                        && chown_hook_on(n, backend, structs)
                        && lsm_rename_on(n, noflags)
                        && rmdir_done_on(n, has)
                };
                assert_eq!(
                    on(v),
                    on(&hook),
                    "{v} and {hook}: {structs} {noflags} {has}"
                );
            }
        }
    }

    #[test]
    fn rmdir_outcome_comes_from_one_function_only() {
        let names: Vec<String> = prog_names()
            .into_iter()
            .filter(|n| n.contains("rmdir") && !n.starts_with("tp_"))
            .collect();
        let on = |do_rmdir: bool| -> Vec<&str> {
            let mut v: Vec<&str> = names
                .iter()
                .map(String::as_str)
                .filter(|n| rmdir_done_on(n, do_rmdir) && (n.contains("done") || n.contains("arm")))
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(on(true), ["fx_done_do_rmdir", "kr_done_do_rmdir"]);
        assert_eq!(
            on(false),
            ["fx_done_vfs_rmdir", "kp_arm_vfs_rmdir", "kr_done_vfs_rmdir"]
        );
        // the hooks themselves are not this choice's
        for hook in ["lsm_rmdir", "fentry_rmdir", "kp_rmdir"] {
            assert!(names.iter().any(|n| n == hook), "{hook} in {names:?}");
            assert!(rmdir_done_on(hook, true) && rmdir_done_on(hook, false));
        }
    }

    #[test]
    fn the_session_replaces_the_pairs_of_its_functions_and_no_others() {
        let names = prog_names();
        assert!(names.iter().any(|n| n == prog::KP_DONE), "{names:?}");
        let mut replaced: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| replaced_by_session(n))
            .collect();
        replaced.sort_unstable();
        let mut want = vec!["kr_done_do_rmdir".to_string()];
        for (f, _) in super::args::session_functions() {
            want.push(format!("kp_arm_{f}"));
            want.push(format!("kr_done_{f}"));
        }
        want.sort_unstable();
        assert_eq!(replaced, want);
        // the xattr and ACL functions keep their pairs; the hooks and fexits are not its
        for kept in [
            "kp_arm_vfs_setxattr",
            "kr_done_vfs_remove_acl",
            "kp_mkdir",
            "fx_done_vfs_mkdir",
        ] {
            assert!(names.iter().any(|n| n == kept), "{kept} in {names:?}");
            assert!(!replaced_by_session(kept), "{kept}");
        }
    }

    #[test]
    fn the_roots_copy_switches_with_one_count_and_gives_way_to_the_map_when_full() {
        // SAFETY: plain integers, all-zero is a valid .bss (as the kernel makes it)
        let mut bss: Bss = unsafe { std::mem::zeroed() };
        let b = &mut bss as *mut Bss;
        let keys = |b: &Bss, c: usize, n: usize| -> Vec<(u32, u64, u64)> {
            (0..n)
                .map(|i| {
                    (
                        b.roots_fast_tree[c][i],
                        b.roots_fast[c][i].dev,
                        b.roots_fast[c][i].ino,
                    )
                })
                .collect()
        };
        unsafe { set_roots_fast(b, &[(0, 7, 100), (1, 8, 200)]) };
        assert_eq!(bss.roots_fast_n, 2 | 1 << 8, "2 roots, in copy 1");
        assert_eq!(keys(&bss, 1, 2), [(0, 7, 100), (1, 8, 200)]);
        // the next change goes to the other copy; copy 1 stays as it was until then
        unsafe { set_roots_fast(b, &[(1, 8, 200), (5, 9, 300), (6, 9, 301)]) };
        assert_eq!(bss.roots_fast_n, 3, "3 roots, in copy 0");
        assert_eq!(keys(&bss, 0, 3), [(1, 8, 200), (5, 9, 300), (6, 9, 301)]);
        assert_eq!(keys(&bss, 1, 2), [(0, 7, 100), (1, 8, 200)]);
        // none, or more than fit: count 0, the map decides; the copy last used stays
        // untouched by the next change, however soon it comes (a reload: none, then the new)
        let nine: Vec<(u32, u32, u64)> = (0..9).map(|i| (i, 1, u64::from(i))).collect();
        unsafe { set_roots_fast(b, &nine) };
        assert_eq!(bss.roots_fast_n, 0);
        unsafe { set_roots_fast(b, &[]) };
        assert_eq!(bss.roots_fast_n, 0);
        unsafe { set_roots_fast(b, &nine[..8]) };
        assert_eq!(bss.roots_fast_n, 8 | 1 << 8, "8 roots, in copy 1");
        assert_eq!(keys(&bss, 0, 3), [(1, 8, 200), (5, 9, 300), (6, 9, 301)]);
        unsafe { set_roots_fast(b, &[]) };
        assert_eq!(
            bss.roots_fast_n,
            1 << 8,
            "no count, copy 1 still the last used"
        );
        unsafe { set_roots_fast(b, &[(2, 3, 4)]) };
        assert_eq!(bss.roots_fast_n, 1, "1 root, in copy 0");
        assert_eq!(keys(&bss, 1, 1), [(0, 1, 0)], "copy 1 untouched");
    }

    #[test]
    fn libbpf_lines_are_prefixed_once() {
        assert_eq!(
            libbpf_line("libbpf: loaded kernel BTF from 'x'\n"),
            "ownwatch: libbpf: loaded kernel BTF from 'x'\n"
        );
        assert_eq!(
            libbpf_line("-- BEGIN PROG LOAD LOG --\n"),
            "ownwatch: libbpf: -- BEGIN PROG LOAD LOG --\n"
        );
        assert_eq!(libbpf_line("no newline"), "ownwatch: libbpf: no newline\n");
    }
}
