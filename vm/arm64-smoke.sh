#!/usr/bin/env bash
# vm/arm64-smoke.sh [KERNEL_LINE...]: boot each of Debian's arm64 cloud kernels (default 6.1
# 6.12 7.3) in qemu-system-aarch64 (TCG, -M virt -cpu max) with a busybox-static:arm64
# initramfs holding the aarch64 ownwatch (default the static one of make dist
# TARGET=aarch64-unknown-linux-gnu; OWNWATCH_BIN=a dynamic one gets its libraries copied in)
# and run vm/arm64-init there: ownwatch probe, then per backend a 5 s watch in which root does
# each of the 14 ops once. Prints one line per kernel and backend, exit 1 unless every backend
# that probe calls usable reported every op. Console: $CACHE/results-arm64/<release>/console.log ("OWNWATCH-VM:"
# lines also on stderr). VM_BACKENDS (default lsm fentry kprobe tracepoint), VM_MEM, VM_CPUS
# (default 2: multi-threaded TCG), VM_TIMEOUT, VM_VERBOSE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export CACHE=${CACHE:-$repo/.cache/vm}
lines=${*:-6.1 6.12 7.3}
bin=${OWNWATCH_BIN:-target/static/aarch64-unknown-linux-gnu/release/ownwatch}
[ -x "$bin" ] || { echo "arm64-smoke: no $bin (make dist TARGET=aarch64-unknown-linux-gnu)" >&2; exit 2; }
missing=""
command -v qemu-system-aarch64 >/dev/null || missing="$missing qemu-system-arm"
command -v cpio >/dev/null || missing="$missing cpio"
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || { echo "arm64-smoke: run as root to install$missing" >&2; exit 2; }
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
kernels=$(VM_ARCH=arm64 VM_KERNEL_SET=$lines vm/fetch-kernels.sh)
# busybox-static for arm64: the one of the kernel matrix's arm64 userland
busybox=$(vm/arm64-root.sh)/bin/busybox
stage=$(mktemp -d "${TMPDIR:-/tmp}/ownwatch-arm64.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/root"/{bin,proc,sys,dev,etc,tmp,run}
cp "$busybox" "$stage/root/bin/busybox"
install -m 0755 vm/arm64-init "$stage/root/init"
install -m 0755 "$bin" "$stage/root/ownwatch"
aarch64-linux-gnu-gcc -O2 -Wall -static -o "$stage/root/bin/xattr" vm/xattr.c
# a dynamic binary (make build TARGET=...) gets its libraries from the host's arm64 multiarch
# packages (cross/build.sh installed them), the loader at /lib/ld-linux-aarch64.so.1
needed() { aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
if aarch64-linux-gnu-readelf -l "$bin" | grep -q 'program interpreter'; then
  mkdir -p "$stage/root/lib/aarch64-linux-gnu"
  cp -L /usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 "$stage/root/lib/"
  todo=$(needed "$bin")
  while [ -n "$todo" ]; do
    set -- $todo; l=$1; shift; todo="$*"
    [ ! -e "$stage/root/lib/aarch64-linux-gnu/$l" ] || continue
    f=/usr/lib/aarch64-linux-gnu/$l
    [ -e "$f" ] || { echo "arm64-smoke: $l not found for $bin" >&2; exit 2; }
    cp -L "$f" "$stage/root/lib/aarch64-linux-gnu/$l"
    todo="$todo $(needed "$f" | grep -v ld-linux || true)"
  done
fi
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$stage/root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$stage/root/etc/group"
(cd "$stage/root" && find . | cpio -o -H newc --quiet | gzip -1) > "$stage/initrd.gz"
b=${VM_BACKENDS:-lsm fentry kprobe tracepoint}
fail=0
summary=()
while read -r krel kdir; do
out=$CACHE/results-arm64/$krel
mkdir -p "$out"
s=$(date +%s)
set +e
timeout "${VM_TIMEOUT:-1800}" qemu-system-aarch64 -M virt -cpu "${VM_CPU:-max,pauth-impdef=on}" \
  -accel tcg -smp "${VM_CPUS:-2}" -m "${VM_MEM:-2G}" \
  -kernel "$kdir/root/boot/vmlinuz-$krel" -initrd "$stage/initrd.gz" \
  -append "console=ttyAMA0 lsm=lockdown,capability,landlock,bpf quiet loglevel=4 panic=-1 ownwatch.backends=${b// /,}" \
  -display none -monitor none -serial stdio -no-reboot -nodefaults \
  < /dev/null 2>&1 | stdbuf -o0 tr -d '\r' | tee "$out/console.log" |
  { if [ -n "${VM_VERBOSE:-}" ]; then cat; else grep --line-buffered '^OWNWATCH-VM:' | sed -u "s/^OWNWATCH-VM:/  [$krel]/"; fi; } >&2
rc=${PIPESTATUS[0]}
set -e
echo "arm64-smoke: $krel: qemu exit $rc after $(( $(date +%s) - s )) s; console: $out/console.log" >&2
sed -n 's/^OWNWATCH-VM: PROBE| //p' "$out/console.log" > "$out/probe.json"
grep -q '^OWNWATCH-VM: DONE' "$out/console.log" || { summary+=("arm64 $krel: no DONE (qemu exit $rc)"); fail=1; }
for be in $b; do
  usable=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([x for x in d["backends"] if x["name"]==sys.argv[2]][0]["usable"])' "$out/probe.json" "$be" 2>/dev/null || echo unknown)
  w=$(grep "^OWNWATCH-VM: WATCH $be " "$out/console.log" | head -1)
  att=$(sed -n "s/^OWNWATCH-VM: $be err| ownwatch: watching .*(\(.*\))\$/\1/p" "$out/console.log")
  why=$(sed -n "s/^OWNWATCH-VM: $be err| ownwatch: backend .* is not usable here: //p" "$out/console.log" | cut -c1-120)
  case "$usable $w" in
    "True "*"rc=0 "*"missing=") s=${w#*seen=}; r="all $(echo ${s% missing=*} | wc -w) ops reported ($att)" ;;
    "False "*"rc=2 "*) r="not usable, as probe says: $why" ;;
    *) r="FAIL (probe usable=$usable; ${w#OWNWATCH-VM: })"; fail=1 ;;
  esac
  summary+=("arm64 $krel $be: $r")
done
done <<< "$kernels"
printf '%s\n' "${summary[@]}"
exit $fail
