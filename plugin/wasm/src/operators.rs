//! The five operator calls, each a thin layer over `OperatorInstance::process`: lower the
//! items into host buffers, call the export (either package, see `export`), lift the result
//! back.

use super::error::OperatorError;
use super::export::{AccumulateCall, BranchCall, DelayCall, FilterCall, MapCall};
use super::host::buffer::{Lift, Lower};
use super::instance::OperatorInstance;
use weir_model::data::DataModel;
use weir_model::hlc::Hlc;

impl OperatorInstance {
    /// `map`: the item the module makes of `item`.
    pub fn map(&mut self, item: &DataModel) -> Result<DataModel, OperatorError> {
        self.process(|store, export| {
            let input = Lower(store.data_mut()).data_model(item)?;
            let answer = export.process::<MapCall>(store, (&input,))?;
            let state = store.data_mut();
            Lower(state).give_back(input);
            Ok(match answer {
                Ok(output) => Ok(Lift(state).data_model(output)?),
                Err(error) => Err(error),
            })
        })
    }

    /// `filter`: whether to keep `item`.
    pub fn filter(&mut self, item: &DataModel) -> Result<bool, OperatorError> {
        self.process(|store, export| {
            let input = Lower(store.data_mut()).data_model(item)?;
            let answer = export.process::<FilterCall>(store, (&input,));
            Lower(store.data_mut()).give_back(input);
            answer
        })
    }

    /// `branch`: `false` for the arm "False", `true` for "True".
    pub fn branch(&mut self, timestamp: &Hlc, item: &DataModel) -> Result<bool, OperatorError> {
        self.process(|store, export| {
            let mut lower = Lower(store.data_mut());
            let (clock, input) = (lower.clock(timestamp), lower.data_model(item)?);
            let answer = export.process::<BranchCall>(store, (&clock, &input));
            let mut lower = Lower(store.data_mut());
            lower.give_back(input);
            lower.give_back_clock(clock);
            answer
        })
    }

    /// `accumulate`: the new staged value after folding `batch` into `staged`.
    pub fn accumulate(
        &mut self,
        staged: &DataModel,
        batch: &[DataModel],
    ) -> Result<DataModel, OperatorError> {
        self.process(|store, export| {
            let mut lower = Lower(store.data_mut());
            let staged = lower.data_model(staged)?;
            let batch = batch
                .iter()
                .map(|item| lower.data_model(item))
                .collect::<wasmtime::Result<Vec<_>>>()?;
            let answer = export.process::<AccumulateCall>(store, (&staged, &batch))?;
            let state = store.data_mut();
            let mut lower = Lower(state);
            lower.give_back(staged);
            batch.into_iter().for_each(|item| lower.give_back(item));
            Ok(match answer {
                Ok(output) => Ok(Lift(state).data_model(output)?),
                Err(error) => Err(error),
            })
        })
    }

    /// `delay`: the item's new timestamp, never earlier than `timestamp` (an earlier answer is
    /// clamped up to it).
    pub fn delay(&mut self, item: &DataModel, timestamp: &Hlc) -> Result<Hlc, OperatorError> {
        self.process(|store, export| {
            let mut lower = Lower(store.data_mut());
            let (input, clock) = (lower.data_model(item)?, lower.clock(timestamp));
            let moved = export.process::<DelayCall>(store, (&input, &clock))?;
            let state = store.data_mut();
            let mut lower = Lower(state);
            lower.give_back(input);
            lower.give_back_clock(clock);
            Ok(moved.map(|moved| Lift(state).clock(moved).max(timestamp.clone())))
        })
    }
}

/// What the benchmarks compare the host path with: the same export called with an item already
/// in WIT form, no host buffers and no conversion back.
#[doc(hidden)]
pub mod bare {
    use super::{MapCall, OperatorError, OperatorInstance};
    use crate::bindings::current::imports::wasm_graph::processor::types::DataModel;

    /// Calls `map` on `item` and drops the answer.
    pub fn map(instance: &mut OperatorInstance, item: &DataModel) -> Result<(), OperatorError> {
        instance.process(|store, export| Ok(export.process::<MapCall>(store, (item,))?.map(drop)))
    }
}
