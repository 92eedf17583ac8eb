#!/usr/bin/env bash
# The agent's instructions per record, counted (valgrind's callgrind), not timed: the same
# number on every run, whatever else the machine does, so a change to the agent's per-event
# work can be compared to a few tenths of a percent where timing it would need dozens of runs.
#
#   sudo bench/agent-instr.sh [ITERS] BINARY...
#
# For each ownwatch BINARY: `watch` under callgrind, collecting only inside
# Processor::handle (a record in, its line out; start-up, the ring buffer's wakeups and the
# write(2)s excluded), on a tmpfs tree of its own, while a root storm of ITERS (default 1000)
# iterations of issue 14's mixed ops (create+write, rename, chmod, unlink, mkdir, rmdir: 6
# records each, all offending; AGENT_OP=tarlike: owbench's tar-like create, fchown, fchmod
# through one fd, 3 records each; tardeep: the same six levels down) runs on CPU 1; then
# instructions per record. Needs root,
# valgrind, and target/bench/owbench (`make bench` builds it; else built here). Binaries
# without symbols still work (the name is in .symtab).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
iters=1000
op=${AGENT_OP:-storm}
case $op in storm|tarlike|tardeep) ;; *) echo "agent-instr: AGENT_OP is storm, tarlike or tardeep" >&2; exit 2 ;; esac
if [[ ${1:-} =~ ^[0-9]+$ ]]; then iters=$1; shift; fi
[ $# -ge 1 ] || { echo "usage: $0 [ITERS] BINARY..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "agent-instr: needs root" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "agent-instr: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
owb=$repo/target/bench/owbench
[ -x "$owb" ] || { mkdir -p "$repo/target/bench"; gcc -O2 -o "$owb" "$repo/bench/owbench.c"; }
work=$(mktemp -d /tmp/ownwatch-instr.XXXXXX)
tree=$work/tree
mkdir "$tree"
mount -t tmpfs -o mode=0755 ownwatch-instr "$tree"
trap 'umount "$work/tree" 2>/dev/null; rm -rf "$work"' EXIT
# AGENT_TREE=srv/app: the tree that far below the tmpfs's root (names above the root, as for
# /srv/app on its filesystem), not the tmpfs's root itself
[ -z "${AGENT_TREE:-}" ] || { tree=$tree/$AGENT_TREE; mkdir -p "$tree"; }
chown 65534:65534 "$tree"
for bin in "$@"; do
  rm -rf "${tree:?}"/*
  : > "$work/err"
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
    --toggle-collect='ownwatch::watch::processor::Processor::handle' \
    "$bin" watch -v "$tree" > "$work/out" 2>> "$work/err" &
  pid=$!
  for _ in $(seq 600); do grep -q "watching" "$work/err" && break; sleep 0.2; done
  grep -q "watching" "$work/err" || { cat "$work/err" >&2; kill "$pid"; exit 1; }
  # (owbench says how many ops it made: each one a record)
  want=$(taskset -c 1 "$owb" run "$op" "$tree" "$iters" --owner 65534:65534 |
    sed -n 's/.* events=\([0-9]*\).*/\1/p')
  # until the agent has written every line (valgrind makes it ~50x slower)
  n=0
  for _ in $(seq 600); do n=$(wc -l < "$work/out"); [ "$n" -ge "$want" ] && break; sleep 0.5; done
  kill -INT "$pid"; wait "$pid" || true
  # (the agent's own count: its child that drops the links prints one too)
  ir=$(sed -n "s/^==$pid== Collected : \([0-9]*\).*/\1/p" "$work/err")
  echo "$(basename "$bin"): $n lines (of $want), $((ir / n)) instructions per record"
done
