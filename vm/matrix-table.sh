#!/usr/bin/env bash
# The kernel matrix's summary lines (stdin, as vm/test-kernels.sh prints them) as Markdown
# table rows: | kernel | lsm | fentry | kprobe | tracepoint |, cells "pass N", "pass N (k flaky)"
# or "fail: f of N". With --readme FILE: those rows replace the rows of the same kernels
# between the `<!-- kernel-matrix -->` and `<!-- /kernel-matrix -->` lines of FILE (rows of
# other kernels stay; new kernels are added in version order).
set -euo pipefail
rows=$(awk '
  /^kernel [^ ]+ backend [a-z]+: / {
    k = $2; b = $4; sub(":", "", b)
    rest = $0; sub(/^[^:]*: /, "", rest)
    if (rest ~ /^pass/) {
      n = rest; sub(/^pass \(/, "", n); sub(/ tests.*/, "", n)
      cell = "pass " n
      if (rest ~ /flaky, passed on retry:/) {
        f = rest; sub(/.*passed on retry:/, "", f); sub(/\).*/, "", f)
        cell = cell " (" split(f, x, " ") " flaky)"
      }
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
  BEGIN { n = split(rows, r, "\n"); for (i = 1; i <= n; i++) { split(r[i], c, " "); new[c[2]] = r[i] } }
  /^<!-- kernel-matrix -->$/ { print; inside = 1; next }
  /^<!-- \/kernel-matrix -->$/ {
    for (k in new) if (!(k in done)) keep[k] = new[k]
    m = 0; for (k in keep) key[++m] = k
    # version order: numeric fields of the kernel name
    for (i = 2; i <= m; i++) for (j = i; j > 1 && older(key[j], key[j-1]); j--) { t = key[j]; key[j] = key[j-1]; key[j-1] = t }
    for (i = 1; i <= m; i++) print keep[key[i]]
    inside = 0; print; next
  }
  inside && /^\| [0-9]/ { split($0, c, " "); k = c[2]; keep[k] = (k in new) ? new[k] : $0; done[k] = 1; next }
  inside { print; next }
  { print }
  function older(a, b,   x, y, i, n) {
    n = split(a, x, "."); split(b, y, ".")
    for (i = 1; i <= 3; i++) if (x[i] + 0 != y[i] + 0) return x[i] + 0 < y[i] + 0
    return 0
  }
' "$file" > "$tmp"
cat "$tmp" > "$file"
rm -f "$tmp"
