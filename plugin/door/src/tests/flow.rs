//! Flow control as a door alone serves it to rumqttc: a subscriber that reads, but slower than
//! a publisher writes, holds the publisher back through its gate instead of losing messages.

use super::harness::{client, next, until, Running};
use rumqttc::{Event, Packet, QoS};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

const MESSAGES: usize = 2_000;

/// How far the publisher may be ahead: a third of the router's log (about 230 messages), the
/// subscriber's queue and in-flight window, a batch to the router and the router's outgoing
/// buffer for the subscriber (200), with room to spare.
const AHEAD_AT_MOST: usize = 600;

/// A subscriber with a queue of 10 messages and 4 in flight, reading slower than a publisher
/// of 2,000 QoS 1 messages writes, behind a router that keeps about 700 of them: the
/// publisher's gate keeps it a bounded distance ahead, and nothing is lost. Without the gate
/// the publisher would run through all 2,000 while the subscriber had read a few hundred,
/// and the router would overwrite what the subscriber had not read.
#[test]
fn a_slow_subscriber_holds_its_publisher_back_and_loses_nothing() {
    let running = Running::start_with(|config| {
        config.max_queued_messages = 10;
        config.listeners[0].max_inflight = 4;
        // The router keeps 3 x 8 KiB of each filter's newest messages (about 700 of these):
        // a third of it is the furthest a reader may fall behind before its publishers wait.
        config.router.max_segment_size = 8 * 1024;
        config.router.max_segment_count = 4;
    });
    let stats = running.door.stats();
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async {
            // The subscriber's event loop is polled here, slowly: it reads and acknowledges
            // only as fast as this test takes its messages.
            let mut options =
                rumqttc::MqttOptions::new("slow-reader", "127.0.0.1", running.address.port());
            options.set_keep_alive(Duration::from_secs(60));
            let (subscriber, mut reader) = rumqttc::AsyncClient::new(options, 10);
            subscriber
                .subscribe("flow/#", QoS::AtLeastOnce)
                .await
                .unwrap();
            loop {
                let event = reader.poll().await.expect("the subscriber connects");
                if matches!(event, Event::Incoming(Packet::SubAck(_))) {
                    break;
                }
            }
            let (publisher, mut acks) = client(running.address, "fast-writer").await;
            let acknowledged = Arc::new(AtomicUsize::new(0));
            let counted = acknowledged.clone();
            let writing = tokio::spawn(async move {
                for i in 0..MESSAGES {
                    publisher
                        .publish("flow/t", QoS::AtLeastOnce, false, i.to_string())
                        .await
                        .unwrap();
                }
                while counted.load(Relaxed) < MESSAGES {
                    next(&mut acks, "PUBACK", |e| {
                        matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
                    })
                    .await;
                    counted.fetch_add(1, Relaxed);
                }
                publisher
            });
            let mut furthest_ahead = 0;
            for i in 0..MESSAGES {
                let publish = loop {
                    let event = tokio::time::timeout(Duration::from_secs(10), reader.poll())
                        .await
                        .expect("a delivery within 10 s")
                        .expect("the subscriber stays connected");
                    if let Event::Incoming(Packet::Publish(publish)) = event {
                        break publish;
                    }
                };
                assert_eq!(
                    &publish.payload[..],
                    i.to_string().as_bytes(),
                    "out of order or lost"
                );
                furthest_ahead = furthest_ahead.max(acknowledged.load(Relaxed).saturating_sub(i));
                // Slower than the publisher: a pause every 50 messages.
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let _publisher = writing.await.unwrap();
            println!("the publisher was at most {furthest_ahead} messages ahead");
            assert!(
                furthest_ahead < AHEAD_AT_MOST,
                "the publisher ran {furthest_ahead} messages ahead of its subscriber"
            );
            until("every delivery counted", || {
                stats.publishes_sent.get() >= MESSAGES as u64
            })
            .await;
        });
    assert_eq!(stats.dropped.get(), 0, "messages were dropped");
}
