#!/usr/bin/env bash
# Fetch Debian's cloud kernels for the kernel matrix into $CACHE (default .cache/vm) and
# extract each one's vmlinuz and modules. Uses a private apt configuration (own sources list,
# state and cache under $CACHE/apt), so the host's apt sources are never touched.
# Prints "<version> <dir>" per kernel on stdout.
set -euo pipefail
CACHE=${CACHE:-.cache/vm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
A=$CACHE/apt
mkdir -p "$A/lists/partial" "$A/archives/partial" "$A/etc/preferences.d" "$A/etc/apt.conf.d" "$CACHE/debs"
cat > "$A/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm-backports main
SRC
APT=(-o "Dir::Etc::SourceList=$A/sources.list" -o "Dir::Etc::SourceParts=-"
     -o "Dir::Etc::Parts=$A/etc/apt.conf.d" -o "Dir::Etc::PreferencesParts=$A/etc/preferences.d"
     -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A" -o "Dir::Cache::Archives=$A/archives"
     -o "Dir::State::status=/var/lib/dpkg/status" -o "APT::Get::List-Cleanup=0"
     -o "Debug::NoLocking=1" -o "Acquire::Languages=none" -o "APT::Sandbox::User=root")

# Refresh the private lists at most once a day (they are only indexes; the .debs stay cached).
stamp=$A/lists/.stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ]; then
  apt-get "${APT[@]}" update -qq >&2
  touch "$stamp"
fi

pick() { # newest package name matching an extended regex
  apt-cache "${APT[@]}" pkgnames linux-image- | grep -E "$1" | sort -V | tail -1
}
for pat in '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' \
           '^linux-image-6\.12\.[0-9.]+\+deb12-cloud-amd64-unsigned$'; do
  pkg=$(pick "$pat")
  [ -n "$pkg" ] || { echo "fetch-kernels: no package matches $pat" >&2; exit 2; }
  ver=$(apt-cache "${APT[@]}" show "$pkg" | sed -n 's/^Version: //p' | sort -V | tail -1)
  deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    (cd "$CACHE/debs" && apt-get "${APT[@]}" download -qq "$pkg=$ver" >&2)
    deb=$(ls "$CACHE/debs/${pkg}_"*.deb | head -1)
  fi
  kdir=$CACHE/kernels/$pkg
  if [ ! -e "$kdir/.done" ]; then
    rm -rf "$kdir"; mkdir -p "$kdir"
    dpkg-deb -x "$deb" "$kdir/root"
    touch "$kdir/.done"
  fi
  krel=$(ls "$kdir/root/lib/modules" | head -1)
  echo "$krel $kdir"
done
