//! A module's `logger.log` calls become `tracing` events naming the module and the node.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use weir_wasm::OperatorKind;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn module_logs_carry_module_node_and_context() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    // The temperature map logs from `init`.
    let _map = common::instance("temperature", OperatorKind::Map, &[]);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|line| line.contains("ready to convert °F to °C"))
        .unwrap_or_else(|| panic!("no module log line in:\n{log}"));
    assert!(line.contains(" INFO weir::module:"), "{line}");
    assert!(line.contains("module=\"temperature\""), "{line}");
    assert!(line.contains("node=\"temperature-map\""), "{line}");
    assert!(line.contains("context=\"temperature/map\""), "{line}");
}
