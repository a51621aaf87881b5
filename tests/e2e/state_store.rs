//! The state store over MQTT, driven by Azure IoT Operations' official client crates
//! (`azure_iot_operations_services` with its own MQTT 5 session client) against a running
//! `weir`: commands, fencing tokens, expiry, key notifications, the leased lock, and state
//! shared with modules.

use crate::harness::{
    metric, modules_dir, mosquitto_pub, wait_for_metrics, write_file, MosquittoSub, Weir,
};
use azure_iot_operations_mqtt::aio::connection_settings::MqttConnectionSettingsBuilder;
use azure_iot_operations_mqtt::session::{Session, SessionExitHandle, SessionOptionsBuilder};
use azure_iot_operations_protocol::application::ApplicationContextBuilder;
use azure_iot_operations_protocol::common::hybrid_logical_clock::HybridLogicalClock;
use azure_iot_operations_services::leased_lock::lock;
use azure_iot_operations_services::state_store::{
    self, ErrorKind, Operation, ServiceError, SetCondition, SetOptions,
};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// An AIO state store client on its own MQTT session.
struct AioClient {
    store: Arc<state_store::Client>,
    exit: SessionExitHandle,
    session: tokio::task::JoinHandle<()>,
}

impl AioClient {
    fn connect(port: u16, client_id: &str) -> AioClient {
        let settings = MqttConnectionSettingsBuilder::default()
            .client_id(client_id)
            .hostname("127.0.0.1")
            .tcp_port(port)
            .keep_alive(Duration::from_secs(5))
            .use_tls(false)
            .build()
            .unwrap();
        let options = SessionOptionsBuilder::default()
            .connection_settings(settings)
            .build()
            .unwrap();
        let session = Session::new(options).unwrap();
        let store = state_store::Client::new(
            ApplicationContextBuilder::default().build().unwrap(),
            session.create_managed_client(),
            session.create_session_monitor(),
            state_store::ClientOptionsBuilder::default()
                .build()
                .unwrap(),
        )
        .unwrap();
        let exit = session.create_exit_handle();
        let session = tokio::spawn(async move {
            let _ = session.run().await;
        });
        AioClient {
            store: Arc::new(store),
            exit,
            session,
        }
    }

    async fn close(self) {
        let _ = self.store.shutdown().await;
        if self.exit.try_exit().is_err() {
            self.exit.force_exit();
        }
        let _ = self.session.await;
    }
}

fn set_options(condition: SetCondition, expires: Option<Duration>) -> SetOptions {
    SetOptions {
        set_condition: condition,
        expires,
        ..SetOptions::default()
    }
}

async fn next(observation: &mut state_store::KeyObservation) -> state_store::KeyNotification {
    let notified = tokio::time::timeout(TIMEOUT, observation.recv_notification());
    notified
        .await
        .expect("no notification")
        .expect("observation ended")
        .0
}

/// `error` is the service's refusal of a fencing token lower than the key's.
fn assert_refused_as_stale(error: &state_store::Error) {
    let stale = matches!(
        service_error(error),
        Some(ServiceError::FencingTokenLowerVersion)
    );
    assert!(stale, "{error:?}");
}

fn service_error(error: &state_store::Error) -> Option<&ServiceError> {
    match error.kind() {
        ErrorKind::ServiceError(e) => Some(e),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_sets_gets_and_deletes() {
    let weir = Weir::start();
    let client = AioClient::connect(weir.v5, "aio-basic");
    let store = &client.store;
    let (key, value) = (b"room/temp".to_vec(), b"21.5".to_vec());
    let always = || set_options(SetCondition::Unconditional, None);

    let set = store
        .set(key.clone(), value.clone(), TIMEOUT, None, always())
        .await
        .unwrap();
    assert!(set.response);
    let written = set.version.expect("a SET answers with the new version");
    let got = store.get(key.clone(), TIMEOUT).await.unwrap();
    assert_eq!(got.response.as_deref(), Some(&value[..]));
    assert_eq!(got.version, Some(written));

    let not_if_exists = set_options(SetCondition::OnlyIfDoesNotExist, None);
    let refused = store
        .set(key.clone(), b"x".to_vec(), TIMEOUT, None, not_if_exists)
        .await
        .unwrap();
    assert!(!refused.response, "NX on an existing key writes nothing");
    let if_equal = set_options(SetCondition::OnlyIfEqualOrDoesNotExist, None);
    let equal = store
        .set(key.clone(), value.clone(), TIMEOUT, None, if_equal.clone())
        .await
        .unwrap();
    assert!(equal.response, "NEX with the same value writes");
    let differs = store
        .set(key.clone(), b"22".to_vec(), TIMEOUT, None, if_equal)
        .await
        .unwrap();
    assert!(!differs.response, "NEX with another value writes nothing");

    let vdel = |v: &[u8]| store.vdel(key.clone(), v.to_vec(), None, TIMEOUT);
    assert_eq!(vdel(b"22").await.unwrap().response, -1);
    assert_eq!(vdel(&value).await.unwrap().response, 1);
    assert_eq!(vdel(&value).await.unwrap().response, 0);
    let got = store.get(key.clone(), TIMEOUT).await.unwrap();
    assert_eq!(got.response, None);

    store
        .set(key.clone(), value.clone(), TIMEOUT, None, always())
        .await
        .unwrap();
    assert_eq!(
        store
            .del(key.clone(), None, TIMEOUT)
            .await
            .unwrap()
            .response,
        1
    );
    assert_eq!(
        store
            .del(key.clone(), None, TIMEOUT)
            .await
            .unwrap()
            .response,
        0
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_or_missing_fencing_token_is_refused() {
    let weir = Weir::start();
    let client = AioClient::connect(weir.v5, "aio-fencing");
    let store = &client.store;
    let key = b"fenced".to_vec();
    let always = || set_options(SetCondition::Unconditional, None);

    let first = store
        .set(
            key.clone(),
            b"1".to_vec(),
            TIMEOUT,
            Some(HybridLogicalClock::default()),
            always(),
        )
        .await
        .unwrap();
    let token = first.version.unwrap();
    let second = store
        .set(
            key.clone(),
            b"2".to_vec(),
            TIMEOUT,
            Some(token.clone()),
            always(),
        )
        .await
        .unwrap();
    assert!(second.response);
    let newer = second.version.unwrap();
    store
        .set(
            key.clone(),
            b"3".to_vec(),
            TIMEOUT,
            Some(newer.clone()),
            always(),
        )
        .await
        .unwrap();

    let stale = store
        .set(
            key.clone(),
            b"stale".to_vec(),
            TIMEOUT,
            Some(token),
            always(),
        )
        .await
        .unwrap_err();
    assert_refused_as_stale(&stale);
    let missing = store.del(key.clone(), None, TIMEOUT).await.unwrap_err();
    assert!(
        matches!(
            service_error(&missing),
            Some(ServiceError::MissingFencingToken)
        ),
        "{missing:?}"
    );
    let got = store.get(key.clone(), TIMEOUT).await.unwrap();
    assert_eq!(got.response.as_deref(), Some(&b"3"[..]));
    let deleted = store.del(key.clone(), Some(newer), TIMEOUT).await.unwrap();
    assert_eq!(deleted.response, 1);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_hear_of_sets_deletes_and_expiry() {
    let weir = Weir::start();
    let watcher = AioClient::connect(weir.v5, "aio-watcher");
    let writer = AioClient::connect(weir.v4, "aio-writer");
    let key = b"door/open".to_vec();
    let mut observation = watcher
        .store
        .observe(key.clone(), TIMEOUT)
        .await
        .unwrap()
        .response;

    let always = |expires| set_options(SetCondition::Unconditional, expires);
    let set = writer
        .store
        .set(key.clone(), b"yes".to_vec(), TIMEOUT, None, always(None))
        .await
        .unwrap();
    let notification = next(&mut observation).await;
    assert_eq!(notification.key, key);
    assert_eq!(notification.operation, Operation::Set(b"yes".to_vec()));
    assert_eq!(Some(notification.version), set.version);
    writer.store.del(key.clone(), None, TIMEOUT).await.unwrap();
    assert_eq!(next(&mut observation).await.operation, Operation::Del);

    let expires = Some(Duration::from_millis(300));
    writer
        .store
        .set(
            key.clone(),
            b"briefly".to_vec(),
            TIMEOUT,
            None,
            always(expires),
        )
        .await
        .unwrap();
    assert_eq!(
        next(&mut observation).await.operation,
        Operation::Set(b"briefly".to_vec())
    );
    assert_eq!(
        next(&mut observation).await.operation,
        Operation::Del,
        "expiry is a deletion"
    );
    let got = writer.store.get(key.clone(), TIMEOUT).await.unwrap();
    assert_eq!(got.response, None);

    let stopped = watcher.store.unobserve(key.clone(), TIMEOUT).await.unwrap();
    assert!(stopped.response);
    writer.close().await;
    watcher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leased_lock_passes_from_holder_to_waiter() {
    let weir = Weir::start();
    let first = AioClient::connect(weir.v5, "aio-lock-1");
    let second = AioClient::connect(weir.v5, "aio-lock-2");
    let lock_of = |client: &AioClient, holder: &str| {
        lock::Client::new(client.store.clone(), b"pump".to_vec(), holder.into()).unwrap()
    };
    let (lock1, lock2) = (lock_of(&first, "holder-1"), lock_of(&second, "holder-2"));
    let lease = Duration::from_secs(30);
    let token1 = lock1.lock(lease, TIMEOUT, None).await.unwrap();
    let always = || set_options(SetCondition::Unconditional, None);
    let resource = b"pump/setpoint".to_vec();
    first
        .store
        .set(
            resource.clone(),
            b"40".to_vec(),
            TIMEOUT,
            Some(token1.clone()),
            always(),
        )
        .await
        .unwrap();

    // The second holder waits for the lease, and gets it once the first lets go.
    let waiting = tokio::spawn(async move {
        let token = lock2.lock(lease, TIMEOUT, None).await.unwrap();
        (lock2, token)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "the lease is held by the first holder"
    );
    lock1.unlock(TIMEOUT).await.unwrap();
    let (lock2, token2) = tokio::time::timeout(TIMEOUT, waiting)
        .await
        .expect("the waiter never got the lease")
        .unwrap();
    // HLCs print zero-padded: their text orders as they do.
    assert!(token2.to_string() > token1.to_string());
    second
        .store
        .set(
            resource.clone(),
            b"55".to_vec(),
            TIMEOUT,
            Some(token2),
            always(),
        )
        .await
        .unwrap();
    let stale = first
        .store
        .set(
            resource.clone(),
            b"41".to_vec(),
            TIMEOUT,
            Some(token1),
            always(),
        )
        .await
        .unwrap_err();
    assert_refused_as_stale(&stale);
    let got = first.store.get(resource, TIMEOUT).await.unwrap();
    assert_eq!(got.response.as_deref(), Some(&b"55"[..]));
    lock2.unlock(TIMEOUT).await.unwrap();
    first.close().await;
    second.close().await;
}

/// A graph counting messages in the state store (`state-counter`), defined in `dir`, and one
/// adding what the store holds to each message (`enrich`).
fn shared_state_config(dir: &std::path::Path, v4: u16, v5: u16) -> String {
    let counter = "metadata: {name: counter, version: '1.0.0'}\n\
         moduleRequirements: {apiVersion: '1.1.0', runtimeVersion: '1.1.0'}\n\
         operations:\n\
         \x20 - {operationType: source, name: source}\n\
         \x20 - {operationType: map, name: count, module: 'state-counter:1.0.0'}\n\
         \x20 - {operationType: sink, name: sink}\n\
         connections:\n\
         \x20 - {from: {name: source}, to: {name: count}}\n\
         \x20 - {from: {name: count}, to: {name: sink}}\n";
    let counter = write_file(dir, "counter.yaml", counter);
    let enrich = crate::harness::repo("tests/graph-tests/enrich/graph.yaml");
    format!(
        "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
         modules:\n  directories: ['{}']\n\
         graphs:\n\
         \x20 - {{name: counter, definition: '{}', source: [count/#], sink: {{topic: 'counted/{{1..}}'}}}}\n\
         \x20 - {{name: enrich, definition: '{}', source: [raw/#], sink: {{topic: 'enriched/{{1..}}'}}}}\n",
        modules_dir(),
        counter.display(),
        enrich.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_and_clients_share_the_store() {
    let definitions = tempfile::tempdir().unwrap();
    let weir = Weir::start_with(|v4, v5| shared_state_config(definitions.path(), v4, v5));
    let client = AioClient::connect(weir.v5, "aio-shared");
    let store = &client.store;

    // A module's writes reach the client: as values and as notifications.
    let key = b"state-counter/count/line1".to_vec();
    let mut observation = store.observe(key.clone(), TIMEOUT).await.unwrap().response;
    let port = weir.v4.to_string();
    let mut counted = MosquittoSub::start(&["-p", &port, "-t", "counted/#", "-q", "1"]);
    for _ in 0..3 {
        mosquitto_pub(&["-p", &port, "-t", "count/line1", "-q", "1", "-m", "{}"]);
    }
    for n in 1..=3 {
        assert!(counted.next_message().contains(&format!("\"count\":{n}")));
        let notification = next(&mut observation).await;
        assert_eq!(
            notification.operation,
            Operation::Set(n.to_string().into_bytes())
        );
    }
    let got = store.get(key, TIMEOUT).await.unwrap();
    assert_eq!(got.response.as_deref(), Some(&b"3"[..]));

    // The client's writes reach a module.
    for (key, value) in [("factoryId", "f-7"), ("machineId", "m-12"), ("line", "L2")] {
        let set = set_options(SetCondition::Unconditional, None);
        let done = store.set(key.into(), value.into(), TIMEOUT, None, set);
        assert!(done.await.unwrap().response);
    }
    let mut enriched = MosquittoSub::start(&["-p", &port, "-t", "enriched/#", "-q", "1"]);
    mosquitto_pub(&[
        "-p",
        &port,
        "-t",
        "raw/m1",
        "-q",
        "1",
        "-m",
        r#"{"rpm":900}"#,
    ]);
    let message = enriched.next_message();
    assert!(
        message.contains("\"factoryId\":\"f-7\"") && message.contains("\"machineId\":\"m-12\""),
        "{message}"
    );
    client.close().await;
}

#[test]
fn requests_from_other_clients_are_answered_or_counted() {
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
             metrics: {{listen: '127.0.0.1:{metrics}'}}\n"
        )
    });
    let port = weir.v5.to_string();
    let topic = "statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/command/invoke";
    // mosquitto's MQTT 5 clients: a RESP3 request with a response topic and correlation data.
    let mut answers =
        MosquittoSub::start(&["-p", &port, "-V", "5", "-t", "replies/me", "-F", "%t|%P|%p"]);
    let request = write_file(
        weir.dir.path(),
        "get.resp",
        "*2\r\n$3\r\nGET\r\n$4\r\nnone\r\n",
    );
    let bad = write_file(weir.dir.path(), "bad.resp", "*1\r\n$8\r\nFLUSHALL\r\n");
    for (file, correlation) in [(&request, "c1"), (&bad, "c2")] {
        let sent = mosquitto_pub(&[
            "-p",
            &port,
            "-V",
            "5",
            "-q",
            "1",
            "-t",
            topic,
            "-D",
            "publish",
            "response-topic",
            "replies/me",
            "-D",
            "publish",
            "correlation-data",
            correlation,
            "-f",
            file.to_str().unwrap(),
        ]);
        assert!(sent.status.success(), "{sent:?}");
    }
    // Answers end in CRLF: the line after each is empty.
    let mut answer = || loop {
        let line = answers.next_message();
        if !line.trim().is_empty() {
            return line;
        }
    };
    let first = answer();
    assert!(first.starts_with("replies/me|"), "{first}");
    assert!(
        first.contains("__stat:200") && first.trim_end().ends_with("|$-1"),
        "{first}"
    );
    let second = answer();
    assert!(second.contains("-ERR unknown command"), "{second}");
    // Without a response topic there is no one to answer: counted and logged, not routed.
    let mut everything = MosquittoSub::start(&["-p", &port, "-t", "#", "-v"]);
    let sent = mosquitto_pub(&["-p", &port, "-q", "1", "-t", topic, "-m", "x"]);
    assert!(sent.status.success());
    wait_for_metrics(metrics, "the request counted as unanswerable", |read| {
        read("weir_state_store_unanswerable_total") == 1
    });
    assert!(weir
        .log()
        .contains("state store request without a valid response topic"));
    assert_eq!(metric(metrics, "weir_state_store_errors_total"), Some(1));
    let leaked = everything.count(1, Duration::from_millis(300));
    assert_eq!(leaked, 0, "requests are not routed to subscribers");
}
