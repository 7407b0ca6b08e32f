#!/usr/bin/env bash
# SHA-1 over cached vs uncached memory on this machine (user CPU seconds per GiB hashed), beside
# `openssl speed`. Shows how much of an upload's hashing cost is memory traffic: see README.md.
# usage: benches/sha1-cache.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HERE/sha1-cache/target}"
(cd "$HERE/sha1-cache" && cargo build --quiet --release)
BIN="$CARGO_TARGET_DIR/release/sha1-cache"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in none hot cold cold-touch cold-copy two-8m two-256k; do
  /usr/bin/time -f "%U" -o "$CARGO_TARGET_DIR/t" "$BIN" "$mode" 2>/dev/null
  case "$mode" in two-*) gib=2 ;; none) gib=0 ;; *) gib=1 ;; esac
  printf '%-9s user %5s s  (%s GiB hashed)\n' "$mode" "$(cat "$CARGO_TARGET_DIR/t")" "$gib"
done
openssl speed -evp sha1 -bytes 8388608 -seconds 2 2>/dev/null | tail -1 | awk '{printf "openssl speed -evp sha1 (8 MiB blocks, cached): %.0f MB/s\n", $2/1000}'
