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
# The workspace's own code is linted as it is built for the tests, as `cargo clippy --workspace
# --all-targets -- -D warnings` would (clippy-driver as cargo's workspace wrapper is what
# `cargo clippy` runs): one build serves both, where a separate clippy pass re-checks every
# dependency. WEIR_LINT=0 builds without the lints.
if [ "${WEIR_LINT:-1}" != 0 ]; then
    export RUSTC_WORKSPACE_WRAPPER=clippy-driver
    export CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
fi
# Every target: benchmarks run once each, as tests (criterion's test mode); then the doc tests,
# which `--all-targets` leaves out.
cargo test --workspace --locked --all-targets "$@"
cargo test --workspace --locked --doc "$@"
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
    env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS scripts/fuzz.sh "${WEIR_FUZZ_SECONDS:-10}"
    step "fuzzing"
fi
# The aarch64 cross-build of the gateway feature set (`websockets,jemalloc`), unoptimised: a
# check that the ARM build builds and runs, not one to ship (scripts/build-arm64.sh makes
# that); then the README's 30-second tour against it under qemu-user. In CI, or with
# WEIR_ARM64=1 (it is a build of its own: about 8 minutes here).
if [ "${WEIR_ARM64:-}" = 1 ] || [ "${CI:-}" = true ]; then
    env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS \
        WEIR_ARM64_FEATURES=websockets,jemalloc WEIR_ARM64_PROFILE=dev scripts/build-arm64.sh
    tests/arm64/tour.sh "qemu-aarch64 -L /usr/aarch64-linux-gnu" \
        target/arm64/aarch64-unknown-linux-gnu/debug/weir
    step "aarch64 build and tour"
fi
