#!/usr/bin/env bash
# Measure lokt on etcd side by side with `etcdctl lock` on a loopback
# single member that this script starts (and SIGKILLs at the end):
#   acquire+release   lokt guard NAME -- true      vs  etcdctl lock NAME true
#   acquire, release  lokt lock NAME --ttl 1m --pid 0, lokt unlock NAME
#   hand-off          a holder's command ends -> the waiter's command starts
# Prints p50/p99 in milliseconds. Usage: bench/etcd.sh [RUNS] [HANDOFFS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
handoffs=${2:-20}
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "bench: needs etcd and etcdctl (apt-get install -y etcd-server etcd-client)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/lokt-etcd-bench.XXXXXX")
CGO_ENABLED=0 go build -trimpath -o "$work/lokt" ./cmd/lokt
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(port); pport=$(port)
etcd --name b --data-dir "$work/data" --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
  --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
  --initial-cluster "b=http://127.0.0.1:$pport" --logger zap --log-outputs "$work/etcd.log" --log-level error &
epid=$!
trap 'kill -9 $epid 2>/dev/null; wait $epid 2>/dev/null; rm -rf "$work"' EXIT
until etcdctl --endpoints "127.0.0.1:$cport" endpoint health >/dev/null 2>&1; do sleep 0.05; done

export LOKT_BACKEND="etcd://127.0.0.1:$cport/bench" ETCDCTL_API=3
L=$work/lokt
E=(etcdctl --endpoints "127.0.0.1:$cport")
now() { date +%s%N; }
# pct FILE: p50 and p99 of the nanosecond samples in FILE, in ms.
pct() { sort -n "$1" | awk '{a[NR]=$1} END {i50=int((NR+1)*0.50); i99=int(NR*0.99+0.999); if (i99>NR) i99=NR; printf "p50 %6.2f ms  p99 %6.2f ms  (n=%d)\n", a[i50]/1e6, a[i99]/1e6, NR}'; }

for i in $(seq "$runs"); do t0=$(now); "$L" guard g -- true; t1=$(now); echo $((t1-t0)); done >"$work/guard"
for i in $(seq "$runs"); do t0=$(now); "${E[@]}" lock e true >/dev/null; t1=$(now); echo $((t1-t0)); done >"$work/etcdctl"
for i in $(seq "$runs"); do
  t0=$(now); "$L" lock l --ttl 1m --pid 0 -q; t1=$(now); "$L" unlock l >/dev/null; t2=$(now)
  echo $((t1-t0)) >>"$work/acq"; echo $((t2-t1)) >>"$work/rel"
done

# Hand-off: the holder writes the time its command ends, the waiter the
# time its command starts; both include process start-up, as users see it.
handoff() { # handoff OUT HOLD... :: WAIT...
  local out=$1; shift
  local hold=() wait=()
  while [[ $1 != :: ]]; do hold+=("$1"); shift; done; shift; wait=("$@")
  for i in $(seq "$handoffs"); do
    "${hold[@]}" sh -c "sleep 0.3; date +%s%N >$work/end" >/dev/null &
    local holder=$!
    sleep 0.1
    "${wait[@]}" sh -c "date +%s%N >$work/start" >/dev/null
    wait "$holder"
    echo $(( $(cat "$work/start") - $(cat "$work/end") )) >>"$out"
  done
}
handoff "$work/h-lokt" "$L" guard h -- :: "$L" guard h --wait --
handoff "$work/h-etcdctl" "${E[@]}" lock h2 -- :: "${E[@]}" lock h2 --

echo "# $(uname -srm), $(nproc) CPUs, $(etcd --version | head -n1), load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %s\n' "lokt guard NAME -- true" "$(pct "$work/guard")"
printf '%-44s %s\n' "etcdctl lock NAME true" "$(pct "$work/etcdctl")"
printf '%-44s %s\n' "lokt lock NAME --ttl 1m --pid 0 (acquire)" "$(pct "$work/acq")"
printf '%-44s %s\n' "lokt unlock NAME (release)" "$(pct "$work/rel")"
printf '%-44s %s\n' "hand-off, lokt guard --wait" "$(pct "$work/h-lokt")"
printf '%-44s %s\n' "hand-off, etcdctl lock" "$(pct "$work/h-etcdctl")"
