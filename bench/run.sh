#!/usr/bin/env bash
# Measure lokt against flock(1) side by side in one run: an uncontended
# guarded command, the 8x25 counter hammer, and release -> next-holder
# hand-off latency. Builds a non-race lokt and the driver (bench/compare),
# then prints a table. Extra arguments go to the driver, e.g.
#   bench/run.sh -runs 500 -handoffs 200
# Set BENCH_DIR to put the lock roots on another filesystem (default: a new
# directory under $TMPDIR). Engine-level Go benchmarks: go test -bench . -run '^$' .
set -euo pipefail
cd "$(dirname "$0")/.."

command -v flock >/dev/null || { echo "bench: flock(1) not found; install util-linux" >&2; exit 1; }

bin=$(mktemp -d "${TMPDIR:-/tmp}/lokt-bench-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
# Built like a release (static, no cgo): a cgo build links libc dynamically
# and starts about a millisecond slower.
CGO_ENABLED=0 go build -trimpath -o "$bin/lokt" ./cmd/lokt
go build -o "$bin/compare" ./bench/compare

args=(-lokt "$bin/lokt")
if [[ -n "${BENCH_DIR:-}" ]]; then
  mkdir -p "$BENCH_DIR"
  args+=(-dir "$BENCH_DIR")
fi
echo "# $(uname -srm), $(nproc) CPUs, $(go version | cut -d' ' -f3), load: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
"$bin/compare" "${args[@]}" "$@"
