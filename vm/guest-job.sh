#!/bin/sh
# Runs inside the VM, chrooted into the host's (read-only) root, /tmp being the VM's ext4.
# /tmp/.job/env (written by run-kernel.sh) sets REPO, TESTS ("name=path ..."), BACKENDS,
# EXPECT_CHOICE. Results go to the console as "OWNWATCH-VM:" lines, full logs to /tmp/.job/out.
. /tmp/.job/env
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root CI=true
export RUST_BACKTRACE=1
out=/tmp/.job/out
mkdir -p "$out"
say() { echo "OWNWATCH-VM: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
say "KERNEL $(uname -r)"
say "LSM $(cat /sys/kernel/security/lsm 2>/dev/null)"
t0=$(now)
"$REPO/target/debug/ownwatch" probe > "$out/probe.json" 2> "$out/probe.err"
say "PROBE-EXIT $? $(now)s"
for backend in $BACKENDS; do
  for t in $TESTS; do
    name=${t%%=*} bin=${t#*=}
    log=$out/$backend-$name.log
    s=$(now)
    cd "$REPO" && OWNWATCH_TEST_BACKEND=$backend OWNWATCH_EXPECT_CHOICE=$EXPECT_CHOICE \
      timeout "${TEST_TIMEOUT:-1800}" "$bin" --test-threads=2 > "$log" 2>&1
    rc=$?
    say "TEST $backend $name rc=$rc start=${s}s end=$(now)s"
  done
done
say "SUITE-DONE $(now)s"
sync
