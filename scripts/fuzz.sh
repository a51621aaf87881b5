#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for SECONDS each (default 30) with cargo-fuzz (libFuzzer,
# coverage-guided) on the stable toolchain: RUSTC_BOOTSTRAP=1 lets it accept cargo-fuzz's
# nightly flags. The targets run under AddressSanitizer (the fuzz crate links only the parser
# crates: no WebAssembly runtime, no librdkafka) and look for panics, overflows, memory errors
# and unbounded work.
# Installs cargo-fuzz when missing. Fails on the first crash (kept in fuzz/artifacts/).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"
case "$seconds" in
    '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number of seconds, not '$seconds'" >&2; exit 2 ;;
esac
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
# A smoke run (under a minute per target, as CI's) spends most of its time building: it takes
# the unoptimised build (about half the build time, a fifteenth of the executions per second);
# a longer run the optimised one.
if [ "$seconds" -lt 60 ]; then
    flags=(--dev --debug-assertions --sanitizer address)
else
    flags=(-O --debug-assertions --sanitizer address)
fi
cargo fuzz build "${flags[@]}"
mkdir -p target/logs
for target in $(cargo fuzz list); do
    log="target/logs/$target.log"
    # -rss_limit_mb: the parsers handle untrusted input in bounded memory.
    if ! cargo fuzz run "${flags[@]}" "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
        >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $target crashed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    echo "fuzz: $target: $(grep -E '^Done [0-9]+ runs' "$log" || tail -1 "$log")"
done
