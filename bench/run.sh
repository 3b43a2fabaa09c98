#!/usr/bin/env bash
# Measure lokt side by side, in one run, against flock(1) and against the
# floor a Go CLI cannot go below (an empty static Go program; one that
# fork/execs `true` and waits): start-up rows (guard, lock+unlock, with and
# without 10,000 other locks in the root, peak RSS), the 8x25 counter
# hammer, and release -> next-holder hand-off latency (p50, p99). Builds lokt
# and the floor programs exactly like a release (static, stripped), then
# prints the machine, the command and the tables: times (p50/min/p99, ratios
# of p50s and medians of per-round ratios), and per-run page faults and
# context switches, counts that a loaded machine does not bend. Each row
# says whether its issue-12 target is met. About 1-2 minutes on a 2-core
# machine with the defaults; more runs for steadier numbers:
#   bash bench/run.sh -runs 300 -rounds 5 -handoffs 100
#   bash bench/run.sh -others 0 -skip hammer,handoff     # start-up rows only
# Set BENCH_DIR to put the lock roots on another filesystem (default: a new
# directory under $TMPDIR); set BENCH_BASE to a git revision (e.g. main) to
# also measure that revision's guard in the same rounds, for a before/after.
# Engine-level Go benchmarks:
#   go test -bench . -run '^$' .
set -euo pipefail
cd "$(dirname "$0")/.."
cmdline="bash bench/run.sh${*:+ $*}"

command -v flock >/dev/null || { echo "bench: flock(1) not found; install util-linux" >&2; exit 1; }

bin=$(mktemp -d "${TMPDIR:-/tmp}/lokt-bench-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
# The release build (see docs/releasing.md): a cgo build links libc
# dynamically and starts about a millisecond slower.
release=(env CGO_ENABLED=0 go build -trimpath -ldflags '-s -w')
# lokt as released: the slim build (.goreleaser.yaml), which leaves the
# etcd client and the MCP SDK to lokt-full.
"${release[@]}" -tags lokt_slim -o "$bin/lokt" ./cmd/lokt
"${release[@]}" -o "$bin/hello" ./bench/floor/hello
"${release[@]}" -o "$bin/forkexec" ./bench/floor/forkexec
"${release[@]}" -o "$bin/cliguard" ./bench/floor/cliguard
go build -o "$bin/compare" ./bench/compare
if [[ -n "${BENCH_BASE:-}" ]]; then
  mkdir "$bin/base-src"
  git archive "$BENCH_BASE" | tar -x -C "$bin/base-src"
  (cd "$bin/base-src" && "${release[@]}" -tags lokt_slim -o "$bin/lokt-base" ./cmd/lokt)
fi

args=(-lokt "$bin/lokt" -hello "$bin/hello" -forkexec "$bin/forkexec" -cliguard "$bin/cliguard")
if [[ -n "${BENCH_BASE:-}" ]]; then
  args+=(-base "$bin/lokt-base")
fi
if [[ -n "${BENCH_DIR:-}" ]]; then
  mkdir -p "$BENCH_DIR"
  args+=(-dir "$BENCH_DIR")
fi
echo "# command: ${BENCH_BASE:+BENCH_BASE=$BENCH_BASE }$cmdline"
echo "# machine: $(uname -srm), $(nproc) CPUs, $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
echo "# build: CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -tags lokt_slim (lokt $(stat -c %s "$bin/lokt") bytes)"
"$bin/compare" "${args[@]}" "$@"
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
