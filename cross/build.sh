#!/usr/bin/env bash
# cross/build.sh TARGET: `make build TARGET=...` for a target other than this machine's,
# on a Debian machine (as root for what it installs): target/TARGET/release/ownwatch.
# STATIC=1 (make dist): a fully static binary instead, target/static/TARGET/release/ownwatch.
# CROSS_TESTS=1: the integration test binaries as well (built for TARGET, not run), or
# CROSS_TESTS="watch tools": those test targets only;
# CROSS_TESTS_JSON=FILE: cargo's JSON messages of that build there (the kernel matrix reads
# the test executables' paths from it).
# CROSS_PREPARE=1: only install and fetch what the build needs (the downloads, which the
# kernel matrix makes while the host's own tests run), no build.
#
# What it needs, installed when missing:
# - the target's C toolchain (gcc-<triple>, libc6-dev-<arch>-cross): the linker, and the
#   compiler of libbpf (libbpf-sys builds its vendored libbpf for the target);
# - libelf and zlib for the target, from Debian's multiarch packages (libelf-dev:<arch>,
#   zlib1g-dev:<arch>; `dpkg --add-architecture <arch>` once): libbpf's dependencies;
# - Rust's standard library for the target. rustup's target when it is installed; else
#   std is built from source (-Z build-std) out of Debian's rust-src package of exactly
#   this rustc's version (arch all; fetched with a private apt state under $CACHE, the host's
#   apt sources are not used, and unpacked there), which needs RUSTC_BOOTSTRAP=1.
# The BPF objects are the same for every target but for vmlinux/<arch> and the register
# macros (build.rs; libbpf-cargo passes -D__TARGET_ARCH_<arch>).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:?usage: cross/build.sh TARGET}
case $TARGET in
  aarch64-unknown-linux-gnu) deb_arch=arm64 triple=aarch64-linux-gnu ;;
  x86_64-unknown-linux-gnu) deb_arch=amd64 triple=x86_64-linux-gnu ;;
  *) echo "cross/build.sh: unsupported target $TARGET" >&2; exit 2 ;;
esac
CACHE=${CACHE:-.cache/cross}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE" && CACHE=$(cd "$CACHE" && pwd)
host_deb_arch=$(dpkg --print-architecture)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need_root() { [ "$(id -u)" = 0 ] || { echo "cross/build.sh: run as root to install: $*" >&2; exit 2; }; }

# --- C toolchain and libraries for the target
pkgs=()
if [ "$deb_arch" != "$host_deb_arch" ]; then
  pkgs+=("gcc-$triple" "libc6-dev-$deb_arch-cross")
fi
pkgs+=("libelf-dev:$deb_arch" "zlib1g-dev:$deb_arch")
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  need_root "${missing[@]}"
  echo "cross/build.sh: installing ${missing[*]}" >&2
  if [ "$deb_arch" != "$host_deb_arch" ] && ! dpkg --print-foreign-architectures | grep -qx "$deb_arch"; then
    dpkg --add-architecture "$deb_arch"
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Rust's standard library for the target
sysroot=$(rustc --print sysroot)
rust_ver=$(rustc -V | awk '{print $2}')
build_std=()
if [ ! -d "$sysroot/lib/rustlib/$TARGET/lib" ]; then
  src=$CACHE/rust-src-$rust_ver
  if [ ! -e "$src/.done" ]; then
    # Debian's rust-src of exactly this version (trixie-backports keeps several; sid the newest)
    A=$CACHE/apt && mkdir -p "$A/debs"
    . vm/private-apt.sh
    private_apt "$A" "$host_deb_arch"
    K=/usr/share/keyrings/debian-archive-keyring.gpg
    { echo "deb [signed-by=$K] $MIRROR trixie-backports main"
      echo "deb [signed-by=$K] $MIRROR sid main"; } > "$A/sources.list"
    apt-get "${APT[@]}" update -qq
    ver=$(apt-cache "${APT[@]}" madison rust-src | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
          grep -E "^${rust_ver//./\\.}\+dfsg" | sort -V | tail -1)
    [ -n "$ver" ] || { echo "cross/build.sh: no Debian rust-src $rust_ver for rustc $rust_ver, and no rustup target $TARGET" >&2; exit 2; }
    rm -f "$A/debs/"*.deb
    (cd "$A/debs" && apt-get "${APT[@]}" download -qq "rust-src=$ver")
    rm -rf "$src" "$src.tmp" && mkdir -p "$src.tmp"
    dpkg-deb -x "$A/debs/"rust-src_*.deb "$src.tmp"
    [ "$(cat "$src.tmp/usr/src/rustc-$rust_ver/src/version")" = "$rust_ver" ] ||
      { echo "cross/build.sh: rust-src $ver is not rustc $rust_ver" >&2; exit 2; }
    mv "$src.tmp/usr/src/rustc-$rust_ver/library" "$src" && rm -rf "$src.tmp"
    echo "rust-src=$ver" > "$src/.done"
  fi
  # cargo's -Z build-std reads the library sources from here instead of the sysroot
  export __CARGO_TESTS_ONLY_SRC_ROOT=$src RUSTC_BOOTSTRAP=1
  build_std=(-Z build-std=std,panic_abort)
  # the test binaries (CROSS_TESTS=1) link libtest too
  [ "${CROSS_TESTS:-0}" = 0 ] || build_std=(-Z build-std=std,panic_abort,test)
fi

# --- the build
[ "${CROSS_PREPARE:-0}" = 0 ] || exit 0

T=${TARGET//-/_} && T=${T^^}
export "CARGO_TARGET_${T}_LINKER=$triple-gcc" "CC_${TARGET//-/_}=$triple-gcc" "AR_${TARGET//-/_}=$triple-ar"
features=()
if [ "${STATIC:-0}" = 1 ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/static}
  export "LIBBPF_SYS_LIBRARY_PATH_${TARGET//-/_}=/usr/lib/$triple"
  # the build script's libbpf-sys (libbpf-cargo's, for this machine) is built with the same
  # static features: Debian's libelf.a and libz.a of this machine
  host=$(rustc -vV | sed -n 's/^host: //p')
  [ "$host" = "$TARGET" ] || export "LIBBPF_SYS_LIBRARY_PATH_${host//-/_}=/usr/lib/$(gcc -print-multiarch)"
  export "CARGO_TARGET_${T}_RUSTFLAGS=-C target-feature=+crt-static"
  features=(--features static)
fi
if [ "${CROSS_TESTS:-0}" != 0 ]; then
  # CROSS_TESTS=1: the integration test binaries too, built for TARGET, not run; or the
  # targets it names
  only=()
  [ "$CROSS_TESTS" = 1 ] || for t in $CROSS_TESTS; do only+=(--test "$t"); done
  if [ -n "${CROSS_TESTS_JSON:-}" ]; then
    cargo test --release --locked --no-run --target "$TARGET" "${features[@]}" "${build_std[@]}" \
      "${only[@]}" --message-format=json > "$CROSS_TESTS_JSON"
  else
    cargo test --release --locked --no-run --target "$TARGET" "${features[@]}" "${build_std[@]}" "${only[@]}"
  fi
fi
cargo build --release --locked --target "$TARGET" "${features[@]}" "${build_std[@]}"
bin=${CARGO_TARGET_DIR:-target}/$TARGET/release/ownwatch
file "$bin" 2>/dev/null || ls -l "$bin"
