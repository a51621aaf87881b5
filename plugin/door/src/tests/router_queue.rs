//! A full router queue: the connections whose publishes wait for it are held, and every other
//! connection is still served (no tokio worker thread blocks on the router's queue).

use super::harness::{client, until, Running};
use crate::router;
use rumqttc::{Event, Packet, QoS};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// MQTT 3.1.1 CONNECT of client `probe`, clean session, keep-alive 60 s.
const CONNECT: [u8; 19] = [
    0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'p', b'r', b'o', b'b', b'e',
];
const PINGREQ: [u8; 2] = [0xC0, 0];
const PINGRESP: [u8; 2] = [0xD0, 0];

#[test]
fn a_full_router_queue_holds_its_publishers_and_other_connections_are_served() {
    let running = Running::start();
    let router = running.door.shared.routing.router.clone();
    let stats = running.door.stats();
    // More publishers than the door has worker threads: without moving off the workers, their
    // waits would occupy every one.
    let publishers = std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
    let clients = tokio::runtime::Runtime::new().expect("a runtime");
    clients.block_on(async {
        let (subscriber, mut received) = client(running.address, "subscriber").await;
        subscriber.subscribe("t/#", QoS::AtLeastOnce).await.unwrap();
        while !matches!(
            received.recv().await,
            Some(Event::Incoming(Packet::SubAck(_)))
        ) {}
        let mut senders = Vec::new();
        for i in 0..publishers {
            senders.push(client(running.address, &format!("publisher-{i}")).await);
        }
        let mut probe = TcpStream::connect(running.address).await.unwrap();
        probe.write_all(&CONNECT).await.unwrap();
        let mut connack = [0; 4];
        probe.read_exact(&mut connack).await.unwrap();
        assert_eq!(connack, [0x20, 2, 0, 0]);

        // The router is stopped: it takes a hand-over of link `staller`'s and waits for that
        // link's buffer, held here. Then its queue fills with more hand-overs.
        let staller = router.link("staller", true).expect("a link");
        let held = staller.tx.hold_buffer();
        let (_, capacity) = router.queue().load();
        let capacity = capacity.expect("a bounded router queue");
        let mut bare = (router.bare_tx)(staller.rx.id());
        // One hand-over the router takes and stops on, then enough to fill its queue.
        let filler = std::thread::spawn(move || {
            for _ in 0..=capacity {
                router::ping_bare(&mut bare);
            }
        });
        until("the router's queue is full", || {
            router.queue().load().0 == capacity
        })
        .await;

        let before = stats.publishes_received.get();
        for (i, (sender, _)) in senders.iter().enumerate() {
            sender
                .publish(format!("t/{i}"), QoS::AtLeastOnce, false, "held")
                .await
                .unwrap();
        }
        until("every publish read", || {
            stats.publishes_received.get() == before + publishers as u64
        })
        .await;
        // Another connection is served meanwhile.
        probe.write_all(&PINGREQ).await.unwrap();
        let mut pong = [0; 2];
        tokio::time::timeout(Duration::from_secs(5), probe.read_exact(&mut pong))
            .await
            .expect("a PINGRESP while the router's queue is full")
            .unwrap();
        assert_eq!(pong, PINGRESP);

        // The router goes on: every held publish is delivered, none lost.
        drop(held);
        filler.join().unwrap();
        let mut topics = Vec::new();
        while topics.len() < publishers {
            match tokio::time::timeout(Duration::from_secs(10), received.recv()).await {
                Ok(Some(Event::Incoming(Packet::Publish(publish)))) => {
                    assert_eq!(&publish.payload[..], b"held");
                    topics.push(publish.topic);
                }
                Ok(Some(_)) => {}
                other => panic!("{} of {publishers} delivered: {other:?}", topics.len()),
            }
        }
        topics.sort();
        let mut expected: Vec<_> = (0..publishers).map(|i| format!("t/{i}")).collect();
        expected.sort();
        assert_eq!(topics, expected);
    });
}
