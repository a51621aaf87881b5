//! Schemas reach modules: `init` receives the graph's schemas in `module-schemas`, and
//! `schema-registry.get` answers from the runtime's schema directory. `modules/schema-filter`
//! validates payloads against whichever it was given.

mod common;

use common::{message, module_path};
use std::path::PathBuf;
use std::sync::Arc;
use weir_state::StateStore;
use weir_wasm::instance::InitConfiguration;
use weir_wasm::metrics::NodeMetrics;
use weir_wasm::schema::ModuleSchema;
use weir_wasm::{Fault, OperatorInstance, OperatorKind, RuntimeConfig, WasmRuntime};

const READING: &str = r#"{
    "type": "object",
    "required": ["temperature"],
    "properties": {"temperature": {"type": "number", "minimum": -40, "maximum": 125}}
}"#;

fn runtime(schema_dir: Option<PathBuf>) -> Arc<WasmRuntime> {
    let state = Arc::new(StateStore::in_memory("test").unwrap());
    let config = RuntimeConfig {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compiled")),
        schema_dir,
        ..RuntimeConfig::default()
    };
    WasmRuntime::new(&config, state).unwrap()
}

fn schema_filter(
    runtime: &Arc<WasmRuntime>,
    configuration: InitConfiguration,
) -> Result<OperatorInstance, weir_wasm::OperatorError> {
    let module = Arc::new(runtime.load(&module_path("schema-filter")).unwrap());
    OperatorInstance::new(
        module,
        "validate",
        OperatorKind::Filter,
        configuration,
        Arc::new(NodeMetrics::default()),
    )
}

fn schema(name: &str, content_type: &str, content: &str) -> ModuleSchema {
    ModuleSchema {
        name: name.into(),
        content_type: content_type.into(),
        content: content.into(),
    }
}

fn keeps(instance: &mut OperatorInstance, payload: &str) -> bool {
    instance.filter(&message("sensors", payload, 0)).unwrap()
}

#[test]
fn init_receives_the_module_schemas() {
    let runtime = runtime(None);
    let configuration = InitConfiguration {
        properties: Vec::new(),
        schemas: vec![
            schema("notes.txt", "text/plain", "not a schema"),
            schema("reading.json", "application/json", READING),
        ],
    };
    let mut filter = schema_filter(&runtime, configuration).unwrap();
    assert!(keeps(&mut filter, r#"{"temperature": 21.5}"#));
    assert!(!keeps(&mut filter, r#"{"temperature": 300}"#));
    assert!(!keeps(&mut filter, r#"{"humidity": 40}"#));
    assert!(!keeps(&mut filter, "not json"));
}

#[test]
fn a_parameter_picks_a_schema_by_name() {
    let runtime = runtime(None);
    let configuration = InitConfiguration {
        properties: vec![("schema".into(), "anything".into())],
        schemas: vec![
            schema("reading.json", "application/json", READING),
            schema("anything", "JsonSchema/draft-07", "{}"),
        ],
    };
    let mut filter = schema_filter(&runtime, configuration).unwrap();
    assert!(keeps(&mut filter, r#"{"humidity": 40}"#));
}

#[test]
fn without_a_schema_init_refuses() {
    let runtime = runtime(None);
    let error = schema_filter(&runtime, InitConfiguration::default())
        .err()
        .expect("init refuses");
    assert!(matches!(error.fault, Fault::InitRejected), "{error}");
}

#[test]
fn the_registry_answers_from_the_schema_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("reading")).unwrap();
    std::fs::write(dir.path().join("reading/2.json"), READING).unwrap();
    let runtime = runtime(Some(dir.path().to_path_buf()));
    let registry = |version: &str| InitConfiguration {
        properties: vec![
            ("registry_id".into(), "reading".into()),
            ("registry_version".into(), version.into()),
        ],
        schemas: Vec::new(),
    };
    let mut filter = schema_filter(&runtime, registry("2")).unwrap();
    assert!(keeps(&mut filter, r#"{"temperature": 20}"#));
    assert!(!keeps(&mut filter, r#"{"temperature": "warm"}"#));
    // A version the directory does not hold: the module hears "not found" and refuses.
    assert!(schema_filter(&runtime, registry("3")).is_err());
}

#[test]
fn without_a_directory_the_registry_is_not_available() {
    let runtime = runtime(None);
    let configuration = InitConfiguration {
        properties: vec![("registry_id".into(), "reading".into())],
        schemas: Vec::new(),
    };
    let error = schema_filter(&runtime, configuration)
        .err()
        .expect("init refuses");
    assert!(matches!(error.fault, Fault::InitRejected), "{error}");
}
