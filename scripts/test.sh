#!/usr/bin/env bash
# Runs Weir's whole test suite on a fresh machine: installs what the tests need (idempotent),
# builds the guest modules once, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-toolchain.sh
scripts/install-services.sh
scripts/build-modules.sh
cargo test --workspace --locked "$@"
