#!/usr/bin/env bash
# Runs the broker with the embedded default configuration (MQTT 3.1, 3.1.1 and 5 on
# 127.0.0.1:1883, the demo graph, metrics on 127.0.0.1:9464). On a fresh machine it
# first installs the guest toolchain and builds the Rust example modules the demo graph needs.
# Extra arguments go to `weir run` (for example `--config weir.yaml`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f target/modules/temperature.wasm ]; then
    scripts/install-toolchain.sh
    scripts/build-modules.sh --rust-only
fi
exec cargo run --release -p weir -- run "$@"
