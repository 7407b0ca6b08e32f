#!/usr/bin/env bash
# Issue 5's benchmark: a 1 GiB upload (random bytes, one file made once) to the box-upload emulator
# (release build, on loopback, 8 MiB parts), side by side:
#   - box-upload-hyper and box-upload-ureq (release examples upload_bench_hyper, upload_bench_ureq) at 1, 4 and 8 parts in flight,
#   - the official Box Python SDK's upload_big_file (box-sdk-gen, pinned),
#   - the official Box Node SDK's chunkedUploads.uploadBigFile (box-node-sdk, pinned),
#   - one `openssl sha1` pass over the file (the hashing floor).
# Each client gets a freshly started emulator (so its CPU is the emulator's CPU for that run) and a
# fresh file name; every upload is checked: the emulator's sha1 and size of the committed file must
# equal `sha1sum` of the source. Prints a Markdown table and writes it to benches/results.md.
#
# usage: benches/upload-1gib.sh [--size-mib N] [--repeat N] [--only LIST] [--wait-load X]
#                               [--data-dir DIR] [--out FILE] [--no-build]
#   --size-mib N   file size in MiB (default 1024; 256 is the quick mode)
#   --repeat N     run each client N times and keep its fastest run (default 1)
#   --only LIST    comma-separated subset of: openssl,hyper1,hyper4,hyper8,ureq1,ureq4,ureq8,python,node;
#                  any upload row with `-tls` appended (hyper4-tls, python-tls, ...) runs over TLS: the
#                  emulator with --tls and its CA trusted by each client the way that client is told
#                  (SSL_CERT_FILE for ours, REQUESTS_CA_BUNDLE for Python, NODE_EXTRA_CA_CERTS for Node)
#   --link-mbit R  the link's rate in Mbit/s (when run inside a shaped namespace, benches/shaped-link.sh):
#                  the table gains each client's share of it
#   --wait-load X  before each run, wait (up to 5 minutes) until the 1-minute load average is below X
#   --data-dir DIR have the emulator store parts in DIR (`shm` = a directory in /dev/shm) instead of
#                  keeping none (its default here, `--discard-content`: every digest is checked, a
#                  part's frames are held only until the whole-file SHA-1 has them, so the emulator
#                  spends no CPU on page-cache writes and re-reads that the client being measured
#                  needs; every client gets the same emulator either way)
#   --out FILE     where to write the results (default benches/results.md for 1024 MiB,
#                  benches/results-<N>mib.md for other sizes; `-` for none)
#   --no-build     use the binaries already built in $CARGO_TARGET_DIR/release
#   --at REV       build the Rust clients from commit REV (a `git archive` of it in a temporary
#                  directory, built in $CARGO_TARGET_DIR/at-rev) instead of the work tree, e.g.
#                  `--at HEAD` while others have uncommitted work in progress; the emulator is
#                  always the work tree's, so every run meets the same one
#   --latency-ms N the emulator waits N ms before handling each upload-session request, a stand-in
#                  for real Box's round trip and server time (results go to results-latency<N>ms.md)
#   --extra LABEL:PARTS:BINARY  also run BINARY (an upload_bench-style program: `BINARY UPLOAD_BASE
#                  FILE PARTS`, token in $BOX_TOKEN) as row LABEL, e.g. a transport built with a
#                  proposed change, for a before/after in the same run; repeatable
# Environment: CARGO_TARGET_DIR (default <repo>/target), BOX_UPLOAD_VENV (default
# ~/.cache/box-upload/venv), BOX_UPLOAD_NODE_DIR (default ~/.cache/box-upload/node),
# BOX_SDK_GEN_VERSION (default 1.17.0), BOX_NODE_SDK_VERSION (default 10.12.0).
# Needs: cargo, python3 (with venv), node + npm, openssl, curl, /usr/bin/time (GNU time).
set -euo pipefail

SIZE_MIB=1024
REPEAT=1
ONLY="openssl,hyper1,hyper4,hyper8,ureq1,ureq4,ureq8,python,node"
WAIT_LOAD=""
DATA_PARENT=""
LATENCY_MS=0
BUILD=1
AT=""
EXTRA=()
LINK_MBIT=""
EXTRA_PARTS=""
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT=""
PART_SIZE=$((8 * 1024 * 1024))
TOKEN="test-token"
SDK_GEN_VERSION="${BOX_SDK_GEN_VERSION:-1.17.0}"
NODE_SDK_VERSION="${BOX_NODE_SDK_VERSION:-10.12.0}"
VENV="${BOX_UPLOAD_VENV:-$HOME/.cache/box-upload/venv}"
NODE_DIR="${BOX_UPLOAD_NODE_DIR:-$HOME/.cache/box-upload/node}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

die() { echo "upload-1gib.sh: ERROR: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --size-mib) SIZE_MIB="${2:?}"; shift 2 ;;
    --size-mib=*) SIZE_MIB="${1#*=}"; shift ;;
    --repeat) REPEAT="${2:?}"; shift 2 ;;
    --only) ONLY="${2:?}"; shift 2 ;;
    --wait-load) WAIT_LOAD="${2:?}"; shift 2 ;;
    --data-dir) DATA_PARENT="${2:?}"; shift 2 ;;
    --latency-ms) LATENCY_MS="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --at) AT="${2:?}"; shift 2 ;;
    --extra) EXTRA+=("${2:?}"); shift 2 ;;
    --link-mbit) LINK_MBIT="${2:?}"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
[[ "$SIZE_MIB" =~ ^[0-9]+$ ]] && [ "$SIZE_MIB" -ge 20 ] || die "--size-mib must be an integer >= 20 (Box's minimum chunked-upload size)"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer"
[[ "$LATENCY_MS" =~ ^[0-9]+$ ]] || die "--latency-ms must be a non-negative integer"
if [ -z "$OUT" ]; then
  OUT="$HERE/results"
  [ "$SIZE_MIB" = 1024 ] || OUT="$OUT-${SIZE_MIB}mib"
  [ "$LATENCY_MS" = 0 ] || OUT="$OUT-latency${LATENCY_MS}ms"
  OUT="$OUT.md"
fi
want() { [[ ",$ONLY," == *",$1,"* ]]; }
for tool in openssl curl python3 sha1sum; do command -v "$tool" >/dev/null || die "$tool is required"; done
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is required: apt-get install time"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/upload-bench.XXXXXX")"
DATA=""
EMU_PID=""
stop_emulator() {
  if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null || true; wait "$EMU_PID" 2>/dev/null || true; EMU_PID=""; fi
}
cleanup() { stop_emulator; rm -rf "$WORK" ${DATA:+"$DATA"}; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Binaries (release).
REL="$CARGO_TARGET_DIR/release"
# The emulator always comes from the work tree, so runs of clients built from other commits
# (--at) meet the same emulator, with the same options.
EMULATOR="$CARGO_TARGET_DIR/release/box-upload-emulator"
SRC="$ROOT"
BUILT_FROM="work tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
if [ -n "$AT" ]; then
  commit="$(git -C "$ROOT" rev-parse --short "$AT^{commit}")" || die "--at $AT: no such commit"
  SRC="$WORK/src"
  mkdir -p "$SRC"
  git -C "$ROOT" archive "$commit" | tar -x -C "$SRC" || die "git archive $commit failed"
  # cargo's artifact names do not depend on where a workspace lives, and freshness is judged by
  # mtimes: give these sources the time of now (git archive stamps the commit's time) and a
  # target dir of their own, so neither this build nor a later work-tree build reuses the
  # other's artifacts.
  find "$SRC" -type f -exec touch {} +
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/at-rev"
  REL="$CARGO_TARGET_DIR/release"
  BUILT_FROM="commit $commit (the emulator from the work tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
fi
if [ "$BUILD" = 1 ]; then
  rm -f "$EMULATOR" "$REL/examples/upload_bench_hyper" "$REL/examples/upload_bench_ureq"
  (cd "$ROOT" && CARGO_TARGET_DIR="$(dirname "$(dirname "$EMULATOR")")" \
    cargo build --quiet --release -p box-upload-conformance --bin box-upload-emulator) \
    || die "cargo build of the emulator failed"
  if ! grep -q upload_bench_hyper <(ls "$SRC/transports/hyper/examples"); then
    # Commits before the examples were renamed (--at): both were `upload_bench`; build each and
    # copy it out under the transport's name.
    for t in hyper ureq; do
      rm -f "$REL/examples/upload_bench"
      (cd "$SRC" && cargo build --quiet --release -p "box-upload-$t" --example upload_bench) \
        && cp -f "$REL/examples/upload_bench" "$REL/examples/upload_bench_$t" || die "cargo build of the $t example failed"
    done
  else
    (cd "$SRC" && cargo build --quiet --release -p box-upload-hyper --example upload_bench_hyper \
      -p box-upload-ureq --example upload_bench_ureq) || die "cargo build of the examples failed"
  fi
fi
for b in "$EMULATOR" "$REL/examples/upload_bench_hyper" "$REL/examples/upload_bench_ureq"; do
  [ -x "$b" ] || die "$b is missing (run without --no-build)"
done

# 2. The official SDKs (cached installs, pinned versions).
if want python || want python-tls; then
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || die "cannot create a venv at $VENV (python3-venv?)"
  fi
  have="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("box-sdk-gen"))' 2>/dev/null || true)"
  if [ "$have" != "$SDK_GEN_VERSION" ]; then
    "$VENV/bin/pip" install --quiet "box-sdk-gen==$SDK_GEN_VERSION" || die "pip install box-sdk-gen==$SDK_GEN_VERSION failed"
  fi
fi
if want node || want node-tls; then
  command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required (or leave node out of --only)"
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"name":"box-upload-bench-node","private":true}' >"$NODE_DIR/package.json"
  have="$(node -p "require('$NODE_DIR/node_modules/box-node-sdk/package.json').version" 2>/dev/null || true)"
  if [ "$have" != "$NODE_SDK_VERSION" ]; then
    (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund "box-node-sdk@$NODE_SDK_VERSION") \
      || die "npm install box-node-sdk@$NODE_SDK_VERSION failed"
  fi
fi

# 3. The file (made once) and its digest.
SIZE=$((SIZE_MIB * 1024 * 1024))
if [ "$DATA_PARENT" = shm ]; then DATA_PARENT=/dev/shm; fi
if [ -n "$DATA_PARENT" ]; then
  DATA="$(mktemp -d "$DATA_PARENT/upload-bench-data.XXXXXX")"
  STORAGE=(--data-dir "$DATA")
  STORAGE_LABEL="$DATA_PARENT"
else
  STORAGE=(--discard-content)
  STORAGE_LABEL="none, verified then discarded (--discard-content)"
fi
if [ "$LATENCY_MS" != 0 ]; then
  STORAGE_LABEL="$STORAGE_LABEL; each upload-session request answered after $LATENCY_MS ms (--latency-ms)"
fi

FILE="$WORK/source.bin"
echo "making a ${SIZE_MIB} MiB file of random bytes ..."
head -c "$SIZE" /dev/urandom >"$FILE"
SHA1="$(sha1sum "$FILE" | cut -d' ' -f1)" # also leaves the file in the page cache for everyone
echo "source sha1 $SHA1"

# 4. Runs.
wait_for_load() {
  [ -n "$WAIT_LOAD" ] || return 0
  local i
  for i in $(seq 1 60); do
    awk -v max="$WAIT_LOAD" '{exit !($1 < max)}' /proc/loadavg && return 0
    [ "$i" = 1 ] && echo "  waiting for the load average ($(cut -d' ' -f1 /proc/loadavg)) to fall below $WAIT_LOAD ..."
    sleep 5
  done
  echo "  load still $(cut -d' ' -f1 /proc/loadavg); measuring anyway"
}

RUN_NO=0
CA="$WORK/ca.pem"
start_emulator() { # [tls]
  RUN_NO=$((RUN_NO + 1))
  [ -z "$DATA" ] || rm -rf "${DATA:?}"/*
  rm -f "$WORK/emu.out" "$CA"
  local tls=()
  [ "${1:-}" = tls ] && tls=(--tls --ca-out "$CA")
  "$EMULATOR" --listen 127.0.0.1:0 --token "$TOKEN" --part-size "$PART_SIZE" "${STORAGE[@]}" --latency-ms "$LATENCY_MS" \
    ${tls[@]+"${tls[@]}"} >"$WORK/emu.out.$RUN_NO" 2>"$WORK/emu.err" &
  EMU_PID=$!
  local i
  # a fresh output file per run: the previous emulator's URL is never read by mistake
  for i in $(seq 1 100); do [ -s "$WORK/emu.out.$RUN_NO" ] && break; sleep 0.1; done
  BASE="$(head -n1 "$WORK/emu.out.$RUN_NO")"
  [ -n "$BASE" ] || die "the emulator did not start: $(cat "$WORK/emu.err")"
}

emulator_cpu() { # utime + stime of the running emulator, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$EMU_PID/stat"
}

# `%e %U %S %M` = process wall, user, sys (s), max RSS (KiB); a row of the TSV per run:
# label load secs wall user sys rss_kib emu_cpu verified
ROWS="$WORK/rows.tsv"
: >"$ROWS"

record() { # label load secs timefile emu_cpu verified
  read -r wall user sys rss <"$4"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$wall" "$user" "$sys" "$rss" "$5" "$6" >>"$ROWS"
}

run_openssl() {
  local r load
  for r in $(seq 1 "$REPEAT"); do
    wait_for_load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" openssl sha1 "$FILE" >"$WORK/out" 2>"$WORK/err" \
      || die "openssl sha1 failed: $(cat "$WORK/err")"
    grep -qi "$SHA1" "$WORK/out" || die "openssl sha1 disagrees with sha1sum: $(cat "$WORK/out")"
    record openssl "$load" "$(cut -d' ' -f1 "$WORK/time")" "$WORK/time" - yes
    echo "  openssl sha1: $(cat "$WORK/time")"
  done
}

run_upload() { # label command... (BASE and NAME are substituted for @BASE@ and @NAME@)
  local label="$1"; shift
  local r load name args a secs emu file_id info got_sha1 got_size mode="" trust=()
  if [[ "$label" == *-tls ]]; then
    mode=tls
    # Each client told of the emulator's CA its own way; none of them is told to skip checks.
    trust=(env SSL_CERT_FILE="$CA" REQUESTS_CA_BUNDLE="$CA" NODE_EXTRA_CA_CERTS="$CA")
  fi
  for r in $(seq 1 "$REPEAT"); do
    wait_for_load
    start_emulator $mode
    [ -z "$mode" ] || [ -s "$CA" ] || die "the emulator wrote no CA to $CA"
    name="bench-$label-$r-$$-$RANDOM.bin"
    args=(${trust[@]+"${trust[@]}"})
    for a in "$@"; do a="${a//@BASE@/$BASE}"; args+=("${a//@NAME@/$name}"); done
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if ! /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "${args[@]}" >"$WORK/out" 2>"$WORK/err"; then
      echo "---- $label stdout"; cat "$WORK/out"; echo "---- $label stderr"; tail -n 40 "$WORK/err"
      die "$label failed"
    fi
    emu="$(emulator_cpu)"
    # the upload's own time (without interpreter start-up), as the client reports it
    secs="$(grep -oE '(secs=|time=)[0-9.]+' "$WORK/out" | head -n1 | grep -oE '[0-9.]+$' || true)"
    [ -n "$secs" ] || secs="$(cut -d' ' -f1 "$WORK/time")"
    file_id="$(grep -oE '(file_id|file)=[0-9A-Za-z_-]+' "$WORK/out" | head -n1 | cut -d= -f2 || true)"
    [ -n "$file_id" ] || die "$label printed no file id: $(cat "$WORK/out")"
    info="$(curl -sf ${mode:+--cacert "$CA"} -H "Authorization: Bearer $TOKEN" "$BASE/2.0/files/$file_id")" || die "$label: GET file $file_id failed"
    got_sha1="$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("sha1"))' <<<"$info")"
    got_size="$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("size"))' <<<"$info")"
    [ "$got_sha1" = "$SHA1" ] || die "$label: the committed file's sha1 is $got_sha1, the source's $SHA1"
    [ "$got_size" = "$SIZE" ] || die "$label: the committed file's size is $got_size, the source's $SIZE"
    stop_emulator
    record "$label" "$load" "$secs" "$WORK/time" "$emu" yes
    echo "  $label: upload ${secs}s; process wall/user/sys/maxrss_kib $(cat "$WORK/time"); emulator cpu ${emu}s; sha1 ok"
  done
}

echo "runs (size ${SIZE_MIB} MiB, part size 8 MiB, emulator data in $STORAGE_LABEL):"
want openssl && run_openssl
for tls in "" -tls; do
  for n in 1 4 8; do
    want "hyper$n$tls" && run_upload "hyper$n$tls" "$REL/examples/upload_bench_hyper" @BASE@ "$FILE" "$n" "$TOKEN"
    want "ureq$n$tls" && run_upload "ureq$n$tls" env BOX_TOKEN="$TOKEN" "$REL/examples/upload_bench_ureq" @BASE@ "$FILE" "$n"
  done
done
for extra in ${EXTRA[@]+"${EXTRA[@]}"}; do
  IFS=: read -r label parts bin <<<"$extra"
  [ -n "$label" ] && [ -n "$parts" ] && [ -x "$bin" ] || die "--extra $extra: want LABEL:PARTS:BINARY (an executable)"
  run_upload "$label" env BOX_TOKEN="$TOKEN" "$bin" @BASE@ "$FILE" "$parts"
  EXTRA_PARTS="${EXTRA_PARTS:+$EXTRA_PARTS,}$label=$parts"
done
for tls in "" -tls; do
  want "python$tls" && run_upload "python$tls" "$VENV/bin/python" "$HERE/sdk_python.py" @BASE@ "$FILE" @NAME@ "$TOKEN"
  want "node$tls" && run_upload "node$tls" env NODE_PATH="$NODE_DIR/node_modules" node "$HERE/sdk_node.js" @BASE@ "$FILE" @NAME@ "$TOKEN"
done

# 5. The table.
PY_VERSION="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("box-sdk-gen"))' 2>/dev/null || echo "?")"
NODE_VERSION="$(node -p "require('$NODE_DIR/node_modules/box-node-sdk/package.json').version" 2>/dev/null || echo "?")"
python3 "$HERE/report.py" --rows "$ROWS" --size "$SIZE" --part-size "$PART_SIZE" --repeat "$REPEAT" \
  --commit "$BUILT_FROM" \
  --python-sdk "box-sdk-gen $PY_VERSION" --node-sdk "box-node-sdk $NODE_VERSION" \
  --data-dir "$STORAGE_LABEL" --extra-parts "$EXTRA_PARTS" ${LINK_MBIT:+--link-mbit "$LINK_MBIT"} --out "$OUT"
