#!/usr/bin/env bash
# Fetch Debian's cloud kernels for the kernel matrix into $CACHE (default .cache/vm) and
# extract each one's vmlinuz and modules. Uses a private apt configuration (own sources list,
# state and cache under $CACHE/apt), so the host's apt sources are never touched.
# VM_KERNEL_SET: which kernel lines (default all: 5.10 6.1 6.12 7.2 7.3; or a subset).
# VM_ARCH: the kernels' Debian architecture, amd64 (default) or arm64 (its own apt state,
# $CACHE/apt-arm64, which lists only arm64 and arch-all packages).
# Prints "<version> <dir>" per kernel on stdout; each <dir>/root has boot/vmlinuz-<version>
# and lib/modules/<version>.
set -euo pipefail
CACHE=${CACHE:-.cache/vm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
ARCH=${VM_ARCH:-amd64}
case $ARCH in amd64) A=$CACHE/apt ;; arm64) A=$CACHE/apt-$ARCH ;;
  *) echo "fetch-kernels: unknown VM_ARCH $ARCH (amd64 or arm64)" >&2; exit 2 ;; esac
mkdir -p "$A/lists/partial" "$A/archives/partial" "$A/etc/preferences.d" "$A/etc/apt.conf.d" "$CACHE/debs"
SET=${VM_KERNEL_SET:-5.10 6.1 6.12 7.2 7.3}
[ "$SET" != all ] || SET="5.10 6.1 6.12 7.2 7.3"
K=/usr/share/keyrings/debian-archive-keyring.gpg
{
  echo "deb [signed-by=$K] $MIRROR bookworm main"
  echo "deb [signed-by=$K] $MIRROR bookworm-backports main"
  case " $SET " in *" 5.10 "*) echo "deb [signed-by=$K] $MIRROR bullseye main" ;; esac
  case " $SET " in *" 7."*) echo "deb [signed-by=$K] $MIRROR trixie-backports main"
                           echo "deb [signed-by=$K] $MIRROR sid main" ;; esac
} > "$A/sources.list.new"
# a changed list of suites needs fresh indexes
if ! cmp -s "$A/sources.list.new" "$A/sources.list"; then rm -f "$A/lists/.stamp"; fi
mv "$A/sources.list.new" "$A/sources.list"
. "$(dirname "$0")/private-apt.sh"
private_apt "$A" "$ARCH"

# Refresh the private lists at most once a day (they are only indexes; the .debs stay cached).
stamp=$A/lists/.stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ]; then
  apt-get "${APT[@]}" update -qq >&2
  touch "$stamp"
fi

pick() { # newest package name matching an extended regex
  apt-cache "${APT[@]}" pkgnames "$2" | grep -E "$1" | sort -V | tail -1
}
fetch() { # package -> its .deb in $CACHE/debs
  local pkg=$1 ver deb
  ver=$(apt-cache "${APT[@]}" show "$pkg" | sed -n 's/^Version: //p' | sort -V | tail -1)
  deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    (cd "$CACHE/debs" && apt-get "${APT[@]}" download -qq "$pkg=$ver" >&2)
    deb=$(ls "$CACHE/debs/${pkg}_"*.deb | head -1)
  fi
  echo "$deb"
}
for line in $SET; do
  # Up to 6.x the image package holds the kernel and its modules; from 7.x it is a meta
  # package: the kernel is in linux-binary-<ver> (usr/lib/modules/<ver>/vmlinuz), the modules
  # in linux-modules-<ver>, modules.builtin and the config in linux-base-<ver>.
  case $line in
    5.10) pkgs=$(pick "^linux-image-5\.10\.0-[0-9]+-cloud-$ARCH-unsigned\$" linux-image-) ;;
    6.1) pkgs=$(pick "^linux-image-6\.1\.0-[0-9]+-cloud-$ARCH-unsigned\$" linux-image-) ;;
    6.12) pkgs=$(pick "^linux-image-6\.12\.[0-9.]+\+deb12-cloud-$ARCH-unsigned\$" linux-image-) ;;
    7.*) b=$(pick "^linux-binary-${line//./\\.}\\.[0-9.]+\\+deb1[34]-cloud-$ARCH\$" linux-binary-)
         v=${b#linux-binary-}
         pkgs="$b ${b:+linux-modules-$v linux-base-$v}" ;;
    *) echo "fetch-kernels: unknown kernel line $line (VM_KERNEL_SET)" >&2; exit 2 ;;
  esac
  pkg=${pkgs%% *}
  [ -n "$pkg" ] || { echo "fetch-kernels: no package for kernel $line" >&2; exit 2; }
  kdir=$CACHE/kernels/$pkg
  if [ ! -e "$kdir/.done" ]; then
    rm -rf "$kdir"; mkdir -p "$kdir/root"
    for p in $pkgs; do dpkg-deb -x "$(fetch "$p")" "$kdir/root"; done
    # merged /usr (7.x): the layout run-kernel.sh reads
    if [ ! -d "$kdir/root/lib/modules" ] && [ -d "$kdir/root/usr/lib/modules" ]; then
      ln -s usr/lib "$kdir/root/lib"
    fi
    krel=$(ls "$kdir/root/lib/modules" | head -1)
    if [ ! -e "$kdir/root/boot/vmlinuz-$krel" ]; then
      mkdir -p "$kdir/root/boot"
      ln -s "../lib/modules/$krel/vmlinuz" "$kdir/root/boot/vmlinuz-$krel"
    fi
    touch "$kdir/.done"
  fi
  krel=$(ls "$kdir/root/lib/modules" | head -1)
  echo "$krel $kdir"
done
