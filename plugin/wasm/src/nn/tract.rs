//! An ONNX backend for `wasi:nn` on [tract]: pure Rust, compiled into the broker (no shared
//! library, nothing downloaded at build or run time), CPU only.
//!
//! Inputs are f32 tensors; outputs are returned in their own type (f32, f64, i32, i64, u8).
//! Every size a module gives is checked before any copy.

use std::sync::Arc;
use tract_onnx::prelude::{
    tvec, DatumType, Framework, InferenceModelExt, IntoRunnable, IntoTValue, TValue,
    Tensor as TractTensor, TypedRunnableModel,
};
use wasmtime_wasi_nn::backend::{
    BackendError, BackendExecutionContext, BackendFromDir, BackendGraph, BackendInner, Id,
    NamedTensor,
};
use wasmtime_wasi_nn::wit::{ExecutionTarget, GraphEncoding, TensorType};
use wasmtime_wasi_nn::{ExecutionContext, Graph, Tensor};

/// Loads ONNX models (`graph-encoding.onnx`) with tract.
#[derive(Debug, Default)]
pub struct TractBackend;

impl BackendInner for TractBackend {
    fn encoding(&self) -> GraphEncoding {
        GraphEncoding::Onnx
    }

    fn load(&mut self, builders: &[&[u8]], target: ExecutionTarget) -> Result<Graph, BackendError> {
        let [model] = builders else {
            return Err(BackendError::InvalidNumberOfBuilders(1, builders.len()));
        };
        if !matches!(target, ExecutionTarget::Cpu) {
            return Err(failure(format!(
                "execution target {target:?} is not available: the ONNX backend runs on the CPU"
            )));
        }
        let model = tract_onnx::onnx()
            .model_for_read(&mut &model[..])
            .and_then(|model| model.into_optimized())
            .map_err(|e| failure(format!("cannot load the ONNX model: {e:#}")))?;
        let inputs = input_names(&model);
        let outputs = model
            .outputs
            .iter()
            .map(|outlet| model.node(outlet.node).name.clone())
            .collect();
        let plan = model
            .into_runnable()
            .map_err(|e| failure(format!("cannot plan the ONNX model: {e:#}")))?;
        let graph: Box<dyn BackendGraph> = Box::new(TractGraph {
            plan,
            inputs: Arc::new(inputs),
            outputs: Arc::new(outputs),
        });
        Ok(graph.into())
    }

    fn as_dir_loadable(&mut self) -> Option<&mut dyn BackendFromDir> {
        None
    }
}

fn input_names(model: &tract_onnx::prelude::TypedModel) -> Vec<String> {
    model
        .inputs
        .iter()
        .map(|outlet| model.node(outlet.node).name.clone())
        .collect()
}

/// A loaded model.
struct TractGraph {
    plan: Arc<TypedRunnableModel>,
    inputs: Arc<Vec<String>>,
    outputs: Arc<Vec<String>>,
}

impl BackendGraph for TractGraph {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let context: Box<dyn BackendExecutionContext> = Box::new(TractContext {
            plan: self.plan.clone(),
            input_names: self.inputs.clone(),
            output_names: self.outputs.clone(),
            inputs: vec![None; self.inputs.len()],
            outputs: Vec::new(),
        });
        Ok(context.into())
    }
}

/// One execution context: the inputs set so far and the outputs of the last `compute`.
struct TractContext {
    plan: Arc<TypedRunnableModel>,
    input_names: Arc<Vec<String>>,
    output_names: Arc<Vec<String>>,
    inputs: Vec<Option<TValue>>,
    outputs: Vec<Tensor>,
}

impl TractContext {
    fn index(names: &[String], id: &Id) -> Result<usize, BackendError> {
        match id {
            Id::Index(i) => usize::try_from(*i)
                .ok()
                .filter(|i| *i < names.len())
                .ok_or_else(|| failure(format!("no tensor {i}: the model has {}", names.len()))),
            Id::Name(name) => names
                .iter()
                .position(|n| n == name)
                .or_else(|| name.parse().ok().filter(|i: &usize| *i < names.len()))
                .ok_or_else(|| failure(format!("no tensor `{name}`: the model has {names:?}"))),
        }
    }

    fn run(&mut self) -> Result<(), BackendError> {
        let mut inputs = tvec![];
        for (name, input) in self.input_names.iter().zip(&self.inputs) {
            let input = input
                .clone()
                .ok_or_else(|| failure(format!("input `{name}` was not set")))?;
            inputs.push(input);
        }
        let results = self
            .plan
            .run(inputs)
            .map_err(|e| failure(format!("inference failed: {e:#}")))?;
        self.outputs = results.iter().map(from_tract).collect::<Result<_, _>>()?;
        Ok(())
    }
}

impl BackendExecutionContext for TractContext {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        let index = Self::index(&self.input_names, &id)?;
        self.inputs[index] = Some(to_tract(tensor)?);
        Ok(())
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        let index = Self::index(&self.output_names, &id)?;
        self.outputs
            .get(index)
            .cloned()
            .ok_or_else(|| failure("no output yet: `compute` has not run".to_string()))
    }

    fn compute(
        &mut self,
        inputs: Option<Vec<NamedTensor>>,
    ) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        let Some(named) = inputs else {
            self.run()?;
            return Ok(None);
        };
        self.inputs.iter_mut().for_each(|input| *input = None);
        for input in &named {
            let index = Self::index(&self.input_names, &Id::Name(input.name.clone()))?;
            self.inputs[index] = Some(to_tract(&input.tensor)?);
        }
        self.run()?;
        Ok(Some(
            self.output_names
                .iter()
                .zip(&self.outputs)
                .map(|(name, tensor)| NamedTensor {
                    name: name.clone(),
                    tensor: tensor.clone(),
                })
                .collect(),
        ))
    }
}

/// A module's tensor as tract's: f32 only, its data exactly as long as its dimensions say.
fn to_tract(tensor: &Tensor) -> Result<TValue, BackendError> {
    if !matches!(tensor.ty, TensorType::Fp32) {
        return Err(BackendError::UnsupportedTensorType(format!(
            "{:?}: the ONNX backend takes f32 inputs",
            tensor.ty
        )));
    }
    let shape: Vec<usize> = tensor.dimensions.iter().map(|&d| d as usize).collect();
    let expected = shape
        .iter()
        .try_fold(4usize, |bytes, &d| bytes.checked_mul(d))
        .ok_or_else(|| failure(format!("dimensions {:?} overflow", tensor.dimensions)))?;
    if tensor.data.len() != expected {
        return Err(failure(format!(
            "an f32 tensor of dimensions {:?} holds {expected} bytes, not {}",
            tensor.dimensions,
            tensor.data.len()
        )));
    }
    let values: Vec<f32> = tensor
        .data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    TractTensor::from_shape(&shape, &values)
        .map(IntoTValue::into_tvalue)
        .map_err(|e| failure(format!("{e:#}")))
}

/// tract's result as a `wasi:nn` tensor.
fn from_tract(value: &TValue) -> Result<Tensor, BackendError> {
    let ty = match value.datum_type() {
        DatumType::F32 => TensorType::Fp32,
        DatumType::F64 => TensorType::Fp64,
        DatumType::F16 => TensorType::Fp16,
        DatumType::I32 => TensorType::I32,
        DatumType::I64 => TensorType::I64,
        DatumType::U8 => TensorType::U8,
        other => {
            return Err(BackendError::UnsupportedTensorType(format!(
                "the model returns {other:?}, which wasi:nn cannot carry"
            )))
        }
    };
    let dimensions = value
        .shape()
        .iter()
        .map(|&d| u32::try_from(d).map_err(|_| failure(format!("dimension {d} is too large"))))
        .collect::<Result<_, _>>()?;
    // SAFETY-free: the plain data types above are read as their little-endian bytes.
    let data = value.as_bytes().to_vec();
    Ok(Tensor {
        dimensions,
        ty,
        data,
    })
}

fn failure(message: String) -> BackendError {
    BackendError::BackendAccess(wasmtime::Error::msg(message))
}
