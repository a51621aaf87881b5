//! Classifies readings with a small ONNX model embedded in the module (`include_bytes!`),
//! through `wasi:nn` (`0.2.0-rc-2024-10-28`): the graph must request the `wasi-nn` feature.
//!
//! Payload in: `{"features": [f32, f32, f32, f32]}`; out: the same object with `"class"` (the
//! label of the highest score) and `"scores"`. `"tensor": "i32"` sends the features as an i32
//! tensor instead, which the host refuses (the message goes to the dead-letter topic).
//!
//! The model is `target/nn/classifier.onnx`, which `scripts/make-nn-model.py` writes (run by
//! `scripts/build-modules.sh`): softmax(features · W + b) over three classes.

mod nn {
    wit_bindgen::generate!({
        path: "../../wit/wasi-nn",
        world: "wasi:nn/ml",
        generate_all,
    });
}

use nn::wasi::nn::graph::{self, ExecutionTarget, Graph, GraphEncoding};
use nn::wasi::nn::inference::GraphExecutionContext;
use nn::wasi::nn::tensor::{Tensor, TensorType};
use serde_json::{Map, Value};
use std::cell::RefCell;
use wasm_graph_sdk::logger::{self, Level};
use wasm_graph_sdk::macros::map_operator;

static MODEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/nn/classifier.onnx"
));
const LABELS: [&str; 3] = ["idle", "normal", "overload"];
const FEATURES: usize = 4;

thread_local! {
    /// The loaded model and its execution context (a component instance has one thread).
    static MODEL_CONTEXT: RefCell<Option<(Graph, GraphExecutionContext)>> = const { RefCell::new(None) };
}

fn nn_error(what: &str, error: nn::wasi::nn::errors::Error) -> String {
    format!("nn-classify: {what}: {:?}: {}", error.code(), error.data())
}

fn load() -> Result<(Graph, GraphExecutionContext), String> {
    let graph = graph::load(&[MODEL.to_vec()], GraphEncoding::Onnx, ExecutionTarget::Cpu)
        .map_err(|e| nn_error("cannot load the model", e))?;
    let context = graph
        .init_execution_context()
        .map_err(|e| nn_error("cannot start the model", e))?;
    Ok((graph, context))
}

fn classify_init(_configuration: ModuleConfiguration) -> bool {
    match load() {
        Ok(loaded) => {
            MODEL_CONTEXT.with(|slot| *slot.borrow_mut() = Some(loaded));
            true
        }
        Err(message) => {
            logger::log(Level::Error, "nn-classify", &message);
            false
        }
    }
}

/// The input tensor: the features as f32, or (`"tensor": "i32"`) as i32.
fn input_tensor(reading: &Map<String, Value>) -> Result<Tensor, Error> {
    let features: Vec<f32> = reading
        .get("features")
        .and_then(Value::as_array)
        .filter(|values| values.len() == FEATURES)
        .and_then(|values| values.iter().map(|v| v.as_f64().map(|f| f as f32)).collect())
        .ok_or_else(|| Error::new("nn-classify: expected {\"features\": [4 numbers]}"))?;
    let (ty, data): (TensorType, Vec<u8>) = match reading.get("tensor").and_then(Value::as_str) {
        Some("i32") => (
            TensorType::I32,
            features.iter().flat_map(|f| (*f as i32).to_le_bytes()).collect(),
        ),
        _ => (
            TensorType::Fp32,
            features.iter().flat_map(|f| f.to_le_bytes()).collect(),
        ),
    };
    Ok(Tensor::new(&[1, FEATURES as u32], ty, &data))
}

/// The scores the model gives `input`.
fn infer(input: Tensor) -> Result<Vec<f32>, Error> {
    MODEL_CONTEXT.with(|slot| {
        let slot = slot.borrow();
        let (_, context) = slot
            .as_ref()
            .ok_or_else(|| Error::new("nn-classify: init did not run"))?;
        let outputs = context
            .compute(vec![("features".to_string(), input)])
            .map_err(|e| Error::new(nn_error("inference failed", e)))?;
        let (_, scores) = outputs
            .into_iter()
            .next()
            .ok_or_else(|| Error::new("nn-classify: the model returned nothing"))?;
        if scores.ty() != TensorType::Fp32 {
            return Err(Error::new("nn-classify: the model returned no f32 scores"));
        }
        Ok(scores
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    })
}

#[map_operator(init = "classify_init")]
fn classify(input: DataModel) -> Result<DataModel, Error> {
    let DataModel::Message(mut message) = input else {
        return Err(Error::new("nn-classify: expected a message"));
    };
    let mut reading: Map<String, Value> = serde_json::from_slice(&message.payload.read())
        .map_err(|e| Error::new(format!("nn-classify: payload is not a JSON object: {e}")))?;
    let scores = infer(input_tensor(&reading)?)?;
    let best = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(index, _)| index)
        .ok_or_else(|| Error::new("nn-classify: no scores"))?;
    let label = LABELS.get(best).copied().unwrap_or("unknown");
    reading.insert("class".into(), Value::from(label));
    reading.insert("scores".into(), Value::from(scores));
    message.payload = BufferOrBytes::Bytes(Value::Object(reading).to_string().into_bytes());
    Ok(DataModel::Message(message))
}
