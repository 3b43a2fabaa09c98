#!/usr/bin/env bash
# Measure lokt on etcd side by side with `etcdctl lock` doing the same work,
# on a loopback single member and a loopback 3-member cluster that the driver
# (bench/etcdcompare) starts from the installed etcd on free ports and kills
# at the end: acquire, release, acquire+run+release and hand-off latency
# (p50/p99, interleaved rounds), `etcdctl put` as the floor beside them, and
# how long guard takes to report a lost lease. About 3 to 6 minutes with
# the defaults on a busy 2-core machine. Flags go to the driver:
#   bash bench/etcd.sh -runs 40 -loss 5 -members 1,3
# BEFORE=REV also builds lokt from git revision REV and measures it beside
# this tree's, interleaved (e.g. BEFORE=main).
set -euo pipefail
cd "$(dirname "$0")/.."
cmdline="bash bench/etcd.sh${*:+ $*}"
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "bench: needs etcd and etcdctl (apt-get install -y etcd-server etcd-client)" >&2; exit 1; }

bin=$(mktemp -d "${TMPDIR:-/tmp}/lokt-etcd-bench-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
# lokt-full as released (the slim lokt hands an etcd backend over to it).
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin/lokt" ./cmd/lokt
go build -o "$bin/etcdcompare" ./bench/etcdcompare
args=(-lokt "$bin/lokt")
if [[ -n "${BEFORE:-}" ]]; then
  mkdir "$bin/before"
  git archive "$BEFORE" | tar -x -C "$bin/before"
  (cd "$bin/before" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin/lokt-before" ./cmd/lokt)
  args+=(-before "$bin/lokt-before")
  cmdline="BEFORE=$BEFORE $cmdline ($(git rev-parse --short "$BEFORE") beside $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes))"
fi
echo "# command: $cmdline"
echo "# machine: $(uname -srm), $(nproc) CPUs, $(go version | cut -d' ' -f3), $(etcd --version | head -n1), etcdctl $(etcdctl version | head -n1 | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/etcdcompare" "${args[@]}" "$@"
