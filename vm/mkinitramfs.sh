#!/usr/bin/env bash
# mkinitramfs.sh KERNEL_ROOT OUT: a busybox-static (BUSYBOX, default /bin/busybox) initramfs with vm/init and the modules the
# kernel needs for virtio-pci, virtio-blk and virtiofs, and overlayfs for the tests (with their dependencies, in load order;
# compressed modules are decompressed because busybox insmod reads plain .ko files).
set -euo pipefail
kroot=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
krel=$(ls "$kroot/lib/modules" | head -1)
mdir=$kroot/lib/modules/$krel
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,proc,sys,dev,modules,host}
cp "${BUSYBOX:-/bin/busybox}" "$stage/bin/busybox"
install -m 0755 "$here/init" "$stage/init"
# name -> module file (names use _ where file names may use -)
declare -A file=()
while IFS= read -r f; do
  b=$(basename "$f"); b=${b%%.ko*}; file[${b//-/_}]=$f
done < <(cd "$mdir" && find kernel -name '*.ko*')
modinfo_depends() { # the depends= field of a module's .modinfo
  case $1 in
    *.xz) xz -dc "$mdir/$1" ;; *.zst) zstd -qdc "$mdir/$1" ;; *.gz) gzip -dc "$mdir/$1" ;;
    *) cat "$mdir/$1" ;;
  esac | tr '\0' '\n' | sed -n 's/^depends=//p' | tr , ' '
}
declare -A seen=()
order=()
add() { # module name, after its dependencies
  local n=$1 d
  [ -z "${seen[$n]:-}" ] || return 0
  seen[$n]=1
  if grep -qE "/$n\.ko\$" "$mdir/modules.builtin"; then return 0; fi
  [ -n "${file[$n]:-}" ] || { echo "mkinitramfs: $n is neither built in nor a module of $krel" >&2; exit 2; }
  for d in $(modinfo_depends "${file[$n]}"); do add "${d//-/_}"; done
  order+=("${file[$n]}")
}
for name in virtio_pci virtio_blk virtiofs overlay; do add "$name"; done
: > "$stage/modules.order"
for m in "${order[@]}"; do
  base=$(basename "$m"); plain=${base%.xz}; plain=${plain%.zst}; plain=${plain%.gz}
  case $base in
    *.xz) xz -dc "$mdir/$m" > "$stage/modules/$plain" ;;
    *.zst) zstd -qdc "$mdir/$m" > "$stage/modules/$plain" ;;
    *.gz) gzip -dc "$mdir/$m" > "$stage/modules/$plain" ;;
    *) cp "$mdir/$m" "$stage/modules/$plain" ;;
  esac
  echo "$plain" >> "$stage/modules.order"
done
(cd "$stage" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
echo "modules: ${order[*]:-none}" >&2
