#!/usr/bin/env bash
# The kernel matrix's summary lines (stdin, as vm/test-kernels.sh prints them) as Markdown
# table rows: | kernel | arch | lsm | fentry | kprobe | tracepoint |, cells "pass N", "pass N
# (k flaky)", "not usable" (a backend the kernel cannot do, refused as expected) or "fail: f of N". With --readme FILE: those rows replace the rows of the same
# kernel and arch between the `<!-- kernel-matrix -->` and `<!-- /kernel-matrix -->` lines of
# FILE (rows of others stay; new ones are added in version order, amd64 before arm64).
set -euo pipefail
rows=$(awk '
  /^kernel [^ ]+ [a-z0-9]+ backend [a-z]+: / {
    k = $2 " | " $3; b = $5; sub(":", "", b)
    rest = $0; sub(/^[^:]*: /, "", rest)
    if (rest ~ /^pass/) {
      n = rest; sub(/^pass \(/, "", n); sub(/ tests.*/, "", n)
      cell = "pass " n
      if (rest ~ /flaky, passed on retry:/) {
        f = rest; sub(/.*passed on retry:/, "", f); sub(/\).*/, "", f)
        cell = cell " (" split(f, x, " ") " flaky)"
      }
    } else if (rest ~ /^not usable, refused as expected/) {
      cell = "not usable"
    } else {
      f = rest; sub(/^fail \(/, "", f); sub(/ failed.*/, "", f)
      cell = "fail: " f
    }
    cells[k, b] = cell
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
  }
  END {
    for (i = 1; i <= nk; i++) {
      k = order[i]
      printf "| %s", k
      for (j = 1; j <= 4; j++) {
        b = j == 1 ? "lsm" : j == 2 ? "fentry" : j == 3 ? "kprobe" : "tracepoint"
        printf " | %s", ((k, b) in cells) ? cells[k, b] : "not run"
      }
      printf " |\n"
    }
  }')
if [ "${1:-}" != --readme ]; then
  printf '%s\n' "$rows"
  exit 0
fi
file=$2
grep -q '^<!-- kernel-matrix -->$' "$file" || { echo "matrix-table: no <!-- kernel-matrix --> in $file" >&2; exit 2; }
tmp=$(mktemp)
awk -v rows="$rows" '
  BEGIN { n = split(rows, r, "\n"); for (i = 1; i <= n; i++) { split(r[i], c, " "); new[c[2] " " c[4]] = r[i] } }
  /^<!-- kernel-matrix -->$/ { print; inside = 1; next }
  /^<!-- \/kernel-matrix -->$/ {
    for (k in new) if (!(k in done)) keep[k] = new[k]
    m = 0; for (k in keep) key[++m] = k
    # version order: numeric fields of the kernel name
    for (i = 2; i <= m; i++) for (j = i; j > 1 && older(key[j], key[j-1]); j--) { t = key[j]; key[j] = key[j-1]; key[j-1] = t }
    for (i = 1; i <= m; i++) print keep[key[i]]
    inside = 0; print; next
  }
  inside && /^\| [0-9]/ { split($0, c, " "); k = c[2] " " c[4]; keep[k] = (k in new) ? new[k] : $0; done[k] = 1; next }
  inside { print; next }
  { print }
  # "version arch" keys: amd64 rows first, then arm64, each in version order
  function older(a, b,   x, y, i, p, q) {
    split(a, p, " "); split(b, q, " ")
    if (p[2] != q[2]) return p[2] < q[2]
    split(p[1], x, "."); split(q[1], y, ".")
    for (i = 1; i <= 3; i++) if (x[i] + 0 != y[i] + 0) return x[i] + 0 < y[i] + 0
    return 0
  }
' "$file" > "$tmp"
cat "$tmp" > "$file"
rm -f "$tmp"
