//! Sessions and QoS as a door alone serves them to rumqttc: exactly-once delivery, a session
//! kept while its client is away, and a second connection taking a client id over.

use super::harness::{client, connect, next, next_publish, next_suback, until, Running};
use rumqttc::{Event, Packet, QoS};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a runtime")
}

#[test]
fn qos2_publishes_reach_a_qos2_subscriber_once_each_in_order() {
    let running = Running::start();
    runtime().block_on(async {
        let (subscriber, mut received) = client(running.address, "q2-subscriber").await;
        subscriber
            .subscribe("q2/#", QoS::ExactlyOnce)
            .await
            .unwrap();
        next_suback(&mut received).await;
        let (publisher, mut acks) = client(running.address, "q2-publisher").await;
        for i in 0..20 {
            publisher
                .publish("q2/t", QoS::ExactlyOnce, false, format!("{i}"))
                .await
                .unwrap();
        }
        for _ in 0..20 {
            next(&mut acks, "PUBCOMP", |e| {
                matches!(e, Event::Incoming(Packet::PubComp(_))).then_some(())
            })
            .await;
        }
        for i in 0..20 {
            let publish = next_publish(&mut received, "a delivery").await;
            assert_eq!(publish.qos, QoS::ExactlyOnce);
            assert_eq!(&publish.payload[..], format!("{i}").as_bytes());
        }
        // Nothing more: no delivery repeated.
        subscriber
            .publish("q2/end", QoS::AtLeastOnce, false, "end")
            .await
            .unwrap();
        let last = next_publish(&mut received, "the end marker").await;
        assert_eq!(&last.payload[..], b"end", "a delivery came twice");
    });
}

#[test]
fn a_persistent_session_keeps_what_arrived_while_its_client_was_away() {
    let running = Running::start();
    runtime().block_on(async {
        let (keeper, mut events, present) = connect(running.address, "keeper", false).await;
        assert!(!present, "a new client has no session");
        keeper.subscribe("kept/#", QoS::AtLeastOnce).await.unwrap();
        next_suback(&mut events).await;
        keeper.disconnect().await.unwrap();
        while events.recv().await.is_some() {}
        let stats = running.door.stats();
        until("the session offline", || stats.sessions_offline.get() == 1).await;

        let (publisher, mut acks) = client(running.address, "kept-publisher").await;
        for i in 0..5 {
            publisher
                .publish(format!("kept/{i}"), QoS::AtLeastOnce, false, "x")
                .await
                .unwrap();
        }
        for _ in 0..5 {
            next(&mut acks, "PUBACK", |e| {
                matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
            })
            .await;
        }

        let (_keeper, mut events, present) = connect(running.address, "keeper", false).await;
        assert!(present, "the session was kept");
        assert_eq!(
            stats.sessions_offline.get(),
            0,
            "a resumed session is no longer counted as parked"
        );
        let mut topics = Vec::new();
        while topics.len() < 5 {
            topics.push(next_publish(&mut events, "a queued message").await.topic);
        }
        assert_eq!(
            topics,
            (0..5).map(|i| format!("kept/{i}")).collect::<Vec<_>>()
        );
    });
}

#[test]
fn a_second_connection_with_the_same_client_id_takes_over() {
    let running = Running::start();
    runtime().block_on(async {
        let (_first, mut first_events) = client(running.address, "twin").await;
        let (second, mut second_events) = client(running.address, "twin").await;
        // The first connection is closed by the broker.
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while first_events.recv().await.is_some() {}
        })
        .await
        .expect("the first connection closed");
        // The second is the client now.
        second.subscribe("twin/#", QoS::AtLeastOnce).await.unwrap();
        next_suback(&mut second_events).await;
        second
            .publish("twin/x", QoS::AtLeastOnce, false, "to myself")
            .await
            .unwrap();
        let publish = next_publish(&mut second_events, "its own publish").await;
        assert_eq!(&publish.payload[..], b"to myself");
    });
}
