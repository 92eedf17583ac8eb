#!/usr/bin/env bash
# make bench-kernels: what ownwatch costs a writer, per backend, inside qemu on the matrix
# kernels (default 6.12 and 7.3, amd64): issue 14's mixed storm (create+write, rename, chmod,
# unlink, mkdir, rmdir; BENCH_N iterations, default 3000 = 18,000 ops, on tmpfs) as the tree's
# owner (allowed) and as root (offending: every op reported), as ratios to the same storm with
# no agent measured right before and right after (vm/bench-guest.sh). By default under
# `-icount shift=0,sleep=off` (VM_ICOUNT=0 for plain TCG): the guest clock counts executed
# instructions, on both vCPUs, so the agent's own work counts too, and the figures are
# deterministic whatever else the host is doing (repeats agree within about 1 %).
# Knobs: VM_KERNEL_SET, VM_KERNELS, VM_BACKENDS (default all four), BENCH_OPS (default storm;
# also create mkdir rename chmod chown unlink openw ropen getppid, and tarlike: what tar -x does
# with each file as root, 3 ops per iteration, in x/y/z; tardeep: the same six levels down with
# a source tree's names), BENCH_N, BENCH_REPS (3),
# VM_GUEST_ENV (variables for the guest, e.g. OWNWATCH_CORE_CAST=0 to compare, BENCH_TREE=srv/app
# for a tree below its filesystem's root: names above it to walk), BENCH_OUT (where
# each kernel's results go, default .cache/vm/bench: two runs at once need one each).
. "$(dirname "$0")/lib.sh"
BACKENDS=${VM_BACKENDS:-lsm fentry kprobe tracepoint}
OPS=${BENCH_OPS:-storm}
N=${BENCH_N:-3000}
export VM_ICOUNT=${VM_ICOUNT:-1}
# the CPU its recorded figures were measured on (vm/run-kernel.sh: the matrix leaves ERMS and
# FSRM out)
export VM_REP_FLAGS=${VM_REP_FLAGS-}
[ "$(id -u)" = 0 ] || { echo "bench-kernels: must run as root" >&2; exit 2; }
# (bpftool: the guests read the programs' run counts and times with it, from the host's root)
host_tools amd64 "$(command -v bpftool >/dev/null || echo bpftool)"
kernels=$(VM_KERNEL_SET=${VM_KERNEL_SET:-6.12 7.3} "$repo/vm/fetch-kernels.sh")
export CARGO_TARGET_DIR=${VM_TARGET_DIR:-$CACHE/target}
cargo build --release --locked 2>"$CACHE/cargo-bench.log" || { tail -20 "$CACHE/cargo-bench.log" >&2; exit 2; }
mkdir -p "$CACHE/bench"
# static: the same instructions whatever the guest's libc
gcc -O2 -Wall -static -o "$CACHE/bench/owbench" "$repo/bench/owbench.c"
# awk: the median of arr[key, 1..cnt[key]]
AWK_MED='
      function med(arr, key,   k, i, j, t, v) {
        k = cnt[key]
        for (i = 1; i <= k; i++) v[i] = arr[key, i]
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return v[int((k + 1) / 2)]
      }'
declare -A pid
while read -r krel kdir; do
  out=${BENCH_OUT:-$CACHE/bench}/$krel
  rm -rf "$out"; mkdir -p "$out"
  cat > "$out/env" <<ENV
REPO=$repo
BIN=$CARGO_TARGET_DIR/release/ownwatch
OWB=$CACHE/bench/owbench
BACKENDS="$BACKENDS"
OPS="$OPS"
BENCH_N=$N
BENCH_REPS=${BENCH_REPS:-3}
${VM_GUEST_ENV:+export $VM_GUEST_ENV}
ENV
  echo "== kernel $krel: booting ($([ "$VM_ICOUNT" = 1 ] && echo "TCG, icount" || echo TCG))" >&2
  VM_NEED="$CARGO_TARGET_DIR/release/ownwatch $CACHE/bench/owbench" VM_JOB=$repo/vm/bench-guest.sh "$repo/vm/run-kernel.sh" "$kdir" "$out" "$out/env" > "$out/run.log" 2>&1 &
  pid[$krel]=$!
done < <(select_kernels <<<"$kernels")
unit=$([ "$VM_ICOUNT" = 1 ] && echo "instructions" || echo "ns")
for krel in $(printf '%s\n' "${!pid[@]}" | sort); do
  wait "${pid[$krel]}" || true
  con=${BENCH_OUT:-$CACHE/bench}/$krel/console.log
  echo "==== kernel $krel: $unit per op (median of ${BENCH_REPS:-3} storms of $N iterations), ratio to no agent"
  echo "     (base: the mean of the medians right before and right after the agent; drift: after/before)"
  printf '%-11s %-8s %10s %10s %7s %10s %10s %7s %7s\n' backend op base allowed ratio base offending ratio drift
  sed -n 's/^OWNWATCH-VM: BENCH \([^ ]*\) \([^ ]*\) rep=[0-9]* allowed_ns=\([0-9]*\) offending_ns=\([0-9]*\) ops=\([0-9]*\).*/\1 \2 \3 \4 \5/p' "$con" |
    awk '
      { key = $1 " " $2; c = ++cnt[key]; al[key, c] = $3; of[key, c] = $4; ops[$2] = $5 }
      END {
        for (key in cnt) {
          split(key, kk, " "); be = kk[1]; op = kk[2]
          if (be ~ /-base[12]$/) continue
          b1 = be "-base1 " op; b2 = be "-base2 " op
          if (!(b1 in cnt) || !(b2 in cnt)) continue
          n = ops[op]
          ba = (med(al, b1) + med(al, b2)) / 2; bo = (med(of, b1) + med(of, b2)) / 2
          ma = med(al, key); mo = med(of, key)
          printf "%-11s %-8s %10.0f %10.0f %6.2fx %10.0f %10.0f %6.2fx %6.3f\n", be, op, ba / n, ma / n, ma / ba, bo / n, mo / n, mo / bo, med(of, b2) / med(of, b1)
        }
      }
      '"$AWK_MED" | sort
  { grep -h "^OWNWATCH-VM: BENCH-EVENTS" "$con" || true; } | sed 's/^OWNWATCH-VM: BENCH-EVENTS /  events delivered by /'
  echo "  the agent's own instructions per event (its threads' run time while it wrote the writer-alone"
  echo "  storms' backlog, nothing else running; the kernel's work for it included):"
  sed -n 's/^OWNWATCH-VM: BENCH-WRITER-AGENT \([^ ]*\) agent_ns=\([0-9]*\) events=\([0-9]*\).*/\1 \2 \3/p' "$con" |
    awk '$3 > 0 { printf "    %-11s %8.0f per event (%d events)\n", $1, $2 / $3, $3 }' | sort
  echo "  the writer alone: offending storms with the agent stopped (SIGSTOP, a ring for all of"
  echo "  them: no reads, none of its instructions), $unit per op and ratio to the same base:"
  { sed -n 's/^OWNWATCH-VM: BENCH \([^ ]*-base[12]\) \([^ ]*\) rep=[0-9]* allowed_ns=[0-9]* offending_ns=\([0-9]*\) ops=\([0-9]*\).*/B \1 \2 \3 \4/p' "$con"
    sed -n 's/^OWNWATCH-VM: BENCH-WRITER \([^ ]*\) \([^ ]*\) rep=[0-9]* offending_ns=\([0-9]*\) ops=\([0-9]*\).*/W \1 \2 \3 \4/p' "$con"; } |
    awk '
      { key = $2 " " $3; c = ++cnt[key]; v[key, c] = $4; ops[$3] = $5; if ($1 == "W") w[key] = 1 }
      END {
        for (key in w) {
          split(key, kk, " "); be = kk[1]; op = kk[2]
          b1 = be "-base1 " op; b2 = be "-base2 " op
          if (!(b1 in cnt) || !(b2 in cnt)) continue
          n = ops[op]
          b = (med(v, b1) + med(v, b2)) / 2; m = med(v, key)
          printf "    %-11s %-8s base %8.0f writer %8.0f %6.2fx (+%.0f per op)\n", be, op, b / n, m / n, m / b, (m - b) / n
        }
      }
      '"$AWK_MED" | sort
  { grep -h "^OWNWATCH-VM: BENCH-WRITER-EVENTS" "$con" || true; } | sed 's/^OWNWATCH-VM: BENCH-WRITER-EVENTS /    events delivered afterwards by /'
  echo "  BPF programs, one more storm each with kernel.bpf_stats_enabled (their own time, not the trampolines'):"
  echo "  backend op who <$unit of BPF per op> <program runs per op> program=runs/op:$unit/run ..."
  { grep -h "^OWNWATCH-VM: BENCH-BPF" "$con" || true; } | sed 's/^OWNWATCH-VM: BENCH-BPF /    /'
  echo "  the same for the writer alone (offending, the agent stopped): backend op <$unit per op> <runs per op> ..."
  { grep -h "^OWNWATCH-VM: BENCH-WRITER-BPF" "$con" || true; } | sed 's/^OWNWATCH-VM: BENCH-WRITER-BPF /    /'
  { grep -h "^OWNWATCH-VM: BENCH-FAILED" "$con" || true; } | sed 's/^OWNWATCH-VM: BENCH-FAILED /  could not start: /'
done
