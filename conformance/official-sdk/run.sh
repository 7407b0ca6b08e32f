#!/usr/bin/env bash
# Runs the official Box Python SDK (box-sdk-gen, pinned) against the box-upload emulator through
# the recorder, saving one fixture per operation into conformance/fixtures/official-python/.
# Fails (non-zero exit, with a message) if the venv, pip, the SDK or any operation fails.
set -euo pipefail

SDK_VERSION="${BOX_SDK_GEN_VERSION:-1.17.0}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${BOX_UPLOAD_VENV:-$HOME/.cache/box-upload/venv}"
OUT="${BOX_UPLOAD_FIXTURES_OUT:-$ROOT/conformance/fixtures/official-python}"
TOKEN="test-token"

die() { echo "official-sdk/run.sh: ERROR: $*" >&2; exit 1; }

# 1. The venv (cached; reinstalled when the pinned version changes).
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || die "cannot create a Python venv at $VENV (is python3-venv installed?)"
fi
have="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("box-sdk-gen"))' 2>/dev/null || true)"
if [ "$have" != "$SDK_VERSION" ]; then
  "$VENV/bin/pip" install --quiet "box-sdk-gen==$SDK_VERSION" || die "pip install box-sdk-gen==$SDK_VERSION failed"
fi
"$VENV/bin/python" -c 'import box_sdk_gen' || die "box_sdk_gen does not import"

# 2. The binaries.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build --quiet -p box-upload-conformance --bins) || die "cargo build failed"
BIN="$CARGO_TARGET_DIR/debug"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

first_line() { # file, what
  for _ in $(seq 1 100); do
    if [ -s "$1" ]; then head -n1 "$1"; return 0; fi
    sleep 0.1
  done
  die "$2 did not print its URL"
}

"$BIN/box-upload-emulator" --token "$TOKEN" --seed 1 >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
PIDS+=($!)
UPLOAD_BASE="$(first_line "$WORK/emulator.out" emulator)"
ORIGIN="${UPLOAD_BASE%/api}"

rm -rf "$OUT"
mkdir -p "$OUT"
"$BIN/box-upload-recorder" --upstream "$ORIGIN" --out-dir "$OUT" --source official-python \
  --redact "$TOKEN" >"$WORK/recorder.out" 2>"$WORK/recorder.err" &
PIDS+=($!)
RECORDER="$(first_line "$WORK/recorder.out" recorder)"

echo "emulator $UPLOAD_BASE, recorder $RECORDER, box-sdk-gen $SDK_VERSION"
BOX_UPLOAD_URL="$RECORDER/api" BOX_RECORDER="$RECORDER" BOX_TOKEN="$TOKEN" \
  "$VENV/bin/python" "$HERE/drive.py" || die "the official SDK run failed (see above)"

count="$(ls "$OUT"/*.json 2>/dev/null | wc -l)"
[ "$count" -ge 16 ] || die "expected at least 16 fixtures in $OUT, found $count"
echo "wrote $count fixtures to $OUT"
