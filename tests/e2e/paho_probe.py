#!/usr/bin/env python3
"""MQTT behaviours checked with Eclipse Paho (paho-mqtt 2.x), a client nobody here wrote.

Each subcommand connects to a broker on 127.0.0.1, does one thing, and prints one JSON line
with what it saw. The end-to-end tests (tests/e2e/door.rs) run it and assert on that line.
"""

import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

VERSIONS = {"3.1": mqtt.MQTTv31, "3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}
PATIENCE = 10


class Probe:
    """A paho client with its events as thread-safe values."""

    def __init__(self, args, client_id=None, version=None, clean=True, keepalive=None,
                 session_expiry=3600, connect_properties=None, manual_ack=False):
        self.version = VERSIONS[version or args.version]
        client_id = args.client_id if client_id is None else client_id
        websocket_path = getattr(args, "websocket_path", None)
        kwargs = {"client_id": client_id, "protocol": self.version,
                  "reconnect_on_failure": False, "manual_ack": manual_ack,
                  "transport": "websockets" if websocket_path else "tcp"}
        if self.version != mqtt.MQTTv5:
            kwargs["clean_session"] = clean
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
        if websocket_path:
            self.client.ws_set_options(path=websocket_path)
        if getattr(args, "tls_ca", None):
            self.client.tls_set(ca_certs=args.tls_ca)
        self.clean = clean
        self.session_expiry = session_expiry
        self.connect_properties = connect_properties or {}
        self.keepalive = args.keepalive if keepalive is None else keepalive
        self.port = args.port
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subscribed = threading.Event()
        self.published = {}
        self.connack = None
        self.disconnect_reason = None
        self.disconnect_properties = {}
        self.messages = []
        self.lock = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        if args.username:
            self.client.username_pw_set(args.username, args.password)

    def _on_connect(self, client, userdata, flags, reason, properties):
        assigned = None
        if properties is not None and hasattr(properties, "AssignedClientIdentifier"):
            assigned = properties.AssignedClientIdentifier
        self.connack = {
            "rc": reason.value,
            "session_present": bool(flags.session_present),
            "assigned_id": assigned,
            "properties": properties.json() if properties is not None else {},
        }
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        self.disconnect_reason = reason.value
        self.disconnect_properties = properties.json() if properties is not None else {}
        self.disconnected.set()

    def _on_message(self, client, userdata, message):
        properties = getattr(message, "properties", None)
        with self.lock:
            self.messages.append(
                {"topic": message.topic, "payload": message.payload.decode(errors="replace"),
                 "qos": message.qos, "retain": bool(message.retain), "dup": bool(message.dup),
                 "mid": message.mid,
                 "properties": properties.json() if properties is not None else {}})
            self.lock.notify_all()

    def _on_publish(self, client, userdata, mid, reason, properties):
        with self.lock:
            self.published[mid] = reason.value
            self.lock.notify_all()

    def connect(self):
        properties = None
        if self.version == mqtt.MQTTv5 and (not self.clean or self.connect_properties):
            properties = Properties(PacketTypes.CONNECT)
            if not self.clean:
                properties.SessionExpiryInterval = self.session_expiry
            for key, value in self.connect_properties.items():
                setattr(properties, key, value)
        kwargs = {"keepalive": self.keepalive, "properties": properties}
        if self.version == mqtt.MQTTv5:
            kwargs["clean_start"] = self.clean
        self.client.connect("127.0.0.1", self.port, **kwargs)
        self.client.loop_start()
        if not self.connected.wait(PATIENCE):
            fail("no CONNACK")
        return self.connack

    def subscribe(self, topic, qos=0, identifier=None):
        self.subscribed.clear()
        if identifier is None:
            self.client.subscribe(topic, qos)
        else:
            properties = Properties(PacketTypes.SUBSCRIBE)
            properties.SubscriptionIdentifier = identifier
            self.client.subscribe(topic, qos, properties=properties)
        if not self.subscribed.wait(PATIENCE):
            fail(f"no SUBACK for {topic}")

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            return 0
        with self.lock:
            if not self.lock.wait_for(lambda: info.mid in self.published, PATIENCE):
                fail(f"no acknowledgement for the publish on {topic}")
            return self.published[info.mid]

    def wait_messages(self, count, patience=PATIENCE):
        with self.lock:
            self.lock.wait_for(lambda: len(self.messages) >= count, patience)
            return list(self.messages)

    def wait_topic(self, topic):
        """Every message received once one on `topic` has come (or PATIENCE has passed)."""
        with self.lock:
            self.lock.wait_for(lambda: any(m["topic"] == topic for m in self.messages), PATIENCE)
            return list(self.messages)

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(1)


def connect(args):
    """Connects (and, when it is accepted, round-trips a message); prints the CONNACK."""
    probe = Probe(args, clean=not args.persistent)
    connack = probe.connect()
    result = dict(connack)
    if connack["rc"] == 0:
        topic = f"probe/{time.monotonic_ns()}"
        probe.subscribe(topic, 1)
        probe.publish(topic, "hello", qos=1)
        result["round_trip"] = [m["payload"] for m in probe.wait_messages(1)]
        if args.idle:
            # Silent for longer than any keep-alive timeout a broker could apply to a
            # keep-alive of 0 treated as a small value, then used again.
            time.sleep(args.idle)
            probe.publish(topic, "after idle", qos=1)
            result["round_trip"] = [m["payload"] for m in probe.wait_messages(2)]
            result["disconnected"] = probe.disconnected.is_set()
        probe.stop()
    print(json.dumps(result))


def takeover(args):
    """Two connections with one client id: how the first one ends."""
    first = Probe(args, client_id=args.client_id)
    first.connect()
    second = Probe(args, client_id=args.client_id)
    connack = second.connect()
    first.disconnected.wait(PATIENCE)
    print(json.dumps({"second": connack, "first_disconnected": first.disconnected.is_set(),
                      "first_reason": first.disconnect_reason}))
    second.stop()


def dollar(args):
    """Subscribes with `#`, `$SYS/broker/version` and `$app/#`; publishes to the broker's own
    `$` namespaces and `$share/...` (refused) and to `$app/open` (open), then a marker."""
    probe = Probe(args)
    probe.connect()
    probe.subscribe("#", 0)
    probe.subscribe("$SYS/broker/version", 0)
    probe.subscribe("$app/#", 0)
    reason = probe.publish("$SYS/broker/version", "spoofed", qos=1)
    pubacks = {topic: probe.publish(topic, "x", qos=1)
               for topic in ["$weir/status/x", "$share/g/x", "$app/open"]}
    probe.publish("plain/after", "marker", qos=1)
    messages = probe.wait_topic("plain/after")
    probe.stop()
    print(json.dumps({"puback": reason, "pubacks": pubacks, "messages": messages}))


def overlap(args):
    """Subscribes to `ov/a/b` at QoS 0, `ov/#` at QoS 1 and `+/a/#` at QoS 0 (MQTT 5: with
    subscription identifiers 1, 2 and 3); publishes `ov/a/b` (all three match) at QoS 2, then
    `ov/end` (only `ov/#`) at QoS 1; prints what arrived up to `ov/end`. Both come at QoS 1 and
    `ov/#` matches both: the first copy of `ov/a/b` arrives before `ov/end`."""
    probe = Probe(args)
    probe.connect()
    v5 = probe.version == mqtt.MQTTv5
    for identifier, (topic, qos) in enumerate([("ov/a/b", 0), ("ov/#", 1), ("+/a/#", 0)], 1):
        probe.subscribe(topic, qos, identifier if v5 else None)
    probe.publish("ov/a/b", "all", qos=2)
    probe.publish("ov/end", "end", qos=1)
    messages = probe.wait_topic("ov/end")
    probe.stop()
    print(json.dumps({"messages": messages}))


def await_disconnect(args):
    """Connects, prints `ready`, and waits for the broker to end the connection."""
    probe = Probe(args)
    probe.connect()
    probe.subscribe(args.topic, 1)
    print(json.dumps({"ready": True}), flush=True)
    disconnected = probe.disconnected.wait(args.wait)
    messages = probe.wait_messages(0, patience=0)
    probe.client.loop_stop()
    print(json.dumps({"disconnected": disconnected, "reason": probe.disconnect_reason,
                      "messages": len(messages)}))


def leave(args):
    """Starts a persistent session subscribed to each `--topic` at QoS 1, and disconnects."""
    probe = Probe(args, clean=False, session_expiry=args.expiry)
    connack = probe.connect()
    for topic in args.topic or ["probe/#"]:
        probe.subscribe(topic, 1)
    probe.stop()
    print(json.dumps(connack))


def resume(args):
    """Reconnects to a persistent session; prints the CONNACK and the messages delivered
    before a marker published after the CONNACK."""
    probe = Probe(args, clean=False, session_expiry=args.expiry)
    connack = probe.connect()
    marker = f"marker/{time.monotonic_ns()}"
    probe.subscribe(marker, 1)
    probe.publish(marker, "end", qos=1)
    messages = [m for m in probe.wait_topic(marker) if m["topic"] != marker]
    probe.stop()
    print(json.dumps({"connack": connack, "messages": messages}))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", choices=VERSIONS, default="5")
    parser.add_argument("--client-id", default="")
    parser.add_argument("--keepalive", type=int, default=60)
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--websocket-path", help="MQTT over WebSocket on this path")
    parser.add_argument("--tls-ca", help="TLS, trusting this CA file")
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("connect")
    c.add_argument("--persistent", action="store_true")
    c.add_argument("--idle", type=float, default=0)
    c.set_defaults(run=connect)
    commands.add_parser("takeover").set_defaults(run=takeover)
    commands.add_parser("dollar").set_defaults(run=dollar)
    commands.add_parser("overlap").set_defaults(run=overlap)
    d = commands.add_parser("await-disconnect")
    d.add_argument("--topic", default="probe/#")
    d.add_argument("--wait", type=float, default=30)
    d.set_defaults(run=await_disconnect)
    leaving = commands.add_parser("leave")
    leaving.add_argument("--topic", action="append")
    leaving.add_argument("--expiry", type=int, default=3600)
    leaving.set_defaults(run=leave)
    resuming = commands.add_parser("resume")
    resuming.add_argument("--topic", default="probe/#")
    resuming.add_argument("--expiry", type=int, default=3600)
    resuming.set_defaults(run=resume)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
