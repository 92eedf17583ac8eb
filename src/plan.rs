//! Which backend to use: a pure function of what the probe measured, unit-tested with
//! fabricated kernels.

use crate::config::BackendReq;

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

    /// Whether this build has the per-op handlers for it (lsm, fentry and kprobe come with
    /// issue 3; until then the probe still measures them).
    pub fn implemented(self) -> bool {
        matches!(self, Backend::Tracepoint)
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

    /// Usable = works on this kernel and implemented in this build; Err gives the reason.
    pub fn usable(&self, b: Backend) -> Result<(), String> {
        if !self.btf {
            return Err(
                "no kernel BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot load".into(),
            );
        }
        self.status(b)?;
        if !b.implemented() {
            return Err("works on this kernel, but this build has no handlers for it yet".into());
        }
        Ok(())
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

    fn facts(btf: bool, works: [Result<(), &str>; 4]) -> Facts {
        Facts {
            btf,
            statuses: Backend::ALL
                .iter()
                .zip(works)
                .map(|(&backend, w)| Status {
                    backend,
                    works: w.map_err(str::to_owned),
                })
                .collect(),
        }
    }

    #[test]
    fn our_618_machine_ends_at_tracepoint() {
        let f = facts(
            true,
            [
                Err("load refused: EPERM"),
                Err("load refused: EPERM"),
                Err("attach failed: ENOENT (kprobes not built in)"),
                Ok(()),
            ],
        );
        assert_eq!(choose(&f, BackendReq::Auto), Ok(Backend::Tracepoint));
        let e = choose(&f, BackendReq::Lsm).unwrap_err();
        assert!(e.contains("lsm") && e.contains("EPERM"), "{e}");
        let e = choose(&f, BackendReq::Kprobe).unwrap_err();
        assert!(e.contains("ENOENT"), "{e}");
        assert_eq!(choose(&f, BackendReq::Tracepoint), Ok(Backend::Tracepoint));
    }

    #[test]
    fn kernels_where_everything_attaches_still_pick_an_implemented_backend() {
        // 6.1-like and 6.12-like: all four attach and fire.
        let f = facts(true, [Ok(()), Ok(()), Ok(()), Ok(())]);
        assert_eq!(choose(&f, BackendReq::Auto), Ok(Backend::Tracepoint));
        let e = choose(&f, BackendReq::Fentry).unwrap_err();
        assert!(e.contains("no handlers"), "{e}");
    }

    #[test]
    fn no_bpf_lsm_or_no_security_path() {
        let f = facts(
            true,
            [
                Err("BPF LSM not active (lsm=lockdown,capability)"),
                Err("security_path_mkdir not in BTF (CONFIG_SECURITY_PATH off)"),
                Err("security_path_mkdir not in BTF (CONFIG_SECURITY_PATH off)"),
                Ok(()),
            ],
        );
        assert_eq!(choose(&f, BackendReq::Auto), Ok(Backend::Tracepoint));
    }

    #[test]
    fn no_btf_nothing_works() {
        let f = facts(false, [Ok(()), Ok(()), Ok(()), Ok(())]);
        let e = choose(&f, BackendReq::Auto).unwrap_err();
        assert!(e.contains("BTF"), "{e}");
        let e = choose(&f, BackendReq::Tracepoint).unwrap_err();
        assert!(e.contains("BTF"), "{e}");
    }

    #[test]
    fn nothing_fires() {
        let f = facts(true, [Err("a"), Err("b"), Err("c"), Err("tracefs missing")]);
        let e = choose(&f, BackendReq::Auto).unwrap_err();
        assert!(e.contains("tracepoint: tracefs missing"), "{e}");
    }
}
