//! Plain MQTT behaviour of the broker, with rumqttc and Debian's mosquitto clients.

use super::clients::{Client4, Client5};
use super::harness::{mosquitto_pub, MosquittoSub, Weir};
use rumqttc::v5::mqttbytes::v5::{LastWill as LastWill5, PublishProperties};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::{LastWill, QoS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v4_qos_0_1_2_round_trip() {
    let weir = Weir::start();
    let mut sub = Client4::connect(Client4::options("sub", weir.v4))
        .await
        .unwrap();
    let publisher = Client4::connect(Client4::options("pub", weir.v4))
        .await
        .unwrap();
    for (n, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let topic = format!("qos/{n}");
        sub.subscribe(&topic, qos).await;
        publisher
            .client
            .publish(&topic, qos, false, format!("payload {n}"))
            .await
            .unwrap();
        let got = sub.next().await;
        assert_eq!(got.topic, topic);
        assert_eq!(got.payload.as_ref(), format!("payload {n}").as_bytes());
        assert_eq!(got.qos, qos);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_qos_0_1_2_round_trip() {
    let weir = Weir::start();
    let mut sub = Client5::connect("sub5", weir.v5).await;
    let publisher = Client5::connect("pub5", weir.v5).await;
    for (n, qos) in [QoS5::AtMostOnce, QoS5::AtLeastOnce, QoS5::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        sub.subscribe(&format!("qos5/{n}"), qos).await;
        publisher
            .client
            .publish(format!("qos5/{n}"), qos, false, vec![n as u8; 3])
            .await
            .unwrap();
        let got = sub.next().await;
        assert_eq!(got.topic.as_ref(), format!("qos5/{n}").as_bytes());
        assert_eq!(got.payload.as_ref(), &[n as u8; 3]);
        assert_eq!(got.qos, qos);
    }
}

#[test]
fn mosquitto_clients_qos_0_1_2_on_both_protocols() {
    let weir = Weir::start();
    for (port, version) in [(weir.v4, "mqttv311"), (weir.v5, "mqttv5")] {
        let port = port.to_string();
        let mut sub = MosquittoSub::start(&[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            version,
            "-q",
            "2",
            "-t",
            "mosq/#",
            "-v",
        ]);
        for qos in ["0", "1", "2"] {
            let message = format!("hello at qos {qos} over {version}");
            let out = mosquitto_pub(&[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                version,
                "-q",
                qos,
                "-t",
                &format!("mosq/{qos}"),
                "-m",
                &message,
            ]);
            assert!(out.status.success(), "mosquitto_pub: {out:?}");
            assert_eq!(sub.next_message(), format!("mosq/{qos} {message}"));
        }
    }
}

#[test]
fn retained_message_reaches_a_later_subscriber() {
    let weir = Weir::start();
    let port = weir.v4.to_string();
    let out = mosquitto_pub(&[
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-q",
        "1",
        "-r",
        "-t",
        "status/gw1",
        "-m",
        "online",
    ]);
    assert!(out.status.success(), "mosquitto_pub: {out:?}");
    // Subscribed only now: the broker must have kept the message.
    let mut late = MosquittoSub::start(&["-h", "127.0.0.1", "-p", &port, "-t", "status/+", "-v"]);
    assert_eq!(late.next_message(), "status/gw1 online");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_flag_is_set_for_rumqttc() {
    let weir = Weir::start();
    let publisher = Client4::connect(Client4::options("retainer", weir.v4))
        .await
        .unwrap();
    publisher
        .client
        .publish("retained/one", QoS::AtLeastOnce, true, "kept")
        .await
        .unwrap();
    let mut publisher = publisher;
    publisher
        .wait_ack(|p| matches!(p, rumqttc::Packet::PubAck(_)))
        .await;
    let mut sub = Client4::connect(Client4::options("late", weir.v4))
        .await
        .unwrap();
    sub.subscribe("retained/#", QoS::AtLeastOnce).await;
    let got = sub.next().await;
    assert_eq!(got.payload.as_ref(), b"kept");
    assert!(
        got.retain,
        "a retained message is delivered with the retain flag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_is_published_when_a_client_crashes() {
    let weir = Weir::start();
    let mut watcher = Client4::connect(Client4::options("watcher", weir.v4))
        .await
        .unwrap();
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;

    let mut options = Client4::options("doomed", weir.v4);
    options.set_last_will(LastWill::new(
        "wills/doomed",
        "gone",
        QoS::AtLeastOnce,
        false,
    ));
    let doomed = Client4::connect(options).await.unwrap();
    doomed.crash();

    let will = watcher.next().await;
    assert_eq!(will.topic, "wills/doomed");
    assert_eq!(will.payload.as_ref(), b"gone");
}

#[test]
fn last_will_of_a_killed_mosquitto_client() {
    let weir = Weir::start();
    let port = weir.v4.to_string();
    let mut watcher = MosquittoSub::start(&["-h", "127.0.0.1", "-p", &port, "-t", "wills/#", "-v"]);
    let mut doomed = MosquittoSub::start(&[
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "unused",
        "--will-topic",
        "wills/mosq",
        "--will-payload",
        "lost",
    ]);
    doomed.kill();
    assert_eq!(watcher.next_message(), "wills/mosq lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_user_properties_and_content_type_are_preserved() {
    let weir = Weir::start();
    let mut sub = Client5::connect("props-sub", weir.v5).await;
    sub.subscribe("props/#", QoS5::AtLeastOnce).await;
    let publisher = Client5::connect("props-pub", weir.v5).await;
    let properties = PublishProperties {
        content_type: Some("application/json".into()),
        user_properties: vec![
            ("__ts".into(), "001700000000000:00000:gw".into()),
            ("k".into(), "1".into()),
            ("k".into(), "2".into()),
        ],
        ..Default::default()
    };
    publisher
        .client
        .publish_with_properties(
            "props/a",
            QoS5::AtLeastOnce,
            false,
            r#"{"v":1}"#,
            properties.clone(),
        )
        .await
        .unwrap();
    let got = sub.next().await;
    let got_properties = got.properties.expect("properties dropped");
    assert_eq!(got_properties.content_type, properties.content_type);
    assert_eq!(got_properties.user_properties, properties.user_properties);
    assert_eq!(got.payload.as_ref(), br#"{"v":1}"#);
}

#[test]
fn mosquitto_v5_properties_are_preserved() {
    let weir = Weir::start();
    let port = weir.v5.to_string();
    let mut sub = MosquittoSub::start(&[
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-V",
        "mqttv5",
        "-t",
        "p/#",
        "-F",
        "%t|%C|%P|%p",
    ]);
    let out = mosquitto_pub(&[
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-V",
        "mqttv5",
        "-t",
        "p/x",
        "-m",
        "body",
        "-D",
        "publish",
        "content-type",
        "text/plain",
        "-D",
        "publish",
        "user-property",
        "site",
        "north",
    ]);
    assert!(out.status.success(), "mosquitto_pub: {out:?}");
    assert_eq!(sub.next_message(), "p/x|text/plain|site:north|body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_last_will_reaches_mqtt311_subscriber() {
    let weir = Weir::start();
    let mut watcher = Client4::connect(Client4::options("w4", weir.v4))
        .await
        .unwrap();
    watcher.subscribe("wills5/#", QoS::AtLeastOnce).await;
    let mut options = rumqttc::v5::MqttOptions::new("doomed5", "127.0.0.1", weir.v5);
    options.set_last_will(LastWill5::new(
        "wills5/x",
        "bye",
        QoS5::AtLeastOnce,
        false,
        None,
    ));
    let (_client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 10);
    loop {
        if let rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(_)) =
            eventloop.poll().await.unwrap()
        {
            break;
        }
    }
    drop(eventloop);
    let will = watcher.next().await;
    assert_eq!(will.topic, "wills5/x");
    assert_eq!(will.payload.as_ref(), b"bye");
}

/// rumqttd's own 3.1.1 codec panics on a message with MQTT 5 properties; Weir's drops them.
#[test]
fn an_mqtt5_message_with_properties_reaches_an_mqtt311_subscriber() {
    let weir = Weir::start();
    let mut sub = MosquittoSub::start(&["-p", &weir.v4.to_string(), "-t", "mixed/#", "-v"]);
    let out = mosquitto_pub(&[
        "-V",
        "mqttv5",
        "-p",
        &weir.v5.to_string(),
        "-t",
        "mixed/a",
        "-m",
        "hello",
        "-D",
        "publish",
        "user-property",
        "k",
        "v",
        "-D",
        "publish",
        "content-type",
        "text/plain",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(sub.next_message(), "mixed/a hello");
    assert!(!weir.log().contains("panicked"), "{}", weir.log());
}
