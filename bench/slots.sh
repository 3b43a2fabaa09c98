#!/usr/bin/env bash
# Hand-off latency of slots and of shared-to-exclusive transitions, lokt
# against GNU sem (package parallel) and flock(1) -s, for the same work: a
# holder's command writes a timestamp and exits; a waiter queued behind it
# writes one as its command starts. The gap covers the holder's exit and
# release, the waiter's wake-up and its command's start, for every tool.
#   bench/slots.sh [ROUNDS]      (default 10; prints median and worst, ms)
# Run it on a quiet machine: with other work on the CPUs the numbers are
# mostly scheduling delay.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
for tool in flock sem; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (flock: util-linux, sem: parallel)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/lokt-slots-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$work/lokt" ./cmd/lokt
export LOKT_ROOT="$work/root" LOKT=$work/lokt W=$work HOME=$work # sem keeps its state under $HOME

# A holder's command: say it is in, wait for the go signal, stamp, exit.
holder='touch "$W/in"; while [ ! -e "$W/go" ]; do sleep 0.01; done; date +%s%N > "$W/released"'
waiter='date +%s%N > "$W/acquired"'

# measure NAME HOLDER-CMD WAITER-CMD: one hand-off per round, in ms.
measure() {
  local name=$1 hold=$2 wait=$3 out=()
  for _ in $(seq "$rounds"); do
    rm -f "$W/in" "$W/go" "$W/released" "$W/acquired"
    bash -c "$hold" </dev/null &
    local hp=$!
    while [ ! -e "$W/in" ]; do sleep 0.01; done
    bash -c "$wait" </dev/null &
    local wp=$!
    sleep 0.3 # let the waiter queue up: this is a measurement, not a test
    touch "$W/go"
    wait "$hp" "$wp"
    out+=($(( ($(cat "$W/acquired") - $(cat "$W/released")) / 1000 )))
  done
  printf '%s\n' "${out[@]}" | sort -n | awk -v n="$name" '{a[NR]=$1} END {printf "%-44s median %6.1f ms   worst %6.1f ms   (%d rounds)\n", n, a[int((NR+1)/2)]/1000, a[NR]/1000, NR}'
}

echo "# $(uname -srm), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
# Slots: two slots, one taken for the whole run, so each hand-off frees the
# last one.
"$LOKT" lock pool --slots 2 --pid 0 --ttl 1h --quiet
measure "lokt guard --slots 2 (slot hand-off)" \
  "\"\$LOKT\" guard pool --slots 2 -- sh -c '$holder'" \
  "\"\$LOKT\" guard pool --slots 2 --wait --quiet -- sh -c '$waiter'"
measure "sem -j 1 (slot hand-off)" \
  "sem --will-cite --fg --id pool -j 1 '$holder'" \
  "sem --will-cite --fg --id pool -j 1 '$waiter'"
# Shared to exclusive: a reader holds, a writer waits for it.
measure "lokt guard --shared -> exclusive" \
  "\"\$LOKT\" guard rw --shared -- sh -c '$holder'" \
  "\"\$LOKT\" guard rw --wait --quiet -- sh -c '$waiter'"
measure "flock -s -> flock (exclusive)" \
  "flock -s \"\$W/rw.lock\" sh -c '$holder'" \
  "flock \"\$W/rw.lock\" sh -c '$waiter'"
# Exclusive for reference: lokt's plain lock hand-off.
measure "lokt guard (exclusive hand-off)" \
  "\"\$LOKT\" guard ex -- sh -c '$holder'" \
  "\"\$LOKT\" guard ex --wait --quiet -- sh -c '$waiter'"
