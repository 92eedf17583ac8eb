//! Everything that talks to the kernel before events flow: the ABI shared with bpf/ (abi), what
//! this kernel has (caps), where its functions keep their arguments (args), trial programs (trial),
//! kretprobes with many instances (kretprobe), the best-first choice of a backend (plan),
//! and opening, switching on and attaching one backend's programs (load).

pub mod abi;
pub mod args;
pub mod caps;
pub mod features;
pub mod kretprobe;
pub mod load;
pub mod plan;
pub mod trial;
