//! Convenience methods on the generated interface types.

use crate::hybrid_logical_clock::{HybridLogicalClock, Timespec};
use crate::state_store_types::{SetConditions, SetOptions};
use crate::types::{BufferOrBytes, BufferOrString, DataModel, Error, ModuleConfiguration};

impl BufferOrBytes {
    /// The bytes, whether the host passed a buffer or the module made bytes.
    ///
    /// ```
    /// use wasm_graph_sdk::types::BufferOrBytes;
    /// assert_eq!(BufferOrBytes::Bytes(b"21.5".to_vec()).read(), b"21.5");
    /// ```
    pub fn read(&self) -> Vec<u8> {
        match self {
            BufferOrBytes::Buffer(buffer) => buffer.read(),
            BufferOrBytes::Bytes(bytes) => bytes.clone(),
        }
    }
}

impl BufferOrString {
    /// The bytes of the string, whether the host passed a buffer or the module made a string.
    ///
    /// ```
    /// use wasm_graph_sdk::types::BufferOrString;
    /// assert_eq!(BufferOrString::String("gw1".into()).read(), b"gw1");
    /// ```
    pub fn read(&self) -> Vec<u8> {
        match self {
            BufferOrString::Buffer(buffer) => buffer.read(),
            BufferOrString::String(string) => string.clone().into_bytes(),
        }
    }

    /// The value as text (invalid UTF-8 replaced by U+FFFD).
    ///
    /// ```
    /// use wasm_graph_sdk::types::BufferOrString;
    /// assert_eq!(BufferOrString::String("gw1".into()).read_string(), "gw1");
    /// ```
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
    ///
    /// ```
    /// use wasm_graph_sdk::types::{BufferOrBytes, DataModel};
    /// let raw = DataModel::BufferOrBytes(BufferOrBytes::Bytes(vec![1, 2]));
    /// assert_eq!(raw.payload_bytes(), [1, 2]);
    /// ```
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
    ///
    /// ```
    /// use wasm_graph_sdk::types::ModuleConfiguration;
    /// let configuration = ModuleConfiguration {
    ///     properties: vec![("window_ms".into(), "1000".into())],
    ///     ..Default::default()
    /// };
    /// assert_eq!(configuration.property("window_ms"), Some("1000"));
    /// assert_eq!(configuration.property("other"), None);
    /// ```
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Error {
    /// An error with `message`.
    ///
    /// ```
    /// use wasm_graph_sdk::types::Error;
    /// assert_eq!(Error::new("bad payload"), Error { message: "bad payload".into() });
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }
}

impl HybridLogicalClock {
    /// Milliseconds since the Unix epoch of the physical part.
    ///
    /// ```
    /// use wasm_graph_sdk::hybrid_logical_clock::HybridLogicalClock;
    /// let clock = HybridLogicalClock::from_millis(1_700_000_000_123, 4, "gw1");
    /// assert_eq!(clock.millis(), 1_700_000_000_123);
    /// assert_eq!((clock.counter, clock.node_id.as_str()), (4, "gw1"));
    /// ```
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

impl From<Timespec> for std::time::Duration {
    /// The time since the Unix epoch.
    ///
    /// ```
    /// use wasm_graph_sdk::hybrid_logical_clock::Timespec;
    /// let since_epoch = std::time::Duration::from(Timespec { secs: 2, nanos: 500_000_000 });
    /// assert_eq!(since_epoch.as_millis(), 2500);
    /// ```
    fn from(timespec: Timespec) -> Self {
        // Nanoseconds past a second carry over; `Duration::new` does it without overflow here
        // as long as the seconds leave room, which a time since the epoch does.
        std::time::Duration::from_secs(timespec.secs)
            .saturating_add(std::time::Duration::from_nanos(u64::from(timespec.nanos)))
    }
}

impl From<std::time::Duration> for Timespec {
    /// A time `since_epoch` after the Unix epoch.
    ///
    /// ```
    /// use wasm_graph_sdk::hybrid_logical_clock::Timespec;
    /// let end = Timespec::from(std::time::Duration::from_millis(10_250));
    /// assert_eq!((end.secs, end.nanos), (10, 250_000_000));
    /// ```
    fn from(since_epoch: std::time::Duration) -> Self {
        Timespec {
            secs: since_epoch.as_secs(),
            nanos: since_epoch.subsec_nanos(),
        }
    }
}

impl Default for SetOptions {
    /// An unconditional set that never expires.
    ///
    /// ```
    /// use wasm_graph_sdk::state_store::{SetConditions, SetOptions};
    /// let options = SetOptions::default();
    /// assert_eq!(options.conditions, SetConditions::Unconditional);
    /// assert!(options.expires.is_none());
    /// ```
    fn default() -> Self {
        SetOptions {
            conditions: SetConditions::Unconditional,
            expires: None,
        }
    }
}

impl Default for Timespec {
    /// The Unix epoch.
    fn default() -> Self {
        Timespec { secs: 0, nanos: 0 }
    }
}

impl Default for ModuleConfiguration {
    /// No property and no schema.
    fn default() -> Self {
        ModuleConfiguration {
            properties: Vec::new(),
            module_schemas: Vec::new(),
        }
    }
}
