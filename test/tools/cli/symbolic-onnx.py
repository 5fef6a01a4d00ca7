"""A tiny ONNX "classifier" whose graph leaves height, width and the class axis symbolic, with
two outputs: what `npm run models -- add` cannot read off the graph and must take from flags
or from a trial run.

    pixels [batch, 1, "height", "width"] -> mean over H, W -> pooled [batch, 1]
    scores = pooled tiled to [batch, height]: as many classes as the image is high

Usage: /usr/bin/python3 symbolic-onnx.py OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

pixels = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, "height", "width"])
scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", "classes"])
pooled = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 1])
consts = [
    numpy_helper.from_array(np.array([2], dtype=np.int64), name="height_axis"),
    numpy_helper.from_array(np.array([1], dtype=np.int64), name="one"),
]
graph = helper.make_graph(
    [
        helper.make_node("ReduceMean", ["pixels"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("Shape", ["pixels"], ["shape"]),
        helper.make_node("Gather", ["shape", "height_axis"], ["height"], axis=0),
        helper.make_node("Concat", ["one", "height"], ["repeats"], axis=0),
        helper.make_node("Tile", ["pooled", "repeats"], ["scores"]),
    ],
    "symbolic", [pixels], [scores, pooled], initializer=consts,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
