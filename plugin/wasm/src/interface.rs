//! The operator interfaces a module may export, and the WIT packages they come in.

use std::fmt;

/// The operator interfaces a module may export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperatorKind {
    /// `map`: one item in, one out, same time.
    Map,
    /// `filter`: keep or drop.
    Filter,
    /// `branch`: arm "False" or "True".
    Branch,
    /// `accumulate`: fold a timestamp's items into a staged value.
    Accumulate,
    /// `delay`: move an item to a later time.
    Delay,
}

impl OperatorKind {
    /// Every kind, in interface order.
    pub const ALL: [OperatorKind; 5] = [
        OperatorKind::Map,
        OperatorKind::Filter,
        OperatorKind::Branch,
        OperatorKind::Accumulate,
        OperatorKind::Delay,
    ];

    /// The interface's name in the WIT package.
    pub fn interface(self) -> &'static str {
        match self {
            OperatorKind::Map => "map",
            OperatorKind::Filter => "filter",
            OperatorKind::Branch => "branch",
            OperatorKind::Accumulate => "accumulate",
            OperatorKind::Delay => "delay",
        }
    }

    /// The kind named `interface`, if any.
    pub fn from_interface(interface: &str) -> Option<OperatorKind> {
        Self::ALL.into_iter().find(|k| k.interface() == interface)
    }
}

impl fmt::Display for OperatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.interface())
    }
}

/// The WIT package a module was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    /// `wasm-graph:processor@1.1.0`.
    Current,
    /// `tinykube-graph:processor@1.0.0`, the preview.
    Preview,
}

impl Package {
    fn prefix(self) -> &'static str {
        match self {
            Package::Current => "wasm-graph:processor/",
            Package::Preview => "tinykube-graph:processor/",
        }
    }

    fn version(self) -> &'static str {
        match self {
            Package::Current => "1.1.0",
            Package::Preview => "1.0.0",
        }
    }

    /// The name of its interface `kind`: `wasm-graph:processor/map@1.1.0`.
    pub(crate) fn export_name(self, kind: OperatorKind) -> String {
        format!("{}{kind}@{}", self.prefix(), self.version())
    }

    /// The operator kind an export named `name` (e.g. `wasm-graph:processor/map@1.1.0`) is.
    pub(crate) fn operator(self, name: &str) -> Option<OperatorKind> {
        let interface = name
            .strip_prefix(self.prefix())?
            .strip_suffix(self.version())?
            .strip_suffix('@')?;
        OperatorKind::from_interface(interface)
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Package::Current => f.write_str("wasm-graph:processor@1.1.0"),
            Package::Preview => f.write_str("tinykube-graph:processor@1.0.0 (preview)"),
        }
    }
}
