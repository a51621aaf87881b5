#!/usr/bin/env python3
"""MQTT 5 features checked with Eclipse Paho (paho-mqtt 2.x): subscription options, retained
messages, message expiry, properties, subscription identifiers.

Each subcommand runs one scenario against a broker on 127.0.0.1 and prints one JSON line with
what the clients saw; tests/e2e/mqtt5.rs asserts on it. A step "ends" when a marker message,
published after it, has arrived: whatever the broker sent for the step came before it.
"""

import argparse
import json
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from paho_probe import PATIENCE, Probe, fail


def client(args, name, **kwargs):
    probe = Probe(args, client_id=f"{args.prefix}{name}", version="5", **kwargs)
    connack = probe.connect()
    if connack["rc"] != 0:
        fail(f"{name} refused: {connack}")
    return probe


def seen(messages):
    """(topic, payload, topic alias) of each message."""
    return [[m["topic"], m["payload"], m["properties"].get("TopicAlias")] for m in messages]


def subscribe(probe, topic, qos=1, identifier=None, **options):
    properties = None
    if identifier is not None:
        properties = Properties(PacketTypes.SUBSCRIBE)
        properties.SubscriptionIdentifier = identifier
    probe.subscribed.clear()
    probe.client.subscribe(topic, options=mqtt.SubscribeOptions(qos=qos, **options),
                           properties=properties)
    if not probe.subscribed.wait(PATIENCE):
        fail(f"no SUBACK for {topic}")


def step(probe, marker_topic):
    """The messages that arrived before a marker published now arrives, marker excluded."""
    payload = f"marker-{time.monotonic_ns()}"
    probe.publish(marker_topic, payload, qos=1)
    with probe.lock:
        if not probe.lock.wait_for(
                lambda: any(m["payload"] == payload for m in probe.messages), PATIENCE):
            fail("the marker never arrived")
        index = next(i for i, m in enumerate(probe.messages) if m["payload"] == payload)
        got, probe.messages[:] = probe.messages[:index], probe.messages[index + 1:]
    return [m for m in got if not m["topic"].startswith("marker/")]


def publish(probe, topic, payload, qos=1, retain=False, **props):
    properties = None
    if props:
        properties = Properties(PacketTypes.PUBLISH)
        for key, value in props.items():
            setattr(properties, key, value)
    info = probe.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
    if qos > 0:
        with probe.lock:
            if not probe.lock.wait_for(lambda: info.mid in probe.published, PATIENCE):
                fail(f"no acknowledgement for {topic}")


def retain_handling(args):
    """Retained messages on subscribe under retain handling 0, 1 and 2."""
    publisher = client(args, "rh-pub")
    publish(publisher, "rh/a", "kept", retain=True)
    sub = client(args, "rh-sub")
    subscribe(sub, "marker/#")
    steps = {}
    subscribe(sub, "rh/#", retainHandling=0)
    steps["new, handling 0"] = step(sub, "marker/1")
    subscribe(sub, "rh/#", retainHandling=0)
    steps["again, handling 0"] = step(sub, "marker/2")
    subscribe(sub, "rh/#", retainHandling=1)
    steps["again, handling 1"] = step(sub, "marker/3")
    subscribe(sub, "rh/+", retainHandling=1)
    steps["new, handling 1"] = step(sub, "marker/4")
    subscribe(sub, "rh/a", retainHandling=2)
    steps["new, handling 2"] = step(sub, "marker/5")
    publish(publisher, "rh/a", "", retain=True)
    subscribe(sub, "rh/a/#", retainHandling=0)
    steps["after clearing"] = step(sub, "marker/6")
    print(json.dumps(steps))


def local_and_retain_flag(args):
    """No-local skips the client's own publishes; retain-as-published keeps the flag."""
    sub = client(args, "nl-sub")
    other = client(args, "nl-other")
    subscribe(sub, "marker/#")
    subscribe(sub, "nl/#", noLocal=True)
    subscribe(sub, "rap/#", retainAsPublished=True)
    subscribe(sub, "plain/#")
    publish(sub, "nl/own", "mine")
    publish(other, "nl/other", "theirs")
    publish(other, "rap/x", "flagged", retain=True)
    publish(other, "plain/x", "unflagged", retain=True)
    print(json.dumps(step(sub, "marker/1")))


def properties(args):
    """Every publish property reaches the subscriber unchanged, with its subscription ids."""
    sub = client(args, "pr-sub")
    subscribe(sub, "marker/#")
    subscribe(sub, "pr/#", identifier=7)
    subscribe(sub, "pr/+/deep", identifier=9)
    publisher = client(args, "pr-pub")
    publish(publisher, "pr/x", "{\"v\": 1}", PayloadFormatIndicator=1,
            ContentType="application/json", ResponseTopic="pr/replies",
            CorrelationData=b"\x01\x02", MessageExpiryInterval=3600,
            UserProperty=[("a", "1"), ("a", "2"), ("b", "x")])
    publish(publisher, "pr/y/deep", "both")
    print(json.dumps(step(sub, "marker/1")))


def expiry(args):
    """Message expiry: the interval left is forwarded; an expired retained message is not."""
    publisher = client(args, "ex-pub")
    publish(publisher, "ex/retained", "short-lived", retain=True, MessageExpiryInterval=1)
    publish(publisher, "ex/lasting", "long-lived", retain=True, MessageExpiryInterval=600)
    sub = client(args, "ex-sub")
    subscribe(sub, "marker/#")
    subscribe(sub, "ex/#")
    first = step(sub, "marker/1")
    # The expiry of the first is the behaviour under test: time has to pass.
    time.sleep(2.1)
    late = client(args, "ex-late")
    subscribe(late, "marker/#")
    subscribe(late, "ex/#")
    print(json.dumps({"at once": first, "after expiry": step(late, "marker/2")}))


def shared(args):
    """Shared subscriptions: a group spreads its messages over its members; groups with the same
    name and other filters are other groups; no retained messages on subscribe."""
    publisher = client(args, "sh-pub")
    publish(publisher, "jobs/retained", "old", retain=True)
    workers = [client(args, f"sh-worker-{n}") for n in range(3)]
    for worker in workers:
        subscribe(worker, "$share/workers/jobs/#")
    other = client(args, "sh-other")
    subscribe(other, "$share/workers/other/#")
    for n in range(30):
        publish(publisher, f"jobs/{n}", f"job {n}")
    for n in range(5):
        publish(publisher, f"other/{n}", f"other {n}")
    everyone = workers + [other]
    deadline = time.monotonic() + PATIENCE
    while sum(len(p.messages) for p in everyone) < 35 and time.monotonic() < deadline:
        time.sleep(0.02)
    received = {p.client._client_id.decode(): sorted(m["payload"] for m in p.messages)
                for p in everyone}
    print(json.dumps(received))


def aliases(args):
    """Topic aliases both ways: the publisher sets some, the door sets its own on what it sends
    a subscriber that takes them (within its maximum), and none for one that does not."""
    taking = client(args, "al-taking", connect_properties={"TopicAliasMaximum": 2})
    plain = client(args, "al-plain")
    for sub in (taking, plain):
        subscribe(sub, "marker/#")
        subscribe(sub, "al/#")
    publisher = client(args, "al-pub")
    for topic, payload in (("al/a", "1"), ("al/a", "2"), ("al/b", "3"), ("al/c", "4")):
        publish(publisher, topic, payload)
    publish(publisher, "al/in", "5", TopicAlias=1)
    publish(publisher, "", "6", TopicAlias=1)
    publish(publisher, "al/a", "7")
    print(json.dumps({"server maximum": publisher.connack["properties"].get("TopicAliasMaximum"),
                      "taking": seen(step(taking, "marker/1")),
                      "plain": seen(step(plain, "marker/1"))}))


def receive_maximum(args):
    """Flow control towards a client: never more unacknowledged QoS 1 deliveries than its
    receive maximum, and the rest once it acknowledges."""
    sub = client(args, "rm-sub", connect_properties={"ReceiveMaximum": 2}, manual_ack=True)
    subscribe(sub, "rm/#")
    publisher = client(args, "rm-pub")
    for n in range(6):
        publish(publisher, f"rm/{n}", str(n))
    acked, most = 0, 0
    while acked < 6:
        with sub.lock:
            # Returns early only when a third unacknowledged delivery arrives: the quiet
            # period is what shows that the broker waits for an acknowledgement.
            sub.lock.wait_for(lambda: len(sub.messages) > acked + 2, 0.5)
            outstanding = len(sub.messages) - acked
            oldest = sub.messages[acked] if outstanding else None
        most = max(most, outstanding)
        if oldest is None:
            break
        sub.client.ack(oldest["mid"], 1)
        acked += 1
    print(json.dumps({"most unacknowledged": most,
                      "payloads": [m["payload"] for m in sub.messages]}))


def max_packet(args):
    """A message larger than the subscriber's maximum packet size is not sent to it."""
    sub = client(args, "mp-sub", connect_properties={"MaximumPacketSize": 128})
    # The marker at QoS 0: nothing is left unacknowledged (and counted as lost) at the end.
    subscribe(sub, "marker/#", qos=0)
    subscribe(sub, "mp/#")
    publisher = client(args, "mp-pub")
    publish(publisher, "mp/small", "s" * 20)
    publish(publisher, "mp/large", "l" * 1000)
    publish(publisher, "mp/small", "after")
    print(json.dumps([m["payload"] for m in step(sub, "marker/1")]))


def connack(args):
    """What the CONNACK tells: limits, and response information when asked."""
    plain = client(args, "ca-plain")
    asking = client(args, "ca-asking", connect_properties={"RequestResponseInformation": 1})
    print(json.dumps({"plain": plain.connack["properties"],
                      "asking": asking.connack["properties"]}))


def refusals(args):
    """Reason strings on refusals (and none for a client that declines them)."""
    result = {}
    refused = Probe(args, client_id=f"{args.prefix}rf-auth", version="5",
                    connect_properties={"AuthenticationMethod": "SCRAM-SHA-1"})
    result["connack"] = refused.connect()
    for name, extra in (("explained", {}), ("declined", {"RequestProblemInformation": 0})):
        probe = client(args, f"rf-{name}", connect_properties=extra)
        acks = {}
        probe.client.on_publish = lambda c, u, mid, reason, properties, acks=acks: acks.update(
            {"rc": reason.value, "properties": properties.json() if properties else {}})
        probe.client.on_subscribe = lambda c, u, mid, reasons, properties, acks=acks: acks.update(
            {"suback": [r.value for r in reasons],
             "suback properties": properties.json() if properties else {}})
        probe.client.publish("$SYS/mine", "no", qos=1)
        probe.client.subscribe("$share/no-filter", qos=1)
        deadline = time.monotonic() + PATIENCE
        while len(acks) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        result[name] = acks
    violator = client(args, "rf-alias")
    violator.client.publish("al/x", "too far", qos=0,
                            properties=alias_property(11))
    if not violator.disconnected.wait(PATIENCE):
        fail("no DISCONNECT for a topic alias above the maximum")
    result["disconnect"] = {"rc": violator.disconnect_reason,
                            "properties": violator.disconnect_properties}
    print(json.dumps(result))


def acl(args):
    """What the broker answers one client's subscriptions and publishes (QoS 1), in order."""
    probe = Probe(args, client_id=args.client_id, version=args.version)
    connack = probe.connect()
    if connack["rc"] != 0:
        fail(f"refused: {connack}")
    result = {"suback": [], "puback": []}
    for topic in args.subscribe:
        codes = []
        probe.client.on_subscribe = lambda c, u, mid, reasons, properties, codes=codes: (
            codes.extend(r.value for r in reasons), probe.subscribed.set())
        probe.subscribed.clear()
        probe.client.subscribe(topic, qos=1)
        if not probe.subscribed.wait(PATIENCE):
            fail(f"no SUBACK for {topic}")
        result["suback"].extend(codes)
    for topic in args.publish:
        result["puback"].append(probe.publish(topic, "acl", qos=1))
    print(json.dumps(result))


def alias_property(alias):
    properties = Properties(PacketTypes.PUBLISH)
    properties.TopicAlias = alias
    return properties


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--client-id", default="acl-probe")
    parser.add_argument("--version", default="5", choices=["3.1.1", "5"])
    commands = parser.add_subparsers(dest="command", required=True)
    checks = commands.add_parser("acl")
    checks.add_argument("--subscribe", action="append", default=[])
    checks.add_argument("--publish", action="append", default=[])
    checks.set_defaults(run=acl)
    for name, run in (("retain-handling", retain_handling),
                      ("local-and-retain-flag", local_and_retain_flag),
                      ("properties", properties), ("expiry", expiry), ("shared", shared),
                      ("aliases", aliases), ("receive-maximum", receive_maximum),
                      ("max-packet", max_packet), ("connack", connack),
                      ("refusals", refusals)):
        commands.add_parser(name).set_defaults(run=run)
    args = parser.parse_args()
    args.keepalive = 60
    if args.command != "acl":
        args.client_id, args.version = "", "5"
    args.run(args)


if __name__ == "__main__":
    main()
