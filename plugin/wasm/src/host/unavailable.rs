//! `command-invoker`: linked so that modules importing it load, but not served yet. Every call
//! answers "not available".

use super::HostState;
use crate::bindings::current::imports::wasm_graph::processor::{
    command_invoker::{HostCommandInvoker, HostRequestBuilder, Response, RpcError, UserProperty},
    rpc_types,
};
use wasmtime::component::Resource;

/// A request being built by a module. Its contents are not kept: nothing can send it yet.
pub struct RequestBuilder;

/// A command invoker a module made.
pub struct CommandInvoker;

const COMMANDS: &str = "MQTT commands (command-invoker) are not available in this version of Weir";

impl HostRequestBuilder for HostState {
    fn new(
        &mut self,
        _command: String,
        _topic: String,
    ) -> wasmtime::Result<Resource<RequestBuilder>> {
        Ok(self.table.push(RequestBuilder)?)
    }

    fn payload(
        &mut self,
        _builder: Resource<RequestBuilder>,
        _payload: Vec<u8>,
    ) -> wasmtime::Result<()> {
        Ok(())
    }

    fn content_type(
        &mut self,
        _builder: Resource<RequestBuilder>,
        _value: String,
    ) -> wasmtime::Result<()> {
        Ok(())
    }

    fn user_property(
        &mut self,
        _builder: Resource<RequestBuilder>,
        _property: UserProperty,
    ) -> wasmtime::Result<()> {
        Ok(())
    }

    fn timeout(
        &mut self,
        _builder: Resource<RequestBuilder>,
        _seconds: u64,
        _nanos: u32,
    ) -> wasmtime::Result<()> {
        Ok(())
    }

    fn drop(&mut self, builder: Resource<RequestBuilder>) -> wasmtime::Result<()> {
        self.table.delete(builder)?;
        Ok(())
    }
}

impl HostCommandInvoker for HostState {
    fn new(&mut self) -> wasmtime::Result<Resource<CommandInvoker>> {
        Ok(self.table.push(CommandInvoker)?)
    }

    fn invoke(
        &mut self,
        _invoker: Resource<CommandInvoker>,
        request: Resource<RequestBuilder>,
    ) -> wasmtime::Result<Result<Response, RpcError>> {
        self.table.delete(request)?;
        Ok(Err(RpcError::NotAvailable(COMMANDS.into())))
    }

    fn drop(&mut self, invoker: Resource<CommandInvoker>) -> wasmtime::Result<()> {
        self.table.delete(invoker)?;
        Ok(())
    }
}

impl crate::bindings::current::imports::wasm_graph::processor::command_invoker::Host for HostState {}

impl rpc_types::Host for HostState {}
