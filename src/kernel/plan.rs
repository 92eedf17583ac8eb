//! Which backend to use: a pure function of what the probe measured, unit-tested with
//! fabricated kernels.

/// `--backend`: one by name, or the best this kernel allows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendReq {
    Auto,
    Lsm,
    Fentry,
    Kprobe,
    Tracepoint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Lsm,
    Fentry,
    Kprobe,
    Tracepoint,
}

impl Backend {
    /// Best first.
    pub const ALL: [Backend; 4] = [
        Backend::Lsm,
        Backend::Fentry,
        Backend::Kprobe,
        Backend::Tracepoint,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Lsm => "lsm",
            Backend::Fentry => "fentry",
            Backend::Kprobe => "kprobe",
            Backend::Tracepoint => "tracepoint",
        }
    }

    fn from_req(r: BackendReq) -> Option<Backend> {
        match r {
            BackendReq::Auto => None,
            BackendReq::Lsm => Some(Backend::Lsm),
            BackendReq::Fentry => Some(Backend::Fentry),
            BackendReq::Kprobe => Some(Backend::Kprobe),
            BackendReq::Tracepoint => Some(Backend::Tracepoint),
        }
    }
}

/// The backends to try for a request, best first: every one for auto, else the one named.
/// (`choose` walks the same order on the probe's facts; `watch` tries them for real.)
pub fn candidates(r: BackendReq) -> Vec<Backend> {
    match Backend::from_req(r) {
        Some(b) => vec![b],
        None => Backend::ALL.to_vec(),
    }
}

impl From<Backend> for BackendReq {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Lsm => BackendReq::Lsm,
            Backend::Fentry => BackendReq::Fentry,
            Backend::Kprobe => BackendReq::Kprobe,
            Backend::Tracepoint => BackendReq::Tracepoint,
        }
    }
}

/// What the probe found for one backend on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub backend: Backend,
    /// Ok when a trial program loaded, attached and fired; else the measured reason.
    pub works: Result<(), String>,
}

/// Everything the choice depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub btf: bool,
    pub statuses: Vec<Status>,
}

impl Facts {
    fn status(&self, b: Backend) -> Result<(), String> {
        self.statuses
            .iter()
            .find(|s| s.backend == b)
            .map(|s| s.works.clone())
            .unwrap_or_else(|| Err("not probed".into()))
    }

    /// Usable = its trial loaded, attached and fired on this kernel; Err gives the reason.
    pub fn usable(&self, b: Backend) -> Result<(), String> {
        if !self.btf {
            return Err(
                "no kernel BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot load".into(),
            );
        }
        self.status(b)
    }
}

/// The backend to run with, or why the request cannot be met.
pub fn choose(facts: &Facts, req: BackendReq) -> Result<Backend, String> {
    match Backend::from_req(req) {
        Some(b) => facts
            .usable(b)
            .map(|()| b)
            .map_err(|why| format!("backend {} is not usable here: {why}", b.name())),
        None => {
            let mut why = Vec::new();
            for b in Backend::ALL {
                match facts.usable(b) {
                    Ok(()) => return Ok(b),
                    Err(e) => why.push(format!("{}: {e}", b.name())),
                }
            }
            Err(format!("no backend is usable ({})", why.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_best_first_or_the_one_named() {
        assert_eq!(candidates(BackendReq::Auto), Backend::ALL.to_vec());
        for b in Backend::ALL {
            assert_eq!(candidates(b.into()), vec![b]);
        }
    }

    /// What the trials of lsm, fentry, kprobe, tracepoint found, in that order, separated by
    /// " | ": "ok" or the reason it failed.
    fn facts(btf: bool, works: &str) -> Facts {
        Facts {
            btf,
            statuses: Backend::ALL
                .iter()
                .zip(works.split(" | "))
                .map(|(&backend, w)| Status {
                    backend,
                    works: if w == "ok" { Ok(()) } else { Err(w.to_owned()) },
                })
                .collect(),
        }
    }

    #[test]
    fn our_618_machine_ends_at_tracepoint() {
        let f = facts(
            true,
            "load refused: EPERM | \
             load refused: EPERM | \
             attach failed: ENOENT (kprobes not built in) | \
             ok",
        );
        assert_eq!(choose(&f, BackendReq::Auto), Ok(Backend::Tracepoint));
        let e = choose(&f, BackendReq::Lsm).unwrap_err();
        assert!(e.contains("lsm") && e.contains("EPERM"), "{e}");
        let e = choose(&f, BackendReq::Kprobe).unwrap_err();
        assert!(e.contains("ENOENT"), "{e}");
        assert_eq!(choose(&f, BackendReq::Tracepoint), Ok(Backend::Tracepoint));
    }

    #[test]
    fn kernels_where_everything_attaches_pick_lsm() {
        // 6.1-like and 6.12-like (measured in the VMs): all four attach and fire. Whether
        // lsm.s works (6.12 yes, 6.1 EINVAL) does not matter: the handlers are not sleepable.
        let f = facts(true, "ok | ok | ok | ok");
        assert_eq!(choose(&f, BackendReq::Auto), Ok(Backend::Lsm));
        assert_eq!(choose(&f, BackendReq::Fentry), Ok(Backend::Fentry));
        assert_eq!(choose(&f, BackendReq::Kprobe), Ok(Backend::Kprobe));
        assert_eq!(choose(&f, BackendReq::Tracepoint), Ok(Backend::Tracepoint));
    }

    #[test]
    fn lsm_not_in_the_boot_list_gives_fentry() {
        let why = "BPF LSM not active (lsm=lockdown,capability,landlock)";
        let f = facts(true, &format!("{why} | ok | ok | ok"));
        assert_eq!(choose(&f, BackendReq::Auto), Ok(Backend::Fentry));
        let e = choose(&f, BackendReq::Lsm).unwrap_err();
        assert!(e.contains("lsm=lockdown"), "{e}");
    }

    #[test]
    fn no_trampolines_gives_kprobe() {
        // e.g. a kernel without CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS
        let why = "attach failed: ENOTSUPP";
        let f = facts(true, &format!("{why} | {why} | ok | ok"));
        assert_eq!(choose(&f, BackendReq::Auto), Ok(Backend::Kprobe));
    }

    #[test]
    fn no_bpf_lsm_or_no_security_path() {
        let f = facts(
            true,
            "BPF LSM not active (lsm=lockdown,capability) | \
             security_path_mkdir not in BTF (CONFIG_SECURITY_PATH off) | \
             security_path_mkdir not in BTF (CONFIG_SECURITY_PATH off) | \
             ok",
        );
        assert_eq!(choose(&f, BackendReq::Auto), Ok(Backend::Tracepoint));
    }

    #[test]
    fn no_btf_nothing_works() {
        let f = facts(false, "ok | ok | ok | ok");
        let e = choose(&f, BackendReq::Auto).unwrap_err();
        assert!(e.contains("BTF"), "{e}");
        let e = choose(&f, BackendReq::Tracepoint).unwrap_err();
        assert!(e.contains("BTF"), "{e}");
    }

    #[test]
    fn nothing_fires() {
        let f = facts(true, "a | b | c | tracefs missing");
        let e = choose(&f, BackendReq::Auto).unwrap_err();
        assert!(e.contains("tracepoint: tracefs missing"), "{e}");
    }
}
