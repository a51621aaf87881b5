//! Loading refuses, with a clear error, what this host cannot run.

mod common;

use weir_wasm::LoadError;

/// Loads the component written in the text format as `component`.
fn load_text(component: &str) -> Result<weir_wasm::OperatorModule, LoadError> {
    load_bytes(&wat::parse_str(component).unwrap())
}

fn load_bytes(file: &[u8]) -> Result<weir_wasm::OperatorModule, LoadError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("made-up.wasm");
    std::fs::write(&path, file).unwrap();
    common::runtime().load(&path)
}

#[test]
fn a_component_without_operator_interfaces_is_refused() {
    let error =
        load_text(r#"(component (instance $e) (export "acme:other/api@1.0.0" (instance $e)))"#)
            .unwrap_err();
    assert!(matches!(error, LoadError::NoOperator { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("made-up.wasm: exports no operator interface"),
        "{message}"
    );
    assert!(
        message.contains("it exports: acme:other/api@1.0.0"),
        "{message}"
    );
}

#[test]
fn an_import_the_host_cannot_provide_is_named() {
    let error = load_text(
        r#"(component
            (import "acme:unknown/thing@1.0.0" (instance $i (export "f" (func))))
            (instance $e)
            (export "wasm-graph:processor/map@1.1.0" (instance $e)))"#,
    )
    .unwrap_err();
    assert!(
        matches!(error, LoadError::UnsatisfiedImport { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("acme:unknown/thing@1.0.0"),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_a_component_is_refused() {
    let error = load_bytes(b"this is not wasm").unwrap_err();
    assert!(matches!(error, LoadError::Compile { .. }), "{error}");
    let missing = common::runtime()
        .load(std::path::Path::new("/nonexistent/module.wasm"))
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("module /nonexistent/module.wasm: cannot read"),
        "{missing}"
    );
}

#[test]
fn the_compiled_cache_serves_a_second_load() {
    let runtime = common::runtime();
    let path = common::module_path("python-map");
    runtime.load(&path).unwrap();
    let started = std::time::Instant::now();
    let module = runtime.load(&path).unwrap();
    // Not a timing assertion: the cached load must simply work and describe the same module.
    assert_eq!(module.operators(), &[weir_wasm::OperatorKind::Map]);
    eprintln!("cached load of python-map: {:?}", started.elapsed());
}
