//! `metrics` → the node's [`NodeMetrics`](crate::metrics::NodeMetrics).

use super::HostState;
use crate::bindings::current::imports::wasm_graph::processor::metrics::{
    CounterValue, HistogramValue, Host, Label, MetricsError,
};
use crate::metrics::MetricError;

impl Host for HostState {
    fn add_to_counter(
        &mut self,
        name: String,
        value: CounterValue,
        labels: Option<Vec<Label>>,
    ) -> wasmtime::Result<Result<(), MetricsError>> {
        let CounterValue::U64(value) = value;
        Ok(self
            .metrics
            .add_to_counter(&name, value, labels_of(labels))
            .map_err(to_wit))
    }

    fn record_to_histogram(
        &mut self,
        name: String,
        value: HistogramValue,
        labels: Option<Vec<Label>>,
    ) -> wasmtime::Result<Result<(), MetricsError>> {
        let value = match value {
            HistogramValue::F64(v) => v,
            HistogramValue::U64(v) => v as f64,
        };
        Ok(self
            .metrics
            .record_to_histogram(&name, value, labels_of(labels))
            .map_err(to_wit))
    }
}

fn labels_of(labels: Option<Vec<Label>>) -> Vec<(String, String)> {
    labels
        .unwrap_or_default()
        .into_iter()
        .map(|label| (label.key, label.value))
        .collect()
}

fn to_wit(error: MetricError) -> MetricsError {
    match error {
        MetricError::IncompatibleType { .. } => MetricsError::IncompatibleType(error.to_string()),
        MetricError::Lock => MetricsError::LockError(error.to_string()),
    }
}
