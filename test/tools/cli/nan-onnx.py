"""A tiny ONNX classifier that outputs NaN for a uniform image (an all-black one), as a
bring-your-own model does when it normalises features by a norm that can be zero:

    pixels [batch, 1, 28, 28] -> flatten -> x - min(x) -> / L2 norm -> @ W [784, 10] -> logits

A uniform image has x - min(x) = 0 everywhere: 0 / 0 = NaN. Any other image is finite.

Usage: /usr/bin/python3 nan-onnx.py OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

pixels = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, 28, 28])
logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])
weights = np.random.default_rng(0).standard_normal((784, 10)).astype(np.float32)
graph = helper.make_graph(
    [
        helper.make_node("Flatten", ["pixels"], ["flat"], axis=1),
        helper.make_node("ReduceMin", ["flat"], ["low"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["flat", "low"], ["shifted"]),
        helper.make_node("ReduceL2", ["shifted"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Div", ["shifted", "norm"], ["unit"]),
        helper.make_node("MatMul", ["unit", "weights"], ["logits"]),
    ],
    "nan_on_uniform", [pixels], [logits], initializer=[numpy_helper.from_array(weights, name="weights")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
