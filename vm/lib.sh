# Shared by test-kernels.sh and bench-kernels.sh (sourced first): strict mode, the repo as the
# working directory, the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export CACHE=${CACHE:-$repo/.cache/vm}

# select_kernels: the "[<arch>] <release> <dir>" lines (of fetch-kernels.sh) that VM_KERNELS
# (a regex on the release, default all) selects.
select_kernels() {
  local line f
  while read -r line; do
    read -ra f <<<"$line"
    [ "${#f[@]}" -ge 2 ] || continue
    if [ -n "${VM_KERNELS:-}" ] && ! grep -qE "$VM_KERNELS" <<<"${f[-2]}"; then continue; fi
    echo "$line"
  done
}

# host_tools "<archs>" [more packages]: installs what the VMs need on the host when it is
# missing (qemu for each arch, virtiofsd, busybox with cpio for the initramfs, e2fsprogs for
# the /tmp image, jq, xz), apt being the only source; exit 2 if that needs root.
host_tools() {
  local missing=${2:+ $2}
  command -v qemu-system-x86_64 >/dev/null || missing="$missing qemu-system-x86"
  case " $1 " in *" arm64 "*) command -v qemu-system-aarch64 >/dev/null || missing="$missing qemu-system-arm" ;; esac
  [ -x /usr/lib/qemu/virtiofsd ] || missing="$missing qemu-system-common"
  [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x cpio >/dev/null || missing="$missing busybox-static"
  command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null || missing="$missing e2fsprogs"
  command -v jq >/dev/null || missing="$missing jq"
  command -v xz >/dev/null || missing="$missing xz-utils"
  if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || { echo "${0##*/}: run as root to install:$missing" >&2; exit 2; }
    echo "${0##*/}: installing$missing" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
}
