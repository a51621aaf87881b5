#!/usr/bin/env python3
"""Writes the ONNX model the nn-classify module embeds: softmax(features . W + b), four f32
features in (input `features`, shape [1, 4]), three class scores out (`scores`, [1, 3]).

W picks the class from which of the first three features is largest; the fourth feature only
adds to the last class. Built with the `onnx` package from PyPI; no training, no download.

Usage: make-nn-model.py OUT.onnx
"""
import sys

import onnx
from onnx import TensorProto, helper

W = [
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
    [0.0, 0.0, 1.0],
    [0.0, 0.0, 0.5],
]
B = [0.0, 0.1, -0.1]


def model() -> onnx.ModelProto:
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])
    weights = helper.make_tensor("W", TensorProto.FLOAT, [4, 3], [w for row in W for w in row])
    bias = helper.make_tensor("B", TensorProto.FLOAT, [3], B)
    nodes = [
        helper.make_node("MatMul", ["features", "W"], ["product"]),
        helper.make_node("Add", ["product", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
    ]
    graph = helper.make_graph(nodes, "classifier", [features], [scores], [weights, bias])
    built = helper.make_model(
        graph,
        producer_name="weir",
        opset_imports=[helper.make_opsetid("", 13)],
    )
    built.ir_version = 8
    onnx.checker.check_model(built)
    return built


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    onnx.save(model(), sys.argv[1])
