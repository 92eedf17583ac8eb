#!/usr/bin/env bash
# make bench-kernels: issue 6's micro storms inside qemu (TCG) on the matrix kernels, once per
# backend, as ratios to the same storm without ownwatch measured right before (allowed = the
# tree's owner writes, filtered in the kernel; offending = root writes, every op reported).
# Under emulation absolute times mean little; the ratios compare backends on one kernel.
# Knobs: VM_KERNELS, VM_BACKENDS (default all four), BENCH_OPS, BENCH_N, as test-kernels.
. "$(dirname "$0")/lib.sh"
BACKENDS=${VM_BACKENDS:-lsm fentry kprobe tracepoint}
OPS=${BENCH_OPS:-chmod create rename getppid}
[ "$(id -u)" = 0 ] || { echo "bench-kernels: must run as root" >&2; exit 2; }
kernels=$("$repo/vm/fetch-kernels.sh")
export CARGO_TARGET_DIR=${VM_TARGET_DIR:-$CACHE/target}
cargo build --release --locked 2>"$CACHE/cargo-bench.log" || { tail -20 "$CACHE/cargo-bench.log" >&2; exit 2; }
mkdir -p "$CACHE/bench"
gcc -O2 -Wall -o "$CACHE/bench/owbench" bench/owbench.c
declare -A pid
while read -r krel kdir; do
  out=$CACHE/bench/$krel
  rm -rf "$out"; mkdir -p "$out"
  cat > "$out/env" <<ENV
REPO=$repo
BIN=$CARGO_TARGET_DIR/release/ownwatch
OWB=$CACHE/bench/owbench
BACKENDS="$BACKENDS"
OPS="$OPS"
BENCH_N=${BENCH_N:-4000}
ENV
  echo "== kernel $krel: booting (TCG)" >&2
  VM_NEED="$CARGO_TARGET_DIR/release/ownwatch $CACHE/bench/owbench" VM_JOB=$repo/vm/bench-guest.sh "$repo/vm/run-kernel.sh" "$kdir" "$out" "$out/env" > "$out/run.log" 2>&1 &
  pid[$krel]=$!
done < <(select_kernels <<<"$kernels")
for krel in $(printf '%s\n' "${!pid[@]}" | sort); do
  wait "${pid[$krel]}" || true
  con=$CACHE/bench/$krel/console.log
  echo "==== kernel $krel: median ns/op (3 runs of ${BENCH_N:-4000}), ratio to the storm without ownwatch"
  printf '%-11s %-8s %12s %12s %8s %12s %12s %8s\n' backend op base-allow allowed ratio base-offend offending ratio
  sed -n 's/^OWNWATCH-VM: BENCH \([^ ]*\) \([^ ]*\) rep=[0-9]* allowed_ns=\([0-9]*\) offending_ns=\([0-9]*\).*/\1 \2 \3 \4/p' "$con" |
    awk -v n="${BENCH_N:-4000}" '
      { key = $1 " " $2; cnt[key]++; al[key, cnt[key]] = $3; of[key, cnt[key]] = $4 }
      END {
        for (key in cnt) {
          split(key, kk, " "); be = kk[1]; op = kk[2]
          if (be ~ /-base$/) continue
          b = be "-base " op
          if (!(b in cnt)) continue
          ma = m3(al, key); mo = m3(of, key); ba = m3(al, b); bo = m3(of, b)
          printf "%-11s %-8s %12.0f %12.0f %7.2fx %12.0f %12.0f %7.2fx\n", be, op, ba / n, ma / n, ma / ba, bo / n, mo / n, mo / bo
        }
      }
      function m3(arr, key,   x, y, z, t) {
        x = arr[key, 1]; y = arr[key, 2]; z = arr[key, 3]
        if (x > y) { t = x; x = y; y = t }
        if (y > z) { t = y; y = z; z = t }
        if (x > y) { t = x; x = y; y = t }
        return y
      }' | sort
  grep -h "^OWNWATCH-VM: BENCH-EVENTS" "$con" | sed 's/^OWNWATCH-VM: BENCH-EVENTS /  events written by /'
done
