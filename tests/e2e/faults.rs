//! Module faults in a running broker: the circuit breaker of a failing node, a graph whose
//! module refuses its configuration, and each graph's status on `$weir/status/<graph>`.

use crate::harness::*;
use serde_json::Value;

/// A one-node map graph running module `module`.
fn one_map(dir: &std::path::Path, module: &str) -> std::path::PathBuf {
    write_file(
        dir,
        &format!("{module}.yaml"),
        &format!(
            "metadata: {{name: {module}, version: \"1\"}}\nmoduleRequirements: {{apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}}\noperations:\n  - {{operationType: source, name: source}}\n  - {{operationType: map, name: step, module: \"{module}:1.0.0\"}}\n  - {{operationType: sink, name: sink}}\nconnections:\n  - {{from: {{name: source}}, to: {{name: step}}}}\n  - {{from: {{name: step}}, to: {{name: sink}}}}\n"
        ),
    )
}

fn listeners(v4: u16, v5: u16) -> String {
    format!(
        "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n"
    )
}

/// The next status report on a subscription to `$weir/status/...` (lines `topic payload`).
fn next_report(sub: &mut MosquittoSub) -> Value {
    let line = sub.next_message();
    let (_, json) = line.split_once(' ').expect("topic and payload");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// Reads reports until one satisfies `wanted`.
fn report_where(sub: &mut MosquittoSub, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        let report = next_report(sub);
        if wanted(&report) {
            return report;
        }
    }
}

fn publish_qos1(port: u16, topic: &str, payload: &str) {
    let out = mosquitto_pub(&[
        "-p",
        &port.to_string(),
        "-q",
        "1",
        "-t",
        topic,
        "-m",
        payload,
    ]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_failing_node_opens_its_circuit_and_a_good_trial_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let definition = one_map(dir.path(), "faulty-trap");
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "{}modules: {{directories: ['{}']}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n\
             engine: {{circuit: {{failures: 3, backoff_ms: 300, max_backoff_ms: 1000}}}}\n\
             graphs:\n  - {{name: fragile, definition: '{}', source: [in], sink: {{topic: out}}, dead_letter: dead}}\n",
            listeners(v4, v5),
            modules_dir(),
            definition.display()
        )
    });
    let port = weir.v4.to_string();
    let mut status = MosquittoSub::start(&["-p", &port, "-t", "$weir/status/fragile", "-v"]);
    let first = next_report(&mut status);
    assert_eq!(first["graph"], "fragile");
    assert_eq!(first["state"], "running");
    assert_eq!(first["error"], Value::Null);
    assert_eq!(first["nodes"][0]["name"], "step");
    assert_eq!(first["nodes"][0]["circuit"], "closed");
    let mut dead = MosquittoSub::start(&[
        "-V",
        "mqttv5",
        "-p",
        &weir.v5.to_string(),
        "-t",
        "dead",
        "-F",
        "%p|%P",
    ]);
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "out", "-q", "1"]);

    for _ in 0..3 {
        publish_qos1(weir.v4, "in", "trap");
        let letter = dead.next_message();
        assert!(letter.starts_with("trap|"), "{letter}");
        assert!(letter.contains("weir-error:trap in process"), "{letter}");
    }
    let open = report_where(&mut status, |r| r["nodes"][0]["circuit"] == "open");
    assert_eq!(open["nodes"][0]["failures"], 3);
    assert!(
        open["nodes"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{open}"
    );
    assert_eq!(open["nodes"][0]["errors"], 3);
    assert!(weir
        .log()
        .contains("circuit open for 300ms after 3 consecutive failures"));

    // While open, even a good message goes to the dead-letter topic, unprocessed, saying why.
    publish_qos1(weir.v4, "in", "fine");
    let letter = dead.next_message();
    assert!(
        letter.starts_with("fine|")
            && letter.contains("weir-error:circuit open after 3 consecutive failures"),
        "{letter}"
    );
    // After the backoff, one message is tried; a success closes the circuit. Until then each
    // good message is rejected: keep sending until one comes through.
    let mut sent = 0;
    loop {
        sent += 1;
        publish_qos1(weir.v4, "in", &format!("good-{sent}"));
        let rejected = dead.count(1, std::time::Duration::from_millis(100)) == 1;
        if !rejected {
            break;
        }
        assert!(sent < 200, "the circuit never let a message through");
    }
    assert_eq!(out.next_message(), format!("good-{sent}"));
    let closed = report_where(&mut status, |r| r["nodes"][0]["circuit"] == "closed");
    assert_eq!(closed["nodes"][0]["failures"], 0);
    assert!(weir.log().contains("circuit half-open: trying one item"));
    assert!(weir.log().contains("circuit closed"));
    wait_for_metrics(metrics, "the circuit's counters", |read| {
        read(r#"weir_node_circuit_opened_total{graph="fragile",node="step"}"#) == 1
            && read(r#"weir_node_rejected_total{graph="fragile",node="step"}"#) == sent
            && read(r#"weir_node_circuit_state{graph="fragile",node="step"}"#) == 0
    });
    assert!(out.nothing_more());
}

#[test]
fn a_graph_whose_module_refuses_its_configuration_stays_out_and_its_status_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let refusing = one_map(dir.path(), "faulty-init");
    let echo = one_map(dir.path(), "echo");
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "{}modules: {{directories: ['{}']}}\n\
             graphs:\n  - {{name: refuses, definition: '{}', source: [a], sink: {{topic: a-out}}}}\n  - {{name: good, definition: '{}', source: [b], sink: {{topic: b-out}}}}\n",
            listeners(v4, v5),
            modules_dir(),
            refusing.display(),
            echo.display()
        )
    });
    assert!(weir.log().contains("graph not started"), "{}", weir.log());
    let port = weir.v4.to_string();
    // `$weir/#` holds one report per graph, retained.
    let mut status = MosquittoSub::start(&["-p", &port, "-t", "$weir/#", "-v"]);
    let mut reports = [next_report(&mut status), next_report(&mut status)];
    reports.sort_by_key(|r| r["graph"].as_str().unwrap().to_string());
    let [good, refuses] = reports;
    assert_eq!(good["state"], "running");
    assert_eq!(refuses["state"], "failed");
    let error = refuses["error"].as_str().unwrap();
    assert!(
        error.contains("node step") && error.contains("init refused its configuration"),
        "{error}"
    );
    assert_eq!(refuses["nodes"], serde_json::json!([]));

    // The other graph and plain MQTT work.
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "b-out", "-t", "a", "-v"]);
    publish_qos1(weir.v4, "b", "hello");
    publish_qos1(weir.v4, "a", "plain");
    let mut lines = [out.next_message(), out.next_message()];
    lines.sort();
    assert_eq!(lines, ["a plain", "b-out hello"]);

    // Clients cannot publish there: a forged report changes nothing.
    mosquitto_pub(&["-p", &port, "-r", "-t", "$weir/status/good", "-m", "{}"]);
    let mut again = MosquittoSub::start(&["-p", &port, "-t", "$weir/status/good", "-v"]);
    assert_eq!(next_report(&mut again)["state"], "running");
}

#[test]
fn a_runaway_graph_under_back_pressure_does_not_stall_a_good_one() {
    const RUNAWAY: usize = 200;
    const GOOD: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let runaway = one_map(dir.path(), "faulty-loop");
    let echo = one_map(dir.path(), "echo");
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "{}modules: {{directories: ['{}']}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n\
             graphs:\n  - {{name: runaway, definition: '{}', source: [spin], sink: {{topic: spun}}, queue: 2, back_pressure: block}}\n  - {{name: good, definition: '{}', source: [in], sink: {{topic: out, qos: 1}}}}\n",
            listeners(v4, v5),
            modules_dir(),
            runaway.display(),
            echo.display()
        )
    });
    let port = weir.v4.to_string();
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "out", "-q", "1"]);
    // Every message of the runaway graph loops until its time limit: its queue fills and its
    // publisher waits.
    let spin_port = port.clone();
    let spinning = std::thread::spawn(move || {
        let args = ["-p", spin_port.as_str(), "-q", "1", "-t", "spin"];
        mosquitto_pub_lines(&args, (0..RUNAWAY).map(|_| "loop".to_string()));
    });
    wait_for_metrics(metrics, "a runaway message dead-lettered", |read| {
        read(r#"weir_graph_dead_letters_total{graph="runaway"}"#) >= 1
    });
    assert!(
        weir.log().contains("ran past its time limit"),
        "{}",
        weir.log()
    );
    let args = ["-p", port.as_str(), "-q", "1", "-t", "in"];
    mosquitto_pub_lines(&args, (0..GOOD).map(|n| n.to_string()));
    assert_eq!(
        out.count(GOOD, PATIENCE),
        GOOD,
        "the good graph lost results"
    );
    spinning.join().unwrap();
    // Every runaway message is accounted for: dead-lettered, after a failure or unprocessed
    // while the circuit was open.
    wait_for_metrics(metrics, "every runaway message dead-lettered", |read| {
        read(r#"weir_graph_dead_letters_total{graph="runaway"}"#) == RUNAWAY as u64
    });
    assert_eq!(
        metric(metrics, r#"weir_graph_results_total{graph="good"}"#),
        Some(GOOD as u64)
    );
    assert_eq!(
        metric(metrics, r#"weir_graph_lost_total{graph="runaway"}"#),
        Some(0)
    );
    assert!(
        metric(
            metrics,
            r#"weir_node_rejected_total{graph="runaway",node="step"}"#
        )
        .unwrap()
            > 0,
        "the circuit never opened"
    );
    assert!(out.nothing_more());
}
