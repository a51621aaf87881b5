#!/usr/bin/env bash
# Runs Weir's whole test suite on a fresh machine: installs what the tests need (idempotent),
# builds the guest modules once, then runs every test in the workspace and a quick benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
# Prints how long each step took, so that a slow step shows in the log.
step() { echo "test.sh: $1 done at $(( $(date +%s) - started )) s"; }

scripts/install-toolchain.sh
scripts/install-services.sh
scripts/build-modules.sh
step "install and guest modules"
cargo test --workspace --locked "$@"
step "cargo test"
# The guest SDK's documentation examples, compiled and run on the host (where its host imports
# are stubs): every public item's example holds.
(cd sdk/rust/wasm-graph-sdk && cargo test --doc --locked --target-dir ../../../target/sdk-host)
# Smoke run of the benchmark tool against the weir binary the tests built: raw delivery on Weir
# and mosquitto and the one-node map graph; fails if Weir loses a message.
cargo run --locked -q -p weir-bench -- --quick --check --modules target/modules
step "sdk doc tests and weir-bench check"
# Each fuzz target for a while (docs/fuzzing.md): 10 s in CI (a smoke run: every target built
# under AddressSanitizer and fed its corpus and new inputs), WEIR_FUZZ_SECONDS elsewhere
# (unset: no fuzzing, which needs a build of its own).
if [ -n "${WEIR_FUZZ_SECONDS:-}" ] || [ "${CI:-}" = true ]; then
    scripts/fuzz.sh "${WEIR_FUZZ_SECONDS:-10}"
    step "fuzzing"
fi
