#!/usr/bin/env bash
# Direct upload against upload session, by file size, with the emulator answering each request
# after 50 ms (a stand-in for Box's round trip and server time), through both transports.
#
#   benches/direct-vs-chunked.sh [--repeats N] [--latency-ms MS] [--no-build] [--out FILE]
#
# For each size (default 5,000,000, 20,000,000, 35,000,000 and 50,000,000 bytes; SIZES="..."
# for others), transport (hyper, ureq) and way (direct: BOX_CHUNKED_FROM=50000001; chunked:
# BOX_CHUNKED_FROM=20000000; below 20,000,000 bytes only direct, Box's sessions start there), it
# uploads a file of random bytes N times (default 3; direct and chunked alternate, so a change in
# the machine's load hits both) with the release examples upload_bench_hyper / upload_bench_ureq
# (4 parts in flight, 8 MiB parts) and reports the best and the median upload time. Every upload
# is checked: the committed SHA-1 must equal the file's (the client refuses anything else).
# Writes a Markdown table to FILE (default benches/results-direct-vs-chunked.md).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
REPEATS=3
LATENCY=50
BUILD=1
OUT="$HERE/results-direct-vs-chunked.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) REPEATS="$2"; shift 2 ;;
    --latency-ms) LATENCY="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --quiet --release -p box-upload-conformance --bin box-upload-emulator \
    -p box-upload-hyper --example upload_bench_hyper -p box-upload-ureq --example upload_bench_ureq)
fi
BIN="$CARGO_TARGET_DIR/release"

WORK="$(mktemp -d)"
EMU_PID=""
cleanup() {
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/box-upload-emulator" --token test-token --part-size 8388608 --latency-ms "$LATENCY" \
  --data-dir "$WORK/data" >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
EMU_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/emulator.out" ] && break; sleep 0.1; done
BASE="$(head -n1 "$WORK/emulator.out")"

results="$WORK/results.tsv"
: >"$results"
for size in ${SIZES:-5000000 20000000 35000000 50000000}; do
  head -c "$size" /dev/urandom >"$WORK/f.bin"
  # Direct and chunked alternate, so a change in the machine's load hits both alike.
  for _ in $(seq 1 "$REPEATS"); do
    for transport in hyper ureq; do
      for way in direct chunked; do
        if [ "$way" = direct ]; then cutoff=50000001; else cutoff=20000000; fi
        [ "$way" = chunked ] && [ "$size" -lt 20000000 ] && continue
        line="$(BOX_CHUNKED_FROM=$cutoff "$BIN/examples/upload_bench_$transport" "$BASE" "$WORK/f.bin" 4)"
        secs="$(echo "$line" | grep -oE '(secs=|time=)[0-9.]+' | grep -oE '[0-9.]+')"
        printf '%s\t%s\t%s\t%s\n' "$size" "$transport" "$way" "$secs" >>"$results"
        echo "$size $transport $way $secs" >&2
      done
    done
  done
done

python3 - "$results" "$OUT" "$LATENCY" "$REPEATS" "$(git -C "$ROOT" rev-parse --short HEAD)" "${SIZES:-5000000 20000000 35000000 50000000}" <<'PY'
import collections, statistics, sys, datetime
rows, out, latency, repeats, rev, sizes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
times = collections.defaultdict(list)
for line in open(rows):
    size, transport, way, secs = line.split()
    times[(int(size), transport, way)].append(float(secs))
lines = [
    f"# Direct upload against upload session, {latency} ms per request",
    "",
    f"`SIZES=\"{sizes}\" benches/direct-vs-chunked.sh --repeats {repeats} --latency-ms {latency}`, measured "
    f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC from commit {rev}, the emulator on the "
    "same two cores (8 MiB parts, 4 in flight, every request answered after the latency). Times in seconds, "
    f"best and median of {repeats}; a session needs at least 20,000,000 bytes, so 5 MB goes direct only.",
    "",
    "| size (bytes) | transport | direct best | direct median | chunked best | chunked median | chunked / direct (median) |",
    "|---:|---|---:|---:|---:|---:|---:|",
]
for size in sorted({k[0] for k in times}):
    for transport in ("hyper", "ureq"):
        d = times.get((size, transport, "direct"), [])
        c = times.get((size, transport, "chunked"), [])
        fmt = lambda v: f"{v:.2f}" if v is not None else "-"
        dm = statistics.median(d) if d else None
        cm = statistics.median(c) if c else None
        ratio = f"{cm / dm:.2f}" if dm and cm else "-"
        lines.append(
            f"| {size:,} | {transport} | {fmt(min(d) if d else None)} | {fmt(dm)} | "
            f"{fmt(min(c) if c else None)} | {fmt(cm)} | {ratio} |"
        )
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
