//! Schemas and state-store seeds reach modules: through `weir graph run` (`--schema`,
//! `--schema-dir`, `--state`, or the files beside the definition) and through a graph binding in
//! weir.yaml (`schemas:`, `state_seed:`, `modules.schema_dir`).

use super::harness::{modules_dir, mosquitto_pub, repo, run_weir, write_file, MosquittoSub, Weir};
use std::path::Path;

const READING_SCHEMA: &str = r#"{"type": "object", "required": ["temperature"], "properties": {"temperature": {"type": "number"}}}"#;

/// A recording of three readings, the middle one not valid against READING_SCHEMA.
const READINGS: &str = concat!(
    r#"{"topic": "t", "payload": "{\"temperature\": 20}", "ts": "001700000000000:00000:n"}"#,
    "\n",
    r#"{"topic": "t", "payload": "{\"temperature\": \"warm\"}", "ts": "001700000000001:00000:n"}"#,
    "\n",
    r#"{"topic": "t", "payload": "{\"temperature\": 21}", "ts": "001700000000002:00000:n"}"#,
    "\n",
);

/// `weir graph run` of the graph `graph` (in tests/graph-tests) over READINGS with `extra`
/// arguments; returns the result payloads, or stderr when it fails.
fn graph_run(dir: &Path, graph: &str, extra: &[&str]) -> Result<Vec<String>, String> {
    let input = write_file(dir, "in.jsonl", READINGS).display().to_string();
    let graph = repo(&format!("tests/graph-tests/{graph}"))
        .display()
        .to_string();
    let modules = modules_dir();
    let mut args = vec!["graph", "run", "--graph", &graph, "--modules", &modules];
    args.extend_from_slice(&["--input", &input]);
    args.extend_from_slice(extra);
    let (status, stdout, stderr) = run_weir(&args, dir);
    if !status.success() {
        return Err(stderr);
    }
    Ok(stdout
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["payload"].as_str().unwrap().to_string()
        })
        .collect())
}

#[test]
fn graph_run_takes_schema_files_and_by_default_the_one_hostapp_env_list_names() {
    let dir = tempfile::tempdir().unwrap();
    // Beside schema-filter/graph.yaml, hostapp.env.list names a schema that needs a unit too.
    let beside = graph_run(dir.path(), "schema-filter/graph.yaml", &[]).unwrap();
    assert_eq!(beside, Vec::<String>::new());
    let schema = write_file(dir.path(), "reading.json", READING_SCHEMA);
    let given = graph_run(
        dir.path(),
        "schema-filter/graph.yaml",
        &["--schema", &schema.display().to_string()],
    )
    .unwrap();
    assert_eq!(given, [r#"{"temperature": 20}"#, r#"{"temperature": 21}"#]);
}

#[test]
fn graph_run_answers_the_schema_registry_from_a_schema_dir() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    std::fs::create_dir_all(registry.join("reading")).unwrap();
    std::fs::write(registry.join("reading/2.json"), READING_SCHEMA).unwrap();
    let registry = registry.display().to_string();
    let set = [
        "--set",
        "registry_id=reading",
        "--set",
        "registry_version=2",
    ];
    let mut args = set.to_vec();
    args.extend_from_slice(&["--schema-dir", &registry]);
    let results = graph_run(dir.path(), "schema-filter/graph.yaml", &args).unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    // Without the directory the module hears "not available" and refuses to start.
    let stderr = graph_run(dir.path(), "schema-filter/graph.yaml", &set).unwrap_err();
    assert!(
        stderr.contains("module-schema-filter/filter") && stderr.contains("init"),
        "{stderr}"
    );
}

#[test]
fn graph_run_seeds_the_state_store_from_statestore_json_or_state() {
    let dir = tempfile::tempdir().unwrap();
    let beside = graph_run(dir.path(), "enrich/graph.yaml", &[]).unwrap();
    assert_eq!(
        beside[0],
        r#"{"temperature":20,"factoryId":"factoryA","machineId":"machineA"}"#
    );
    let seed = write_file(dir.path(), "seed.json", r#"[{"factoryId": "factoryB"}]"#);
    let given = graph_run(
        dir.path(),
        "enrich/graph.yaml",
        &["--state", &seed.display().to_string()],
    )
    .unwrap();
    assert_eq!(given[0], r#"{"temperature":20,"factoryId":"factoryB"}"#);
    let bad = write_file(dir.path(), "bad.json", "[\n  {\"a\": 1, \"b\": 2}\n]");
    let stderr = graph_run(
        dir.path(),
        "enrich/graph.yaml",
        &["--state", &bad.display().to_string()],
    )
    .unwrap_err();
    assert!(
        stderr.contains("bad.json:2:3: element 0 is not an object with one key"),
        "{stderr}"
    );
}

#[test]
fn a_binding_gives_its_graph_schemas_a_seed_and_a_schema_directory() {
    let files = tempfile::tempdir().unwrap();
    let schema = write_file(files.path(), "reading.json", READING_SCHEMA);
    let seed = write_file(files.path(), "seed.json", r#"[{"factoryId": "north"}]"#);
    let registry = files.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    std::fs::write(registry.join("reading.json"), READING_SCHEMA).unwrap();
    let filter = repo("tests/graph-tests/schema-filter/graph.yaml");
    let enrich = repo("tests/graph-tests/enrich/graph.yaml");
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}'], schema_dir: '{}'}}\n\
             graphs:\n\
             \x20 - {{name: valid, definition: '{}', source: [check/#], sink: {{topic: 'valid/{{1..}}'}}, schemas: ['{}']}}\n\
             \x20 - {{name: registered, definition: '{}', source: [registry/#], sink: {{topic: 'registered/{{1..}}'}}, configuration: {{registry_id: reading}}}}\n\
             \x20 - {{name: enriched, definition: '{}', source: [enrich/#], sink: {{topic: 'enriched/{{1..}}'}}, state_seed: '{}'}}\n",
            modules_dir(),
            registry.display(),
            filter.display(),
            schema.display(),
            filter.display(),
            enrich.display(),
            seed.display(),
        )
    });
    let port = weir.v4.to_string();
    let mut sub = MosquittoSub::start(&[
        "-p",
        &port,
        "-t",
        "valid/#",
        "-t",
        "registered/#",
        "-t",
        "enriched/#",
        "-v",
    ]);
    for topic in ["check/a", "registry/a", "enrich/a"] {
        for payload in [r#"{"temperature":"warm"}"#, r#"{"temperature":5}"#] {
            let out = mosquitto_pub(&["-p", &port, "-t", topic, "-m", payload]);
            assert!(out.status.success());
        }
    }
    let mut received = vec![
        sub.next_message(),
        sub.next_message(),
        sub.next_message(),
        sub.next_message(),
    ];
    received.sort();
    assert_eq!(
        received,
        [
            r#"enriched/a {"temperature":"warm","factoryId":"north"}"#,
            r#"enriched/a {"temperature":5,"factoryId":"north"}"#,
            r#"registered/a {"temperature":5}"#,
            r#"valid/a {"temperature":5}"#,
        ]
    );
    assert!(sub.nothing_more(), "{}", weir.log());
    assert!(
        weir.log().contains("1 state-store keys seeded from"),
        "{}",
        weir.log()
    );
}

#[test]
fn a_bad_seed_or_schema_file_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "seed.json", "{\"factoryId\": \"a\"}");
    let graph = "graphs:\n  - name: g\n    definition: builtin:temperature-map\n    source: [a]\n    sink: {topic: b}\n";
    for (extra, expected) in [
        ("    state_seed: seed.json\n", "graph `g`: state_seed: "),
        (
            "    state_seed: missing.json\n",
            "weir.yaml:2:5: graphs[0].state_seed: cannot read file",
        ),
        (
            "    schemas: [missing.json]\n",
            "weir.yaml:6:14: graphs[0].schemas[0]: cannot read file",
        ),
    ] {
        write_file(dir.path(), "weir.yaml", &format!("{graph}{extra}"));
        let (status, _, stderr) = run_weir(&["run", "--config", "weir.yaml"], dir.path());
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
    }
    let (_, _, stderr) = run_weir(&["run", "--config", "weir.yaml"], dir.path());
    assert!(!stderr.contains("panicked"), "{stderr}");
}
