//! A loaded operator module: its compiled component, ready to instantiate, and what it exports.

use super::error::LoadError;
use super::export::ExportIndex;
use super::host::HostState;
use super::limits::ModuleLimits;
use super::runtime::WasmRuntime;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::{Component, InstancePre};

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
    fn operator(self, name: &str) -> Option<OperatorKind> {
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

/// A compiled, checked module. Instances for graph nodes are made from it cheaply.
pub struct OperatorModule {
    pub(crate) runtime: Arc<WasmRuntime>,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) indices: Vec<ExportIndex>,
    name: Arc<str>,
    path: PathBuf,
    size: u64,
    package: Package,
    operators: Vec<OperatorKind>,
    imports: Vec<String>,
    exports: Vec<String>,
    limits: ModuleLimits,
}

impl fmt::Debug for OperatorModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorModule")
            .field("name", &self.name)
            .field("package", &self.package)
            .field("operators", &self.operators)
            .finish_non_exhaustive()
    }
}

/// Components at least this large embed a language runtime (a Python component is ~18 MB)
/// and get the larger default memory limit.
const RUNTIME_COMPONENT_SIZE: u64 = 4 << 20;

impl OperatorModule {
    pub(crate) fn new(
        runtime: Arc<WasmRuntime>,
        path: &Path,
        size: u64,
        component: Component,
    ) -> Result<OperatorModule, LoadError> {
        let engine = &runtime.engine;
        let component_type = component.component_type();
        let exports: Vec<String> = component_type
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let imports: Vec<String> = component_type
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let (package, operators) = [Package::Current, Package::Preview]
            .into_iter()
            .map(|package| {
                let mut kinds: Vec<OperatorKind> =
                    exports.iter().filter_map(|e| package.operator(e)).collect();
                kinds.sort();
                (package, kinds)
            })
            .find(|(_, kinds)| !kinds.is_empty())
            .ok_or_else(|| LoadError::NoOperator {
                path: path.to_path_buf(),
                exports: if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                },
            })?;
        let pre = runtime.linker.instantiate_pre(&component).map_err(|e| {
            LoadError::UnsatisfiedImport {
                path: path.to_path_buf(),
                reason: format!("{e:#}"),
            }
        })?;
        let indices = operators
            .iter()
            .map(|&kind| ExportIndex::new(&pre, package, kind))
            .collect::<wasmtime::Result<Vec<_>>>()
            .map_err(|e| LoadError::Compile {
                path: path.to_path_buf(),
                reason: format!("malformed operator export: {e:#}"),
            })?;
        let name = path
            .file_stem()
            .map_or_else(|| "module".into(), |stem| stem.to_string_lossy().into());
        let limits = ModuleLimits {
            memory_bytes: if size >= RUNTIME_COMPONENT_SIZE {
                ModuleLimits::DEFAULT_RUNTIME_MEMORY
            } else {
                ModuleLimits::DEFAULT_COMPILED_MEMORY
            },
            ..ModuleLimits::default()
        };
        Ok(OperatorModule {
            runtime,
            pre,
            indices,
            name,
            path: path.to_path_buf(),
            size,
            package,
            operators,
            imports,
            exports,
            limits,
        })
    }

    /// The module's name: its file name without `.wasm`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> Arc<str> {
        self.name.clone()
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the component file in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The WIT package it was built against.
    pub fn package(&self) -> Package {
        self.package
    }

    /// The operator interfaces it exports.
    pub fn operators(&self) -> &[OperatorKind] {
        &self.operators
    }

    /// Whether it exports `kind`.
    pub fn exports_operator(&self, kind: OperatorKind) -> bool {
        self.operators.contains(&kind)
    }

    /// Every import, by name (operator interfaces, WASI...).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Every export, by name.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// The limits its instances run under.
    pub fn limits(&self) -> ModuleLimits {
        self.limits
    }

    /// Replaces the limits (for instances made afterwards).
    pub fn set_limits(&mut self, limits: ModuleLimits) {
        self.limits = limits;
    }
}
