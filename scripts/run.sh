#!/usr/bin/env bash
# Runs the broker with the embedded default configuration (MQTT 3.1, 3.1.1 and 5 on
# 127.0.0.1:1883, the demo graph, metrics on 127.0.0.1:9464). On a fresh machine it first
# installs the guest toolchain, then builds the demo graph's module and the broker side by side.
# Extra arguments go to `weir run` (for example `--config weir.yaml`).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'run: %s\n' "$*" >&2; }

module_build=""
if [ ! -f target/modules/temperature.wasm ]; then
    scripts/install-toolchain.sh
    log "building the demo graph's module (temperature) in the background"
    scripts/build-modules.sh --demo &
    module_build=$!
fi
# The features the embedded default needs (none) and the allocator: Kafka, OTLP, registries,
# WebSocket listeners and wasi:nn are left out unless WEIR_FEATURES names them
# (WEIR_FEATURES=default: all of them); a configuration needing one is refused with the
# command that adds it.
features="${WEIR_FEATURES:-jemalloc}"
if [ "$features" = default ]; then
    build=(cargo build --release -p weir)
else
    build=(cargo build --release -p weir --no-default-features --features "$features")
fi
log "building the broker (release, features: $features; the first time takes several minutes;"
log "WEIR_FEATURES=default $0 builds every feature: kafka, otlp, oci, websockets, wasi-nn)"
"${build[@]}"
if [ -n "$module_build" ]; then
    log "waiting for the demo graph's module"
    wait "$module_build"
fi
exec target/release/weir run "$@"
