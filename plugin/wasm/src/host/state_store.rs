//! `state-store` → the broker's [`StateStore`](weir_state::StateStore).
//!
//! The store is local, so the `timeout` arguments have nothing to bound and are ignored.

use super::HostState;
use crate::bindings::current::imports::wasm_graph::processor::{
    hybrid_logical_clock::{HybridLogicalClock, Timespec},
    state_store::Host,
    state_store_types::{
        Duration, SetConditions, SetOptions, StateStoreDelResponse, StateStoreError,
        StateStoreGetResponse, StateStoreSetResponse,
    },
};
use weir_model::hlc::Hlc;
use weir_state::{SetCondition, StateError};

impl Host for HostState {
    fn get(
        &mut self,
        key: Vec<u8>,
        _timeout: Option<Duration>,
    ) -> wasmtime::Result<Result<StateStoreGetResponse, StateStoreError>> {
        Ok(self
            .state
            .get(&key)
            .map(|got| StateStoreGetResponse {
                response: got.value,
                version: got.version.as_ref().map(to_wit_hlc),
            })
            .map_err(|e| self.state_error(e)))
    }

    fn set(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        _timeout: Option<Duration>,
        fencing_token: Option<HybridLogicalClock>,
        options: SetOptions,
    ) -> wasmtime::Result<Result<StateStoreSetResponse, StateStoreError>> {
        let condition = match options.conditions {
            SetConditions::OnlyIfDoesNotExist => SetCondition::OnlyIfDoesNotExist,
            SetConditions::OnlyIfEqualOrDoesNotExist => SetCondition::OnlyIfEqualOrDoesNotExist,
            SetConditions::Unconditional => SetCondition::Unconditional,
        };
        // A module's TTL: nanos may carry over into a second that does not fit; saturate.
        let expires = options.expires.map(|d| {
            std::time::Duration::from_secs(d.seconds)
                .saturating_add(std::time::Duration::from_nanos(d.nanos.into()))
        });
        let token = fencing_token.map(from_wit_hlc);
        Ok(self
            .state
            .set(&key, &value, token.as_ref(), condition, expires)
            .map(|set| StateStoreSetResponse {
                response: set.written,
                version: set.version.as_ref().map(to_wit_hlc),
            })
            .map_err(|e| self.state_error(e)))
    }

    fn del(
        &mut self,
        key: Vec<u8>,
        fencing_token: Option<HybridLogicalClock>,
        _timeout: Option<Duration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, StateStoreError>> {
        let token = fencing_token.map(from_wit_hlc);
        Ok(self
            .state
            .del(&key, token.as_ref())
            .map(deleted)
            .map_err(|e| self.state_error(e)))
    }

    fn vdel(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        fencing_token: Option<HybridLogicalClock>,
        _timeout: Option<Duration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, StateStoreError>> {
        let token = fencing_token.map(from_wit_hlc);
        Ok(self
            .state
            .vdel(&key, &value, token.as_ref())
            .map(deleted)
            .map_err(|e| self.state_error(e)))
    }
}

fn deleted(response: i64) -> StateStoreDelResponse {
    StateStoreDelResponse {
        response,
        version: None,
    }
}

impl HostState {
    /// The WIT error for a failed request; storage faults are logged with module and node,
    /// since the module only learns `internal`.
    fn state_error(&self, error: StateError) -> StateStoreError {
        match error {
            StateError::FencingTokenTooLow { .. } | StateError::FencingTokenRequired => {
                StateStoreError::RequestError(error.to_string())
            }
            StateError::Open { .. } | StateError::Storage(_) => {
                let (module, node) = (&*self.identity.module, &*self.identity.node);
                tracing::error!(module, node, "state store request failed: {error}");
                StateStoreError::Internal
            }
        }
    }
}

/// The WIT form of a timestamp.
pub(crate) fn to_wit_hlc(hlc: &Hlc) -> HybridLogicalClock {
    HybridLogicalClock {
        timestamp: Timespec {
            secs: hlc.secs,
            nanos: hlc.nanos,
        },
        counter: hlc.counter,
        node_id: hlc.node_id.to_string(),
    }
}

/// A timestamp from its WIT form (nanoseconds beyond a second carry into the seconds).
pub(crate) fn from_wit_hlc(hlc: HybridLogicalClock) -> Hlc {
    super::buffer::hlc(hlc.timestamp, hlc.counter, hlc.node_id.into())
}
