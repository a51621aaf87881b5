//! Changing graphs without a restart: module, definition and configuration files edited while
//! the broker runs (and SIGHUP), with nothing lost or processed twice during a swap.

use super::harness::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn definition(dir: &Path, name: &str, module: &str) -> PathBuf {
    write_file(
        dir,
        name,
        &format!(
            "metadata: {{name: live, version: \"1\"}}\nmoduleRequirements: {{apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}}\noperations:\n  - {{operationType: source, name: source}}\n  - {{operationType: map, name: step, module: \"{module}:1.0.0\"}}\n  - {{operationType: sink, name: sink}}\nconnections:\n  - {{from: {{name: source}}, to: {{name: step}}}}\n  - {{from: {{name: step}}, to: {{name: sink}}}}\n"
        ),
    )
}

fn built(module: &str) -> PathBuf {
    Path::new(&modules_dir()).join(format!("{module}.wasm"))
}

fn config(v4: u16, v5: u16, metrics: u16, modules: &Path, graphs: &str) -> String {
    format!(
        "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
         metrics: {{listen: '127.0.0.1:{metrics}'}}\n\
         modules: {{directories: ['{}']}}\ngraphs:\n{graphs}",
        modules.display()
    )
}

/// Weir with graph `live` (definition `graph`, modules from `modules`) from `in` to `out`,
/// results at `qos`; and its metrics port.
fn live_graph(modules: &Path, graph: &Path, qos: u8) -> (Weir, u16) {
    Weir::start_with_metrics(|v4, v5, metrics| {
        let binding = format!(
            "  - {{name: live, definition: '{}', source: [in], sink: {{topic: out, qos: {qos}}}}}\n",
            graph.display()
        );
        config(v4, v5, metrics, modules, &binding)
    })
}

/// Which reading a result came from, and whether the temperature module (°F to °C) made it.
fn reading(payload: &str) -> (u64, bool) {
    let value: Value = serde_json::from_str(payload).unwrap_or_else(|e| panic!("{e}: {payload}"));
    let temperature = &value["temperature"];
    let number = temperature["value"].as_f64().unwrap();
    match temperature["unit"].as_str().unwrap() {
        "C" => ((number * 9.0 / 5.0 + 32.0).round() as u64, true),
        _ => (number as u64, false),
    }
}

#[test]
fn a_module_replaced_five_times_under_a_qos1_stream_loses_and_repeats_nothing() {
    const READINGS: u64 = 4000;
    let work = tempfile::tempdir().unwrap();
    let modules = work.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    let step = modules.join("step.wasm");
    std::fs::copy(built("echo"), &step).unwrap();
    let graph = definition(work.path(), "live.yaml", "step");
    let (weir, metrics) = live_graph(&modules, &graph, 1);
    let port = weir.v4.to_string();
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "out", "-q", "1"]);
    // A steady QoS 1 stream, about one reading a millisecond, on one connection.
    let mut publisher = Command::new("mosquitto_pub")
        .args(["-p", &port, "-q", "1", "-t", "in", "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    let feeding = std::thread::spawn(move || {
        for n in 0..READINGS {
            writeln!(stdin, r#"{{"temperature":{{"value":{n},"unit":"F"}}}}"#).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    // Replace the module in place five times (`cp` writes over the file in steps): the
    // temperature conversion, then the echo again, and so on.
    for round in 1..=5 {
        let next = if round % 2 == 1 {
            "temperature"
        } else {
            "echo"
        };
        std::fs::copy(built(next), &step).unwrap();
        wait_for_reloads(metrics, "graph", "applied", round);
    }
    assert!(
        !feeding.is_finished(),
        "the stream ended before the last swap: make it longer"
    );
    feeding.join().unwrap();
    assert!(publisher.wait().unwrap().success());

    let mut seen = BTreeSet::new();
    let mut converted = 0;
    let mut last = (0, false);
    for _ in 0..READINGS {
        let (n, by_temperature) = reading(&out.next_message());
        assert!(seen.insert(n), "reading {n} came out twice");
        converted += u64::from(by_temperature);
        last = (n, by_temperature);
    }
    assert!(out.nothing_more(), "more results than readings");
    assert_eq!(seen.len() as u64, READINGS, "every reading came out once");
    assert!(
        converted > 0 && converted < READINGS,
        "{converted} converted"
    );
    assert!(
        last.1,
        "the last reading was not processed by the last version: {last:?}"
    );
    assert!(!weir.log().contains("message lost"), "{}", weir.log());
}

#[test]
fn a_broken_definition_leaves_the_running_version_and_its_status_says_where() {
    let work = tempfile::tempdir().unwrap();
    let graph = definition(work.path(), "live.yaml", "echo");
    let modules = PathBuf::from(modules_dir());
    let (weir, metrics) = live_graph(&modules, &graph, 0);
    let port = weir.v4.to_string();
    std::fs::write(&graph, "metadata: {name: live\noperations: [").unwrap();
    wait_for_reloads(metrics, "graph", "refused", 1);
    assert!(weir
        .log()
        .contains("graph `live` not reloaded, the running version goes on"));
    let mut status = MosquittoSub::start(&["-p", &port, "-t", "$weir/status/live"]);
    let report: Value = serde_json::from_str(&status.next_message()).unwrap();
    assert_eq!(report["state"], "running");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{}:2:", graph.display())),
        "{error}"
    );
    // The old version still works.
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "out"]);
    mosquitto_pub(&["-p", &port, "-t", "in", "-m", "still here"]);
    assert_eq!(out.next_message(), "still here");
    // Put back as it was, the running version is what it describes: the error goes.
    definition(work.path(), "live.yaml", "echo");
    loop {
        let report: Value = serde_json::from_str(&status.next_message()).unwrap();
        if report["error"].is_null() {
            break;
        }
    }
    assert!(!weir.log().contains("graph `live` reloaded"));
}

#[test]
fn graphs_added_to_and_removed_from_the_configuration_start_and_stop() {
    let work = tempfile::tempdir().unwrap();
    let graph = definition(work.path(), "echo.yaml", "echo");
    let modules = PathBuf::from(modules_dir());
    let binding = |name: &str, source: &str| {
        format!(
            "  - {{name: {name}, definition: '{}', source: [{source}], sink: {{topic: {source}-out}}}}\n",
            graph.display()
        )
    };
    let (a, b) = (binding("a", "a"), binding("b", "b"));
    let (mut weir, metrics) =
        Weir::start_with_metrics(|v4, v5, metrics| config(v4, v5, metrics, &modules, &a));
    let file = weir.dir.path().join("weir.yaml");
    let port = weir.v4.to_string();
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "+", "-t", "+/+", "-v"]);
    std::fs::write(
        &file,
        config(weir.v4, weir.v5, metrics, &modules, &format!("{a}{b}")),
    )
    .unwrap();
    wait_for_state(&port, "b", "running");
    mosquitto_pub(&["-p", &port, "-t", "b", "-m", "1"]);
    // The input and the graph's result reach the router by two links: either may come first.
    let mut got = [out.next_message(), out.next_message()];
    got.sort();
    assert_eq!(got, ["b 1", "b-out 1"]);
    // A configuration that does not load changes nothing and says where.
    std::fs::write(&file, "graphs: [\n").unwrap();
    wait_for_reloads(metrics, "configuration", "refused", 1);
    assert!(weir.log().contains("configuration not reloaded: "));
    assert!(weir.log().contains("weir.yaml:2:1"), "{}", weir.log());
    std::fs::write(&file, config(weir.v4, weir.v5, metrics, &modules, &b)).unwrap();
    wait_for_state(&port, "a", "stopped");
    assert!(weir
        .log()
        .contains("graph `a` removed from the configuration: stopped"));
    mosquitto_pub(&["-p", &port, "-t", "a", "-m", "2"]);
    assert_eq!(out.next_message(), "a 2");
    assert!(out.nothing_more(), "a removed graph still ran");
    // SIGHUP reads the files again too (here, nothing changed).
    let before = reloads(metrics, "configuration", "applied");
    weir.signal("HUP");
    wait_for_reloads(metrics, "configuration", "applied", before + 1);
    assert!(weir
        .log()
        .contains("0 graphs started, 0 replaced, 0 removed, 0 refused"));
    let (exit, _) = weir.stop_with("TERM");
    assert!(exit.success());
}

/// A configuration changed while weir starts, after it read the file and before it would have
/// watched it, is applied: the watch starts before anything else is read, and a file changed
/// since it was read is read again.
#[test]
fn a_configuration_changed_while_weir_starts_is_applied() {
    let work = tempfile::tempdir().unwrap();
    let graph = definition(work.path(), "echo.yaml", "echo");
    let modules = PathBuf::from(modules_dir());
    let binding = |name: &str| {
        format!(
            "  - {{name: {name}, definition: '{}', source: [{name}], sink: {{topic: {name}-out}}}}\n",
            graph.display()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let (v4, v5, metrics) = (free_port(), free_port(), free_port());
    let file = write_file(
        dir.path(),
        "weir.yaml",
        &config(v4, v5, metrics, &modules, &binding("a")),
    );
    let mut weir = Weir::spawn_unready(dir, &file, v4, v5);
    // Read, not yet ready: graph `a` is still to start.
    weir.wait_for_log(&format!("configuration {}", file.display()));
    let both = format!("{}{}", binding("a"), binding("b"));
    std::fs::write(&file, config(v4, v5, metrics, &modules, &both)).unwrap();
    weir.await_ready();
    let port = v4.to_string();
    wait_for_state(&port, "b", "running");
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "b-out"]);
    mosquitto_pub(&["-p", &port, "-t", "b", "-m", "1"]);
    assert_eq!(out.next_message(), "1");
}

/// Waits until graph `graph`'s status on `$weir/status/<graph>` says `state`.
fn wait_for_state(port: &str, graph: &str, state: &str) {
    let topic = format!("$weir/status/{graph}");
    let mut status = MosquittoSub::start(&["-p", port, "-t", &topic]);
    loop {
        let report: Value = serde_json::from_str(&status.next_message()).unwrap();
        if report["state"] == state {
            return;
        }
    }
}
