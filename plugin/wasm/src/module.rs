//! A loaded operator module: its compiled component, ready to instantiate, and what it exports.

use super::error::LoadError;
use super::export::ExportIndex;
use super::host::HostState;
pub use super::interface::{OperatorKind, Package};
use super::limits::ModuleLimits;
use super::runtime::WasmRuntime;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::{Component, InstancePre};

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

/// Loading and inspecting components: the runtime's side of a module, kept here so that the
/// runtime does not know what a module is made of.
impl WasmRuntime {
    /// Loads the component at `path`: compiles it (or takes it from the cache), checks that this
    /// host provides its imports, and finds its operator interfaces.
    pub fn load(self: &Arc<Self>, path: &Path) -> Result<OperatorModule, LoadError> {
        let (component, size) = self.compile(path)?;
        OperatorModule::new(self.clone(), path, size, component)
    }

    /// What the component at `path` is, and whether this host can run it: everything
    /// `weir module inspect` prints.
    pub fn inspect(self: &Arc<Self>, path: &Path) -> Result<Inspection, LoadError> {
        let (component, size) = self.compile(path)?;
        let component_type = component.component_type();
        let exports = component_type
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let imports = component_type
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        Ok(Inspection {
            size,
            exports,
            imports,
            module: OperatorModule::new(self.clone(), path, size, component),
        })
    }
}

/// A component's description, and the module this host makes of it (or why it cannot).
pub struct Inspection {
    /// File size in bytes.
    pub size: u64,
    /// Every export, by name.
    pub exports: Vec<String>,
    /// Every import, by name.
    pub imports: Vec<String>,
    /// The loaded module, or why this host cannot run it.
    pub module: Result<OperatorModule, LoadError>,
}
