//! Modules and graph definitions from a real OCI registry: Debian's `docker-registry` (the
//! distribution registry) on a free loopback port, pushed to with the ORAS Python SDK as users
//! of Azure IoT Operations push, and with `weir module push` / `weir graph push`.

use super::certificates::Ca;
use super::harness::{
    free_port, modules_dir, mosquitto_pub, repo, run_weir_with, wait_for_reloads, write_file,
    MosquittoSub, Weir,
};
use super::services::{oras_push, Registry};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// Runs `weir ARGS` with its cache under `cache`; (status, stdout, stderr).
fn weir(args: &[&str], cache: &Path) -> (ExitStatus, String, String) {
    run_weir_with(
        args,
        Path::new("."),
        &[("XDG_CACHE_HOME", cache.as_os_str())],
    )
}

/// `weir ARGS`, which must succeed; its stdout.
fn weir_ok(args: &[&str], cache: &Path) -> String {
    let (status, stdout, stderr) = weir(args, cache);
    assert!(status.success(), "weir {args:?} failed:\n{stdout}{stderr}");
    stdout
}

/// `weir ARGS`, which must fail; its stderr.
fn weir_fails(args: &[&str], cache: &Path) -> String {
    let (status, stdout, stderr) = weir(args, cache);
    assert!(!status.success(), "weir {args:?} succeeded:\n{stdout}");
    stderr
}

/// `weir module pull REFERENCE --plain-http -o OUT`, which must succeed; what it printed.
fn pull_module(reference: &str, out: &Path, cache: &Path) -> String {
    let out = out.to_str().unwrap();
    weir_ok(
        &["module", "pull", reference, "--plain-http", "-o", out],
        cache,
    )
}

/// The `sha256:...` digest a push or pull printed.
fn digest_in(said: &str) -> String {
    let start = said.find("(sha256:").expect("a digest") + 1;
    said[start..start + 71].to_string()
}

fn built(module: &str) -> PathBuf {
    Path::new(&modules_dir()).join(format!("{module}.wasm"))
}

#[test]
fn modules_pushed_with_oras_pull_by_tag_and_digest_and_verify() {
    let registry = Registry::start();
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let temperature = built("temperature");
    let window = built("window");
    // As AIO's documentation pushes: with and without the wasm media type.
    oras_push(
        &registry,
        &temperature,
        None,
        &format!("{host}/samples/temperature:1.0.0"),
    );
    oras_push(
        &registry,
        &window,
        Some("application/wasm"),
        &format!("{host}/samples/window:1.0.0"),
    );

    let cache = work.path().join("cache");
    let out = work.path().join("t.wasm");
    let said = pull_module(&format!("{host}/samples/temperature:1.0.0"), &out, &cache);
    assert!(said.contains("from the registry"), "{said}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&temperature).unwrap()
    );
    let digest = digest_in(&said);

    // By digest, into an empty cache, then from the cache without asking the registry.
    let fresh = work.path().join("fresh");
    let pinned = format!("{host}/samples/temperature@{digest}");
    let said = pull_module(&pinned, &out, &fresh);
    assert!(said.contains("from the registry"), "{said}");
    let said = pull_module(&pinned, &out, &fresh);
    assert!(said.contains("from the cache"), "{said}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&temperature).unwrap()
    );

    let said = pull_module(&format!("{host}/samples/window:1.0.0"), &out, &cache);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&window).unwrap(),
        "{said}"
    );

    // A missing tag, and a digest the registry does not have: the registry's answer.
    let missing = format!("{host}/samples/temperature:9.9.9");
    let error = weir_fails(&["module", "pull", &missing, "--plain-http"], &cache);
    assert!(
        error.contains(&missing) && error.contains("MANIFEST_UNKNOWN"),
        "{error}"
    );
    let unknown = format!("{host}/samples/temperature@sha256:{}", "0".repeat(64));
    let error = weir_fails(&["module", "pull", &unknown, "--plain-http"], &cache);
    assert!(
        error.contains(&unknown) && error.contains("MANIFEST_UNKNOWN"),
        "{error}"
    );

    // Without --plain-http the client speaks TLS to a registry that does not: said so.
    let error = weir_fails(&["module", "pull", &missing], &cache);
    assert!(error.contains("--plain-http"), "{error}");
}

#[test]
fn content_that_does_not_match_its_digest_or_is_not_wasm_is_refused() {
    let registry = Registry::start();
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let said = weir_ok(
        &[
            "module",
            "push",
            built("echo").to_str().unwrap(),
            &format!("{host}/samples/echo:1.0.0"),
            "--plain-http",
        ],
        &cache,
    );
    assert!(said.contains("pushed"), "{said}");
    // The registry's copy of the layer is altered on its disk.
    let layer = oci_layer_digest(&built("echo"));
    std::fs::write(
        registry.blob_file(&layer),
        b"\0asm not the module that was pushed",
    )
    .unwrap();
    let error = weir_fails(
        &[
            "module",
            "pull",
            &format!("{host}/samples/echo:1.0.0"),
            "--plain-http",
        ],
        &cache,
    );
    assert!(
        error.contains("digest mismatch") && error.contains(&layer),
        "{error}"
    );

    // A graph definition is not a module.
    let yaml = write_file(work.path(), "graph.yaml", "metadata: {name: g}\n");
    oras_push(
        &registry,
        &yaml,
        None,
        &format!("{host}/samples/not-a-module:1.0.0"),
    );
    let error = weir_fails(
        &[
            "module",
            "pull",
            &format!("{host}/samples/not-a-module:1.0.0"),
            "--plain-http",
        ],
        &cache,
    );
    assert!(
        error.contains("not a wasm layer") && error.contains("graph.yaml"),
        "{error}"
    );
}

/// The digest of a file, as the registry names the layer holding it.
fn oci_layer_digest(file: &Path) -> String {
    weir_oci::sha256_digest(&std::fs::read(file).unwrap())
}

#[test]
fn credentials_come_from_the_configuration_and_bad_ones_are_refused() {
    let registry = Registry::start_with(&[("gateway", "s3cret")], None);
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let config = |name: &str, credentials: &str| {
        write_file(
            work.path(),
            name,
            &format!(
                "modules:\n  directories: []\n  cache_dir: cache-{name}\n  registries:\n    '{host}': {{insecure: true{credentials}}}\n"
            ),
        )
    };
    let good = config(
        "good.yaml",
        ", username: gateway, password: '${REGISTRY_PASSWORD}'",
    );
    let bad = config("bad.yaml", ", username: gateway, password: wrong");
    let anonymous = config("anonymous.yaml", "");
    let reference = format!("{host}/samples/temperature:1.0.0");
    let temperature = built("temperature");
    let cache = work.path().join("xdg");

    let error = weir_fails(
        &[
            "module",
            "push",
            temperature.to_str().unwrap(),
            &reference,
            "--config",
            bad.to_str().unwrap(),
        ],
        &cache,
    );
    assert!(
        error.contains(&reference) && error.contains("401"),
        "{error}"
    );
    // The password comes from the environment through ${REGISTRY_PASSWORD}.
    let with_password = |args: &[&str]| {
        let (status, _, stderr) = run_weir_with(
            args,
            work.path(),
            &[("REGISTRY_PASSWORD", OsStr::new("s3cret"))],
        );
        assert!(status.success(), "weir {args:?}: {stderr}");
    };
    let good = good.to_str().unwrap();
    with_password(&[
        "module",
        "push",
        temperature.to_str().unwrap(),
        &reference,
        "--config",
        good,
    ]);
    for refused in [&bad, &anonymous] {
        let refused = refused.to_str().unwrap();
        let error = weir_fails(&["module", "pull", &reference, "--config", refused], &cache);
        assert!(
            error.contains(&reference) && error.to_lowercase().contains("unauthorized"),
            "{error}"
        );
    }
    with_password(&[
        "module",
        "pull",
        &reference,
        "--config",
        good,
        "-o",
        "pulled.wasm",
    ]);
    assert_eq!(
        std::fs::read(work.path().join("pulled.wasm")).unwrap(),
        std::fs::read(&temperature).unwrap()
    );
}

/// A one-map graph definition whose module is `module`.
fn one_map_graph(module: &str) -> String {
    format!(
        "metadata: {{name: registry-graph, version: 1.0.0}}\nmoduleRequirements: {{apiVersion: 1.1.0, runtimeVersion: 1.1.0}}\noperations:\n  - {{operationType: source, name: source}}\n  - {{operationType: map, name: convert, module: '{module}'}}\n  - {{operationType: sink, name: sink}}\nconnections:\n  - {{from: {{name: source}}, to: {{name: convert}}}}\n  - {{from: {{name: convert}}, to: {{name: sink}}}}\n"
    )
}

/// The unit of the temperature in a result: `C` once the temperature module converted it.
fn unit(payload: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(payload).unwrap();
    value["temperature"]["unit"].as_str().unwrap().to_string()
}

#[test]
fn a_graph_from_the_registry_runs_follows_a_moved_tag_on_sighup_and_starts_from_the_cache_offline()
{
    let mut registry = Registry::start();
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("xdg");
    let module = format!("{host}/samples/convert:1.0.0");
    let graph = format!("{host}/graphs/registry-graph:1.0.0");
    // The definition is pushed with weir, the module first as echo (no conversion).
    let definition = write_file(work.path(), "graph.yaml", &one_map_graph(&module));
    weir_ok(
        &[
            "graph",
            "push",
            definition.to_str().unwrap(),
            &graph,
            "--plain-http",
        ],
        &cache,
    );
    weir_ok(
        &[
            "module",
            "push",
            built("echo").to_str().unwrap(),
            &module,
            "--plain-http",
        ],
        &cache,
    );

    let start = |work: &Path| {
        Weir::start_with_metrics(|v4, v5, metrics| {
            format!(
                "metrics: {{listen: '127.0.0.1:{metrics}'}}\nbroker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n\
                 modules:\n  directories: []\n  cache_dir: '{}'\n  registries:\n    '{host}': {{insecure: true}}\n\
                 graphs:\n  - {{name: g, definition: 'oci://{graph}', source: [in], sink: {{topic: out}}}}\n",
                work.join("oci").display()
            )
        })
    };
    let reading = r#"{"temperature":{"value":212,"unit":"F"}}"#;
    let (weir, metrics) = start(work.path());
    let port = weir.v4.to_string();
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "out"]);
    mosquitto_pub(&["-p", &port, "-t", "in", "-m", reading]);
    assert_eq!(unit(&out.next_message()), "F");

    // The tag moves to the temperature module; SIGHUP notices.
    weir_ok(
        &[
            "module",
            "push",
            built("temperature").to_str().unwrap(),
            &module,
            "--plain-http",
        ],
        &cache,
    );
    weir.signal("HUP");
    wait_for_reloads(metrics, "graph", "applied", 1);
    mosquitto_pub(&["-p", &port, "-t", "in", "-m", reading]);
    assert_eq!(unit(&out.next_message()), "C");
    drop(out);
    drop(weir);

    // With the registry gone, a restart runs what the tags named when last pulled.
    registry.stop();
    let (weir, _) = start(work.path());
    assert!(
        weir.log().contains("cannot reach the registry"),
        "{}",
        weir.log()
    );
    let port = weir.v4.to_string();
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "out"]);
    mosquitto_pub(&["-p", &port, "-t", "in", "-m", reading]);
    assert_eq!(unit(&out.next_message()), "C");
    registry.restart();
}

/// A registry holding the temperature module and `graphs/graph-simple:1.0.0`, a one-node graph
/// that uses it, both pushed with oras; returns it, the module's reference and the graph's file
/// (in `work`).
fn registry_with_graph(work: &Path) -> (Registry, String, PathBuf) {
    let registry = Registry::start();
    let host = registry.host();
    let module = format!("{host}/samples/temperature:1.0.0");
    oras_push(
        &registry,
        &built("temperature"),
        Some("application/wasm"),
        &module,
    );
    // As AIO's documentation pushes a graph: one YAML file, no media type.
    let graph = write_file(work, "graph-simple.yaml", &one_map_graph(&module));
    oras_push(
        &registry,
        &graph,
        None,
        &format!("{host}/graphs/graph-simple:1.0.0"),
    );
    (registry, module, graph)
}

#[test]
fn graph_check_and_run_resolve_registry_references_and_locate_errors() {
    let work = tempfile::tempdir().unwrap();
    let (registry, module, graph) = registry_with_graph(work.path());
    let host = registry.host();
    let cache = work.path().join("xdg");
    let said = weir_ok(
        &[
            "graph",
            "check",
            &format!("oci://{host}/graphs/graph-simple:1.0.0"),
            "--plain-http",
        ],
        &cache,
    );
    assert!(
        said.contains(&format!("convert [map] {module} -> ")) && said.contains("graph is valid"),
        "{said}"
    );

    let input = write_file(work.path(), "in.jsonl", "{\"topic\": \"t\", \"payload\": \"{\\\"temperature\\\":{\\\"value\\\":212,\\\"unit\\\":\\\"F\\\"}}\", \"ts\": \"000001700000000:00000:dev\"}\n");
    let said = weir_ok(
        &[
            "graph",
            "run",
            "--graph",
            graph.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--plain-http",
        ],
        &cache,
    );
    assert!(said.contains("\\\"unit\\\":\\\"C\\\""), "{said}");

    graph_test_passes(work.path(), &cache);

    // A module reference the registry does not know: at its line and column.
    let missing = format!("{host}/samples/temperature:0.0.1");
    let broken = write_file(work.path(), "broken.yaml", &one_map_graph(&missing));
    let error = weir_fails(
        &["graph", "check", broken.to_str().unwrap(), "--plain-http"],
        &cache,
    );
    assert!(
        error.contains(&format!("{}:5:", broken.display()))
            && error.contains(&missing)
            && error.contains("MANIFEST_UNKNOWN"),
        "{error}"
    );
    // weir graph pull writes the definition as pushed.
    let pulled = work.path().join("pulled.yaml");
    weir_ok(
        &[
            "graph",
            "pull",
            &format!("{host}/graphs/graph-simple:1.0.0"),
            "--plain-http",
            "-o",
            pulled.to_str().unwrap(),
        ],
        &cache,
    );
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&graph).unwrap()
    );
}

/// `weir graph test` runs a test case whose graph (graph-simple.yaml in `work`) takes its module
/// from the registry.
fn graph_test_passes(work: &Path, cache: &Path) {
    std::fs::create_dir(work.join("input")).unwrap();
    write_file(
        &work.join("input"),
        "01.json",
        r#"{"temperature":{"value":212,"unit":"F"}}"#,
    );
    write_file(
        work,
        "expected.json",
        r#"[{"payload": {"temperature": {"value": 100, "unit": "C"}}}]"#,
    );
    let case = write_file(
        work,
        "converts.test.yaml",
        "name: converts\ngraph: graph-simple.yaml\ninput: input\nexpected: expected.json\nselect: [payload]\n",
    );
    let said = weir_ok(
        &[
            "graph",
            "test",
            case.to_str().unwrap(),
            "--modules",
            work.to_str().unwrap(),
            "--plain-http",
        ],
        cache,
    );
    assert!(said.contains("PASS converts"), "{said}");
}

#[test]
fn the_broker_runs_a_definition_from_the_registry_and_locates_a_missing_one() {
    let work = tempfile::tempdir().unwrap();
    let (registry, _, _) = registry_with_graph(work.path());
    let host = registry.host();
    let cache = work.path().join("xdg");
    // The example configuration runs the pushed definition and module in the broker.
    let port = free_port();
    let env = [
        ("WEIR_REGISTRY", host.clone()),
        ("WEIR_MQTT_PORT", port.to_string()),
        ("XDG_CACHE_HOME", cache.display().to_string()),
    ];
    let config = repo("config/examples/registry.yaml");
    let _weir = Weir::spawn(tempfile::tempdir().unwrap(), &config, &env, port, port);
    let port = port.to_string();
    let mut out = MosquittoSub::start(&["-p", &port, "-t", "processed/#"]);
    let reading = r#"{"temperature":{"value":212,"unit":"F"}}"#;
    mosquitto_pub(&["-p", &port, "-t", "sensors/a/temperature", "-m", reading]);
    assert_eq!(unit(&out.next_message()), "C");

    // A definition the registry does not have: where weir.yaml names it, and the answer.
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("{host}/graphs/graph-simple:0.0.1");
    let config = write_file(
        dir.path(),
        "weir.yaml",
        &format!(
            "broker:\n  listeners: [{{protocol: mqtt, address: '127.0.0.1:{port}'}}]\nmodules:\n  registries: {{'{host}': {{insecure: true}}}}\ngraphs:\n  - name: g\n    definition: oci://{missing}\n    source: [in]\n    sink: {{topic: out}}\n",
            port = free_port()
        ),
    );
    let env = [("XDG_CACHE_HOME", cache.display().to_string())];
    let log = Weir::try_spawn(dir, &config, &env, 0, 0)
        .err()
        .expect("weir started");
    assert!(
        log.contains(&format!(
            "{}:7:17: graph `g`: definition: {missing}",
            config.display()
        )) && log.contains("MANIFEST_UNKNOWN"),
        "{log}"
    );
}

#[test]
fn https_registries_are_trusted_through_their_ca_file() {
    let ca = Ca::new("registry-ca");
    let registry = Registry::start_with(&[], Some(&ca));
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    ca.write(work.path(), "registry-ca");
    let config = write_file(
        work.path(),
        "weir.yaml",
        &format!("modules:\n  cache_dir: cache\n  registries:\n    '{host}': {{ca_file: registry-ca.pem}}\n"),
    );
    let config = config.to_str().unwrap();
    let reference = format!("{host}/samples/temperature:1.0.0");
    let temperature = built("temperature");
    let cache = work.path().join("xdg");
    weir_ok(
        &[
            "module",
            "push",
            temperature.to_str().unwrap(),
            &reference,
            "--config",
            config,
        ],
        &cache,
    );
    let out = work.path().join("pulled.wasm");
    weir_ok(
        &[
            "module",
            "pull",
            &reference,
            "--config",
            config,
            "-o",
            out.to_str().unwrap(),
        ],
        &cache,
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&temperature).unwrap()
    );
    // Without the CA, the certificate is not trusted: said, not mistaken for an outage.
    let error = weir_fails(&["module", "pull", &reference], &cache);
    assert!(
        error.contains(&reference) && error.contains("TLS failed") && error.contains("ca_file"),
        "{error}"
    );
}
