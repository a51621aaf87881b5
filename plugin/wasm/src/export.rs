//! A module's operator export, called the same way whichever package it was built against.
//!
//! Both packages export `init` and `process` per operator interface with the same parameters;
//! they differ only in what `process` returns: `result<T, error>` in the current package, a
//! plain `T` in the preview. [`ExportIndex`] finds the two functions once per module,
//! [`Export`] checks their types once per instance, and [`Export::process`] makes a preview
//! answer look like a current one, so every operator call is written once.

use super::bindings::current::imports::wasm_graph::processor::{
    hybrid_logical_clock::HybridLogicalClock,
    types::{DataModel, Error as WitError, ModuleConfiguration},
};
use super::host::HostState;
use super::interface::{OperatorKind, Package};
use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, ComponentType, Func, Instance, InstancePre, Lift,
    Lower, TypedFunc,
};
use wasmtime::Store;

/// The `process` signature of one operator interface: what it takes, and what it answers
/// (inside `result<_, error>` in the current package).
pub(crate) trait Signature {
    /// The interface.
    const KIND: OperatorKind;
    /// Its parameters, borrowed.
    type Params<'a>: ComponentNamedList + Lower;
    /// Its answer.
    type Value: ComponentType + Lift + 'static;
}

/// `map: func(message: data-model) -> data-model`.
pub(crate) struct MapCall;
/// `filter: func(message: data-model) -> bool`.
pub(crate) struct FilterCall;
/// `branch: func(timestamp: hybrid-logical-clock, message: data-model) -> bool`.
pub(crate) struct BranchCall;
/// `accumulate: func(staged: data-model, message: list<data-model>) -> data-model`.
pub(crate) struct AccumulateCall;
/// `delay: func(data: data-model, timestamp: hybrid-logical-clock) -> hybrid-logical-clock`.
pub(crate) struct DelayCall;

impl Signature for MapCall {
    const KIND: OperatorKind = OperatorKind::Map;
    type Params<'a> = (&'a DataModel,);
    type Value = DataModel;
}

impl Signature for FilterCall {
    const KIND: OperatorKind = OperatorKind::Filter;
    type Params<'a> = (&'a DataModel,);
    type Value = bool;
}

impl Signature for BranchCall {
    const KIND: OperatorKind = OperatorKind::Branch;
    type Params<'a> = (&'a HybridLogicalClock, &'a DataModel);
    type Value = bool;
}

impl Signature for AccumulateCall {
    const KIND: OperatorKind = OperatorKind::Accumulate;
    type Params<'a> = (&'a DataModel, &'a [DataModel]);
    type Value = DataModel;
}

impl Signature for DelayCall {
    const KIND: OperatorKind = OperatorKind::Delay;
    type Params<'a> = (&'a DataModel, &'a HybridLogicalClock);
    type Value = HybridLogicalClock;
}

type InitParams<'a> = (&'a ModuleConfiguration,);

/// Where one operator interface's `init` and `process` are in a module, found once.
pub(crate) struct ExportIndex {
    package: Package,
    kind: OperatorKind,
    init: ComponentExportIndex,
    process: ComponentExportIndex,
}

impl ExportIndex {
    /// Finds interface `kind` of `package` in the component `pre` instantiates.
    pub(crate) fn new(
        pre: &InstancePre<HostState>,
        package: Package,
        kind: OperatorKind,
    ) -> wasmtime::Result<ExportIndex> {
        let name = package.export_name(kind);
        let component = pre.component();
        let interface = component
            .get_export_index(None, &name)
            .ok_or_else(|| wasmtime::format_err!("no exported instance named `{name}`"))?;
        let function = |function: &str| {
            component
                .get_export_index(Some(&interface), function)
                .ok_or_else(|| wasmtime::format_err!("`{name}` does not export `{function}`"))
        };
        Ok(ExportIndex {
            package,
            kind,
            init: function("init")?,
            process: function("process")?,
        })
    }

    /// The interface.
    pub(crate) fn kind(&self) -> OperatorKind {
        self.kind
    }
}

/// One instance's operator export, its types checked.
pub(crate) struct Export {
    package: Package,
    kind: OperatorKind,
    init: Func,
    process: Func,
}

impl Export {
    /// The export `index` names in `instance`, checked against its interface's signature.
    pub(crate) fn load(
        index: &ExportIndex,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Export> {
        let init = *instance
            .get_typed_func::<InitParams<'_>, (bool,)>(&mut *store, &index.init)?
            .func();
        let process = match index.kind {
            OperatorKind::Map => checked::<MapCall>(index, store, instance)?,
            OperatorKind::Filter => checked::<FilterCall>(index, store, instance)?,
            OperatorKind::Branch => checked::<BranchCall>(index, store, instance)?,
            OperatorKind::Accumulate => checked::<AccumulateCall>(index, store, instance)?,
            OperatorKind::Delay => checked::<DelayCall>(index, store, instance)?,
        };
        Ok(Export {
            package: index.package,
            kind: index.kind,
            init,
            process,
        })
    }

    /// Calls `init`.
    pub(crate) fn init(
        &self,
        store: &mut Store<HostState>,
        configuration: &ModuleConfiguration,
    ) -> wasmtime::Result<bool> {
        // SAFETY: `load` checked `init`'s type as exactly this.
        let init = unsafe { TypedFunc::<InitParams<'_>, (bool,)>::new_unchecked(self.init) };
        Ok(init.call(store, (configuration,))?.0)
    }

    /// Calls `process` as interface `S`: an error if the export is another interface; the
    /// module's own error (`Ok(Err(..))`) only from the current package.
    pub(crate) fn process<S: Signature>(
        &self,
        store: &mut Store<HostState>,
        params: S::Params<'_>,
    ) -> wasmtime::Result<Result<S::Value, WitError>> {
        if S::KIND != self.kind {
            return Err(wasmtime::format_err!(
                "the node's operator is `{}`, not `{}`",
                self.kind,
                S::KIND
            ));
        }
        // SAFETY: `load` checked `process`'s type as `S`'s signature in `self.package`, and
        // `S` is the signature of `self.kind` (checked above).
        match self.package {
            Package::Current => {
                let process = unsafe { TypedFunc::<_, (Answer<S>,)>::new_unchecked(self.process) };
                Ok(process.call(store, params)?.0)
            }
            Package::Preview => {
                let process = unsafe { TypedFunc::<_, (S::Value,)>::new_unchecked(self.process) };
                Ok(Ok(process.call(store, params)?.0))
            }
        }
    }
}

/// What the current package's `process` returns.
type Answer<S> = Result<<S as Signature>::Value, WitError>;

/// `index`'s `process` in `instance`, its type checked as `S` in the index's package.
fn checked<S: Signature>(
    index: &ExportIndex,
    store: &mut Store<HostState>,
    instance: &Instance,
) -> wasmtime::Result<Func> {
    Ok(match index.package {
        Package::Current => *instance
            .get_typed_func::<S::Params<'_>, (Answer<S>,)>(store, &index.process)?
            .func(),
        Package::Preview => *instance
            .get_typed_func::<S::Params<'_>, (S::Value,)>(store, &index.process)?
            .func(),
    })
}
