#!/bin/sh
# Runs inside the VM (see vm/bench-kernels.sh): micro storms once per backend, on tmpfs, as the
# tree's owner (allowed: filtered in the kernel) and as root (offending: every op reported),
# each as a ratio to the same storm with no agent, measured right before the agent started and
# right after it stopped (interleaved: base, agent, base; a warm-up first). With VM_ICOUNT=1
# (qemu -icount shift=0,sleep=off) the guest clock advances one ns per instruction executed on
# any vCPU: the "ns" are instructions, the agent's included, and repeat within about 1 %.
. /tmp/.job/env
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
say() { echo "OWNWATCH-VM: $*"; }
say "KERNEL $(uname -r)"
W=/tmp/bw
mkdir -p $W && mount -t tmpfs -o mode=0755 tmpfs $W
# BENCH_TREE=srv/app (VM_GUEST_ENV): the tree that far below the tmpfs's root, as /srv/app is
# below its filesystem's, rather than the tmpfs's root itself (no names above the root)
[ -z "${BENCH_TREE:-}" ] || { W=$W/$BENCH_TREE; mkdir -p $W; }
chown 65534:65534 $W
N=${BENCH_N:-3000}
REPS=${BENCH_REPS:-3}
# one storm: "<ns> <ops in it>" (owbench counts them: the ops an offending storm reports)
storm() { "$OWB" run "$1" $W "$N" --owner 65534:65534 ${2:+--as $2} 2>/dev/null | sed -n 's/^ns=\([0-9]*\).* events=\([0-9]*\).*/\1 \2/p'; }
# drained <want file>: wait (up to a minute) until the agent has written every event the
# storms so far made, so that its backlog is not counted in the next storm (icount counts
# every vCPU's instructions)
drained() {
  want=$(awk '{s += $1} END {print s + 0}' "$1"); i=0
  while [ $i -lt 300 ] && [ "$(wc -l < "$out")" -lt "$want" ]; do sleep 0.2; i=$((i+1)); done
}
# The run time of process $1's threads so far (schedstat), in ns. Under icount the clock counts
# the instructions of both vCPUs: while only this process runs, its instructions, the kernel's
# work on its behalf (reads of the ring, writes of its lines) included.
run_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
# REPS storms of each op, allowed and offending, said as BENCH <label> <op> rep=<i> ...; the
# offending ops run are added to the file $2 (what the agent, if any, must deliver)
series() {
  for op in $OPS; do
    r=1
    while [ $r -le "$REPS" ]; do
      a=$(storm "$op" 65534:65534); o=$(storm "$op")
      say "BENCH $1 $op rep=$r allowed_ns=${a% *} offending_ns=${o% *} ops=${o#* }"
      [ -z "${2:-}" ] || { echo "${o#* }" >> "$2"; drained "$2"; }
      r=$((r + 1))
    done
  done
}
# where the writer's time goes: one more storm of each kind with kernel.bpf_stats_enabled
# (run time and runs per program; under icount the time is instructions), said as
# BENCH-BPF <backend> <op> <allowed|offending> <BPF per op> <runs per op> name=runs/op:per-run ...
# (bpftool from the host's root; the stats add their own clock reads, hence not in the ratios)
progstats() { bpftool prog show -j 2>/dev/null | jq -c 'map(select(.run_cnt != null) | {key: "\(.id) \(.name)", value: [.run_cnt, .run_time_ns]}) | from_entries'; }
bpfstats() {
  command -v bpftool > /dev/null || { say "BENCH-BPF $1 (no bpftool)"; return; }
  sysctl -qw kernel.bpf_stats_enabled=1
  for op in $OPS; do
    for who in allowed offending; do
      b=$(progstats)
      if [ $who = allowed ]; then o=$(storm "$op" 65534:65534); else o=$(storm "$op"); echo "${o#* }" >> "$2"; drained "$2"; fi
      bpfdelta BENCH-BPF "$1 $op $who" "$b" "$(progstats)" "${o#* }"
    done
  done
  sysctl -qw kernel.bpf_stats_enabled=0
}
# bpfdelta <tag> <head> <stats before> <stats after> <ops>: the programs' runs and time per op
bpfdelta() {
  jq -rn --argjson b "$3" --argjson a "$4" --argjson ops "$5" --arg head "$1 $2" '
    [$a | to_entries[] | . as $e | ($b[$e.key] // [0, 0]) as $o
     | {n: ($e.key | split(" ")[1]), c: ($e.value[0] - $o[0]), t: ($e.value[1] - $o[1])} | select(.c > 0)]
    | sort_by(-.t)
    | "\($head) \((map(.t) | add // 0) / $ops | floor) \((map(.c) | add // 0) / $ops * 100 | floor / 100) "
      + (map("\(.n)=\(.c / $ops * 100 | floor / 100):\(.t / .c | floor)") | join(" "))' | sed 's/^/OWNWATCH-VM: /'
}
# The writer alone: an agent with a ring big enough for every record of the storms, stopped
# (SIGSTOP) while REPS offending storms of each op run, so that nothing of the agent's (reads,
# its own instructions, how many records it takes per wakeup) lands in them: what the kernel
# side costs a writer, as deterministic as the base under icount (the offending storms with
# a running agent vary between boots). Said as BENCH-WRITER <backend> <op> rep=<i>
# offending_ns=<ns>, then BENCH-WRITER-EVENTS <backend> lines=<n> want=<n> once the agent,
# continued, has written them.
writer_only() {
  wout=/tmp/bench-$1-w.out; werr=/tmp/bench-$1-w.err
  "$BIN" watch --backend "$1" --ring-size 64M $W > "$wout" 2> "$werr" &
  wp=$!
  i=0; while [ $i -lt 600 ] && ! grep -q "attached in" "$werr"; do sleep 0.5; i=$((i+1)); done
  grep -q "attached in" "$werr" || { kill $wp 2>/dev/null; wait $wp; return; }
  kill -STOP $wp
  wwant=0
  for op in $OPS; do
    r=1
    while [ $r -le "$REPS" ]; do
      o=$(storm "$op")
      say "BENCH-WRITER $1 $op rep=$r offending_ns=${o% *} ops=${o#* }"
      wwant=$((wwant + ${o#* }))
      r=$((r + 1))
    done
    # the same with kernel.bpf_stats_enabled, the agent still stopped: our programs' own
    # instructions per op, which no agent work on the other vCPU can land in (the BENCH-BPF
    # offending figures, taken with the agent running, may hold some of its)
    if command -v bpftool > /dev/null; then
      sysctl -qw kernel.bpf_stats_enabled=1
      b=$(progstats); o=$(storm "$op"); wwant=$((wwant + ${o#* }))
      bpfdelta BENCH-WRITER-BPF "$1 $op" "$b" "$(progstats)" "${o#* }"
      sysctl -qw kernel.bpf_stats_enabled=0
    fi
  done
  a0=$(run_ns $wp)
  kill -CONT $wp
  i=0; while [ $i -lt 300 ] && [ "$(wc -l < "$wout")" -lt "$wwant" ]; do sleep 0.2; i=$((i+1)); done
  # the agent's run time for the whole backlog, nothing else running: its own instructions
  # per event, deterministic where the ratios with it running are not (how many records a
  # read takes varies between boots). (While a storm runs, its run time would count the
  # writer's instructions on the other vCPU too.)
  say "BENCH-WRITER-AGENT $1 agent_ns=$(($(run_ns $wp) - a0)) events=$wwant"
  kill -INT $wp; wait $wp
  say "BENCH-WRITER-EVENTS $1 lines=$(grep '"op":' "$wout" | grep -vc '"op":"lost"') want=$wwant lost_lines=$(grep -c '"op":"lost"' "$wout")"
}
# warm-up: page cache, dentries, the storm binary itself
for op in $OPS; do storm "$op" > /dev/null; storm "$op" 65534:65534 > /dev/null; done
for be in $BACKENDS; do
  series "$be-base1"
  out=/tmp/bench-$be.out
  "$BIN" watch --backend "$be" $W > "$out" 2> /tmp/bench-$be.err &
  p=$!
  i=0; while [ $i -lt 600 ] && ! grep -q "attached in" /tmp/bench-$be.err; do sleep 0.5; i=$((i+1)); done
  if ! grep -q "attached in" /tmp/bench-$be.err; then
    say "BENCH-FAILED $be $(tr '\n' ' ' < /tmp/bench-$be.err)"
    kill $p 2>/dev/null; wait $p
    continue
  fi
  rm -f /tmp/bench-$be.want
  series "$be" /tmp/bench-$be.want
  bpfstats "$be" /tmp/bench-$be.want
  kill -INT $p; wait $p
  # the base again once the detacher has closed the links (seconds: RCU grace periods)
  i=0; while [ $i -lt 600 ] && pgrep -x ownwatch > /dev/null; do sleep 0.5; i=$((i+1)); done
  writer_only "$be"
  i=0; while [ $i -lt 600 ] && pgrep -x ownwatch > /dev/null; do sleep 0.5; i=$((i+1)); done
  series "$be-base2"
  want=$(awk '{s += $1} END {print s + 0}' /tmp/bench-$be.want)
  events=$(grep '"op":' /tmp/bench-$be.out | grep -vc '"op":"lost"')
  lost=$(grep -c '"op":"lost"' /tmp/bench-$be.out)
  say "BENCH-EVENTS $be lines=$events want=$want lost_lines=$lost"
done
say "SUITE-DONE $(cut -d' ' -f1 /proc/uptime)s"
