//! The `types.buffer` resource, and items crossing into and out of a module.
//!
//! Into a module, every byte field (topic, payload, content type, property keys and values,
//! frames) goes as a host buffer: a table entry holding a [`Bytes`] handle, so nothing is copied
//! until the module calls `read`. Out of a module, a buffer it hands back turns into the same
//! [`Bytes`] again, and bytes or strings it made become new ones.

use super::HostState;
use crate::bindings::current::imports::wasm_graph::processor::{
    hybrid_logical_clock, state_store_types,
    types::{self as wit, Timespec},
};
use bytes::Bytes;
use std::sync::Arc;
use wasmtime::component::Resource;
use weir_model::data::{DataModel, Message, MessageSchema, Snapshot};
use weir_model::hlc::Hlc;

/// A host-owned byte buffer handed to a module.
#[derive(Debug)]
pub struct HostBuffer(pub Bytes);

impl wit::HostBuffer for HostState {
    fn read(&mut self, buffer: Resource<HostBuffer>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&buffer)?.0.to_vec())
    }

    fn drop(&mut self, buffer: Resource<HostBuffer>) -> wasmtime::Result<()> {
        self.table.delete(buffer)?;
        Ok(())
    }
}

impl wit::Host for HostState {}
impl hybrid_logical_clock::Host for HostState {}
impl state_store_types::Host for HostState {}

/// Puts host items into a module's resource table as WIT values.
pub(crate) struct Lower<'a>(pub &'a mut HostState);

impl Lower<'_> {
    fn buffer(&mut self, bytes: &Bytes) -> wasmtime::Result<Resource<HostBuffer>> {
        Ok(self.0.table.push(HostBuffer(bytes.clone()))?)
    }

    fn bytes(&mut self, bytes: &Bytes) -> wasmtime::Result<wit::BufferOrBytes> {
        Ok(wit::BufferOrBytes::Buffer(self.buffer(bytes)?))
    }

    fn string(&mut self, bytes: &Bytes) -> wasmtime::Result<wit::BufferOrString> {
        Ok(wit::BufferOrString::Buffer(self.buffer(bytes)?))
    }

    fn timestamp(&mut self, hlc: &Hlc) -> wit::Timestamp {
        let clock = self.clock(hlc);
        wit::Timestamp {
            timestamp: clock.timestamp,
            counter: clock.counter,
            node_id: wit::BufferOrString::String(clock.node_id),
        }
    }

    /// A timestamp as the `hybrid-logical-clock` a module receives (give it back after the call).
    pub fn clock(&mut self, hlc: &Hlc) -> hybrid_logical_clock::HybridLogicalClock {
        hybrid_logical_clock::HybridLogicalClock {
            timestamp: Timespec {
                secs: hlc.secs,
                nanos: hlc.nanos,
            },
            counter: hlc.counter,
            node_id: self.0.node_ids.lend(&hlc.node_id),
        }
    }

    /// Takes back what lowering `item` lent (its timestamp's node id), once the call is over.
    pub fn give_back(&mut self, item: wit::DataModel) {
        let timestamp = match item {
            wit::DataModel::Message(message) => message.timestamp,
            wit::DataModel::Snapshot(snapshot) => snapshot.timestamp,
            wit::DataModel::BufferOrBytes(_) => return,
        };
        if let wit::BufferOrString::String(text) = timestamp.node_id {
            self.0.node_ids.give_back(text);
        }
    }

    /// Takes back what [`Lower::clock`] lent.
    pub fn give_back_clock(&mut self, clock: hybrid_logical_clock::HybridLogicalClock) {
        self.0.node_ids.give_back(clock.node_id);
    }

    /// The WIT form of `item`, its byte fields as host buffers.
    pub fn data_model(&mut self, item: &DataModel) -> wasmtime::Result<wit::DataModel> {
        Ok(match item {
            DataModel::Bytes(bytes) => wit::DataModel::BufferOrBytes(self.bytes(bytes)?),
            DataModel::Message(message) => wit::DataModel::Message(self.message(message)?),
            DataModel::Snapshot(snapshot) => wit::DataModel::Snapshot(wit::Snapshot {
                timestamp: self.timestamp(&snapshot.timestamp),
                format: self.string(&snapshot.format)?,
                width: snapshot.width,
                height: snapshot.height,
                frame: self.bytes(&snapshot.frame)?,
            }),
        })
    }

    fn message(&mut self, message: &Message) -> wasmtime::Result<wit::Message> {
        let mut user_properties = Vec::with_capacity(message.user_properties.len());
        for (key, value) in &message.user_properties {
            user_properties.push((self.string(key)?, self.string(value)?));
        }
        Ok(wit::Message {
            timestamp: self.timestamp(&message.timestamp),
            topic: self.bytes(&message.topic)?,
            content_type: match &message.content_type {
                Some(content_type) => Some(self.string(content_type)?),
                None => None,
            },
            payload: self.bytes(&message.payload)?,
            properties: wit::MessageProperties { user_properties },
            schema: match message.schema.as_deref() {
                None => None,
                Some(MessageSchema::RegistryReference(id)) => {
                    Some(wit::MessageSchema::RegistryReference(self.string(id)?))
                }
                Some(MessageSchema::Inline { name, content }) => {
                    Some(wit::MessageSchema::Inline(wit::InlineSchema {
                        name: self.string(name)?,
                        content: self.string(content)?,
                    }))
                }
            },
        })
    }
}

/// A host timestamp from a module's parts (nanoseconds beyond a second carry into the seconds).
pub(crate) fn hlc(timestamp: Timespec, counter: u64, node_id: Arc<str>) -> Hlc {
    Hlc {
        secs: timestamp
            .secs
            .saturating_add(u64::from(timestamp.nanos / 1_000_000_000)),
        nanos: timestamp.nanos % 1_000_000_000,
        counter,
        node_id,
    }
}

/// Takes WIT values a module returned back into host items, claiming its buffers.
pub(crate) struct Lift<'a>(pub &'a mut HostState);

impl Lift<'_> {
    fn buffer(&mut self, buffer: Resource<HostBuffer>) -> wasmtime::Result<Bytes> {
        Ok(self.0.table.delete(buffer)?.0)
    }

    fn bytes(&mut self, value: wit::BufferOrBytes) -> wasmtime::Result<Bytes> {
        match value {
            wit::BufferOrBytes::Buffer(buffer) => self.buffer(buffer),
            wit::BufferOrBytes::Bytes(bytes) => Ok(Bytes::from(bytes)),
        }
    }

    fn string(&mut self, value: wit::BufferOrString) -> wasmtime::Result<Bytes> {
        match value {
            wit::BufferOrString::Buffer(buffer) => self.buffer(buffer),
            wit::BufferOrString::String(string) => Ok(Bytes::from(string)),
        }
    }

    fn timestamp(&mut self, timestamp: wit::Timestamp) -> wasmtime::Result<Hlc> {
        let node_id = match timestamp.node_id {
            wit::BufferOrString::String(text) => self.0.node_ids.intern(&text),
            wit::BufferOrString::Buffer(buffer) => {
                let bytes = self.buffer(buffer)?;
                self.0.node_ids.intern(&String::from_utf8_lossy(&bytes))
            }
        };
        Ok(hlc(timestamp.timestamp, timestamp.counter, node_id))
    }

    /// A timestamp a module returned as a `hybrid-logical-clock`.
    pub fn clock(&mut self, clock: hybrid_logical_clock::HybridLogicalClock) -> Hlc {
        let node_id = self.0.node_ids.intern(&clock.node_id);
        hlc(clock.timestamp, clock.counter, node_id)
    }

    /// The host form of a value the module returned.
    pub fn data_model(&mut self, value: wit::DataModel) -> wasmtime::Result<DataModel> {
        Ok(match value {
            wit::DataModel::BufferOrBytes(bytes) => DataModel::Bytes(self.bytes(bytes)?),
            wit::DataModel::Message(message) => DataModel::Message(self.message(message)?),
            wit::DataModel::Snapshot(snapshot) => DataModel::Snapshot(Snapshot {
                timestamp: self.timestamp(snapshot.timestamp)?,
                format: self.string(snapshot.format)?,
                width: snapshot.width,
                height: snapshot.height,
                frame: self.bytes(snapshot.frame)?,
            }),
        })
    }

    fn message(&mut self, message: wit::Message) -> wasmtime::Result<Message> {
        let mut user_properties = Vec::with_capacity(message.properties.user_properties.len());
        for (key, value) in message.properties.user_properties {
            user_properties.push((self.string(key)?, self.string(value)?));
        }
        Ok(Message {
            timestamp: self.timestamp(message.timestamp)?,
            topic: self.bytes(message.topic)?,
            content_type: match message.content_type {
                Some(content_type) => Some(self.string(content_type)?),
                None => None,
            },
            payload: self.bytes(message.payload)?,
            user_properties,
            schema: match message.schema {
                None => None,
                Some(wit::MessageSchema::RegistryReference(id)) => {
                    Some(Box::new(MessageSchema::RegistryReference(self.string(id)?)))
                }
                Some(wit::MessageSchema::Inline(schema)) => Some(Box::new(MessageSchema::Inline {
                    name: self.string(schema.name)?,
                    content: self.string(schema.content)?,
                })),
            },
        })
    }
}
