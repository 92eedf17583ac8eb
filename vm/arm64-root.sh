#!/usr/bin/env bash
# vm/arm64-root.sh: the arm64 guests' root file system for the kernel matrix (VM_ARCH=arm64):
# Debian bookworm's arm64 packages of what the tests and vm/guest-job.sh run (a shell, jq,
# coreutils, tar, attr, util-linux's setpriv, ...) with their dependencies, unpacked (never
# configured: no maintainer script runs) into $CACHE/arm64-root/<hash of the list>/root, with
# merged /usr and this machine's /etc/passwd and /etc/group (the tests' users are numeric).
# The test binaries and ownwatch are static (cross/build.sh STATIC=1), so no library of ours is
# needed; busybox-static is there for the initramfs (bin/busybox). Prints the root's path.
# Uses a private apt state ($CACHE/apt-arm64-root): the host's apt sources and dpkg state are
# never touched.
set -euo pipefail
CACHE=${CACHE:-.cache/vm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE" && CACHE=$(cd "$CACHE" && pwd)
PKGS="dash bash coreutils tar attr util-linux grep sed findutils gzip diffutils procps jq busybox-static"
key=$(echo "$PKGS bookworm v1" | sha256sum | cut -c1-12)
dir=$CACHE/arm64-root/$key
if [ ! -e "$dir/.done" ]; then
  A=$CACHE/apt-arm64-root
  . "$(dirname "$0")/private-apt.sh"
  private_apt "$A" arm64
  K=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb [signed-by=$K] $MIRROR bookworm main" > "$A/sources.list"
  : > "$A/status"
  # nothing is installed as far as this apt knows: every dependency is fetched
  APT+=(-o "Dir::State::status=$A/status" -o "APT::Install-Recommends=0")
  apt-get "${APT[@]}" update -qq >&2
  rm -f "$A/archives/"*.deb
  apt-get "${APT[@]}" install -y -qq --download-only $PKGS >&2
  rm -rf "$dir" && mkdir -p "$dir/root"
  r=$dir/root
  mkdir -p "$r/usr/bin" "$r/usr/sbin" "$r/usr/lib"
  for d in bin sbin lib; do ln -s "usr/$d" "$r/$d"; done
  for deb in "$A/archives/"*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$r"
  done
  [ -e "$r/bin/sh" ] || ln -s dash "$r/bin/sh"
  # what the kernel-matrix guest mounts on, and reads
  mkdir -p "$r"/{proc,sys,dev,run,tmp,root,etc}
  cp /etc/passwd /etc/group "$r/etc/"
  ls "$A/archives/" | sed -n 's/_arm64\.deb$//p; s/_all\.deb$//p' > "$dir/packages"
  touch "$dir/.done"
fi
echo "$dir/root"
