//! `wasi:nn` in a running broker: a graph requesting the `wasi-nn` feature runs a module that
//! classifies readings with the ONNX model it embeds (built by scripts/make-nn-model.py);
//! tensors that are not f32 are refused, not a crash; a graph that does not request the feature
//! cannot use a module importing it.

use crate::harness::*;

fn listeners(v4: u16, v5: u16) -> String {
    format!(
        "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n"
    )
}

fn classifier() -> String {
    repo("tests/graph-tests/nn-classify/graph.yaml")
        .display()
        .to_string()
}

#[test]
fn a_graph_with_wasi_nn_classifies_and_refuses_other_tensor_types() {
    let definition = classifier();
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "{}modules: {{directories: ['{}']}}\n\
             graphs:\n  - {{name: classify, definition: '{definition}', source: ['readings/#'], sink: {{topic: 'classes/{{1..}}'}}, dead_letter: refused}}\n",
            listeners(v4, v5),
            modules_dir(),
        )
    });
    let port = weir.v4.to_string();
    let mut classes = MosquittoSub::start(&["-p", &port, "-t", "classes/#", "-v", "-q", "1"]);
    let mut refused = MosquittoSub::start(&[
        "-V",
        "mqttv5",
        "-p",
        &weir.v5.to_string(),
        "-t",
        "refused",
        "-F",
        "%p|%P",
    ]);
    let publish = |payload: &str| {
        let out = mosquitto_pub(&["-p", &port, "-q", "1", "-t", "readings/m1", "-m", payload]);
        assert!(out.status.success(), "{out:?}");
    };

    for (features, class) in [
        ("[0.1, 5.0, 0.2, 0.0]", "normal"),
        ("[0.0, 0.3, 2.0, 4.0]", "overload"),
        ("[3.0, 0.0, 0.1, 0.0]", "idle"),
    ] {
        publish(&format!(r#"{{"features": {features}}}"#));
        let line = classes.next_message();
        let (topic, json) = line.split_once(' ').unwrap();
        assert_eq!(topic, "classes/m1");
        let result: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(result["class"], class, "{line}");
        let scores = result["scores"].as_array().unwrap();
        let total: f64 = scores.iter().map(|s| s.as_f64().unwrap()).sum();
        assert!(scores.len() == 3 && (total - 1.0).abs() < 1e-4, "{line}");
    }

    // An i32 tensor: the backend says why, the message is a dead letter, the graph goes on.
    publish(r#"{"features": [1, 2, 3, 4], "tensor": "i32"}"#);
    let letter = refused.next_message();
    assert!(letter.contains("weir-error:"), "{letter}");
    assert!(letter.contains("f32"), "{letter}");
    publish(r#"{"features": [0.0, 0.0, 9.0, 0.0]}"#);
    assert!(classes.next_message().contains(r#""class":"overload""#));
}

#[test]
fn a_module_importing_wasi_nn_needs_the_feature_in_its_graph() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(classifier()).unwrap();
    let without = text.replace("  features:\n    - name: \"wasi-nn\"\n", "");
    assert_ne!(without, text);
    write_file(dir.path(), "plain.yaml", &without);
    let modules = modules_dir();
    let (status, _, stderr) = run_weir(
        &["graph", "check", "plain.yaml", "--modules", &modules],
        dir.path(),
    );
    assert!(!status.success());
    assert!(
        stderr.contains("plain.yaml:15:13: operations[1].module: node `module-classify/map`")
            && stderr.contains("imports `wasi:nn/")
            && stderr.contains("add `features: [{name: wasi-nn}]`"),
        "{stderr}"
    );

    // A feature weir does not provide is named, and the graph is checked all the same.
    let other = text.replace(
        "name: \"wasi-nn\"",
        "name: \"wasi-nn\"\n    - name: \"gpu\"",
    );
    write_file(dir.path(), "other.yaml", &other);
    let (status, stdout, stderr) = run_weir(
        &["graph", "check", "other.yaml", "--modules", &modules],
        dir.path(),
    );
    assert!(status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("other.yaml:12:13: moduleRequirements.features[1].name: host feature `gpu` is not provided by weir"),
        "{stderr}"
    );
}
