#!/usr/bin/env bash
# Reads `go test -cover` output (file or stdin) and fails when a gated
# package is below its floor or reports no coverage at all.
set -euo pipefail
input=${1:-/dev/stdin}
module=github.com/lokt-dev/lokt
engine_floor=85
cli_floor=70
engine_pkgs=(
  "$module"
  "$module/internal/lockfile"
  "$module/internal/atomicfs"
  "$module/internal/filestore"
  "$module/internal/proc"
  "$module/internal/rootdir"
  "$module/internal/audit"
  "$module/internal/doctor"
)
cli_pkgs=("$module/internal/cli")

status=0
check() {
  local pkg=$1 floor=$2 pct
  pct=$(awk -v p="$pkg" '$1 == "ok" && $2 == p { for (i = 3; i <= NF; i++) if ($i == "coverage:") { sub("%", "", $(i+1)); print $(i+1) } }' "$input" | tail -n 1)
  if [ -z "$pct" ]; then
    echo "coverage: $pkg: no coverage figure (package missing, failed, or not tested)"
    status=1
    return
  fi
  if awk -v p="$pct" -v f="$floor" 'BEGIN { exit !(p + 0 < f + 0) }'; then
    echo "coverage: $pkg: ${pct}% is below the ${floor}% floor"
    status=1
  else
    echo "coverage: $pkg: ${pct}% (floor ${floor}%)"
  fi
}
for p in "${engine_pkgs[@]}"; do check "$p" "$engine_floor"; done
for p in "${cli_pkgs[@]}"; do check "$p" "$cli_floor"; done
exit $status
