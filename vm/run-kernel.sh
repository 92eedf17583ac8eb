#!/usr/bin/env bash
# run-kernel.sh KERNEL_DIR OUT_DIR ENV_FILE: boot one fetched kernel under TCG with the host's
# root shared read-only (virtiofs) and a fresh ext4 image as /tmp, run vm/guest-job.sh there,
# and copy the guest's /tmp/.job/out to OUT_DIR. The console goes to OUT_DIR/console.log.
# VM_ARCH=arm64: an arm64 kernel in qemu-system-aarch64 (-M virt); the shared root is then
# VM_ROOT (vm/arm64-root.sh: an arm64 userland) with the host's VM_BINDS (the repo, the target
# directory) bound in read-only at the same paths, and VM_BUSYBOX an arm64 busybox for the
# initramfs.
set -euo pipefail
kdir=$1 out=$2 envfile=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
kroot=$kdir/root
krel=$(ls "$kroot/lib/modules" | head -1)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ownwatch-vm.XXXXXX")
vfs_pid=""
cleanup() {
  [ -z "$vfs_pid" ] || kill "$vfs_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# initramfs, cached per kernel (rebuilt when vm/init or this harness changes)
arch=${VM_ARCH:-amd64}
case $arch in
  amd64) busybox=/bin/busybox root=/ binds="" console=ttyS0 ;;
  arm64) busybox=${VM_BUSYBOX:?VM_BUSYBOX: an arm64 busybox} root=${VM_ROOT:?VM_ROOT: an arm64 root}
         binds=${VM_BINDS:-} console=ttyAMA0 ;;
  *) echo "run-kernel: unknown VM_ARCH $arch" >&2; exit 2 ;;
esac
sum=$(cat "$here/init" "$here/mkinitramfs.sh" "$busybox" | sha256sum | cut -c1-16)
initrd=$kdir/initrd-$sum.cpio.gz
[ -e "$initrd" ] || { rm -f "$kdir"/initrd-*.cpio.gz; BUSYBOX=$busybox "$here/mkinitramfs.sh" "$kroot" "$initrd"; }

# the guest's /tmp: a sparse ext4 image holding the job's settings
mkdir -p "$work/tmp/.job"
chmod 1777 "$work/tmp"
cp "$envfile" "$work/tmp/.job/env"
# The guest's /tmp hides the host's: what the job needs from under the host's /tmp (a clone
# in /tmp, say) goes into the image at the same path. VM_NEED: files and directories.
for f in "$here/guest-job.sh" ${VM_JOB:-} ${VM_NEED:-}; do
  case $f in
    /tmp/*) mkdir -p "$work/tmp/$(dirname "${f#/tmp/}")" && cp -a "$f" "$work/tmp/${f#/tmp/}" ;;
  esac
done
truncate -s "${VM_DISK:-4G}" "$work/disk.img"
mkfs.ext4 -q -F -E root_owner=0:0 -d "$work/tmp" "$work/disk.img"

# virtiofsd serves a read-only bind of / (arm64: of VM_ROOT, with VM_BINDS bound in) made in
# a private mount namespace, so the guest cannot write to the host whatever it does (the guest
# also mounts it ro).
mkdir -p "$work/hostroot"
for b in $binds; do mkdir -p "$root/$b"; done
sock=$work/vfs.sock
unshare -m --propagation private sh -c '
  r=$1 s=$2 src=$3; shift 3
  mount --bind "$src" "$r" && mount -o remount,bind,ro "$r" || exit 1
  for b in "$@"; do mount --bind "$b" "$r/$b" && mount -o remount,bind,ro "$r/$b" || exit 1; done
  exec /usr/lib/qemu/virtiofsd --socket-path="$s" -o source="$r" -o sandbox=chroot \
    -o cache=always -o log_level=err' sh "$work/hostroot" "$sock" "$root" $binds > "$out/virtiofsd.log" 2>&1 &
vfs_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "virtiofsd did not start:"; cat "$out/virtiofsd.log"; exit 2; } >&2

mem=${VM_MEM:-2G}
# TCG: single-threaded (MTTCG crashed 6.12 on text patching) with cx16 off, except on the
# kernels VM_CX16 matches (a regex on the release, default the newest, 7.3). 7.x allocates BPF
# local storage with kmalloc_nolock(), which refuses every allocation on a CPU without
# cmpxchg16b: without CX16 our task-storage maps stay empty and the programs take their
# fallback (the hashes). Every x86-64 machine of the last 15 years has CX16, so 7.3 runs as
# on real hardware and 7.2 keeps testing the fallback. The /dev/kvm of our machines fails
# guests ("KVM internal error ... emulation failure" early in boot, -cpu host trips an MSR
# assertion), so KVM is only used when asked for: VM_ACCEL=kvm.
# Also without ERMS and FSRM (VM_REP_FLAGS, default "-erms,-fsrm"): with them the kernel
# copies and clears with `rep movsb`/`rep stosb`, which TCG runs one byte per pass through the
# instruction; without them it uses its loops of 8-byte moves. Measured on 7.3 (four agent
# starts, interleaved, three rounds): 20-36 % less host CPU (loading the programs, mostly the
# verifier, about a third faster); the whole suite 612 s instead of 735 s (README). Real CPUs
# without them exist (Intel's before Ice Lake have no FSRM); nothing we test depends on them.
# make bench-kernels keeps them: its instruction counts stay comparable with the figures
# recorded before.
cx16=-cx16
if [[ $krel =~ ${VM_CX16-^7\.3\.} ]]; then cx16=+cx16; fi
rep=${VM_REP_FLAGS--erms,-fsrm}
accel=${VM_ACCEL:-tcg}
# arm64 (-M virt): multi-threaded TCG, which aarch64 guests run well, on a Neoverse N1 (the
# cores of AWS Graviton2 and Ampere Altra): without pointer authentication, whose PACIASP and
# AUTIASP at every kernel function's entry and exit TCG computes in software. Measured on 7.3
# (four agent starts, interleaved, two rounds): 30-33 s of host CPU against 42-48 s with
# `-cpu max,pauth-impdef=on`, the CPU before (VM_CPU=max,pauth-impdef=on gives it back).
if [ "$arch" = arm64 ]; then
  qemu=(qemu-system-aarch64 -M virt,memory-backend=mem -accel "tcg,thread=${VM_TCG_THREAD:-multi}"
        -cpu "${VM_CPU:-neoverse-n1}")
elif [ "$accel" = kvm ]; then qemu=(qemu-system-x86_64 -machine memory-backend=mem -accel kvm -cpu "${VM_CPU:-host}")
else qemu=(qemu-system-x86_64 -machine memory-backend=mem -accel "tcg,thread=${VM_TCG_THREAD:-single}"
           -cpu "${VM_CPU:-max,$cx16${rep:+,$rep}}"); fi
# VM_ICOUNT=1 (make bench-kernels): the guest clock advances one ns per instruction executed
# (on any vCPU) and stands still while idle: timings count instructions, deterministically.
# icount needs single-threaded TCG.
if [ "${VM_ICOUNT:-0}" = 1 ]; then
  qemu=("${qemu[@]/thread=multi/thread=single}" -icount shift=0,sleep=off)
fi
set +e
timeout "${VM_TIMEOUT:-4500}" "${qemu[@]}" -smp "${VM_CPUS:-$(nproc)}" -m "$mem" \
  -object memory-backend-memfd,id=mem,size="$mem",share=on \
  -chardev socket,id=vfs,path="$sock" -device vhost-user-fs-pci,chardev=vfs,tag=hostroot \
  -drive file="$work/disk.img",if=virtio,format=raw \
  -kernel "$kroot/boot/vmlinuz-$krel" -initrd "$initrd" \
  -append "console=$console lsm=lockdown,capability,landlock,bpf quiet loglevel=4 panic=-1 softlockup_panic=0 ${VM_APPEND:-}ownwatch.job=${VM_JOB:-$here/guest-job.sh}" \
  -display none -monitor none -serial stdio -no-reboot -nodefaults \
  < /dev/null 2>&1 | stdbuf -o0 tr -d '\r' | tee "$out/console.log" | { if [ -n "${VM_VERBOSE:-}" ]; then cat; else grep --line-buffered '^OWNWATCH-VM:' | sed -u "s/^OWNWATCH-VM:/  [$krel]/"; fi; } >&2
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || echo "qemu exited with $rc (124: timeout after ${VM_TIMEOUT:-4500}s)" >&2

# the guest's logs, read from the image without mounting it
rm -rf "$out/job"
debugfs -R "rdump /.job/out $work" "$work/disk.img" >/dev/null 2>&1 && cp -r "$work/out" "$out/job" || true
exit "$rc"
