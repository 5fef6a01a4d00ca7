"""Run an ONNX graph in torch, node by node, and return any tensor it computes.

Python's onnxruntime is not installable here, so this is how the training side reads what the
SHIPPED model.onnx computes — its logits and any intermediate tensor (pooled features, head
input) — from the ONNX file itself, not from a re-created torch module: the features a detector
is fitted on are then exactly those the graph the service runs produces. Parity with ONNX
Runtime is checked against the repository's fixture (test/fixtures/parity/*.json, logits
written by onnxruntime-node's side of the contract) in training/tests/test_posthoc.py.

Only the operators the shipped exports and training/posthoc.py's detector use are implemented,
with opset-13 semantics; any other operator is refused by name, never guessed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


class OnnxEvalError(Exception):
    """The graph uses something this evaluator does not implement; the message says what."""


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _tensor(t: onnx.TensorProto) -> torch.Tensor:
    return torch.from_numpy(np.array(numpy_helper.to_array(t), copy=True))


def _conv(x, w, b=None, *, pads=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1), group=1, **_):
    top, left, bottom, right = pads[0], pads[1], pads[2], pads[3]
    if (top, left) != (bottom, right):
        x = F.pad(x, (left, right, top, bottom))
        top, left = 0, 0
    return F.conv2d(x, w, b, stride=tuple(strides), padding=(top, left), dilation=tuple(dilations), groups=group)


def _maxpool(x, *, kernel_shape, strides=None, pads=(0, 0, 0, 0), ceil_mode=0, dilations=(1, 1), **_):
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise OnnxEvalError("MaxPool with asymmetric pads is not implemented")
    return F.max_pool2d(x, tuple(kernel_shape), stride=tuple(strides or kernel_shape), padding=(pads[0], pads[1]),
                        dilation=tuple(dilations), ceil_mode=bool(ceil_mode))


def _gemm(a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, **_):
    y = alpha * ((a.T if transA else a) @ (b.T if transB else b))
    return y if c is None else y + beta * c


def _batchnorm(x, scale, bias, mean, var, *, epsilon=1e-5, **_):
    shape = (1, -1) + (1,) * (x.dim() - 2)  # inference mode: running statistics, channel axis 1
    return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + epsilon) * scale.view(shape) + bias.view(shape)


def _axes(x, axes):
    return tuple(range(x.dim())) if axes is None else tuple(int(a) for a in axes)


def _reduce(fn):
    def op(x, *, axes=None, keepdims=1, **_):
        return fn(x, _axes(x, axes), bool(keepdims))
    return op


def _reduce_min(x, axes, keepdim):
    for a in sorted((a % x.dim() for a in axes), reverse=True):
        x = x.min(dim=a, keepdim=keepdim).values
    return x


def _clip(x, lo=None, hi=None, **_):
    if lo is not None:
        x = torch.maximum(x, lo.to(x.dtype))
    if hi is not None:
        x = torch.minimum(x, hi.to(x.dtype))
    return x


def _expand(x, shape):
    # ONNX Expand broadcasts both ways: the output shape is broadcast(x.shape, shape).
    target = torch.broadcast_shapes(tuple(x.shape), tuple(int(s) for s in shape))
    return x.expand(target)


def _unsqueeze(x, axes):  # opset 13: axes is an input
    out_rank = x.dim() + len(axes)
    for a in sorted(int(a) % out_rank for a in axes):
        x = x.unsqueeze(a)
    return x


def _constant(*, value=None, **attrs):
    if value is None:
        raise OnnxEvalError(f"Constant without a tensor `value` ({', '.join(attrs)}) is not implemented")
    return _tensor(value)


OPS: dict[str, Callable] = {
    "Conv": _conv,
    "Relu": lambda x: torch.relu(x),
    "MaxPool": _maxpool,
    "GlobalAveragePool": lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    "Flatten": lambda x, *, axis=1: x.reshape(int(np.prod(x.shape[:axis])), -1),
    "Gemm": _gemm,
    "BatchNormalization": _batchnorm,
    "Abs": torch.abs,
    "Neg": torch.neg,
    "Sqrt": torch.sqrt,
    "ReduceL2": _reduce(lambda x, a, k: torch.sqrt((x * x).sum(dim=a, keepdim=k))),
    "ReduceSumSquare": _reduce(lambda x, a, k: (x * x).sum(dim=a, keepdim=k)),
    "ReduceMin": _reduce(_reduce_min),
    "ReduceMean": _reduce(lambda x, a, k: x.mean(dim=a, keepdim=k)),
    "Concat": lambda *xs, axis: torch.cat(xs, dim=axis),
    "Clip": _clip,
    "Shape": lambda x: torch.tensor(list(x.shape), dtype=torch.int64),
    "Expand": _expand,
    "Unsqueeze": _unsqueeze,
    "Add": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "Div": torch.div,
    "MatMul": torch.matmul,
    "Transpose": lambda x, *, perm=None: x.permute(*(perm if perm is not None else reversed(range(x.dim())))),
    "Constant": _constant,
}


class OnnxGraph:
    """A loaded ONNX model, evaluated in torch (float32, CPU, no autograd)."""

    def __init__(self, model: onnx.ModelProto | str | Path) -> None:
        self.model = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
        graph = self.model.graph
        missing = sorted({n.op_type for n in graph.node if n.domain not in ("", "ai.onnx")} |
                         {n.op_type for n in graph.node if n.op_type not in OPS})
        if missing:
            raise OnnxEvalError(f"operators not implemented by onnx_eval: {', '.join(missing)}")
        self.initializers = {t.name: _tensor(t) for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in self.initializers]
        self.output_names = [o.name for o in graph.output]
        self.nodes = list(graph.node)
        produced = {o for n in self.nodes for o in n.output}
        self.tensor_names = set(produced) | set(self.initializers) | set(self.input_names)

    def run(self, x: torch.Tensor | np.ndarray | None, outputs: Iterable[str] | None = None,
            given: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Evaluate the nodes the requested tensors (default: the graph's outputs) depend on and
        return those tensors. `given` supplies tensors already computed (e.g. the pooled
        features): nodes upstream of them are skipped, and `x` may then be None."""
        wanted = list(outputs) if outputs is not None else list(self.output_names)
        unknown = [w for w in wanted if w not in self.tensor_names]
        if unknown:
            raise OnnxEvalError(f"no tensor named {', '.join(map(repr, unknown))} in the graph")
        if len(self.input_names) != 1:
            raise OnnxEvalError(f"expected one graph input, found {self.input_names}")
        env: dict[str, torch.Tensor | None] = dict(self.initializers)
        env[""] = None  # an omitted optional input
        for name, value in (given or {}).items():
            env[name] = torch.as_tensor(value)
        if x is not None:
            env[self.input_names[0]] = torch.as_tensor(x, dtype=torch.float32)
        # Backwards from what is wanted: only the nodes that feed it and are not given run.
        needed, plan = set(w for w in wanted if w not in env), []
        for node in reversed(self.nodes):
            if any(o in needed for o in node.output):
                plan.append(node)
                needed.update(i for i in node.input if i not in env)
        if self.input_names[0] in needed and self.input_names[0] not in env:
            raise OnnxEvalError(f"{', '.join(wanted)} need the graph input {self.input_names[0]!r}, which was not given")
        with torch.no_grad():
            for node in reversed(plan):
                out = OPS[node.op_type](*[env[i] for i in node.input], **_attrs(node))
                for name, value in zip(node.output, out if isinstance(out, tuple) else (out,)):
                    env[name] = value
        return {w: env[w] for w in wanted}

    def run_batched(self, x: torch.Tensor | np.ndarray | None, outputs: Iterable[str] | None = None,
                    batch: int = 1000, given: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """run() over slices of the batch axis, concatenated (keeps memory flat on 60k images)."""
        wanted = list(outputs) if outputs is not None else list(self.output_names)
        given = {k: torch.as_tensor(v) for k, v in (given or {}).items()}
        x = None if x is None else torch.as_tensor(x, dtype=torch.float32)
        n = len(x) if x is not None else len(next(iter(given.values())))
        parts = [self.run(None if x is None else x[i:i + batch], wanted, {k: v[i:i + batch] for k, v in given.items()})
                 for i in range(0, n, batch)]
        return {w: torch.cat([p[w] for p in parts]) for w in wanted}
