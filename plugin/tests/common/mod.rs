//! Shared set-up: a runtime over the modules that scripts/build-modules.sh built.
#![allow(dead_code)]

use bytes::Bytes;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use weir_model::data::{DataModel, Message};
use weir_model::hlc::Hlc;
use weir_state::StateStore;
use weir_wasm::metrics::NodeMetrics;
use weir_wasm::{OperatorInstance, OperatorKind, OperatorModule, RuntimeConfig, WasmRuntime};

/// The module `name` built into target/modules; fails with the fix when it is missing.
pub fn module_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/modules")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-modules.sh",
        path.display()
    );
    path
}

/// One runtime per test binary, with a compiled-component cache under target/ and a state
/// store in a temporary directory.
pub fn runtime() -> Arc<WasmRuntime> {
    static RUNTIME: OnceLock<(Arc<WasmRuntime>, tempfile::TempDir)> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let state = Arc::new(StateStore::open(&dir.path().join("state.redb"), "test").unwrap());
            let config = RuntimeConfig {
                cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compiled")),
                ..RuntimeConfig::default()
            };
            (WasmRuntime::new(&config, state).unwrap(), dir)
        })
        .0
        .clone()
}

/// The module `name`, loaded once per test binary.
pub fn module(name: &str) -> Arc<OperatorModule> {
    Arc::new(runtime().load(&module_path(name)).unwrap())
}

/// An instance of `name` for node `node`, calling `kind`, with `configuration`.
pub fn instance(
    name: &str,
    kind: OperatorKind,
    configuration: &[(&str, &str)],
) -> OperatorInstance {
    OperatorInstance::new(
        module(name),
        &format!("{name}-{kind}"),
        kind,
        configuration
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
        Arc::new(NodeMetrics::default()),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A timestamp at `millis`.
pub fn ts(millis: u64) -> Hlc {
    Hlc::from_millis(millis, 0, "test".into())
}

/// A message on `topic` with `payload` at `millis`.
pub fn message(topic: &str, payload: &str, millis: u64) -> DataModel {
    DataModel::Message(Message::new(
        ts(millis),
        Bytes::copy_from_slice(topic.as_bytes()),
        Bytes::copy_from_slice(payload.as_bytes()),
    ))
}

/// The payload of an item, as text.
pub fn payload(item: &DataModel) -> String {
    String::from_utf8(item.payload().to_vec()).unwrap()
}
