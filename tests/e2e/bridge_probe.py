#!/usr/bin/env python3
"""MQTT 5 properties across a bridge, checked with Eclipse Paho (paho-mqtt 2.x).

Subscribes with MQTT 5 on one broker, publishes with MQTT 5 and every publish property on
another, and prints one JSON line with the message and the properties the subscriber got.
"""

import argparse
import json
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

PATIENCE = 10


def connect(port, client_id):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(PATIENCE):
        raise SystemExit(f"no CONNACK from port {port}")
    return client


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sub-port", type=int, required=True)
    parser.add_argument("--pub-port", type=int, required=True)
    parser.add_argument("--sub-topic", required=True)
    parser.add_argument("--pub-topic", required=True)
    parser.add_argument("--qos", type=int, default=1)
    args = parser.parse_args()

    received = []
    arrived = threading.Event()
    subscribed = threading.Event()
    subscriber = connect(args.sub_port, "bridge-probe-sub")
    subscriber.on_subscribe = lambda *a: subscribed.set()

    def on_message(_client, _userdata, message):
        props = message.properties
        seen = {
            "topic": message.topic,
            "payload": message.payload.decode(),
            "qos": message.qos,
            "content_type": getattr(props, "ContentType", None),
            "payload_format": getattr(props, "PayloadFormatIndicator", None),
            "expiry": getattr(props, "MessageExpiryInterval", None),
            "response_topic": getattr(props, "ResponseTopic", None),
            "correlation": (getattr(props, "CorrelationData", b"") or b"").decode(),
            "user_properties": [list(p) for p in getattr(props, "UserProperty", [])],
        }
        received.append(seen)
        arrived.set()

    subscriber.on_message = on_message
    subscriber.subscribe(args.sub_topic, qos=args.qos)
    if not subscribed.wait(PATIENCE):
        raise SystemExit("no SUBACK")

    publisher = connect(args.pub_port, "bridge-probe-pub")
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.PayloadFormatIndicator = 1
    props.MessageExpiryInterval = 3600
    props.ResponseTopic = "replies/gw1"
    props.CorrelationData = b"req-42"
    props.UserProperty = [("site", "north"), ("line", "3"), ("site", "south")]
    info = publisher.publish(args.pub_topic, '{"t":21.5}', qos=args.qos, properties=props)
    info.wait_for_publish(PATIENCE)
    arrived.wait(PATIENCE)
    print(json.dumps(received[0] if received else None))
    publisher.disconnect()
    subscriber.disconnect()


if __name__ == "__main__":
    main()
