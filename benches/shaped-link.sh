#!/usr/bin/env bash
# Runs a command inside a fresh network namespace whose loopback is shaped by `tc qdisc ... tbf`
# (this kernel has tbf, not netem): a link-bound setup for the benchmarks, where the emulator
# and the client both run in the namespace and every byte between them crosses the shaped link.
# Needs root and iproute2. The namespace is removed afterwards. The namespace has no route out:
# install the SDKs a command needs first, outside it (e.g. `benches/upload-1gib.sh --size-mib 16
# --only python --out -` caches the Python SDK's venv).
#
# usage: benches/shaped-link.sh [--rate-mbit R] [--name NS] -- COMMAND...
#   --rate-mbit R  the link's rate in Mbit/s (default 1000)
#   --name NS      the namespace's name (default bench-link-$$)
# e.g. benches/shaped-link.sh --rate-mbit 1000 -- benches/upload-1gib.sh --latency-ms 50 \
#        --only hyper4,ureq4,python --link-mbit 1000 --no-build --out benches/results-link1gbit.md
set -euo pipefail
RATE=1000
NS="bench-link-$$"
while [ $# -gt 0 ]; do
  case "$1" in
    --rate-mbit) RATE="${2:?}"; shift 2 ;;
    --name) NS="${2:?}"; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--rate-mbit R] [--name NS] -- COMMAND..." >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "no command given" >&2; exit 2; }
[[ "$RATE" =~ ^[1-9][0-9]*$ ]] || { echo "--rate-mbit must be a positive integer" >&2; exit 2; }
ip netns add "$NS"
trap 'ip netns delete "$NS" 2>/dev/null || true' EXIT
ip -n "$NS" link set lo up
# burst: at least the 64 KiB segments loopback carries, and ~1 ms of the rate; latency bounds
# the queue (packets waiting longer are dropped, as on a real bottleneck).
burst=$(( RATE * 1000 / 8 )); [ "$burst" -ge 262144 ] || burst=262144
ip netns exec "$NS" tc qdisc add dev lo root tbf rate "${RATE}mbit" burst "$burst" latency 50ms
echo "namespace $NS: lo shaped to ${RATE} Mbit/s ($(ip netns exec "$NS" tc qdisc show dev lo))" >&2
ip netns exec "$NS" "$@"
