# Shared by test-kernels.sh and bench-kernels.sh (sourced first): strict mode, the repo as the
# working directory, the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export CACHE=${CACHE:-$repo/.cache/vm}

# select_kernels: the "<release> <dir>" lines of fetch-kernels.sh that VM_KERNELS (a regex on
# the release, default all) selects.
select_kernels() {
  local krel kdir
  while read -r krel kdir; do
    [ -n "$krel" ] || continue
    if [ -n "${VM_KERNELS:-}" ] && ! grep -qE "$VM_KERNELS" <<<"$krel"; then continue; fi
    echo "$krel $kdir"
  done
}
