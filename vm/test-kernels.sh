#!/usr/bin/env bash
# make test-kernels: the integration suite inside qemu (TCG) on Debian's cloud kernels, one
# line per kernel x backend, exit 1 if any cell fails. See README "Kernel matrix".
# VM_ARCHS (default "amd64 arm64"): amd64 boots VM_KERNEL_SET (default 5.10 6.1 6.12 7.2 7.3)
# in qemu-system-x86_64 with the host's root; arm64 boots VM_ARM64_KERNEL_SET (default 6.12
# 7.3) in qemu-system-aarch64 with an arm64 userland (vm/arm64-root.sh) and the test binaries
# cross-built for aarch64 (cross/build.sh, static). There, to keep `make test` within CI's
# time, only the op and path-form tests run by default: VM_ARM64_TESTS (default "watch")
# with the watch binary filtered to VM_ARM64_WATCH_FILTER (default the modules ops paths names
# attrs uring tools, negatives' failed operations, owner writes and writes outside the tree, and
# kernel_wide's probe and usage errors: every backend's start is the cells themselves);
# VM_ARM64_FULL=1 runs the whole suite as on amd64 (make test-kernels-arm64). Tests whose
# subject is not the backend run once per kernel (ONCE_PER_KERNEL below).
# VM_PREFETCH=1: only download and install what a run needs (make test does this while the
# host's tests run). Knobs: VM_KERNELS (regex on the kernel release, default all), VM_BACKENDS (default all four),
# VM_TESTS (test targets, default watch: its modules identity, cron, tools and fix included, one agent shared by them all; scan uses no BPF and runs on the host), VM_PARALLEL (guests at once, default one per host CPU), VM_CPUS, VM_MEM, VM_TIMEOUT,
# VM_VERBOSE=1 (whole console), CACHE (default .cache/vm), VM_TEST_ARGS (more arguments for
# the test binaries, e.g. "-Z unstable-options --report-time": per-test times in the logs),
# VM_GUEST_ENV ("VAR=value ..." exported in the guest, e.g. OWNWATCH_PIN_CPU=0),
# VM_AGENT_TIMEOUT (default 240 s: how long a test waits for an agent to start or stop; an
# arm64 guest on a contended host took over 120 s to attach the kprobe backend),
# VM_TEST_TIMEOUT (default 2400 s per test binary and backend).
. "$(dirname "$0")/lib.sh"
# tracepoint first: the tests that run once per kernel (ONCE_PER_KERNEL) run in the first
# usable backend's cell, and many of them start an agent of their own; under TCG the
# tracepoint backend attaches in a third to a quarter of the time the others take (6.12,
# measured: 3.3 s, lsm 7 s, kprobe 11-14 s, fentry 16 s), and every usable backend's start
# is checked anyway (kernel_wide, and each cell itself).
BACKENDS=${VM_BACKENDS:-tracepoint kprobe lsm fentry}
TESTS_WANTED=${VM_TESTS:-watch}
t_all=$SECONDS
ts() { echo "$((SECONDS - $1))s"; }
timings=()

# host tools, only when missing (apt is the only source)
t=$SECONDS
ARCHS=${VM_ARCHS:-amd64 arm64}
host_tools "$ARCHS"
[ "$(id -u)" = 0 ] || { echo "test-kernels: must run as root (virtiofsd shares the host root)" >&2; exit 2; }
timings+=("host packages $(ts $t)")

t=$SECONDS
kernels=""
for arch in $ARCHS; do
  case $arch in
    amd64) set_=${VM_KERNEL_SET:-} ;;
    arm64) set_=${VM_ARM64_KERNEL_SET:-6.12 7.3} ;;
    *) echo "test-kernels: unknown arch $arch in VM_ARCHS (amd64, arm64)" >&2; exit 2 ;;
  esac
  kernels+=$(VM_ARCH=$arch VM_KERNEL_SET=$set_ "$repo/vm/fetch-kernels.sh" | sed "s/^/$arch /")$'\n'
done
timings+=("kernel download+extract $(ts $t)")
# VM_PREFETCH=1 (make test, while the host's own tests run): only the downloads, the arm64
# build's packages and userland included; a later run finds them cached
if [ "${VM_PREFETCH:-0}" = 1 ]; then
  case " $ARCHS " in *" arm64 "*)
    CACHE=${CROSS_CACHE:-$repo/.cache/cross} CROSS_PREPARE=1 "$repo/cross/build.sh" aarch64-unknown-linux-gnu
    "$repo/vm/arm64-root.sh" > /dev/null ;;
  esac
  echo "test-kernels: prefetched in $(ts $t_all)"
  exit 0
fi

# The test binaries, built on the host and run from the shared root in the guest: profile
# checked (Cargo.toml: release code, the agent starts faster under emulation, with debug
# assertions and overflow checks), in cargo's target dir, which make test-host has just built
# them into (one build for both; rebuilding with that profile during a run changes what later
# test binaries run, VM_TARGET_DIR=elsewhere keeps them apart). test_exes JSON: "name=path
# ..." of TESTS_WANTED.
test_exes() {
  local json=$1 name exe tests=""
  for name in $TESTS_WANTED; do
    exe=$(jq -r --arg n "$name" 'select(.reason=="compiler-artifact" and .target.name==$n and (.target.kind|index("test")) and .executable!=null) | .executable' < "$json" | tail -1)
    [ -n "$exe" ] || { echo "test-kernels: no test target $name" >&2; exit 2; }
    tests="$tests $name=$exe"
  done
  echo "${tests# }"
}
declare -A bin tests watch_filter
# tests_of <arch>: which test binaries (and watch filter) that arch's guests run
tests_of() {
  local arch=$1
  if [ "$arch" = arm64 ] && [ "${VM_ARM64_FULL:-0}" = 0 ]; then
    tests[$arch]=$(TESTS_WANTED=$arm64_tests test_exes "$CACHE/tests-$arch.json")
    watch_filter[$arch]=${VM_ARM64_WATCH_FILTER:-kernel_wide::probe_reports kernel_wide::bad_input kernel_wide::usage_errors ops:: paths:: names:: attrs:: uring:: tools:: negatives::failed negatives::owner_writes negatives::root_writes_outside}
  else
    tests[$arch]=$(test_exes "$CACHE/tests-$arch.json")
  fi
  [ -x "${bin[$arch]}" ] || { echo "test-kernels: ${bin[$arch]} missing" >&2; exit 2; }
}
arm64_tests=${VM_ARM64_TESTS:-watch}
for arch in $ARCHS; do
  t=$SECONDS
  if [ "$arch" = amd64 ]; then
    export CARGO_TARGET_DIR=${VM_TARGET_DIR:-${CARGO_TARGET_DIR:-$repo/target}}
    bin[$arch]=$CARGO_TARGET_DIR/checked/ownwatch
    cargo test --profile checked --locked --no-run --message-format=json > "$CACHE/tests-$arch.json" 2>"$CACHE/cargo.log" || {
      tail -30 "$CACHE/cargo.log" >&2; echo "test-kernels: cargo test --no-run failed" >&2; exit 2; }
    tests_of "$arch"
    timings+=("build $arch $(ts $t)")
  else
    # static (the guest's userland has no libelf), the test binaries too (only those its
    # guests run). Built while the amd64 guests run (niced: they come first), which take
    # longest and go first anyway; the arm64 guests wait for it (arm64_ready).
    td=${VM_ARM64_TARGET_DIR:-$CACHE/target-arm64}
    mkdir -p "$td" && td=$(cd "$td" && pwd)
    case $td/ in "$repo"/*) ;; *) arm64_binds=$td ;; esac
    bin[$arch]=$td/aarch64-unknown-linux-gnu/release/ownwatch
    [ "${VM_ARM64_FULL:-0}" = 0 ] && cross_tests=$arm64_tests || cross_tests=1
    (CROSS_TESTS_JSON="$CACHE/tests-$arch.json" CACHE="${CROSS_CACHE:-$repo/.cache/cross}" \
      CARGO_TARGET_DIR="$td" STATIC=1 CROSS_TESTS="$cross_tests" nice -n 10 "$repo/cross/build.sh" aarch64-unknown-linux-gnu \
      && "$repo/vm/arm64-root.sh" > "$CACHE/arm64-root.path") > "$CACHE/cargo-$arch.log" 2>&1 &
    arm64_pid=$! arm64_t0=$t
  fi
done
# arm64_ready: waits for the arm64 build (the first time); false if it failed (the arm64
# guests are then not booted and fail; the amd64 ones, already running, go on)
arm64_built=""
arm64_ready() {
  if [ -z "$arm64_built" ] && [ -n "${arm64_pid:-}" ]; then
    if wait "$arm64_pid"; then
      arm64_built=ok
      arm64_root=$(cat "$CACHE/arm64-root.path")
      tests_of arm64
    else
      arm64_built=failed
      tail -30 "$CACHE/cargo-arm64.log" >&2
      echo "test-kernels: cross/build.sh aarch64 (or vm/arm64-root.sh) failed" >&2
      why_failed+=("arm64: the build failed ($CACHE/cargo-arm64.log): $(tail -1 "$CACHE/cargo-arm64.log" | cut -c1-300)")
    fi
    timings+=("build arm64 (beside the amd64 guests) $(ts "$arm64_t0")")
  fi
  [ "$arm64_built" != failed ]
}

# Tests at once in a guest. 7.x runs our lsm, fentry and syscall-tracepoint programs
# preemptibly, and each agent's programs run for every writer on the machine: with three
# agents at once, writers preempted inside one agent's program (its per-CPU recursion guard
# held) made the kernel skip that program for the other tests' writers, and deep-path tests
# lost events (README "Supported kernels"). One test at a time there: measured on 7.2 and
# 7.3, tracepoint and fentry pass whole, in about the same time (the guest is CPU-bound).
test_threads() {
  case $1 in
    [7-9].*) echo 1 ;;
    *) echo 3 ;;
  esac
}

# Which backend auto must choose (the kernels are booted with lsm=...,bpf): lsm, but on arm64
# 5.10 and 6.1, whose kernels have no direct-call trampolines, kprobe.
expect_choice() {
  case $1/$2 in
    arm64/5.10.*|arm64/6.1.*) echo kprobe ;;
    *) echo lsm ;;
  esac
}

# One VM per kernel, VM_PARALLEL at once (below): single-threaded TCG (amd64) uses one host CPU
# each, an arm64 guest's multi-threaded TCG one per busy vCPU.
# Backends a kernel cannot do: arm64 before 6.4 has no direct-call trampolines
# (DYNAMIC_FTRACE_WITH_DIRECT_CALLS), which lsm and fentry need. Every other cell must pass.
expect_unusable() {
  case $1/$2 in
    arm64/5.10.*|arm64/6.1.*) echo lsm fentry ;;
  esac
}

# Tests whose subject is not the backend run once per kernel, with its first usable backend
# ("binary=name filter"): watch's kernel_wide module (usage errors, probe, every backend's
# start); what user space makes of the command line (--owner by name or number over the
# directory's owner, each DIR's owner its default, every --ops name, DIR given relative or
# through a symlink); and the agent's main loop: --format text, -v and -vv, signals, a closed
# stdout and `| head -1`, SIGHUP, systemd readiness, --duration and --max-events, -o reopened
# on SIGHUP, the README's jq recipes. Every other test runs on every backend: the ops, path
# forms, names, actors, the --ops filter, negatives, identity, --fix (its own chowns must not
# come back as events), the deleted and unmounted roots, concurrency, and coreutils and tar
# (many of them on the ruled shared agent, tests/common/shared.rs: one start for them all).
# VM_ONCE_PER_KERNEL="" runs everything on every backend.
ONCE_PER_KERNEL=${VM_ONCE_PER_KERNEL-watch=kernel_wide:: watch=cli:: watch=lifecycle::sigterm_flushes watch=lifecycle::sigint_flushes watch=lifecycle::closed_stdout watch=lifecycle::head_one watch=lifecycle::sighup_never_kills watch=lifecycle::systemd_ready watch=actors::owner_option_ watch=actors::each_tree_has_its_own watch=negatives::ops_accepts_every_op_name watch=paths::dir_argument_forms watch=cron::duration_and_max_events watch=cron::output_file_is_reopened watch=tools::readme_jq_recipes}

# Tests no guest runs: what they check does not depend on the kernel, and the host suite
# (make test-host) runs them. `probe | head` (a closed stdout, no panic) costs a whole probe,
# every backend's trial load: 22-32 s per kernel under TCG. VM_HOST_ONLY="" runs them too.
HOST_ONLY=${VM_HOST_ONLY-watch=kernel_wide::probe_into_a_closed_pipe}

summary=()
why_failed=()
failed=0
# why <log> <test>: the panic message of a failed test in a libtest log, on one line
# (libtest prints "---- <test> stdout ----", then the test's output with "thread '<test>'
# panicked at <file:line>:" followed by the message)
why() {
  awk -v t="$2" '
    $0 == "---- " t " stdout ----" { inside = 1; next }
    inside && /^---- .* stdout ----$/ { exit }
    inside && /panicked at/ { at = $0; sub(/.*panicked at /, "", at); grab = 4; next }
    inside && grab > 0 { if ($0 ~ /^note: /) exit; msg = msg (msg == "" ? "" : " | ") $0; grab--; if (grab == 0) exit }
    END { if (at == "") print "(no panic message in the log)"; else print at " " msg }
  ' "$1" 2>/dev/null | cut -c1-600
}
# At most VM_PARALLEL guests at once (default: one per host CPU), the longest first. All seven
# at once on two CPUs took 1.6x the CPU time each guest takes with a CPU of its own (5.10's
# suite: 483 s alone beside one other guest, 3,521 s beside six others and their nine vCPU
# threads): guests time-shared that finely lose their translated code from the caches and
# spin on locks whose holder is descheduled. Longest first, by what each took in a local run
# of the matrix as make test runs it (2026-12-05, two at a time: amd64 7.3 1,224 s, 7.2
# 1,195, 6.12 1,058, 6.1 901, 5.10 ~690, arm64 7.3 491, arm64 6.12 373), so that the last
# guests to start are the short ones and the two CPUs finish together; the arm64 ones come
# last too because their build runs beside the first amd64 guests.
vm_rank() {
  case $1/$2 in
    amd64/7.3*) echo 0 ;;
    amd64/[7-9].*) echo 1 ;;
    amd64/6.12*) echo 2 ;;
    amd64/6.1*) echo 3 ;;
    amd64/*) echo 4 ;;
    arm64/[7-9].*) echo 5 ;;
    *) echo 6 ;;
  esac
}
parallel=${VM_PARALLEL:-$(nproc)}
declare -A vm_pid vm_t0 vm_dir vm_arch
running() {
  local n=0 k
  for k in "${!vm_pid[@]}"; do kill -0 "${vm_pid[$k]}" 2>/dev/null && n=$((n + 1)); done
  echo $n
}
while read -r _ arch krel kdir; do
  while [ "$(running)" -ge "$parallel" ]; do sleep 2; done
  if [ "$arch" = arm64 ] && ! arm64_ready; then
    failed=1
    summary+=("kernel $krel $arch: fail (not booted: the arm64 build failed)")
    continue
  fi
  out=$CACHE/results/$krel
  rm -rf "$out"; mkdir -p "$out"
  cat > "$out/env" <<ENV
REPO=$repo
BIN=${bin[$arch]}
TESTS="${tests[$arch]}"
BACKENDS="$BACKENDS"
EXPECT_CHOICE=${VM_EXPECT_CHOICE:-$(expect_choice "$arch" "$krel")}
TEST_TIMEOUT=${VM_TEST_TIMEOUT:-2400}
AGENT_TIMEOUT=${VM_AGENT_TIMEOUT:-240}
TEST_THREADS=${VM_TEST_THREADS:-$(test_threads "$krel")}
TEST_ARGS="${VM_TEST_ARGS:-}"
ONCE="$ONCE_PER_KERNEL"
HOST_ONLY="$HOST_ONLY"
WATCH_FILTER="${watch_filter[$arch]:-}"
${VM_GUEST_ENV:+export $VM_GUEST_ENV}
ENV
  echo "== kernel $krel ($arch): booting (TCG), backends: $BACKENDS" >&2
  vm_t0[$krel]=$SECONDS
  vm_dir[$krel]=$kdir
  vm_arch[$krel]=$arch
  # (what the guest needs, should the clone live under /tmp, which the guest's own /tmp hides;
  # arm64: its own root, the repo and the target directory bound into it)
  # (its own end written down for the timings: the results are read in another order)
  (VM_NEED="${bin[$arch]} $(for t2 in ${tests[$arch]}; do printf '%s ' "${t2#*=}"; done)$repo/Cargo.toml" \
     VM_ARCH=$arch VM_ROOT=${arm64_root:-} VM_BUSYBOX=${arm64_root:+$arm64_root/bin/busybox} \
     VM_BINDS="$repo ${arm64_binds:-}" \
     "$repo/vm/run-kernel.sh" "$kdir" "$out" "$out/env" > "$out/run.log" 2>&1 && rc=0 || rc=$?
   echo $((SECONDS - vm_t0[$krel])) > "$out/vm-seconds"
   # qemu's CPU time (its user and system time, waited for): single-threaded TCG keeps one
   # host CPU busy while the guest runs, so what falls short of the wall time is the guest idle
   # (waits in the tests), or a host with more runnable guests than CPUs
   times > "$out/vm-cpu"; exit $rc) &
  vm_pid[$krel]=$!
done < <(select_kernels <<<"$kernels" | while read -r a k d; do [ -n "$k" ] && echo "$(vm_rank "$a" "$k") $a $k $d"; done | sort -s -k1,1n -k3,3Vr)
# (a build no guest waited for, VM_KERNELS selecting no arm64 kernel: ended, and checked)
arm64_ready || failed=1

for krel in $(printf '%s\n' "${!vm_pid[@]}" | sort); do
  out=$CACHE/results/$krel
  arch=${vm_arch[$krel]}
  tests_=${tests[$arch]}
  rc=0
  wait "${vm_pid[$krel]}" || rc=$?
  con=$out/console.log
  boot=$(sed -n 's/^OWNWATCH-VM: BOOTED [^ ]* \([0-9.]*\)s.*/\1/p' "$con" | head -1)
  done_at=$(sed -n 's/^OWNWATCH-VM: SUITE-DONE \([0-9.]*\)s.*/\1/p' "$con" | head -1)
  cpu=$(awk 'NR == 2 { gsub(/[ms]/, " "); print int($1 * 60 + $2 + $3 * 60 + $4) }' "$out/vm-cpu" 2>/dev/null || true)
  timings+=("kernel $krel: vm total $(cat "$out/vm-seconds" 2>/dev/null || echo ?)s, qemu CPU ${cpu:-?}s, guest boot ${boot:-?}s, guest done at ${done_at:-?}s (qemu rc $rc)")
  for b in $BACKENDS; do
    for t2 in $tests_; do
      name=${t2%%=*}
      line=$(grep "^OWNWATCH-VM: TEST $b $name " "$con" || true)
      st=$(sed -nE 's/.* start=([0-9.]+)s end=([0-9.]+)s.*/\1 \2/p' <<<"$line")
      [ -z "$st" ] || timings+=("  $krel $b $name: $(awk '{printf "%.0f", $2-$1}' <<<"$st")s")
    done
  done
  # the package version carries the real patch level (6.1.0-50 is 6.1.176)
  # (7.x: linux-binary-<krel>_<version>)
  pv=$(ls "$CACHE"/debs/ | grep -F -e "linux-image-$krel-unsigned_" -e "linux-binary-${krel}_" | sed -E 's/.*_([0-9]+\.[0-9]+\.[0-9]+).*/\1/' | head -1)
  kname="${pv:-$krel} $arch"
  echo "---- ownwatch probe on $kname ($krel):"
  if grep -q '^OWNWATCH-VM: PROBE| ' "$con"; then sed -n 's/^OWNWATCH-VM: PROBE| //p' "$con"; else echo "(no probe output)"; fi
  crash=""
  if ! grep -q '^OWNWATCH-VM: SUITE-DONE' "$con"; then
    crash=$(grep -m1 -oE 'Kernel panic.*|BUG: .*|Oops: .*|watchdog: .*' "$con" || true)
    crash="guest did not finish: ${crash:-no panic seen (timeout?)}"
    tail -5 "$out/run.log" >&2
  fi
  first=${BACKENDS%% *}
  for cell in $BACKENDS scan; do
    npass=0 nfail=0 bad="" fails="" flaky="" label=""
    # scan uses no BPF: run once per kernel (with the first backend), reported alone
    if [ "$cell" = scan ]; then b=$first; else b=$cell; fi
    # a backend the kernel cannot do: fine where that is known (expect_unusable) and watch
    # refused it with exit 2; anywhere else a failure
    if [ "$cell" != scan ] && u=$(grep -m1 "^OWNWATCH-VM: UNUSABLE $b " "$con"); then
      why=$(sed -E 's/^OWNWATCH-VM: UNUSABLE [a-z]+ rc=[0-9]+ //' <<<"$u")
      if grep -q "^OWNWATCH-VM: UNUSABLE $b rc=2 " <<<"$u" && [[ " $(expect_unusable "$arch" "$krel") " == *" $b "* ]]; then
        summary+=("kernel $kname backend $b: not usable, refused as expected ($why)")
      else
        failed=1
        summary+=("kernel $kname backend $b: fail (probe calls it not usable: $why)")
      fi
      continue
    fi
    for t2 in $tests_; do
      name=${t2%%=*}
      if [ "$cell" = scan ]; then [ "$name" = scan ] || continue; label="scan (no BPF)"
      else [ "$name" != scan ] || continue; label="backend $b"; fi
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
      for f in $(sed -nE "s/^OWNWATCH-VM: RESULT $b $name\| test (.*) \.\.\. FAILED( <[^>]*>)?$/\1/p" "$con"); do
        if grep -qx "OWNWATCH-VM: RETRY $b $name $f rc=0" "$con"; then
          flaky="$flaky $name::$f"; nfail=$((nfail - 1)); npass=$((npass + 1))
        else
          fails="$fails $name::$f"
          why_failed+=("kernel $kname $label: $name::$f: $(why "$out/job/$b-$name.log" "$f")")
        fi
      done
    done
    fails=$(echo $fails)
    [ -n "${label:-}" ] || continue
    if [ "$nfail" = 0 ] && [ -z "$bad" ] && [ "$rc" = 0 ] && [ -z "$crash" ]; then
      summary+=("kernel $kname $label: pass ($npass tests${flaky:+; flaky, passed on retry:$flaky})")
    else
      failed=1
      summary+=("kernel $kname $label: fail ($nfail of $((npass + nfail)) failed${bad:+;$bad}${fails:+: $fails}$([ "$rc" = 0 ] || echo "; qemu rc $rc")${crash:+; $crash})")
    fi
  done
  echo "(logs: $out)"
done

# What failed comes last, where a log's tail shows it: timings, the matrix, then each failed
# test with the first lines of its panic, and one line that counts.
echo "==== timings"
printf '  %s\n' "${timings[@]}" "total $(ts $t_all)"
echo "==== kernel matrix"
printf '%s\n' "${summary[@]}"
# for make kernel-table (README "Supported kernels")
printf '%s\n' "${summary[@]}" > "$CACHE/results/summary.txt" || true
nbad=$(printf '%s\n' "${summary[@]}" | grep -c ': fail (' || true)
if [ "$failed" != 0 ]; then
  echo "==== failures (logs: $CACHE/results/<kernel>/job/<backend>-<test>.log)"
  printf '%s\n' "${summary[@]}" | grep ': fail (' | cut -c1-400
  [ "${#why_failed[@]}" = 0 ] || printf '%s\n' "${why_failed[@]}" | head -40
  echo "test-kernels: $nbad of ${#summary[@]} cells failed"
else
  echo "test-kernels: all ${#summary[@]} cells pass"
fi
exit $failed
