#!/usr/bin/env bash
# Runs the README's 30-second tour against a `weir` binary run through a command prefix, such
# as an aarch64 build under qemu-user:
#
#   tests/arm64/tour.sh "qemu-aarch64 -L /usr/aarch64-linux-gnu" target/arm64/.../weir
#
# It starts the broker with the embedded default configuration (the demo graph's module from
# target/modules, scripts/build-modules.sh), waits for the demo graph to report `running` on its
# status topic, then checks each step of the tour with Debian's mosquitto clients. mosquitto_rr
# subscribes before it publishes, so no reply can be missed. Exits non-zero on the first step
# that does not give the README's output.
set -euo pipefail
cd "$(dirname "$0")/../.."
runner="$1"
binary="$2"
port="${WEIR_TOUR_PORT:-18941}"
metrics_port="${WEIR_TOUR_METRICS_PORT:-19941}"
data="$(mktemp -d)"
log="$data/weir.log"
trap 'kill "$weir" 2>/dev/null || true; wait "$weir" 2>/dev/null || true; rm -rf "$data"' EXIT

fail() {
    echo "tour: FAILED: $*" >&2
    echo "tour: the broker's log:" >&2
    tail -n 40 "$log" >&2
    exit 1
}

# Checks that "$1" (what a step printed) is "$2".
expect() {
    [ "$1" = "$2" ] || fail "expected '$2', got '$1'"
    echo "tour: ok: $2"
}

# shellcheck disable=SC2086 # the runner is a command and its arguments
WEIR_MQTT_PORT=$port WEIR_METRICS_PORT=$metrics_port WEIR_DATA_DIR="$data" \
    $runner "$binary" run >"$log" 2>&1 &
weir=$!

# Ready once the demo graph says it runs (its status is retained: a late subscriber gets it).
# Under emulation, start-up and the module's compilation take a while.
deadline=$(( $(date +%s) + ${WEIR_TOUR_START_TIMEOUT:-600} ))
until mosquitto_sub -h 127.0.0.1 -p "$port" -t '$weir/status/demo' -C 1 -W 5 2>/dev/null \
        | grep -q '"state":"running"'; do
    kill -0 "$weir" 2>/dev/null || fail "weir exited before the demo graph ran"
    [ "$(date +%s)" -lt "$deadline" ] || fail "the demo graph did not report running"
    sleep 1
done
echo "tour: the demo graph runs"

rr() { mosquitto_rr -h 127.0.0.1 -p "$port" -W 60 "$@"; }

# The demo graph: a °F reading in, °C out.
expect "$(rr -t sensors/gw1/temperature -e processed/gw1/temperature \
    -m '{"temperature":{"value":212,"unit":"F"}}')" \
    '{"temperature":{"value":100.0,"unit":"C"}}'

# The reading itself reaches a subscriber to sensors/#.
expect "$(rr -t sensors/gw1/temperature -e sensors/gw1/temperature \
    -m '{"temperature":{"value":72,"unit":"F"}}')" \
    '{"temperature":{"value":72,"unit":"F"}}'

# MQTT 5, with a content type and a user property carried end to end.
expect "$(rr -t sensors/gw1/humidity -e sensors/gw1/humidity -m 41 -F '%t %C %P %p' \
    -D publish content-type text/plain -D publish user-property site north)" \
    'sensors/gw1/humidity text/plain site:north 41'

# The broker's own counters: eleven retained $SYS topics at once.
sys="$(mosquitto_sub -h 127.0.0.1 -p "$port" -t '$SYS/broker/#' -v -C 11 -W 60 | wc -l)"
expect "$sys" 11

# A SIGTERM ends it cleanly.
kill -TERM "$weir"
status=0
wait "$weir" || status=$?
expect "exit status $status" "exit status 0"
