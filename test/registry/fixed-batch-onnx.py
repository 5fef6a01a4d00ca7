"""A copy of an ONNX model whose batch axis is fixed at 1 (input and outputs): what
torch.onnx.export writes without dynamic_axes.

Usage: /usr/bin/python3 fixed-batch-onnx.py IN.onnx OUT.onnx
"""
import sys

import onnx

model = onnx.load(sys.argv[1])
for value in [*model.graph.input, *model.graph.output]:
    dim = value.type.tensor_type.shape.dim[0]
    dim.ClearField("dim_param")
    dim.dim_value = 1
onnx.checker.check_model(model)
onnx.save(model, sys.argv[2])
