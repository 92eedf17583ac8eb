use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const OBJECTS: &[&str] = &["ownwatch", "probe"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR set by cargo"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("target arch set by cargo");
    let vmlinux = format!("vmlinux/{arch}");
    let mut extra: Vec<String> = vec![format!("-I{vmlinux}"), "-Ibpf".into()];
    if let Ok(flags) = env::var("BPF_CFLAGS") {
        extra.extend(flags.split_whitespace().map(str::to_owned));
    }
    for obj in OBJECTS {
        let src = format!("bpf/{obj}.bpf.c");
        let mut b = SkeletonBuilder::new();
        b.source(&src).clang_args(extra.iter().map(String::as_str));
        if let Ok(clang) = env::var("CLANG") {
            b.clang(clang);
        }
        b.build_and_generate(out.join(format!("{obj}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {src}: {e:#}"));
        println!("cargo:rerun-if-changed={src}");
    }
    // every header under bpf/ (lib/, hooks/, syscalls/): cargo watches a directory whole
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed={vmlinux}/vmlinux.h");
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=BPF_CFLAGS");
}
