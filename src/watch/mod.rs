//! `ownwatch watch`: validate, choose a backend, load and attach, then turn ring buffer records
//! into event lines until stopped. `load`: switching on and attaching one backend's programs;
//! `processor`: records -> events -> lines.

mod decode;
mod enrich;
mod ident;
mod locate;
mod mounts;
mod notify;
mod pace;
mod pending;
mod processor;
mod resolve;
mod rootnames;
mod roots;
mod rootwatch;
mod wait;
mod walkjoin;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags, PrintLevel, RingBuffer, RingBufferBuilder};

use crate::cli::WatchArgs;
use crate::config::Format;
use crate::config::{all_ops, parse_duration, parse_ops, parse_ring_size};
use crate::output::journal::Journal;
use crate::output::metrics::{epoch_secs, Counts, Info, Metrics, MetricsFile};
use crate::output::sink::Sink;
use crate::output::Output;
use crate::rules::{self, Overrides, TreeFilter, TreeRule};
use crate::users::{parse_owner, parse_user, Uids};
use mounts::MountTable;
use notify::Notify;

use crate::kernel::abi::main_skel::types::bss as Bss;
use crate::kernel::abi::main_skel::OwnwatchSkel;
use crate::kernel::caps::{require_root, BTF_PATH};
use crate::kernel::load::{
    allowed_everywhere, allowed_masks, libbpf_log, root_key, set_roots_fast, start_best, Links,
    Root, Spec, Started,
};
use processor::Processor;
use wait::Waiter;

static STOP: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);

/// A watched root.
pub struct Tree {
    pub path: PathBuf,
    /// O_PATH handle: follows the directory through renames, so its current path is known.
    pub fd: OwnedFd,
    pub dev: u32,
    pub ino: u64,
    pub allowed: Uids,
    /// Who everything must belong to (--fix gives objects back to them).
    pub owner: (u32, u32),
    /// --fix (or the tree's `fix` in --config)
    pub fix: bool,
    /// What user space decides beyond `allowed` (--config: ops, ignore, except)
    pub filter: TreeFilter,
}

impl Tree {
    /// The root as the kernel's maps know it.
    fn root(&self) -> Root<'_> {
        Root {
            dev: self.dev,
            ino: self.ino,
            allowed: &self.allowed,
        }
    }
}

fn open_trees(args: &WatchArgs) -> Result<Vec<Tree>> {
    let owner = args.owner.as_deref().map(parse_owner).transpose()?;
    let allow = args
        .allow
        .iter()
        .map(|a| parse_user(a))
        .collect::<Result<Vec<_>>>()?;
    let mut trees: Vec<Tree> = Vec::new();
    for dir in &args.dirs {
        let md = std::fs::metadata(dir).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => anyhow!("{}: no such directory", dir.display()),
            _ => anyhow!("{}: {e}", dir.display()),
        })?;
        if !md.is_dir() {
            bail!("{}: not a directory", dir.display());
        }
        let path = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
        let fd = open_root(&path)?;
        let (dev, ino) = (mounts::kernel_dev_of(md.dev()), md.ino());
        if trees.iter().any(|t| t.dev == dev && t.ino == ino) {
            continue;
        }
        let owner_ids = match owner {
            Some((u, g)) => (u, g.unwrap_or(md.gid())),
            // The default owner is the DIR's; root's would allow root's writes, the very
            // ones to report, and the watch would say nothing.
            None if md.uid() == 0 && !args.any_user => bail!(
                "{}: owned by root, so root's writes would be allowed and nothing reported: \
                 pass --owner USER (the user the tree belongs to), or --any-user",
                dir.display()
            ),
            None => (md.uid(), md.gid()),
        };
        let mut allowed = Uids::default();
        if !args.any_user {
            allowed.insert(owner_ids.0);
            allowed.extend(&allow);
        }
        trees.push(Tree {
            path,
            fd,
            dev,
            ino,
            allowed,
            owner: owner_ids,
            fix: args.fix,
            filter: TreeFilter::default(),
        });
    }
    if trees.len() > 64 {
        bail!(
            "at most 64 trees can be watched at once, got {}",
            trees.len()
        );
    }
    Ok(trees)
}

/// An O_PATH handle on the directory `path`: it follows the root through renames.
fn open_root(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("{}: open", path.display()))?;
    // SAFETY: a new fd we own.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The trees of a config file's rules (`rules::load`: validated, canonical paths).
fn config_trees(rules: &[TreeRule]) -> Result<Vec<Tree>> {
    rules
        .iter()
        .map(|r| {
            let fd = open_root(&r.path)?;
            let st = crate::sys::fstat(std::os::fd::AsFd::as_fd(&fd))
                .with_context(|| format!("{}", r.path.display()))?;
            Ok(Tree {
                path: r.path.clone(),
                fd,
                dev: mounts::kernel_dev_of(st.st_dev),
                ino: st.st_ino,
                allowed: r.allowed(),
                owner: r.owner,
                fix: r.fix,
                filter: r.filter.clone(),
            })
        })
        .collect()
}

/// The command-line options that win over a config file.
fn overrides(args: &WatchArgs) -> Overrides {
    Overrides {
        owner: args.owner.clone(),
        allow: args.allow.clone(),
        ops: args.ops.clone(),
        fix: args.fix,
    }
}

/// What the options ask for, checked (in this order) before anything is loaded.
struct Options {
    op_mask: u32,
    trees: Vec<Tree>,
    deadline: Option<Duration>,
    ring_size: u32,
    /// --metrics FILE (its directory checked) and --metrics-interval
    metrics: Option<(MetricsFile, Duration)>,
}

fn options(args: &WatchArgs) -> Result<Options> {
    if to_journal(args) && args.format == Format::Text {
        bail!(
            "--format text does not go with -o journal: the journal gets structured entries \
             (their MESSAGE is the text line); leave --format out, or write to a file named \
             journal with -o ./journal"
        );
    }
    let (op_mask, trees) = match &args.config {
        Some(file) => {
            let rules = rules::load(file, &overrides(args))?;
            // The kernel takes the union of the trees' ops; each tree's are checked here.
            (rules::kernel_view(&rules).0, config_trees(&rules)?)
        }
        None => {
            let op_mask = args
                .ops
                .as_deref()
                .map(parse_ops)
                .transpose()?
                .unwrap_or_else(all_ops);
            (op_mask, open_trees(args)?)
        }
    };
    let deadline = args.duration.as_deref().map(parse_duration).transpose()?;

    let metrics = match &args.metrics {
        Some(path) => {
            let every = parse_duration(&args.metrics_interval).context("--metrics-interval")?;
            Some((MetricsFile::new(path)?, every))
        }
        None => None,
    };

    if args.max_events == Some(0) {
        bail!("--max-events must be at least 1");
    }
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    Ok(Options {
        op_mask,
        trees,
        deadline,
        ring_size: parse_ring_size(&args.ring_size, page)?,
        metrics,
    })
}

/// `-o journal`, exactly: journal entries instead of lines (a file of that name is
/// `-o ./journal`).
fn to_journal(args: &WatchArgs) -> bool {
    args.output.as_deref().map(Path::as_os_str) == Some(std::ffi::OsStr::new("journal"))
}

/// Root, the output opened, kernel BTF, libbpf's messages: before any program is loaded.
fn preflight(args: &WatchArgs) -> Result<Output> {
    require_root()?;
    let sink = match &args.output {
        _ if to_journal(args) => Output::Journal(Journal::open()?),
        Some(path) => Output::Lines(Sink::file(path)?),
        None => Output::Lines(Sink::stdout()),
    };
    if !Path::new(BTF_PATH).exists() {
        bail!(
            "no kernel BTF at {BTF_PATH}: ownwatch needs a kernel built with CONFIG_DEBUG_INFO_BTF"
        );
    }
    set_libbpf_log(args.verbose);
    Ok(sink)
}

fn set_libbpf_log(verbose: u8) {
    if verbose > 0 {
        let level = if verbose > 1 {
            PrintLevel::Debug
        } else {
            PrintLevel::Info
        };
        libbpf_rs::set_print(Some((level, libbpf_log)));
    } else {
        libbpf_rs::set_print(None);
    }
}

pub fn run(args: WatchArgs) -> Result<u8> {
    // First of all: a SIGHUP from logrotate (or a closing terminal) or a Ctrl-C while we
    // start must not kill us half-attached. SIGHUP without -o has nothing to reopen.
    install_signals()?;
    let opts = options(&args)?;
    let trees = opts.trees;
    let sink = preflight(&args)?;
    let started = Instant::now();
    let start_time = epoch_secs(std::time::SystemTime::now());

    let spec = Spec {
        roots: trees.iter().map(Tree::root).collect(),
        op_mask: opts.op_mask,
        ring_size: opts.ring_size,
    };
    let mut objs = Vec::new();
    let Started {
        backend,
        mut skel,
        links,
        probe_time: t_probe,
        load_time,
        attach_time,
        failures,
    } = start_best(&mut objs, args.backend, &spec)?;
    let t_load = started.elapsed();

    let mut dev_flags = HashMap::new();
    sync_devs(&skel.maps.devs, &trees_now(&trees), &mut dev_flags)?;
    if args.verbose > 0 {
        say_start(
            &failures,
            t_probe,
            (load_time, attach_time),
            t_load,
            started.elapsed(),
        );
        if let Some(e) = links.session_error() {
            eprintln!(
                "ownwatch: the kprobe session did not attach ({e}): a kprobe and a kretprobe \
                 on each completing function instead"
            );
        }
    }
    let mut processor = Processor::new(&trees, args.format, backend, sink);
    processor.fix = trees.iter().any(|t| t.fix);
    processor.max_events = args.max_events;
    if opts.metrics.is_some() {
        processor.metrics = Some(Counts::default());
    }
    let processor = RefCell::new(processor);
    let mut rb = RingBufferBuilder::new();
    rb.add(&skel.maps.events, |data: &[u8]| {
        processor.borrow_mut().handle(data)
    })
    .context("ring buffer")?;
    let rb = rb.build().context("ring buffer")?;

    let n = trees.len();
    // The processor holds the roots from here on: one handle each, closed when it gives a
    // root up, so a lazily unmounted filesystem is not pinned by us.
    drop(spec);
    drop(trees);
    eprintln!(
        "ownwatch: watching {n} tree{} with backend {} ({} hooks{}, attached in {} ms)",
        if n == 1 { "" } else { "s" },
        backend.name(),
        links.all.len(),
        if links.session() {
            ", one a kprobe session"
        } else {
            ""
        },
        started.elapsed().as_millis()
    );
    // systemd (Type=notify): up only now, with every hook attached
    let mut notify = Notify::from_env();
    let status = Status {
        backend: backend.name(),
        trees: n.into(),
    };
    if let Some(s) = notify.as_mut() {
        s.ready(status.line(0, 0));
    }
    // --metrics: written now (all zeros), every interval, and once more at the end
    let mut metrics = opts.metrics.map(|(file, every)| {
        let info = Info {
            backend: backend.name(),
            version: env!("CARGO_PKG_VERSION"),
            start_time,
        };
        Metrics::new(file, every, info)
    });
    write_metrics(metrics.as_mut(), &processor.borrow());
    let bss = skel
        .maps
        .bss_data
        .as_deref_mut()
        .map_or(std::ptr::null_mut(), |b| b as *mut Bss);
    let reload = args.config.as_ref().map(|file| Reload {
        file: file.clone(),
        ov: overrides(&args),
        kernel_ops: opts.op_mask,
        bss,
    });
    let reader_state = if bss.is_null() {
        std::ptr::null_mut()
    } else {
        // SAFETY: a field of the skeleton's mapped .bss, which outlives the loop
        unsafe { std::ptr::addr_of_mut!((*bss).reader_state) }
    };
    let maps = Maps::of(&skel, &links, bss);
    let deadline = opts.deadline.map(|d| Instant::now() + d);
    // Without -o: notice at once when the reader of stdout goes away (`| head -1`), not only
    // at the next event's write.
    let watch_stdout = processor.borrow().out.is_stdout();
    let waiter = Waiter::new(rb.epoll_fd(), skel.maps.events.as_fd(), watch_stdout)
        .context("waiting for the ring buffer")?;
    let res = event_loop(
        &rb,
        waiter,
        &maps,
        &processor,
        dev_flags,
        pace::Pace::new(reader_state),
        deadline,
        args.verbose > 0,
        notify.as_mut().map(|s| (s, &status)),
        metrics.as_mut(),
        reload.as_ref(),
    );
    // after the last flush, whatever ended the loop
    write_metrics(metrics.as_mut(), &processor.borrow());
    if args.verbose > 0 {
        use libbpf_rs::skel::Skel;
        report_recursion_misses(skel.object());
        report_task_storage(&skel);
    }
    // The links go in a child after we exit, which takes seconds (RCU grace periods): till
    // then the programs leave at their first test instead of building records nobody reads.
    drop(rb);
    if let Some(bss) = skel.maps.bss_data.as_deref_mut() {
        // SAFETY: a u32 in the mmap-ed .bss, which the programs only read.
        unsafe { std::ptr::write_volatile(&mut bss.ow_stopping, 1) };
    }
    res
}

/// -v: why better backends were passed over (a normal start says one line: that is for -v and
/// `probe`), and where start-up time went.
/// -v: the passed-over backends, and where the start's time went (`started`: up to the
/// attach, `total`: with the maps filled).
fn say_start(
    failures: &[String],
    probe: Duration,
    (load, attach): (Duration, Duration),
    started: Duration,
    total: Duration,
) {
    for f in failures {
        eprintln!("ownwatch: backend {f}; passed over");
    }
    eprintln!(
        "ownwatch: probe {} ms, load and attach {} ms (programs loaded in {} ms, attached in {} ms), maps {} ms",
        probe.as_millis(),
        (started - probe).as_millis(),
        load.as_millis(),
        attach.as_millis(),
        (total - started).as_millis()
    );
}

/// -v: programs the kernel skipped because they were already running on that CPU (a preempted
/// tracing program blocks the next run of the same program there).
fn report_recursion_misses(obj: &libbpf_rs::Object) {
    for p in obj.progs() {
        let n = recursion_misses(&p);
        if n > 0 {
            eprintln!(
                "ownwatch: program {} skipped {n} times (recursion)",
                p.name().to_string_lossy()
            );
        }
    }
}

/// -v: where the programs kept a thread's pending op or wait (bpf/lib/maps.h): in its task
/// storage, or in the hashes by thread id (5.10 has no task storage; a kernel that has it can
/// still refuse to create it: 7.x allocates it with kmalloc_nolock(), which needs cmpxchg16b).
fn report_task_storage(skel: &OwnwatchSkel) {
    let offered = skel
        .maps
        .rodata_data
        .as_ref()
        .is_some_and(|r| r.task_storage != 0);
    // SAFETY: a u32 in the mmap-ed .bss, written by the programs
    let refused = skel
        .maps
        .bss_data
        .as_ref()
        .is_some_and(|b| unsafe { std::ptr::read_volatile(&b.task_storage_off) } != 0);
    eprintln!(
        "ownwatch: per-thread state in {}",
        match (offered, refused) {
            (false, _) => "hashes (no task storage in this kernel)",
            (true, false) => "task storage",
            (true, true) => "hashes (the kernel refused to create task storage)",
        }
    );
}

/// How often the kernel skipped a program because one was running on that CPU already (its
/// recursion guard; 5.12+ counts it, older kernels say 0).
fn recursion_misses(p: &libbpf_rs::Program) -> u64 {
    use std::os::fd::{AsFd, AsRawFd};
    if !p.autoload() {
        return 0;
    }
    let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: info is a bpf_prog_info of len bytes; the fd is the program's.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(p.as_fd().as_raw_fd(), &mut info, &mut len)
    };
    if rc == 0 {
        info.recursion_misses
    } else {
        0
    }
}

/// All our programs' skipped runs.
fn skipped_runs(obj: &libbpf_rs::Object, links: &Links) -> u64 {
    obj.progs().map(|p| recursion_misses(&p)).sum::<u64>() + links.missed()
}

/// The maps the main loop keeps up to date or reads.
struct Maps<'a> {
    devs: &'a dyn MapCore,
    roots: &'a dyn MapCore,
    /// who may write where (--config reloads change it)
    allowed: &'a dyn MapCore,
    /// the processes whose exe, tty and cgroup the kernel sent (watch/ident.rs)
    idents: &'a dyn MapCore,
    /// the kernel's loss counters in the skeleton's .bss
    lost: LostCounters,
    /// for the programs' skipped runs, and the returns our probes missed
    obj: &'a libbpf_rs::Object,
    links: &'a Links,
    /// the programs' .bss, for their copy of the roots (`roots_fast`); null without
    bss: *mut Bss,
}

impl<'a> Maps<'a> {
    fn of(skel: &'a OwnwatchSkel, links: &'a Links, bss: *mut Bss) -> Maps<'a> {
        use libbpf_rs::skel::Skel;
        Maps {
            devs: &skel.maps.devs,
            roots: &skel.maps.roots,
            allowed: &skel.maps.allowed,
            idents: &skel.maps.idents,
            lost: skel.maps.bss_data.as_deref().map_or(
                LostCounters {
                    records: std::ptr::null(),
                    wait_err: std::ptr::null(),
                    waits: std::ptr::null(),
                },
                |b| LostCounters {
                    records: &b.lost_records,
                    wait_err: &b.lost_wait_err,
                    waits: &b.ow_waits,
                },
            ),
            obj: skel.object(),
            links,
            bss,
        }
    }
}

/// What systemd's STATUS= says (`systemctl status ownwatch`).
struct Status {
    backend: &'static str,
    /// (a config reload changes it)
    trees: std::cell::Cell<usize>,
}

impl Status {
    fn line(&self, events: u64, lost: u64) -> String {
        let trees = self.trees.get();
        format!(
            "watching {trees} tree{} with backend {}: {events} events, {lost} lost",
            if trees == 1 { "" } else { "s" },
            self.backend
        )
    }
}

/// --metrics: FILE rewritten with the processor's counts now.
fn write_metrics(metrics: Option<&mut Metrics>, p: &Processor) {
    if let (Some(m), Some(c)) = (metrics, &p.metrics) {
        m.write(c, p.roots.watched());
    }
}

/// Reads the ring buffer until stopped: keeps the kernel's view of mounts and roots current,
/// reports losses in-band, reopens the output on SIGHUP (and rereads --config's file:
/// `reload`). `notify`: systemd's socket, told the counts once a second when they change,
/// and when we stop. `metrics`: FILE, rewritten each time its interval is over (and by the
/// caller once more at the end).
#[allow(clippy::too_many_arguments)]
fn event_loop(
    rb: &RingBuffer,
    mut waiter: Waiter,
    maps: &Maps,
    processor: &RefCell<Processor>,
    mut dev_flags: HashMap<u32, u32>,
    mut pace: pace::Pace,
    deadline: Option<Instant>,
    verbose: bool,
    mut notify: Option<(&mut Notify, &Status)>,
    mut metrics: Option<&mut Metrics>,
    reload: Option<&Reload>,
) -> Result<u8> {
    let mut losses = Losses {
        lost: 0,
        wait_err: 0,
        skipped: skipped_runs(maps.obj, maps.links),
    };
    let mut devs_synced = Instant::now();
    let mut mounts = MountCalls::default();
    let mounts_changed = mounts::MountsChanged::open();
    let mut synced_moves = processor.borrow().roots.moves;
    loop {
        // Mounts come and go: keep the kernel's view of which superblocks sit inside a tree,
        // at once after a mount call, else once a second when the table changed or a root
        // moved (its path decides the flags too). mountinfo's word is taken before the table
        // is read, also after a mount call: a change after it is said next time.
        let calls = mounts.changed(maps.bss);
        let periodic = devs_synced.elapsed() > Duration::from_secs(1);
        let moves = processor.borrow().roots.moves;
        let table_changed = (calls || periodic) && mounts_changed.since_last();
        if calls || (periodic && (table_changed || moves != synced_moves)) {
            let roots = processor.borrow().roots.now.clone();
            sync_devs(maps.devs, &roots, &mut dev_flags)?;
            synced_moves = moves;
            if calls {
                mounts.synced(maps.bss);
            }
        }
        if periodic {
            devs_synced = Instant::now();
            losses.say_skipped(maps, &mut processor.borrow_mut());
            // An event is overdue once its thread has ended, and a thread's outcome record is
            // in the ring before it ends: read what the ring holds first. (Since the last read
            // the agent may have been held up, writing to a slow reader: the record would be
            // there, the event already gone out without "ret".) An error here comes again
            // at the read below, which reports it.
            let _ = rb.consume();
            processor.borrow_mut().release_overdue();
            if let Some((n, st)) = notify.as_mut() {
                n.status(st.line(processor.borrow().events, losses.lost));
            }
        }
        if metrics.as_ref().is_some_and(|m| m.due()) {
            write_metrics(metrics.as_deref_mut(), &processor.borrow());
        }
        let stopping = STOP.load(Ordering::SeqCst)
            || deadline.is_some_and(|d| Instant::now() >= d)
            || processor.borrow().done();
        processor.borrow_mut().refresh_roots();
        let gone = processor.borrow_mut().roots.take_gone();
        for &(dev, ino) in &gone {
            // the kernel stops matching it; a failure only leaves records we drop anyway
            let _ = maps.roots.delete(&root_key(dev, ino));
        }
        if !gone.is_empty() {
            roots_fast(maps.bss, &processor.borrow().roots.watched_keys());
        }
        if processor.borrow().roots.all_gone() {
            let mut p = processor.borrow_mut();
            p.flush();
            bail!("every watched tree is gone; stopping");
        }
        // While records come densely the kernel does not wake us: look again soon (pace.rs).
        let before = processor.borrow().records;
        let res = if stopping {
            rb.consume()
        } else {
            let sleep = pace.sleep();
            // Records sent while we said AWAKE came without a wakeup: read them before we
            // sleep, now that the kernel knows we may.
            let early = if sleep.read_first {
                rb.consume()
            } else {
                Ok(())
            };
            if early.is_err() || processor.borrow().records > before {
                pace.awake();
                early
            } else {
                let gone = if sleep.dense {
                    waiter.for_interval(sleep.timeout)
                } else {
                    waiter.for_records(sleep.timeout)
                }
                .context("waiting for records")?;
                pace.awake();
                if gone {
                    // As when a write finds the pipe closed (EPIPE): nobody reads us, stop.
                    if verbose {
                        eprintln!("ownwatch: the reader of standard output went away; stopping");
                    }
                    return Ok(0);
                }
                rb.consume()
            }
        };
        pace.got(processor.borrow().records - before);
        if let Err(e) = res {
            if e.kind() != libbpf_rs::ErrorKind::Interrupted && processor.borrow().out_err.is_none()
            {
                return Err(anyhow!("reading the ring buffer: {e}"));
            }
        }
        let hup = HUP.swap(false, Ordering::SeqCst);
        if hup && reload.is_some() {
            // What the ring holds now came from ops made before the reload was asked for:
            // read under the rules they were made under (a new tree's `since` covers the
            // rest). An error here comes again at the next read, which reports it.
            let _ = rb.consume();
        }
        let mut p = processor.borrow_mut();
        losses.say_lost(maps, &mut p);
        for tgid in std::mem::take(&mut p.idents.unknown) {
            // its next record sends its exe, tty and cgroup again
            let _ = maps.idents.delete(&tgid.to_ne_bytes());
        }
        p.flush();
        // logrotate moved the file: continue in a new one, between whole lines.
        if hup && p.out_err.is_none() {
            if let Err(e) = p.out.reopen() {
                eprintln!("ownwatch: reopening the output file failed, keeping the old one: {e}");
            }
        }
        if let Some(r) = reload.filter(|_| hup) {
            match r.apply(&mut p, maps) {
                Ok(n) => {
                    eprintln!(
                        "ownwatch: {}: rules reloaded ({n} tree{})",
                        r.file.display(),
                        if n == 1 { "" } else { "s" }
                    );
                    if let Some((_, st)) = notify.as_ref() {
                        st.trees.set(n);
                    }
                    // new trees: the kernel learns at once which mounts lie inside them
                    let roots = p.roots.now.clone();
                    sync_devs(maps.devs, &roots, &mut dev_flags)?;
                }
                Err(e) => eprintln!(
                    "ownwatch: reloading {} failed, keeping the old rules: {}",
                    r.file.display(),
                    e.replace('\n', " ")
                ),
            }
        }
        if let Some(e) = &p.out_err {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(anyhow!("writing events: {e}"));
        }
        if stopping {
            if let Some((n, _)) = notify.as_ref() {
                n.stopping();
            }
            p.drain_waiting();
            losses.say_skipped(maps, &mut p);
            p.flush();
            if verbose {
                eprintln!(
                    "ownwatch: {} records from the kernel, {} events written, {} lost, {} \
                     writers waiting for an outcome",
                    p.records,
                    p.events,
                    losses.lost,
                    read_counter(maps.lost.waits)
                );
            }
            return Ok(0);
        }
    }
}

/// The programs' copy of the watched roots (`set_roots_fast`); nothing without a .bss.
fn roots_fast(bss: *mut Bss, keys: &[(u32, u32, u64)]) {
    if !bss.is_null() {
        // SAFETY: the skeleton's mapped .bss, which outlives the agent's loop and its reloads
        unsafe { set_roots_fast(bss, keys) };
    }
}

/// --config: what SIGHUP rereads, and what cannot change without a restart.
struct Reload {
    file: PathBuf,
    ov: Overrides,
    /// the ops hooked in the kernel (the union of the trees' ops at start)
    kernel_ops: u32,
    /// the programs' .bss: `all_trees` (bits of the watched trees' indexes) and
    /// `allowed_fast` (the users allowed in all of them); null without
    bss: *mut Bss,
}

impl Reload {
    /// Rereads the file. A valid one swaps the rules of user space and the kernel's maps,
    /// between two records: trees kept (by identity: a renamed root is still the same tree)
    /// get their new rules, new trees are opened and added, trees no longer listed stop being
    /// watched. A bad file, ops the kernel does not hook since start, or more than 64 trees
    /// over the agent's life change nothing (Err: why). Returns the number of trees.
    fn apply(&self, p: &mut Processor, maps: &Maps) -> Result<usize, String> {
        let rules = rules::load(&self.file, &self.ov).map_err(|e| format!("{e:#}"))?;
        let n = p.roots.now.len();
        let mut slots: Vec<Option<TreeRule>> = vec![None; n];
        let mut added = Vec::new();
        for r in rules {
            let md =
                std::fs::metadata(&r.path).map_err(|e| format!("{}: {e}", r.path.display()))?;
            match (0..n).find(|&i| p.roots.fd(i).is_some() && p.roots.id(i) == (md.dev(), md.ino()))
            {
                Some(i) => slots[i] = Some(r),
                None => added.push(r),
            }
        }
        let removed: Vec<usize> = (0..n)
            .filter(|&i| slots[i].is_none() && p.roots.fd(i).is_some())
            .collect();
        let ops = slots
            .iter()
            .flatten()
            .chain(&added)
            .fold(0, |m, r| m | r.filter.ops);
        if ops & !self.kernel_ops != 0 {
            let more: Vec<&str> = crate::kernel::abi::OP_NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| ops & !self.kernel_ops & (1 << i) != 0)
                .map(|(_, n)| *n)
                .collect();
            return Err(format!(
                "ops {} are not hooked since start: restart ownwatch for them",
                more.join(",")
            ));
        }
        if n + added.len() > rules::MAX_TREES {
            return Err(format!(
                "{} trees added: the kernel numbers at most {} trees over the agent's life                  ({n} so far): restart ownwatch",
                added.len(),
                rules::MAX_TREES
            ));
        }
        if !added.is_empty() && self.bss.is_null() {
            return Err("cannot add trees: no .bss in the BPF object".into());
        }
        let new_trees = config_trees(&added).map_err(|e| format!("{e:#}"))?;
        let old_masks = allowed_masks(p.roots.allowed().iter());
        // User space first: a record of a new tree finds it; the kernel's maps after.
        let mut new_idx = Vec::new();
        for t in &new_trees {
            new_idx.push(p.roots.add(t)?);
        }
        let mut allowed = p.roots.allowed().to_vec();
        let mut owners = p.roots.owners.clone();
        let mut fix = p.roots.fix.clone();
        let mut filters = p.roots.filters.clone();
        for (i, r) in slots.into_iter().enumerate() {
            if let Some(r) = r {
                allowed[i] = r.allowed();
                owners[i] = r.owner;
                fix[i] = r.fix;
                filters[i] = r.filter;
            }
        }
        for &i in &removed {
            allowed[i].clear();
        }
        let new_masks = allowed_masks(allowed.iter());
        let bits = |idx: &[usize]| idx.iter().fold(0u64, |m, &i| m | 1 << i);
        let kernel = || -> Result<(), libbpf_rs::Error> {
            write_masks(maps.allowed, &old_masks, &new_masks)?;
            for (t, &i) in new_trees.iter().zip(&new_idx) {
                maps.roots.update(
                    &root_key(t.dev, t.ino),
                    &(i as u32).to_ne_bytes(),
                    MapFlags::ANY,
                )?;
            }
            for &i in &removed {
                let (dev, ino) = p.roots.key(i);
                maps.roots.delete(&root_key(dev, ino))?;
            }
            Ok(())
        };
        // Nobody leaves at the programs' first test while the rules change (the tree's own
        // check after the walk decides meanwhile): the list goes back once all_trees is new.
        // The walks find roots in the map meanwhile (their copy goes back at the end).
        self.set_allowed_fast(None);
        roots_fast(self.bss, &[]);
        if let Err(e) = kernel() {
            // Back to what the old rules need, as far as the kernel lets us.
            let _ = write_masks(maps.allowed, &new_masks, &old_masks);
            for t in &new_trees {
                let _ = maps.roots.delete(&root_key(t.dev, t.ino));
            }
            for &i in &new_idx {
                p.roots.remove(i);
            }
            self.set_allowed_fast(Some(&old_masks));
            roots_fast(self.bss, &p.roots.watched_keys());
            return Err(format!("updating the kernel's maps: {e}"));
        }
        if !self.bss.is_null() {
            // SAFETY: a u64 in the skeleton's mmap-ed .bss, alive while the skeleton is;
            // the programs only read it, a whole aligned u64 at a time.
            unsafe {
                let at = std::ptr::addr_of_mut!((*self.bss).all_trees);
                let old = std::ptr::read_volatile(at);
                std::ptr::write_volatile(at, (old | bits(&new_idx)) & !bits(&removed));
            }
        }
        self.set_allowed_fast(Some(&new_masks));
        p.fix = fix.iter().any(|&f| f);
        p.roots.set_rules(allowed, owners, fix, filters);
        for &i in &removed {
            p.roots.remove(i);
        }
        roots_fast(self.bss, &p.roots.watched_keys());
        Ok((0..p.roots.now.len())
            .filter(|&i| p.roots.fd(i).is_some())
            .count())
    }
}

impl Reload {
    /// The programs' `allowed_fast` from `masks` and the current `all_trees`, its count
    /// written last; None: count 0, nobody on the list.
    fn set_allowed_fast(&self, masks: Option<&HashMap<u32, u64>>) {
        if self.bss.is_null() {
            return;
        }
        // SAFETY: fields of the skeleton's mmap-ed .bss, alive while the skeleton is; the
        // programs only read them, each an aligned whole.
        unsafe {
            let n = std::ptr::addr_of_mut!((*self.bss).allowed_fast_n);
            std::ptr::write_volatile(n, 0);
            let Some(masks) = masks else { return };
            let all = std::ptr::read_volatile(std::ptr::addr_of!((*self.bss).all_trees));
            let users = allowed_everywhere(masks, all);
            let list = std::ptr::addr_of_mut!((*self.bss).allowed_fast);
            for (i, &u) in users.iter().take((*list).len()).enumerate() {
                std::ptr::write_volatile(std::ptr::addr_of_mut!((*list)[i]), u);
            }
            std::ptr::write_volatile(n, users.len() as u32);
        }
    }
}

/// Turns the kernel's `allowed` map from `from` into `to`: entries that go first (the map
/// holds 1024 users), then those that change or come.
fn write_masks(
    map: &dyn MapCore,
    from: &HashMap<u32, u64>,
    to: &HashMap<u32, u64>,
) -> Result<(), libbpf_rs::Error> {
    for u in from.keys().filter(|u| !to.contains_key(u)) {
        map.delete(&u.to_ne_bytes())?;
    }
    for (u, m) in to {
        if from.get(u) != Some(m) {
            map.update(&u.to_ne_bytes(), &m.to_ne_bytes(), MapFlags::ANY)?;
        }
    }
    Ok(())
}

/// What was said so far: records the kernel could not deliver and runs of our programs it
/// skipped (each may have been an event or its outcome), in-band; the wait table's last error,
/// on stderr. (Events that come without "ret" are counted as they are sent: Processor.)
struct Losses {
    lost: u64,
    /// the wait table's last error, once said on stderr
    wait_err: i64,
    skipped: u64,
}

impl Losses {
    fn say_lost(&mut self, maps: &Maps, p: &mut Processor) {
        let lost = read_counter(maps.lost.records);
        if lost > self.lost {
            p.lost(lost - self.lost, None);
            self.lost = lost;
        }
        let err = read_counter(maps.lost.wait_err.cast::<u64>()) as i64;
        if err != 0 && err != self.wait_err {
            eprintln!(
                "ownwatch: the kernel could not keep a writer's wait for its outcome ({}); \
                 its event comes without \"ret\"",
                io::Error::from_raw_os_error(-err as i32)
            );
            self.wait_err = err;
        }
    }

    /// (once a second and at the end: it asks the kernel about every program)
    fn say_skipped(&mut self, maps: &Maps, p: &mut Processor) {
        let skipped = skipped_runs(maps.obj, maps.links);
        if skipped > self.skipped {
            p.skipped(skipped - self.skipped);
            self.skipped = skipped;
        }
    }
}

fn trees_now(trees: &[Tree]) -> Vec<Vec<u8>> {
    trees
        .iter()
        .map(|t| resolve::fd_path(&t.fd).unwrap_or_else(|| t.path.as_os_str().as_bytes().to_vec()))
        .collect()
}

/// Pushes changed entries of `resolve::dev_flags` into the kernel's `devs` map.
fn sync_devs(map: &dyn MapCore, roots: &[Vec<u8>], known: &mut HashMap<u32, u32>) -> Result<()> {
    let now = mounts::dev_flags(&MountTable::load(), roots);
    for (dev, flag) in &now {
        if known.get(dev) != Some(flag) {
            map.update(&dev.to_ne_bytes(), &flag.to_ne_bytes(), MapFlags::ANY)
                .context("updating devs map")?;
            known.insert(*dev, *flag);
        }
    }
    Ok(())
}

/// The kernel's count of the calls that put mounts somewhere (`mounts_gen`, `mounts_busy`,
/// `devs_gen` in bpf/lib/maps.h): after one, the kernel trusts no flag of the devs map until
/// we have read the mount table again and written the generation it holds.
#[derive(Default)]
struct MountCalls {
    /// the generation the devs map was last synced for
    synced: u64,
    /// a generation not synced yet, and since when it has stood
    seen: Option<(u64, Instant)>,
}

/// How long a generation must stand before the table is read for it: the lsm, fentry and
/// kprobe backends bump it at the call's security hook, before the mount is made (the
/// tracepoint backend's programs count the call busy until its exit as well).
const MOUNTS_SETTLE: Duration = Duration::from_millis(20);

/// A call that looks busy for longer is taken as done: its exit program was skipped.
const MOUNTS_STUCK: Duration = Duration::from_secs(1);

impl MountCalls {
    /// Whether mount calls ended since the last sync: then the devs map must be synced and
    /// `synced` called. Without the programs' .bss, never.
    fn changed(&mut self, bss: *mut Bss) -> bool {
        use std::sync::atomic::{AtomicU64, Ordering::Acquire};
        if bss.is_null() {
            return false;
        }
        // SAFETY: u64s in the skeleton's .bss mapping, alive as long as the caller's
        // skeleton, which the programs change only atomically.
        let (gen, busy) = unsafe {
            let gen = AtomicU64::from_ptr(std::ptr::addr_of_mut!((*bss).mounts_gen)).load(Acquire);
            let busy =
                AtomicU64::from_ptr(std::ptr::addr_of_mut!((*bss).mounts_busy)).load(Acquire);
            (gen, busy)
        };
        if gen == self.synced {
            return false;
        }
        match self.seen {
            Some((g, since)) if g == gen => {
                let stood = since.elapsed();
                stood >= MOUNTS_SETTLE && (busy == 0 || stood >= MOUNTS_STUCK)
            }
            _ => {
                self.seen = Some((gen, Instant::now()));
                false
            }
        }
    }

    /// The devs map holds the mounts of the generation `changed` saw: the kernel may trust
    /// its flags again (until the next mount call).
    fn synced(&mut self, bss: *mut Bss) {
        use std::sync::atomic::{AtomicU64, Ordering::Release};
        let Some((gen, _)) = self.seen.take() else {
            return;
        };
        self.synced = gen;
        // SAFETY: as in `changed`; the programs only read devs_gen.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*bss).devs_gen)).store(gen, Release) };
    }
}

/// SIGINT and SIGTERM stop the loop; SIGHUP (logrotate) asks for the output to be reopened
/// (`Sink::reopen`) between events. The handlers only set flags. signal-hook installs them
/// with SA_RESTART: the loop waits in epoll_wait, which returns EINTR after a handler whatever
/// SA_RESTART says (signal(7)), so stopping and reopening stay prompt; an interrupted write
/// to the output is restarted, which is all the sink would do itself.
fn install_signals() -> Result<()> {
    for s in [libc::SIGINT, libc::SIGTERM] {
        signal_hook::flag::register(s, &STOP).context("installing signal handler")?;
    }
    signal_hook::flag::register(libc::SIGHUP, &HUP).context("installing the SIGHUP handler")?;
    Ok(())
}

/// The kernel's loss counters (bpf/lib/maps.h) and its count of waits for an outcome
/// (hooks/vfs.h), in .bss, mapped into our memory: read without a bpf(2) call. Null pointers
/// without a .bss.
struct LostCounters {
    /// records it could not deliver (`lost_records`)
    records: *const u64,
    /// the wait table's last error (`lost_wait_err`, a negative errno)
    wait_err: *const i64,
    /// threads waiting for an outcome, at least (`ow_waits`; verbose, at exit)
    waits: *const u64,
}

/// One of the kernel's counters (`LostCounters`), 0 without a .bss.
fn read_counter(c: *const u64) -> u64 {
    if c.is_null() {
        return 0;
    }
    // SAFETY: a u64 in the skeleton's .bss mapping, which lives as long as the skeleton the
    // caller holds; the kernel updates it atomically, so a volatile read sees a whole value.
    unsafe { std::ptr::read_volatile(c) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mount call makes the devs map stale: synced once its generation has stood a while
    /// with no call busy, or busy for over a second (an exit program skipped); the kernel
    /// learns each sync.
    #[test]
    fn mount_calls_resync_the_devs_map() {
        let settle = || std::thread::sleep(MOUNTS_SETTLE + Duration::from_millis(5));
        // SAFETY: plain integers, all-zero is a valid .bss (as the kernel makes it)
        let mut bss: Bss = unsafe { std::mem::zeroed() };
        let b = &mut bss as *mut Bss;
        let mut m = MountCalls::default();
        assert!(!m.changed(b), "no mount call yet");
        assert!(!m.changed(std::ptr::null_mut()), "no .bss");
        bss.mounts_gen = 1;
        bss.mounts_busy = 1;
        assert!(!m.changed(b), "a call between its entry and exit");
        settle();
        assert!(!m.changed(b), "still busy");
        bss.mounts_gen = 2;
        bss.mounts_busy = 0;
        assert!(!m.changed(b), "a new generation: it must stand first");
        settle();
        assert!(m.changed(b));
        m.synced(b);
        assert_eq!(bss.devs_gen, 2);
        assert!(!m.changed(b), "synced");
        bss.mounts_gen = 3;
        bss.mounts_busy = 1;
        assert!(!m.changed(b));
        settle();
        assert!(!m.changed(b));
        std::thread::sleep(MOUNTS_STUCK);
        assert!(
            m.changed(b),
            "busy for over a second: an exit the kernel skipped"
        );
        m.synced(b);
        assert_eq!(bss.devs_gen, 3);
    }
}
