#!/usr/bin/env bash
# SHA-1 throughput on this machine, side by side in one run: `openssl speed` (the floor the
# transport benchmark compares against), the `sha1` crate the core uses, and `ring`.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "== openssl speed -evp sha1 (8 MiB blocks) =="
openssl speed -evp sha1 -bytes 8388608 -seconds 3 2>/dev/null | tail -1 | awk '{printf "openssl: %.0f MB/s\n", $2/1000}'
echo "== cargo bench (sha1 crate, ring) =="
cargo bench -p box-upload-core --bench sha1_impls -- --noplot 2>/dev/null | grep -E "^sha1_8MiB|thrpt"
echo "== openssl again (load drift check) =="
openssl speed -evp sha1 -bytes 8388608 -seconds 3 2>/dev/null | tail -1 | awk '{printf "openssl: %.0f MB/s\n", $2/1000}'
