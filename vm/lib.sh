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
