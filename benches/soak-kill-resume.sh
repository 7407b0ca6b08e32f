#!/usr/bin/env bash
# Issue 12's kill-and-resume soak (not in CI): a big upload by the `box-upload` command to the
# release-built emulator under a fault mix, SIGKILLed at random moments and resumed from its
# checkpoint each time until it is done. Then:
#   - committed byte for byte: the committed file's sha1 (as the client was told, and as the
#     emulator reports it) is the source's, and its content downloaded from the emulator is `cmp`-equal;
#   - each kill costs at most the parts in flight again: from the emulator's request log, the parts
#     sent again after each kill, beside the parts in flight at that kill (sent, not in the
#     checkpoint) and --parallel.
# Prints a summary per transport and writes it as Markdown (--out).
#
# usage: benches/soak-kill-resume.sh [--size-mib N] [--kills N] [--transport hyper|ureq|both] ...
#   --size-mib N          file size in MiB (default 1024)
#   --kills N             SIGKILLs before the upload is let finish (default 20)
#   --transport T         hyper, ureq or both (default both, one after the other)
#   --parallel N          parts in flight (default 4)
#   --part-size-mib N     the emulator's part size (default 8)
#   --seed N              seeds the kill delays and the emulator's faults (default 1)
#   --lose-part-answers P part stored, answer lost, on P % of part uploads (default 5)
#   --part-5xx P          503 on P % of part uploads (default 2)
#   --cut-part-bodies P   connection closed mid-body on P % of part uploads (default 2)
#   --list-page-size N    the emulator's list-parts page size (default 50: listings take pages)
#   --no-commit-answer-lost  do not lose the answer of the first applied commit (default: lost)
#   --no-faults           none of the faults above
#   --latency-ms N        the emulator waits N ms before each upload-session request (default 0)
#   --startup-kills PCT   share of the kills aimed at a run's start-up (default 25): uniform from
#                         --min-delay-ms (default 30) to when the last run's first part request was logged
#                         (session, listing, the re-read of the prefix already sent); the others
#                         come a random delay after the run's first part request:
#   --max-delay-ms N      that delay uniform in [0, N] ms; default adaptive, from the best rate of
#                         a run so far, so that the kills spread over the whole upload
#   --data-dir DIR|shm    where the emulator keeps content (default a directory in the work dir)
#   --discard-content     the emulator keeps no content: the check is its sha1 alone, no download
#   --out FILE|-          Markdown summary (default benches/results-soak.md; `-` for none)
#   --keep                keep the work directory (logs, checkpoints) and say where it is
#   --no-build            use the binaries already built in $CARGO_TARGET_DIR/release
# Environment: CARGO_TARGET_DIR (default <repo>/target), TMPDIR.
# Needs: cargo, python3, curl, sha1sum, cmp; bash 5.1 (wait -n -p).
set -euo pipefail

SIZE_MIB=1024
KILLS=20
TRANSPORTS=both
PARALLEL=4
PART_MIB=8
SEED=1
LOSE=5
P5XX=2
CUT=2
PAGE=50
COMMIT_LOST=1
LATENCY_MS=0
MIN_DELAY_MS=30
STARTUP_PCT=25
MAX_DELAY_MS=""
DATA_PARENT=""
DISCARD=0
OUT=""
KEEP=0
BUILD=1
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TOKEN="soak-token"
ARGV="$*"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

die() { echo "soak-kill-resume.sh: ERROR: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
int() { [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a non-negative integer, not '$2'"; }
pct() { [[ "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v p="$2" 'BEGIN{exit !(p <= 100)}' || die "$1 must be a percentage (0-100), not '$2'"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --size-mib) SIZE_MIB="${2:?}"; shift 2 ;;
    --kills) KILLS="${2:?}"; shift 2 ;;
    --transport) TRANSPORTS="${2:?}"; shift 2 ;;
    --parallel) PARALLEL="${2:?}"; shift 2 ;;
    --part-size-mib) PART_MIB="${2:?}"; shift 2 ;;
    --seed) SEED="${2:?}"; shift 2 ;;
    --lose-part-answers) LOSE="${2:?}"; shift 2 ;;
    --part-5xx) P5XX="${2:?}"; shift 2 ;;
    --cut-part-bodies) CUT="${2:?}"; shift 2 ;;
    --list-page-size) PAGE="${2:?}"; shift 2 ;;
    --no-commit-answer-lost) COMMIT_LOST=0; shift ;;
    --no-faults) LOSE=0; P5XX=0; CUT=0; COMMIT_LOST=0; shift ;;
    --latency-ms) LATENCY_MS="${2:?}"; shift 2 ;;
    --min-delay-ms) MIN_DELAY_MS="${2:?}"; shift 2 ;;
    --startup-kills) STARTUP_PCT="${2:?}"; shift 2 ;;
    --max-delay-ms) MAX_DELAY_MS="${2:?}"; shift 2 ;;
    --data-dir) DATA_PARENT="${2:?}"; shift 2 ;;
    --discard-content) DISCARD=1; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
int --size-mib "$SIZE_MIB"; int --kills "$KILLS"; int --parallel "$PARALLEL"; int --part-size-mib "$PART_MIB"
int --seed "$SEED"; int --list-page-size "$PAGE"; int --latency-ms "$LATENCY_MS"; int --min-delay-ms "$MIN_DELAY_MS"
int --startup-kills "$STARTUP_PCT"; [ "$STARTUP_PCT" -le 100 ] || die "--startup-kills must be 0 to 100"
[ -z "$MAX_DELAY_MS" ] || int --max-delay-ms "$MAX_DELAY_MS"
pct --lose-part-answers "$LOSE"; pct --part-5xx "$P5XX"; pct --cut-part-bodies "$CUT"
[ "$SIZE_MIB" -ge 20 ] || die "--size-mib must be >= 20 (Box's minimum chunked-upload size)"
[ "$PARALLEL" -ge 1 ] && [ "$PARALLEL" -le 64 ] || die "--parallel must be 1 to 64"
[ "$PART_MIB" -ge 1 ] || die "--part-size-mib must be >= 1"
[ "$PAGE" -ge 1 ] && [ "$PAGE" -le 1000 ] || die "--list-page-size must be 1 to 1000"
case "$TRANSPORTS" in hyper|ureq) ;; both) TRANSPORTS="hyper ureq" ;; *) die "--transport must be hyper, ureq or both" ;; esac
[ "$DISCARD" = 0 ] || [ -z "$DATA_PARENT" ] || die "--data-dir and --discard-content exclude each other"
[ -n "$OUT" ] || OUT="$HERE/results-soak.md"
for tool in python3 curl sha1sum cmp; do command -v "$tool" >/dev/null || die "$tool is required"; done
(( BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1) )) || die "bash 5.1 or later is required (wait -n -p)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/soak-kill-resume.XXXXXX")"
EMU_PID=""
CLIENT_PID=""
SLEEP_PID=""
stop_emulator() {
  if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null || true; wait "$EMU_PID" 2>/dev/null || true; EMU_PID=""; fi
}
cleanup() {
  for p in "$CLIENT_PID" "$SLEEP_PID"; do [ -z "$p" ] || kill -KILL "$p" 2>/dev/null || true; done
  stop_emulator
  if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { local t="${EPOCHREALTIME/./}"; echo $((t / 1000)); }

# 1. Binaries (release).
REL="$CARGO_TARGET_DIR/release"
EMULATOR="$REL/box-upload-emulator"
CLI="$REL/box-upload"
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --quiet --release -p box-upload-conformance -p box-upload-cli --bin box-upload-emulator --bin box-upload) \
    || die "cargo build failed"
fi
for b in "$EMULATOR" "$CLI"; do [ -x "$b" ] || die "$b is missing (run without --no-build)"; done
BUILT_FROM="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || BUILT_FROM="$BUILT_FROM + uncommitted changes"
[ "$BUILD" = 1 ] || BUILT_FROM="binaries built before the run (--no-build; the work tree is at $BUILT_FROM)"

# 2. The file.
SIZE=$((SIZE_MIB * 1024 * 1024))
PART_SIZE=$((PART_MIB * 1024 * 1024))
PARTS=$(((SIZE + PART_SIZE - 1) / PART_SIZE))
FILE="$WORK/source.bin"
echo "making a ${SIZE_MIB} MiB file of random bytes ..."
head -c "$SIZE" /dev/urandom >"$FILE"
SHA1="$(sha1sum "$FILE" | cut -d' ' -f1)"
echo "source sha1 $SHA1 ($PARTS parts of $PART_MIB MiB)"

FAULTS=(--list-page-size "$PAGE" --seed "$SEED")
FAULT_TEXT="list pages of $PAGE"
add_fault() { # flag pct label
  if awk -v p="$2" 'BEGIN{exit !(p > 0)}'; then FAULTS+=("$1" "$2"); FAULT_TEXT="$FAULT_TEXT, $3 on $2 % of part uploads"; fi
}
add_fault --lose-part-answers "$LOSE" "part stored and answer lost"
add_fault --part-5xx "$P5XX" "503"
add_fault --cut-part-bodies "$CUT" "body cut"
if [ "$COMMIT_LOST" = 1 ]; then FAULTS+=(--commit-answer-lost); FAULT_TEXT="$FAULT_TEXT, the first applied commit's answer lost"; fi
[ "$LATENCY_MS" = 0 ] || { FAULTS+=(--latency-ms "$LATENCY_MS"); FAULT_TEXT="$FAULT_TEXT, $LATENCY_MS ms per upload-session request"; }
if [ "$DATA_PARENT" = shm ]; then DATA_PARENT=/dev/shm; fi

# Kill delays: bash's generator, seeded (the emulator's faults are seeded by --seed too).
RANDOM="$SEED"
uniform() { echo $(((RANDOM << 15 | RANDOM) % 1000000)); } # 0..999999, a millionth each

# Waits until the request log stops growing (the emulator has seen the killed client's
# connections close), up to 5 s; prints its line count.
settled_lines() {
  local log="$1" n m i
  n="$(wc -l <"$log")"
  for i in $(seq 1 50); do
    sleep 0.1
    m="$(wc -l <"$log")"
    if [ "$m" = "$n" ] && [ "$i" -ge 3 ]; then break; fi
    n="$m"
  done
  echo "$n"
}

# Waits until the emulator logs a part upload after line $2 (this run's first part went
# through); fails when the client $3 ends first.
wait_first_part() {
  local log="$1" after="$2" pid="$3" state
  while :; do
    awk -v n="$after" 'NR > n && /"op":"UploadPart"/ {found = 1; exit} END {exit !found}' "$log" && return 0
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)"
    case "$state" in Z|X|gone) return 1 ;; esac
    sleep 0.01
  done
}

checkpoint_offsets() { # the part offsets a checkpoint holds, comma-separated; `-` none, `absent`
  if [ ! -f "$1" ]; then echo absent; return; fi
  python3 - "$1" <<'EOF'
import json, sys
try:
    parts = json.load(open(sys.argv[1])).get("parts", [])
except Exception as e:  # a checkpoint is replaced atomically: this would be a finding
    print("unreadable checkpoint: %s" % e, file=sys.stderr)
    parts = []
offsets = sorted(int(p["offset"]) for p in parts)
print(",".join(map(str, offsets)) if offsets else "-")
EOF
}

count_offsets() { [ "$1" = absent ] || [ "$1" = - ] && echo 0 || awk -F, '{print NF}' <<<"$1"; }

RUNS=()
FAILED=0
run_transport() {
  local transport="$1"
  local dir="$WORK/$transport"
  mkdir -p "$dir"
  local log="$dir/requests.jsonl"
  local ck="$dir/upload.checkpoint"
  local attempts="$dir/attempts.tsv"
  local data_args=() data=""
  if [ "$DISCARD" = 1 ]; then
    data_args=(--discard-content)
  else
    data="$(mktemp -d "${DATA_PARENT:-$dir}/emulator-data.XXXXXX")"
    data_args=(--data-dir "$data")
  fi
  : >"$log"
  "$EMULATOR" --listen 127.0.0.1:0 --token "$TOKEN" --part-size "$PART_SIZE" "${data_args[@]}" "${FAULTS[@]}" \
    --request-log "$log" >"$dir/emu.out" 2>"$dir/emu.err" &
  EMU_PID=$!
  local i base=""
  for i in $(seq 1 100); do [ -s "$dir/emu.out" ] && break; sleep 0.1; done
  base="$(head -n1 "$dir/emu.out")"
  [ -n "$base" ] || die "the emulator did not start: $(cat "$dir/emu.err")"
  echo "transport $transport: emulator at $base"

  local name="soak-$transport-$$.bin" attempt=0 kills=0 started result kind status who phase
  local delay_ms start_ms wall_ms lines=0 offsets held=0 before best_gain=0 best_ms=1 remaining span u
  local startup_ms=300 first_ms
  printf '# attempt\tkind\tdelay_ms\tresult\twall_ms\tlog_lines\tcheckpoint_offsets\tphase\tfirst_part_ms\n' >"$attempts"
  started="$(now_ms)"
  while :; do
    attempt=$((attempt + 1))
    local cmd=()
    if [ -f "$ck" ]; then
      kind=resume; cmd=(resume "$ck" "$FILE" --json)
    else
      kind=upload; cmd=(upload "$FILE" --folder 0 --name "$name" --checkpoint "$ck" --json)
    fi
    # Where the kill falls: in the run's start-up (session, listing, the re-read of the prefix
    # already sent; timed from the launch), or a delay after its first part went through.
    delay_ms=-; phase=-
    if [ "$kills" -lt "$KILLS" ]; then
      u="$(uniform)"
      if [ "$u" -lt $((STARTUP_PCT * 10000)) ]; then
        phase=start
        u="$(uniform)"
        delay_ms=$((MIN_DELAY_MS + (startup_ms > MIN_DELAY_MS ? startup_ms - MIN_DELAY_MS : 0) * u / 1000000))
      else
        phase=parts
        if [ -n "$MAX_DELAY_MS" ]; then
          span="$MAX_DELAY_MS"
        else
          # The time the rest takes at the best rate of a run so far (parts it added per ms
          # after its first part; a guess of 4 ms per MiB before any), spread over the kills
          # left: on average the kills fall evenly over what remains.
          if [ "$best_gain" -gt 0 ]; then
            remaining=$(((PARTS - held) * best_ms / best_gain))
          else
            remaining=$((SIZE_MIB * 4))
          fi
          span=$((2 * remaining / (KILLS - kills + 1)))
          [ "$span" -ge 20 ] || span=20
        fi
        u="$(uniform)"
        delay_ms=$((span * u / 1000000))
      fi
    fi
    start_ms="$(now_ms)"
    BOX_DEVELOPER_TOKEN="$TOKEN" "$CLI" -v --upload-url "$base" --transport "$transport" --parallel "$PARALLEL" \
      "${cmd[@]}" >"$dir/out.$attempt" 2>"$dir/err.$attempt" &
    CLIENT_PID=$!
    status=0
    first_ms=-
    if [ "$phase" = parts ] && wait_first_part "$log" "$lines" "$CLIENT_PID"; then
      first_ms=$(($(now_ms) - start_ms))
      startup_ms="$first_ms"
    fi
    if [ "$delay_ms" != - ] && [ "$phase" = start ] || [ "$first_ms" != - ]; then
      sleep "$(awk -v ms="$delay_ms" 'BEGIN{printf "%.3f", ms / 1000}')" &
      SLEEP_PID=$!
      who=""
      wait -n -p who "$CLIENT_PID" "$SLEEP_PID" || true
      if [ "$who" = "$SLEEP_PID" ]; then
        kill -KILL "$CLIENT_PID" 2>/dev/null || true
      else
        kill "$SLEEP_PID" 2>/dev/null || true
      fi
      wait "$SLEEP_PID" 2>/dev/null || true
      SLEEP_PID=""
    fi
    # (bash's "Killed" job notice goes to the wait's stderr)
    { wait "$CLIENT_PID"; } 2>/dev/null || status=$?
    CLIENT_PID=""
    wall_ms=$(($(now_ms) - start_ms))
    if [ "$status" = 137 ]; then result=killed; kills=$((kills + 1)); else result="exit:$status"; fi
    lines="$(settled_lines "$log")"
    offsets="$(checkpoint_offsets "$ck")"
    before="$held"
    held="$(count_offsets "$offsets")"
    if [ "$result" = killed ] && [ "$first_ms" != - ] && [ "$held" -gt "$before" ]; then
      local ran=$((wall_ms - first_ms > 1 ? wall_ms - first_ms : 1))
      if [ $(((held - before) * best_ms)) -gt $((best_gain * ran)) ]; then best_gain=$((held - before)); best_ms="$ran"; fi
    fi
    [ -f "$ck" ] && cp "$ck" "$dir/checkpoint.after.$attempt"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$attempt" "$kind" "$delay_ms" "$result" "$wall_ms" "$lines" \
      "$offsets" "$phase" "$first_ms" >>"$attempts"
    local at=""
    case "$phase" in
      start) at=" (kill aimed at its start-up, $delay_ms ms after launch)" ;;
      parts) at=" (kill aimed $delay_ms ms after its first part request, logged at $first_ms ms)" ;;
    esac
    echo "  attempt $attempt ($kind): $result after ${wall_ms} ms$at; checkpoint holds $held of $PARTS parts"
    [ "$result" = killed ] && continue
    break
  done
  local wall_s verified="" file_id="" client_sha1="" info got_sha1 got_size
  wall_s="$(awk -v ms="$(($(now_ms) - started))" 'BEGIN{printf "%.1f", ms / 1000}')"
  if [ "$result" = exit:0 ]; then
    file_id="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <"$dir/out.$attempt" 2>/dev/null || true)"
    client_sha1="$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("sha1"))' <"$dir/out.$attempt" 2>/dev/null || true)"
    if [ -z "$file_id" ]; then
      verified="NO: the last run printed no file: $(head -c 300 "$dir/out.$attempt")"
    elif ! info="$(curl -sf -H "Authorization: Bearer $TOKEN" "$base/2.0/files/$file_id")"; then
      verified="NO: GET file $file_id failed"
    else
      got_sha1="$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("sha1"))' <<<"$info")"
      got_size="$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("size"))' <<<"$info")"
      if [ "$client_sha1" != "$SHA1" ] || [ "$got_sha1" != "$SHA1" ] || [ "$got_size" != "$SIZE" ]; then
        verified="NO: sha1 told to the client $client_sha1, emulator's $got_sha1 size $got_size; source $SHA1 size $SIZE"
      elif [ "$DISCARD" = 1 ]; then
        verified="yes (sha1 and size; content discarded)"
      elif curl -sf -H "Authorization: Bearer $TOKEN" "$base/2.0/files/$file_id/content" | cmp -s - "$FILE"; then
        verified="yes (sha1, size, and the content downloaded = the source, cmp)"
      else
        verified="NO: the downloaded content differs from the source"
      fi
    fi
  else
    verified="NO: the last run failed ($result)"
    echo "  ---- the last run's stderr (attempt $attempt, $kind), last 25 lines:"
    tail -n 25 "$dir/err.$attempt" | sed 's/^/  | /'
  fi
  case "$verified" in yes*) ;; *) FAILED=1 ;; esac
  local leftovers
  leftovers="$(find "$dir" -maxdepth 1 -name '.upload.checkpoint.*.tmp' | wc -l)"
  [ "$leftovers" = 0 ] || echo "  note: $leftovers temporary checkpoint file(s) left by kills mid-write"
  stop_emulator
  [ -z "$data" ] || rm -rf "$data"
  python3 "$HERE/soak_report.py" analyse --log "$log" --attempts "$attempts" --size "$SIZE" --part-size "$PART_SIZE" \
    --parallel "$PARALLEL" --transport "$transport" --kills-wanted "$KILLS" --wall-s "$wall_s" \
    --verified "$verified" --json-out "$dir/summary.json"
  RUNS+=("$dir/summary.json")
}

echo "soak: ${SIZE_MIB} MiB, $KILLS kills, --parallel $PARALLEL, faults: $FAULT_TEXT; seed $SEED"
for t in $TRANSPORTS; do run_transport "$t"; done

META="Built from $BUILT_FROM; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end.
Command: \`benches/soak-kill-resume.sh${ARGV:+ $ARGV}\`
(${SIZE_MIB} MiB of random bytes, $PARTS parts of $PART_MIB MiB; faults: $FAULT_TEXT; kill delays
$STARTUP_PCT % aimed at a run's start-up, the others ${MAX_DELAY_MS:+uniform in [0, $MAX_DELAY_MS] ms}${MAX_DELAY_MS:-adaptive} after its first part; emulator content $([ "$DISCARD" = 1 ] && echo discarded || echo "kept and downloaded"))."
if [ "$OUT" != - ]; then
  python3 "$HERE/soak_report.py" render "${RUNS[@]}" --meta "$META" --out "$OUT"
fi
[ "$FAILED" = 0 ] || { echo "soak FAILED (see above)"; exit 1; }
echo "soak ok"
