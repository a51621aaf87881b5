//! The five operator calls, each a thin layer over `OperatorInstance::process`: lower the
//! items into host buffers, call the export (current or preview package), lift the result back.

use super::error::OperatorError;
use super::host::buffer::{Lift, Lower};
use super::host::state_store::{from_wit_hlc, to_wit_hlc};
use super::instance::{Guest, OperatorInstance};
use crate::data::DataModel;
use crate::hlc::Hlc;

fn wrong_kind<T>() -> wasmtime::Result<T> {
    Err(wasmtime::Error::msg(
        "the node's operator kind does not match this call",
    ))
}

impl OperatorInstance {
    /// `map`: the item the module makes of `item`.
    pub fn map(&mut self, item: &DataModel) -> Result<DataModel, OperatorError> {
        self.process(|store, guest| {
            let input = Lower(&mut store.data_mut().table).data_model(item)?;
            let output = match guest {
                Guest::Map(map) => map.call_process(&mut *store, &input)?,
                Guest::PreviewMap(map) => Ok(map.call_process(&mut *store, &input)?),
                _ => return wrong_kind(),
            };
            match output {
                Ok(output) => Ok(Ok(Lift(&mut store.data_mut().table).data_model(output)?)),
                Err(error) => Ok(Err(error)),
            }
        })
    }

    /// `filter`: whether to keep `item`.
    pub fn filter(&mut self, item: &DataModel) -> Result<bool, OperatorError> {
        self.process(|store, guest| {
            let input = Lower(&mut store.data_mut().table).data_model(item)?;
            match guest {
                Guest::Filter(filter) => filter.call_process(&mut *store, &input),
                Guest::PreviewFilter(filter) => Ok(Ok(filter.call_process(&mut *store, &input)?)),
                _ => wrong_kind(),
            }
        })
    }

    /// `branch`: `false` for the arm "False", `true` for "True".
    pub fn branch(&mut self, timestamp: &Hlc, item: &DataModel) -> Result<bool, OperatorError> {
        self.process(|store, guest| {
            let input = Lower(&mut store.data_mut().table).data_model(item)?;
            let timestamp = to_wit_hlc(timestamp);
            match guest {
                Guest::Branch(branch) => branch.call_process(&mut *store, &timestamp, &input),
                Guest::PreviewBranch(branch) => {
                    Ok(Ok(branch.call_process(&mut *store, &timestamp, &input)?))
                }
                _ => wrong_kind(),
            }
        })
    }

    /// `accumulate`: the new staged value after folding `batch` into `staged`.
    pub fn accumulate(
        &mut self,
        staged: &DataModel,
        batch: &[DataModel],
    ) -> Result<DataModel, OperatorError> {
        self.process(|store, guest| {
            let mut lower = Lower(&mut store.data_mut().table);
            let staged = lower.data_model(staged)?;
            let batch = batch
                .iter()
                .map(|item| lower.data_model(item))
                .collect::<wasmtime::Result<Vec<_>>>()?;
            let output = match guest {
                Guest::Accumulate(accumulate) => {
                    accumulate.call_process(&mut *store, &staged, &batch)?
                }
                Guest::PreviewAccumulate(accumulate) => {
                    Ok(accumulate.call_process(&mut *store, &staged, &batch)?)
                }
                _ => return wrong_kind(),
            };
            match output {
                Ok(output) => Ok(Ok(Lift(&mut store.data_mut().table).data_model(output)?)),
                Err(error) => Ok(Err(error)),
            }
        })
    }

    /// `delay`: the item's new timestamp, never earlier than `timestamp` (an earlier answer is
    /// clamped up to it).
    pub fn delay(&mut self, item: &DataModel, timestamp: &Hlc) -> Result<Hlc, OperatorError> {
        self.process(|store, guest| {
            let input = Lower(&mut store.data_mut().table).data_model(item)?;
            let at = to_wit_hlc(timestamp);
            let moved = match guest {
                Guest::Delay(delay) => delay.call_process(&mut *store, &input, &at)?,
                Guest::PreviewDelay(delay) => Ok(delay.call_process(&mut *store, &input, &at)?),
                _ => return wrong_kind(),
            };
            Ok(moved.map(|moved| from_wit_hlc(moved).max(timestamp.clone())))
        })
    }
}

/// What the benchmarks compare the host path with: the same export called with an item already
/// in WIT form, no host buffers and no conversion back.
#[doc(hidden)]
pub mod bare {
    use super::{wrong_kind, Guest, OperatorError, OperatorInstance};
    use crate::wasm::bindings::current::imports::wasm_graph::processor::types::DataModel;

    /// Calls `map` on `item` and drops the answer.
    pub fn map(instance: &mut OperatorInstance, item: &DataModel) -> Result<(), OperatorError> {
        instance.process(|store, guest| match guest {
            Guest::Map(map) => Ok(map.call_process(&mut *store, item)?.map(drop)),
            _ => wrong_kind(),
        })
    }
}
