#!/bin/sh
# Runs inside the VM (see vm/bench-kernels.sh): the micro storms of issue 6 once per backend,
# interleaved, as ratios to the same storm without ownwatch. Under TCG absolute times mean
# little; the ratios compare the backends on the same kernel.
. /tmp/.job/env
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
say() { echo "OWNWATCH-VM: $*"; }
say "KERNEL $(uname -r)"
W=/tmp/bw
mkdir -p $W && chown 65534:65534 $W
N=${BENCH_N:-4000}
ns() { "$OWB" run "$1" $W "$N" --owner 65534:65534 ${2:+--as $2} 2>/dev/null | sed -n 's/^ns=\([0-9]*\).*/\1/p'; }
for be in $BACKENDS; do
  # base: the same storms with no agent, right before each backend's
  for op in $OPS; do
    for rep in 1 2 3; do
      say "BENCH $be-base $op rep=$rep allowed_ns=$(ns "$op" 65534:65534) offending_ns=$(ns "$op")"
    done
  done
  "$BIN" watch --backend "$be" $W > /tmp/bench-$be.out 2> /tmp/bench-$be.err &
  p=$!
  i=0; while [ $i -lt 300 ] && ! grep -q "attached in" /tmp/bench-$be.err; do sleep 0.5; i=$((i+1)); done
  for op in $OPS; do
    for rep in 1 2 3; do
      say "BENCH $be $op rep=$rep allowed_ns=$(ns "$op" 65534:65534) offending_ns=$(ns "$op")"
    done
  done
  kill -INT $p; wait $p
  say "BENCH-EVENTS $be $(wc -l < /tmp/bench-$be.out)"
done
say "SUITE-DONE $(cut -d' ' -f1 /proc/uptime)s"
