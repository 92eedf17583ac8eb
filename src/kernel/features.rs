//! The kernel features the backends adapt to, as `probe` names them: each one present or
//! not, and what depends on it. (What the trials measure, trampolines, kprobes, BPF LSM and
//! sleepable LSM, comes from kernel::trial.)

use libbpf_rs::btf::Btf;

use super::abi::prog;
use super::args;
use super::caps::tracepoint_exists;
use super::load;

pub struct Feature {
    pub name: &'static str,
    pub present: bool,
    /// What it decides, for the reader of `probe`.
    pub effect: &'static str,
}

/// The features, from the kernel's BTF and tracefs (none without BTF: nothing loads then).
pub fn detect() -> Vec<Feature> {
    let Ok(btf) = Btf::from_vmlinux() else {
        return Vec::new();
    };
    vec![
        Feature {
            name: "bpf_loop",
            present: args::has_helper(&btf, "loop"),
            effect: "not needed: walks and copies are bounded loops in global functions \
                     (5.10 has no bpf_loop)",
        },
        Feature {
            name: "get_func_arg",
            present: args::has_helper(&btf, "get_func_arg"),
            effect: "not needed: lsm, fentry and kprobe read arguments where the kernel's \
                     BTF says they are",
        },
        Feature {
            name: "rdonly_cast",
            present: args::has_rdonly_cast(&btf),
            effect: "the programs read dentries, mounts, tasks and cgroups with direct loads \
                     (6.2+); without, one bpf_probe_read_kernel call per field",
        },
        Feature {
            name: "trampoline_struct_args",
            present: args::trampolines_take_structs(&btf),
            effect: "lsm and fentry see chown at security_path_chown (kuid_t by value, \
                     6.1+); without, at chown_common",
        },
        Feature {
            name: "fprobe",
            present: args::has_fprobe(&btf),
            effect: "kprobe backend: the hooks are kprobe_multi attachments (fprobe, \
                     CONFIG_FPROBE, 5.18+), fewer instructions per hit than a kprobe and \
                     no perf event each; without, kprobes",
        },
        Feature {
            name: "kprobe_session",
            present: args::has_kprobe_session(&btf),
            effect: "kprobe backend: most ops' outcomes come from one kprobe session whose \
                     return runs only for the call that ends a wait, and a write open's from \
                     the file_open hook's return, the other LSMs' verdict (6.10+ with \
                     CONFIG_FPROBE); without, a kprobe and a kretprobe on each function, \
                     both run for every writer, and a write open another LSM refused is \
                     reported",
        },
        Feature {
            name: "ctime_tracepoints",
            present: prog::CTIME
                .iter()
                .all(|(_, tp)| tracepoint_exists("timestamp", tp)),
            effect: "tracepoint backend: paths given as strings are exact (6.13+); \
                     without, resolved in user space after the fact",
        },
        Feature {
            name: "faultable_syscall_tracepoints",
            present: args::faultable_syscall_tracepoints(&btf),
            effect: "the syscall tracepoints run BPF preemptibly (7.x): a writer preempted \
                     inside one of our programs would make the kernel skip that program's \
                     runs on its CPU meanwhile (each syscall has its own programs, so only \
                     writers in the same syscall collide); our programs keep preemption off \
                     while they run (bpf_preempt_disable), so mostly the kernel's few \
                     instructions around them are exposed",
        },
        Feature {
            name: "io_uring_tracepoint",
            present: load::uring_program(Some(&btf)).is_some(),
            effect: "tracepoint backend: io_uring file operations are seen (the submission \
                     tracepoint passes the request, 5.19+, and its paths are readable at \
                     submission)",
        },
    ]
}
