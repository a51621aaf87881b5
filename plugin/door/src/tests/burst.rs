//! A burst at QoS 0 from ten publishers to one subscriber, as weir-bench's `raw qos0 10→1`
//! row sends it, through router logs small enough that the publishers' gates close and open
//! all the time: every message of the burst is read and reaches the subscriber (or is counted
//! as dropped), including the last ones, after which nothing more arrives to move them along.

use super::harness::{client, Running};
use rumqttc::{Event, Packet, QoS};
use std::time::Duration;

const PUBLISHERS: usize = 10;
const EACH: usize = 5_000;

/// How long the subscriber may hear nothing before the rest counts as lost.
const QUIET: Duration = Duration::from_secs(3);

#[test]
fn the_end_of_a_burst_from_ten_publishers_reaches_its_subscriber() {
    let running = Running::start_with(|config| {
        // The router as config/default.yaml sets it and weir-bench's in-flight window, but
        // for the router's logs: 4 x 8 KiB (about 290 of these messages) instead of 4 x 256
        // KiB, so that the subscriber's lag closes the publishers' gates many times a burst.
        config.listeners[0].max_inflight = 1000;
        config.router.max_outgoing_packet_count = 1000;
        config.router.max_segment_size = 8 * 1024;
        config.router.max_segment_count = 4;
    });
    let stats = running.door.stats();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let received = runtime.block_on(async {
        let (subscriber, mut events) = client(running.address, "burst-reader").await;
        subscriber
            .subscribe("burst/#", QoS::AtMostOnce)
            .await
            .unwrap();
        while !matches!(
            events.recv().await,
            Some(Event::Incoming(Packet::SubAck(_)))
        ) {}
        for p in 0..PUBLISHERS {
            let (publisher, mut acks) = client(running.address, &format!("burst-{p}")).await;
            tokio::spawn(async move {
                let payload = vec![b'x'; 100];
                for _ in 0..EACH {
                    publisher
                        .publish(
                            format!("burst/{p}"),
                            QoS::AtMostOnce,
                            false,
                            payload.clone(),
                        )
                        .await
                        .unwrap();
                }
                // Keeps the client, and so its connection, until the test ends.
                while acks.recv().await.is_some() {}
                drop(publisher);
            });
        }
        let mut received = 0;
        while received < PUBLISHERS * EACH {
            match tokio::time::timeout(QUIET, events.recv()).await {
                Ok(Some(Event::Incoming(Packet::Publish(_)))) => received += 1,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        received
    });
    let total = PUBLISHERS * EACH;
    // A gate that closed in the middle of a read's packets left the rest unread until the
    // client sent more, which at the end of a burst it never does.
    assert_eq!(
        stats.publishes_received.get(),
        total as u64,
        "publishes read by the door"
    );
    let dropped = stats.dropped.get();
    assert_eq!(
        received as u64 + dropped,
        total as u64,
        "delivered ({received}) and counted as dropped ({dropped})"
    );
}
