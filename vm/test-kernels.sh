#!/usr/bin/env bash
# make test-kernels: the integration suite inside qemu (TCG) on Debian's cloud kernels 6.1 and
# 6.12, one line per kernel x backend, exit 1 if any cell fails. See README "Kernel matrix".
# Knobs: VM_KERNELS (regex on the kernel release, default all), VM_BACKENDS (default all four),
# VM_TESTS (test targets, default watch identity cron scan), VM_CPUS, VM_MEM, VM_TIMEOUT,
# VM_VERBOSE=1 (whole console), CACHE (default .cache/vm).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export CACHE=${CACHE:-$repo/.cache/vm}
BACKENDS=${VM_BACKENDS:-lsm fentry kprobe tracepoint}
TESTS_WANTED=${VM_TESTS:-watch identity cron scan}
t_all=$SECONDS
ts() { echo "$((SECONDS - $1))s"; }
timings=()

# host tools, only when missing (apt is the only source)
t=$SECONDS
missing=""
command -v qemu-system-x86_64 >/dev/null || missing="$missing qemu-system-x86"
[ -x /usr/lib/qemu/virtiofsd ] || missing="$missing qemu-system-common"
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x cpio >/dev/null || missing="$missing busybox-static"
command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null || missing="$missing e2fsprogs"
command -v jq >/dev/null || missing="$missing jq"
command -v xz >/dev/null || missing="$missing xz-utils"
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || { echo "test-kernels: run as root to install:$missing" >&2; exit 2; }
  echo "test-kernels: installing$missing" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
[ "$(id -u)" = 0 ] || { echo "test-kernels: must run as root (virtiofsd shares the host root)" >&2; exit 2; }
timings+=("host packages $(ts $t)")

t=$SECONDS
kernels=$("$repo/vm/fetch-kernels.sh")
timings+=("kernel download+extract $(ts $t)")

# the test binaries, built on the host and run from the shared host root in the guest
t=$SECONDS
json=$(cargo test --locked --no-run --message-format=json 2>"$CACHE/cargo.log") || {
  tail -30 "$CACHE/cargo.log" >&2; echo "test-kernels: cargo test --no-run failed" >&2; exit 2; }
tests=""
for name in $TESTS_WANTED; do
  exe=$(jq -r --arg n "$name" 'select(.reason=="compiler-artifact" and .target.name==$n and (.target.kind|index("test")) and .executable!=null) | .executable' <<<"$json" | tail -1)
  [ -n "$exe" ] || { echo "test-kernels: no test target $name" >&2; exit 2; }
  tests="$tests $name=$exe"
done
[ -x "$repo/target/debug/ownwatch" ] || { echo "test-kernels: target/debug/ownwatch missing" >&2; exit 2; }
timings+=("cargo build $(ts $t)")

summary=()
failed=0
while read -r krel kdir; do
  [ -n "$krel" ] || continue
  if [ -n "${VM_KERNELS:-}" ] && ! grep -qE "$VM_KERNELS" <<<"$krel"; then continue; fi
  out=$CACHE/results/$krel
  rm -rf "$out"; mkdir -p "$out"
  # Only backends whose handlers exist run the suite; the others get their probe shown.
  # `implemented` comes from the host's probe (the same binary runs in the guest).
  run_backends=""
  for b in $BACKENDS; do
    impl=$("$repo/target/debug/ownwatch" probe 2>/dev/null | jq -r --arg b "$b" '.backends[]|select(.name==$b)|.implemented' || echo true)
    [ "$impl" = false ] || run_backends="$run_backends $b"
  done
  # what auto must choose there: the best implemented backend (tracepoint until issue 3)
  expect=tracepoint
  for b in lsm fentry kprobe; do case " $run_backends " in *" $b "*) expect=$b; break ;; esac; done
  cat > "$out/env" <<ENV
REPO=$repo
TESTS="${tests# }"
BACKENDS="${run_backends# }"
EXPECT_CHOICE=${VM_EXPECT_CHOICE:-$expect}
TEST_TIMEOUT=${VM_TEST_TIMEOUT:-1200}
ENV
  echo "== kernel $krel: booting (TCG), backends to run:${run_backends:- none}" >&2
  t=$SECONDS
  rc=0
  "$repo/vm/run-kernel.sh" "$kdir" "$out" "$out/env" || rc=$?
  con=$out/console.log
  boot=$(sed -n 's/^OWNWATCH-VM: BOOTED [^ ]* \([0-9.]*\)s.*/\1/p' "$con" | head -1)
  done_at=$(sed -n 's/^OWNWATCH-VM: SUITE-DONE \([0-9.]*\)s.*/\1/p' "$con" | head -1)
  timings+=("kernel $krel: vm total $(ts $t), guest boot ${boot:-?}s, guest done at ${done_at:-?}s (qemu rc $rc)")
  # the package version carries the real patch level (6.1.0-50 is 6.1.176)
  pv=$(ls "$CACHE"/debs/ | grep -F "linux-image-$krel-unsigned_" | sed -E 's/.*_([0-9]+\.[0-9]+\.[0-9]+).*/\1/' | head -1)
  kname=${pv:-$krel}
  echo "---- ownwatch probe on $kname ($krel):"
  if grep -q '^OWNWATCH-VM: PROBE| ' "$con"; then sed -n 's/^OWNWATCH-VM: PROBE| //p' "$con"; else echo "(no probe output)"; fi
  crash=""
  if ! grep -q '^OWNWATCH-VM: SUITE-DONE' "$con"; then
    crash=$(grep -m1 -oE 'Kernel panic.*|BUG: .*|Oops: .*|watchdog: .*' "$con" || true)
    crash="guest did not finish: ${crash:-no panic seen (timeout?)}"
  fi
  for b in $BACKENDS; do
    case " $run_backends " in
      *" $b "*) ;;
      *) summary+=("kernel $kname backend $b: not implemented yet (issue 3)"); continue ;;
    esac
    npass=0 nfail=0 bad="" fails=""
    for t2 in $tests; do
      name=${t2%%=*}
      line=$(grep "^OWNWATCH-VM: TEST $b $name " "$con" || true)
      if [ -z "$line" ]; then
        grep -q "^OWNWATCH-VM: START $b $name " "$con" && bad="$bad $name:crashed-during" || bad="$bad $name:not-run"
        continue
      fi
      r=$(sed -n "s/^OWNWATCH-VM: RESULT $b $name| \(test result:.*\)/\1/p" "$con" | tail -1)
      p=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$r"); f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$r")
      npass=$((npass + ${p:-0})); nfail=$((nfail + ${f:-0}))
      rcv=$(sed -nE 's/.* rc=([0-9]+).*/\1/p' <<<"$line")
      [ "$rcv" = 0 ] || { [ -n "$r" ] || bad="$bad $name:rc=$rcv"; }
      fails="$fails $(sed -nE "s/^OWNWATCH-VM: RESULT $b $name\| test (.*) \.\.\. FAILED$/\1/p" "$con" | sed "s/^/$name::/" | tr '\n' ' ')"
    done
    fails=$(echo $fails)
    if [ "$nfail" = 0 ] && [ -z "$bad" ] && [ "$rc" = 0 ] && [ -z "$crash" ]; then
      summary+=("kernel $kname backend $b: pass ($npass tests)")
    else
      failed=1
      summary+=("kernel $kname backend $b: fail ($nfail of $((npass + nfail)) failed${bad:+;$bad}${fails:+: $fails}$([ "$rc" = 0 ] || echo "; qemu rc $rc")${crash:+; $crash})")
    fi
  done
  echo "(logs: $out)"
done <<<"$kernels"

echo "==== kernel matrix"
printf '%s\n' "${summary[@]}"
echo "==== timings"
printf '  %s\n' "${timings[@]}" "total $(ts $t_all)"
exit $failed
