#!/usr/bin/env bash
# Measures the emulator's ingest rate: a 1 GiB file uploaded as 8 MiB parts by four parallel
# curl processes (digests computed beforehand with openssl), then committed.
# Usage: conformance/bench-emulator.sh [size_MiB]   (needs curl, openssl, python3)
set -euo pipefail

SIZE_MIB="${1:-1024}"
PART=$((8 * 1024 * 1024))
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE="${PROFILE:-release}"
die() { echo "bench-emulator.sh: ERROR: $*" >&2; exit 1; }
for tool in curl openssl python3 split; do command -v "$tool" >/dev/null || die "$tool is required"; done

if [ "$PROFILE" = release ]; then
  (cd "$ROOT" && cargo build --quiet --release -p box-upload-conformance --bin box-upload-emulator) || die "build failed"
else
  (cd "$ROOT" && cargo build --quiet -p box-upload-conformance --bin box-upload-emulator) || die "build failed"
fi
BIN="$CARGO_TARGET_DIR/$PROFILE/box-upload-emulator"

WORK="$(mktemp -d)"
EMU_PID=""
cleanup() { [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

echo "preparing a ${SIZE_MIB} MiB file and its parts..."
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/file"
SIZE=$(stat -c %s "$WORK/file")
mkdir "$WORK/parts" "$WORK/resp"
split -b "$PART" -d -a 5 "$WORK/file" "$WORK/parts/p"
WHOLE="sha=$(openssl dgst -sha1 -binary "$WORK/file" | openssl base64 -A)"
: >"$WORK/jobs"
i=0
for p in "$WORK"/parts/p*; do
  digest="sha=$(openssl dgst -sha1 -binary "$p" | openssl base64 -A)"
  len=$(stat -c %s "$p")
  start=$((i * PART))
  echo "$i $p $digest bytes $start-$((start + len - 1))/$SIZE" >>"$WORK/jobs"
  i=$((i + 1))
done

# Part data in /dev/shm when it has room (as benches/upload-1gib.sh does): on a disk, page-cache
# write-back takes CPU from the run without showing in anyone's figures. EMU_DATA_DIR overrides.
DATA="${EMU_DATA_DIR:-}"
if [ -z "$DATA" ]; then
  free_kib=$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')
  if [ -n "$free_kib" ] && [ "$free_kib" -gt $((SIZE_MIB * 1024 * 2)) ]; then
    DATA="$(mktemp -d /dev/shm/box-upload-emu.XXXXXX)"
    trap 'cleanup; rm -rf "$DATA"' EXIT
  else
    DATA="$WORK/data"
  fi
fi
echo "emulator data in $DATA"
"$BIN" --token bench --part-size "$PART" --data-dir "$DATA" >"$WORK/emu.out" &
EMU_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/emu.out" ] && break; sleep 0.1; done
BASE="$(head -n1 "$WORK/emu.out")"
[ -n "$BASE" ] || die "emulator did not start"

SESSION="$(curl -sf -X POST -H 'Authorization: Bearer bench' -H 'Content-Type: application/json' \
  -d "{\"folder_id\":\"0\",\"file_size\":$SIZE,\"file_name\":\"bench.bin\"}" "$BASE/2.0/files/upload_sessions")" || die "create session failed"
ID="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$SESSION")"

export BASE ID WORK
upload() { # index path digest "bytes" range
  curl -sf -X PUT -H 'Authorization: Bearer bench' -H 'Content-Type: application/octet-stream' \
    -H "Digest: $3" -H "Content-Range: $4 $5" -T "$2" -o "$WORK/resp/$1.json" "$BASE/2.0/files/upload_sessions/$ID"
}
export -f upload

T0=$(date +%s.%N)
xargs -P 4 -L 1 bash -c 'upload "$@"' _ <"$WORK/jobs" || die "a part upload failed"
T1=$(date +%s.%N)
python3 - "$WORK" >"$WORK/commit.json" <<'PY'
import json, os, sys
d = os.path.join(sys.argv[1], "resp")
parts = [json.load(open(os.path.join(d, f)))["part"] for f in os.listdir(d)]
parts.sort(key=lambda p: p["offset"])
print(json.dumps({"parts": parts}))
PY
STATUS="$(curl -s -o "$WORK/committed.json" -w '%{http_code}' -X POST -H 'Authorization: Bearer bench' \
  -H 'Content-Type: application/json' -H "Digest: $WHOLE" --data-binary @"$WORK/commit.json" "$BASE/2.0/files/upload_sessions/$ID/commit")"
T2=$(date +%s.%N)
[ "$STATUS" = 201 ] || die "commit answered $STATUS: $(cat "$WORK/committed.json")"
# CPU seconds the emulator used (utime + stime), to tell its cost from the clients' and the machine's load.
EMU_CPU="$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$EMU_PID/stat")"

python3 - "$SIZE" "$T0" "$T1" "$T2" "$EMU_CPU" <<'PY'
import sys
size, t0, t1, t2, cpu = int(sys.argv[1]), *map(float, sys.argv[2:])
mb = size / 1e6
print(f"{mb:.0f} MB in {t1 - t0:.2f} s of part uploads (4 curl in parallel): {mb / (t1 - t0):.0f} MB/s")
print(f"commit took {t2 - t1:.3f} s; upload + commit: {mb / (t2 - t0):.0f} MB/s")
print(f"emulator CPU time: {cpu:.2f} s ({mb / max(cpu, 0.001):.0f} MB per CPU-second)")
with open("/proc/loadavg") as f:
    print(f"load average now: {f.read().split()[0]} (other work on this machine slows the figure)")
PY
