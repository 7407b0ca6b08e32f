#!/usr/bin/env bash
# Runs every fuzz target for a short, bounded time; fails on the first crash, leak or timeout.
#   fuzz/smoke.sh            # 20 s per target
#   FUZZ_SECONDS=600 fuzz/smoke.sh
#   fuzz/smoke.sh responses  # some targets only
# Needs a nightly toolchain (rustup toolchain install nightly); installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(content_range_planner responses big_upload plan_answer)
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# The core forbids unsafe code; no sanitizer keeps the executions fast (debug assertions, so
# overflow checks, stay on). Set FUZZ_SANITIZER=address to run under ASan.
sanitizer="${FUZZ_SANITIZER:-none}"

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=()
    if [ -d "seeds/$target" ]; then
        seeds=("seeds/$target")
    fi
    case "$target" in
        big_upload) limits=(-rss_limit_mb=2048 -timeout=60) ;;
        *) limits=(-rss_limit_mb=1024 -malloc_limit_mb=64 -timeout=10) ;;
    esac
    echo "== fuzz $target for ${seconds}s"
    cargo +nightly fuzz run --sanitizer="$sanitizer" "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${limits[@]}"
done
echo "== fuzz smoke: no crash in ${targets[*]}"
