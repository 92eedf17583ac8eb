#!/usr/bin/env bash
# make vmlinux: vmlinux/<arch>/vmlinux.h for each architecture from one pinned Debian kernel
# package's BTF, so that anyone regenerates the same headers on any machine (the running
# kernel's /sys/kernel/btf/vmlinux is one machine's kernel, and only its architecture's):
#   linux-image-$VMLINUX_KERNEL-cloud-<debian arch> = $VMLINUX_PKG_VERSION
# is fetched with a private apt state under $CACHE (the host's apt sources are not used),
# its vmlinuz unpacked (vmlinux/extract-btf.py) and dumped with `bpftool btf dump ... format
# c`. vmlinux/SOURCES records the package, its SHA-256 and the header's.
# VMLINUX_ARCHS: which of x86_64 aarch64 (default both).
set -euo pipefail
cd "$(dirname "$0")/.."
KERNEL=${VMLINUX_KERNEL:-6.18.15+deb13}
PKG_VERSION=${VMLINUX_PKG_VERSION:-6.18.15-1~bpo13+1}
SUITE=${VMLINUX_SUITE:-trixie-backports}
ARCHS=${VMLINUX_ARCHS:-x86_64 aarch64}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${CACHE:-.cache/vmlinux}
mkdir -p "$CACHE" && CACHE=$(cd "$CACHE" && pwd)
command -v bpftool >/dev/null && command -v zstd >/dev/null || {
  [ "$(id -u)" = 0 ] || { echo "vmlinux: run as root to install bpftool and zstd" >&2; exit 2; }
  apt-get install -y -qq --no-install-recommends bpftool zstd >/dev/null; }
. vm/private-apt.sh
K=/usr/share/keyrings/debian-archive-keyring.gpg
for arch in $ARCHS; do
  case $arch in x86_64) deb_arch=amd64 ;; aarch64) deb_arch=arm64 ;;
    *) echo "vmlinux: unknown architecture $arch (x86_64 or aarch64)" >&2; exit 2 ;; esac
  A=$CACHE/apt-$deb_arch
  mkdir -p "$A/debs"
  private_apt "$A" "$deb_arch"
  echo "deb [signed-by=$K] $MIRROR $SUITE main" > "$A/sources.list"
  pkg=linux-image-$KERNEL-cloud-$deb_arch
  deb=$(ls "$A/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    apt-get "${APT[@]}" update -qq
    (cd "$A/debs" && apt-get "${APT[@]}" download -qq "$pkg=$PKG_VERSION")
    deb=$(ls "$A/debs/${pkg}_"*.deb | head -1)
  fi
  x=$CACHE/$deb_arch && rm -rf "$x" && mkdir -p "$x"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" --wildcards './boot/vmlinuz-*'
  python3 vmlinux/extract-btf.py "$x"/boot/vmlinuz-* "$x/btf"
  mkdir -p "vmlinux/$arch"
  bpftool btf dump file "$x/btf" format c > "vmlinux/$arch/vmlinux.h.new"
  mv "vmlinux/$arch/vmlinux.h.new" "vmlinux/$arch/vmlinux.h"
  line="$arch $pkg=$PKG_VERSION $(bpftool version | sed -n '1s/^bpftool v/bpftool-/p')"
  line="$line deb-sha256=$(sha256sum < "$deb" | cut -d' ' -f1) vmlinux.h-sha256=$(sha256sum < "vmlinux/$arch/vmlinux.h" | cut -d' ' -f1)"
  { grep '^#' vmlinux/SOURCES 2>/dev/null || true
    { grep -v -e '^#' -e "^$arch " vmlinux/SOURCES 2>/dev/null || true; echo "$line"; } | sort
  } > vmlinux/SOURCES.new
  mv vmlinux/SOURCES.new vmlinux/SOURCES
  echo "vmlinux: $line" >&2
done
