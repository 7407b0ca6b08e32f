#!/usr/bin/env bash
# Issue 15's benchmark: a new version of a 1 GiB file (random bytes, 8 MiB parts, 128 parts) with
# 0%, 1%, 10% and 100% of its parts changed (at least that share: 0, 2, 13 and 128 parts, spread
# evenly, one byte flipped in each), uploaded with and without `--dedupe` by the `box-upload` CLI
# (release build, default transport) to the emulator, both in a network namespace whose loopback
# is shaped with tbf (RATE, burst 1 MiB, latency 50 ms) and the emulator answering each request
# after 50 ms (`--latency-ms 50`): the link-bound setup.
#
# Each run starts from the same earlier version (the base file), restored before it by a
# deduplicated upload of the base (not measured). Per run: part bytes sent (from the emulator's
# request log: the Content-Range of every part stored), bytes on the shaped link (loopback tx
# bytes in the namespace, both directions, headers included), wall time, client CPU (user+sys,
# GNU time), the emulator's CPU over the run (user+sys from /proc: it shares the machine's cores
# with the client), and whether the committed SHA-1 is the source's. One `openssl sha512` pass
# over the file (in cache) is timed beside, the cost the dedupe's SHA-512 is held against.
#
# usage: benches/dedupe-1gib.sh [--size-mib N] [--rates LIST] [--plain-at-slow LIST] [--repeat N]
#                                [--out FILE]
#   --size-mib N        file size (default 1024)
#   --rates LIST        tbf rates, comma-separated (default 1gbit,100mbit)
#   --plain-at-slow L   at rates below 1gbit, run the plain (no --dedupe) upload only for these
#                       change shares (default 1): a plain upload sends every part whatever
#                       changed, so its other rows only repeat it (they are run at 1gbit)
#   --repeat N          run each case N times and report the run of median wall time (default 3:
#                       the client and the emulator share the machine's cores, so one run can
#                       be slowed by whatever else runs there); a case that sends the whole file
#                       at a rate below 1gbit (plain, or 100% changed) is bound by the link and
#                       is run once
#   --out FILE          Markdown results (default benches/results-dedupe.md; - for none)
# Needs root (ip netns, tc), GNU time, openssl, python3. Binaries from $CARGO_TARGET_DIR/release
# (build: cargo build --release -p box-upload-cli -p box-upload-conformance --bin box-upload --bin box-upload-emulator).
set -euo pipefail

SIZE_MIB=1024
RATES="1gbit,100mbit"
PLAIN_AT_SLOW="1"
REPEAT=3
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="$HERE/results-dedupe.md"
NS=bench15
while [ $# -gt 0 ]; do
    case "$1" in
        --size-mib) SIZE_MIB="$2"; shift 2 ;;
        --rates) RATES="$2"; shift 2 ;;
        --plain-at-slow) PLAIN_AT_SLOW="$2"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
PART=$((8 * 1024 * 1024))
WORK="$(mktemp -d /dev/shm/h15-dedupe.XXXXXX)"
EMU_PID=""
cleanup() {
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
shape() { ip netns exec "$NS" tc qdisc replace dev lo root tbf rate "$1" burst 1mb latency 50ms; }

python3 - "$WORK/base.bin" "$SIZE_MIB" <<'EOF'
import os, sys
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(os.urandom(1 << 20))
EOF
PARTS=$(( (SIZE_MIB * 1024 * 1024 + PART - 1) / PART ))

# The variant with PCT % of the parts changed (at least that share), written to $WORK/v.bin.
variant() {
    cp "$WORK/base.bin" "$WORK/v.bin"
    python3 - "$WORK/v.bin" "$1" "$PARTS" "$PART" <<'EOF'
import math, sys
path, pct, parts, part = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n = math.ceil(parts * pct / 100)
with open(path, "r+b") as f:
    for k in range(n):
        at = (k * parts // n) * part + 12345
        f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0xFF]))
print(n)
EOF
}

LOG="$WORK/requests.jsonl"
ip netns exec "$NS" "$BIN/box-upload-emulator" --token t --part-size "$PART" --latency-ms 50 \
    --data-dir "$WORK/emu" --request-log "$LOG" > "$WORK/emu.out" &
EMU_PID=$!
for _ in $(seq 50); do [ -s "$WORK/emu.out" ] && break; sleep 0.1; done
URL="$(head -1 "$WORK/emu.out")"
cli() { ip netns exec "$NS" "$BIN/box-upload" --upload-url "$URL" --token t "$@"; }
tx() { ip netns exec "$NS" cat /sys/class/net/lo/statistics/tx_bytes; }
# The emulator's user+sys CPU so far, in clock ticks.
emu_ticks() { awk '{print $14 + $15}' "/proc/$EMU_PID/stat"; }
part_bytes() {
    python3 - "$LOG" "$1" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
print(sum(r["range"][1] - r["range"][0] + 1 for r in map(json.loads, lines)
          if r["op"] == "UploadPart" and r["outcome"] == 200 and r["range"]))
EOF
}

shape "${RATES%%,*}"
FILE_ID="$(cli upload "$WORK/base.bin" --folder 0 --name f.bin --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
restore() { cli upload "$WORK/base.bin" --file-id "$FILE_ID" --dedupe --json > /dev/null; }

# One pass of `openssl DIGEST` over the base file: "wall user sys" of the run of median CPU time
# among $REPEAT.
openssl_pass() {
    for _ in $(seq "$REPEAT"); do
        { /usr/bin/time -f '%e %U %S' openssl "$1" "$WORK/base.bin" > /dev/null; } 2>&1 | tail -1
    done | awk '{ print $2 + $3, $0 }' | sort -n | awk '{ line[NR] = $2 " " $3 " " $4 } END { print line[int((NR + 1) / 2)] }'
}
sha512_s="$(openssl_pass sha512)"
sha1_s="$(openssl_pass sha1)"

ROWS="$WORK/rows.tsv"
: > "$ROWS"
run() { # rate pct dedupe(0/1)
    local rate="$1" pct="$2" dd="$3" n
    n="$(variant "$pct")"
    local want; want="$(sha1sum "$WORK/v.bin" | cut -d' ' -f1)"
    local lines; lines="$(wc -l < "$LOG")"
    local before; before="$(tx)"
    local ecpu0; ecpu0="$(emu_ticks)"
    local flag=(); [ "$dd" = 1 ] && flag=(--dedupe)
    local t; t="$( { /usr/bin/time -f '%e %U %S' ip netns exec "$NS" "$BIN/box-upload" --upload-url "$URL" --token t \
        upload "$WORK/v.bin" --file-id "$FILE_ID" "${flag[@]}" --json > "$WORK/out.json"; } 2>&1 | tail -1)"
    local after; after="$(tx)"
    local ecpu1; ecpu1="$(emu_ticks)"
    local ecpu; ecpu="$(awk -v a="$ecpu0" -v b="$ecpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')"
    local got; got="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha1"])' "$WORK/out.json")"
    local sent; sent="$(part_bytes "$lines")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rate" "$pct" "$n" "$dd" "$sent" "$((after - before))" "$t" \
        "$([ "$got" = "$want" ] && echo yes || echo NO)" "$ecpu" >> "$ROWS"
    echo "rate=$rate pct=$pct parts=$n dedupe=$dd part_bytes=$sent link_bytes=$((after - before)) time(e u s)=$t emulator_cpu=$ecpu ok=$([ "$got" = "$want" ] && echo yes || echo NO)" >&2
    restore
}

IFS=, read -ra rate_list <<< "$RATES"
for rate in "${rate_list[@]}"; do
    shape "$rate"
    for pct in 0 1 10 100; do
        for dd in 1 0; do
            if [ "$dd" = 0 ] && [ "$rate" != "1gbit" ] && [[ ",$PLAIN_AT_SLOW," != *",$pct,"* ]]; then
                continue
            fi
            times="$REPEAT"
            if [ "$rate" != "1gbit" ] && { [ "$dd" = 0 ] || [ "$pct" = 100 ]; }; then
                times=1
            fi
            for _ in $(seq "$times"); do
                run "$rate" "$pct" "$dd"
            done
        done
    done
done

python3 - "$ROWS" "$SIZE_MIB" "$sha512_s" "$sha1_s" "$(git -C "$ROOT" rev-parse --short HEAD)" > "$WORK/table.md" <<'EOF'
import sys, datetime
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
size = int(sys.argv[2]) << 20
s512 = sys.argv[3].split(); s1 = sys.argv[4].split()
print(f"Measured {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC from commit {sys.argv[5]}: a new version of a {int(sys.argv[2])} MiB file, "
      "8 MiB parts, `box-upload upload --file-id` (default transport), tbf on the namespace's loopback (burst 1 MiB, latency 50 ms), "
      "emulator `--latency-ms 50` with content kept (`--data-dir` in /dev/shm).\n")
print("Each row is the run of median wall time among the runs of its case (`runs`, with their fastest and slowest wall time).\n")
print("| link | parts changed | `--dedupe` | part bytes sent | % of file | bytes on the link | wall s | runs (min–max wall s) | client CPU s (user+sys) | emulator CPU s | committed sha1 = source |")
print("|---|---|---|---:|---:|---:|---:|---|---:|---:|---|")
walls = {}
cases = {}
for row in rows:
    cases.setdefault((row[0], row[1], row[3]), []).append(row)
for (rate, pct, dd), runs in cases.items():
    runs.sort(key=lambda r: float(r[6].split()[0]))
    _, _, n, _, sent, link, t, _, ecpu = runs[(len(runs) - 1) // 2]
    e, u, s = map(float, t.split())
    lo, hi = (float(runs[i][6].split()[0]) for i in (0, -1))
    ok = "yes" if all(r[7] == "yes" for r in runs) else "NO"
    walls[(rate, pct, dd)] = e
    print(f"| {rate} | {pct}% ({n}) | {'yes' if dd == '1' else 'no'} | {int(sent):,} | {100 * int(sent) / size:.2f} | {int(link):,} | {e:.2f} | {len(runs)} ({lo:.2f}–{hi:.2f}) | {u + s:.2f} ({u:.2f}+{s:.2f}) | {ecpu} | {ok} |")
print(f"\n`openssl sha512` over the file (in cache): {float(s512[1]) + float(s512[2]):.2f} s CPU ({s512[0]} s wall); `openssl sha1`: {float(s1[1]) + float(s1[2]):.2f} s.\n")
for rate in sorted({r[0] for r in rows}):
    for pct in ["0", "1", "10", "100"]:
        a, b = walls.get((rate, pct, "0")), walls.get((rate, pct, "1"))
        if a and b:
            print(f"- {rate}, {pct}% changed: `--dedupe` {a / b:.1f} × faster than without ({b:.2f} s against {a:.2f} s)")
EOF
cat "$WORK/table.md"
if [ "$OUT" != "-" ]; then
    { echo "# Deduplicated new versions (issue 15)"; echo; echo 'Reproduce: `sudo benches/dedupe-1gib.sh`.'; echo; cat "$WORK/table.md"; } > "$OUT"
fi
