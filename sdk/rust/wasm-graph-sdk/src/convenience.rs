//! Convenience methods on the generated interface types.

use crate::hybrid_logical_clock::{HybridLogicalClock, Timespec};
use crate::types::{BufferOrBytes, BufferOrString, DataModel, Error, ModuleConfiguration};

impl BufferOrBytes {
    /// The bytes, whether the host passed a buffer or the module made bytes.
    pub fn read(&self) -> Vec<u8> {
        match self {
            BufferOrBytes::Buffer(buffer) => buffer.read(),
            BufferOrBytes::Bytes(bytes) => bytes.clone(),
        }
    }
}

impl BufferOrString {
    /// The bytes of the string, whether the host passed a buffer or the module made a string.
    pub fn read(&self) -> Vec<u8> {
        match self {
            BufferOrString::Buffer(buffer) => buffer.read(),
            BufferOrString::String(string) => string.clone().into_bytes(),
        }
    }

    /// The value as text (invalid UTF-8 replaced by U+FFFD).
    pub fn read_string(&self) -> String {
        match self {
            BufferOrString::Buffer(buffer) => String::from_utf8_lossy(&buffer.read()).into_owned(),
            BufferOrString::String(string) => string.clone(),
        }
    }
}

impl DataModel {
    /// The payload bytes of any variant: a message's payload, a snapshot's frame, or the raw
    /// bytes.
    pub fn payload_bytes(&self) -> Vec<u8> {
        match self {
            DataModel::BufferOrBytes(bytes) => bytes.read(),
            DataModel::Message(message) => message.payload.read(),
            DataModel::Snapshot(snapshot) => snapshot.frame.read(),
        }
    }
}

impl ModuleConfiguration {
    /// The value of the configuration property `name`, if the graph gave one.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Error {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }
}

impl HybridLogicalClock {
    /// Milliseconds since the Unix epoch of the physical part.
    pub fn millis(&self) -> u64 {
        self.timestamp.secs * 1000 + u64::from(self.timestamp.nanos / 1_000_000)
    }

    /// A clock at `millis` since the Unix epoch, with `counter` and `node_id`.
    pub fn from_millis(millis: u64, counter: u64, node_id: impl Into<String>) -> Self {
        HybridLogicalClock {
            timestamp: Timespec {
                secs: millis / 1000,
                nanos: (millis % 1000) as u32 * 1_000_000,
            },
            counter,
            node_id: node_id.into(),
        }
    }
}
