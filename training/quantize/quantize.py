"""INT8 variant of a served ONNX classifier, for `npm run models -- quantize` (which calls this).

Static QDQ quantisation with onnxruntime's own tooling: per-channel int8 weights, uint8
activations, MinMax calibration on the preprocessed images the caller gives (a raw float32
file, N×C×H×W), and only Conv, Relu and MaxPool quantised, so ONNX Runtime fuses the
convolutional trunk into a QLinearConv chain.

What stays float32 is found from the graph, not from node names, so it works on any model:
the *trunk* is every node reachable from the image input through spatial operators only
(convolutions, activations, pooling that keeps the spatial axes, normalisation, element-wise
ops); everything else — the global pool and all that follows it: the head, graph score
outputs such as the Mahalanobis distance, fully connected layers — is the *tail* and is
excluded. The first convolution (those fed by the image input) is tried both ways; the variant
with the better measured throughput is kept unless it agrees less with the float model (the
rule is in `choose`).

Usage: quantize.py --model IN.onnx --out OUT.onnx --tensors X.f32 --shape N,C,H,W
                   [--first-conv auto|int8|float] [--threads 1] [--reduce-range]
Prints one JSON object on stdout (what was excluded, each variant's speed and error, the choice).
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)

QUANTISED_OPS = ['Conv', 'Relu', 'MaxPool']
# Operators that keep [N, C, H, W] and so belong to the trunk while every data input does.
SPATIAL_OPS = {'Conv', 'ConvTranspose', 'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh',
               'MaxPool', 'AveragePool', 'BatchNormalization', 'InstanceNormalization', 'Add', 'Mul', 'Sub', 'Concat',
               'Pad', 'Resize', 'Upsample', 'Identity', 'Dropout', 'PRelu', 'Elu', 'Selu', 'Softplus'}


class Batches(CalibrationDataReader):
    def __init__(self, input_name, x, batch):
        self.input_name = input_name
        self.x = x
        self.batch = batch
        self.at = 0

    def get_next(self):
        if self.at >= len(self.x):
            return None
        b = self.x[self.at:self.at + self.batch]
        self.at += self.batch
        return {self.input_name: b}

    def rewind(self):
        self.at = 0


def graph_parts(model):
    """(trunk node names, tail node names, first-conv node names) of the graph."""
    graph = model.graph
    initialisers = {i.name for i in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initialisers]
    if len(inputs) != 1:
        raise SystemExit(f'expected one image input, the graph has {len(inputs)}: {inputs}')
    constants = set(initialisers) | {o for n in graph.node if n.op_type == 'Constant' for o in n.output}
    trunk_values = {inputs[0]}
    trunk, tail, first = [], [], []
    # Nodes are topologically sorted in a valid ONNX graph.
    for node in graph.node:
        data_inputs = [i for i in node.input if i != '' and i not in constants]
        in_trunk = (node.op_type in SPATIAL_OPS and len(data_inputs) > 0
                    and all(i in trunk_values for i in data_inputs))
        if in_trunk:
            trunk.append(node.name)
            trunk_values.update(node.output)
            if node.op_type == 'Conv' and inputs[0] in data_inputs:
                first.append(node.name)
        elif node.op_type != 'Constant':
            tail.append(node.name)
    return inputs[0], trunk, tail, first


def name_nodes(model):
    """Give unnamed nodes a name: nodes_to_exclude addresses nodes by name."""
    seen = set()
    for i, node in enumerate(model.graph.node):
        if node.name == '' or node.name in seen:
            node.name = f'{node.op_type}_{i}'
        seen.add(node.name)
    return model


def quantise(src, dst, reader, exclude, reduce_range=False):
    reader.rewind()
    quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=QUANTISED_OPS,
                    nodes_to_exclude=exclude)


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])


def outputs(sess, input_name, x, batch=64):
    parts = [sess.run(None, {input_name: x[i:i + batch]}) for i in range(0, len(x), batch)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def images_per_second(sessions, input_name, x, batch, rounds):
    """Median images/s of each session at `batch`, in alternating rounds (the order flips each round)."""
    feeds = {input_name: np.ascontiguousarray(np.resize(x, (batch,) + x.shape[1:]))}
    for s in sessions:
        s.run(None, feeds)
    times = [[] for _ in sessions]
    for r in range(rounds):
        order = range(len(sessions)) if r % 2 == 0 else reversed(range(len(sessions)))
        for k in order:
            reps = max(1, 256 // batch)
            t0 = time.process_time()
            for _ in range(reps):
                sessions[k].run(None, feeds)
            times[k].append((time.process_time() - t0) / (reps * batch))
    return [1.0 / float(np.median(t)) for t in times]


def error(reference, got, names):
    """How far the quantised outputs are from the float model's, per output, and the argmax agreement of the class scores."""
    out = {}
    for name, a, b in zip(names, reference, got):
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        out[name] = {'maxAbs': float(d.max()), 'meanAbs': float(d.mean()),
                     'maxRel': float((d / np.maximum(np.abs(a), 1e-6)).max())}
    # The class scores: the first [batch, classes] output (a graph may list a score output first).
    k = next((i for i, a in enumerate(reference) if a.ndim == 2 and a.shape[1] > 1), None)
    agree = float(np.mean(reference[k].argmax(axis=1) == got[k].argmax(axis=1))) if k is not None else 1.0
    return out, agree


# Two variants whose argmax agreement with the float model differs by less than this are equally
# good: on 1,000 calibration images a couple of flips either way is noise.
AGREEMENT_SLACK = 0.005


def choose(variants):
    """The faster variant (images per CPU-second at batch 1 and 32 summed) among those whose argmax
    agreement with the float model is within AGREEMENT_SLACK of the best."""
    most_agreeing = max(v['argmaxAgreement'] for v in variants)
    fit = [v for v in variants if v['argmaxAgreement'] >= most_agreeing - AGREEMENT_SLACK]
    return max(fit, key=lambda v: v['imagesPerCpuSecond']['1'] + v['imagesPerCpuSecond']['32'])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--tensors', required=True, help='raw little-endian float32, N×C×H×W, the preprocessed calibration images')
    p.add_argument('--shape', required=True, help='N,C,H,W of --tensors')
    p.add_argument('--first-conv', choices=['auto', 'int8', 'float'], default='auto')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--reduce-range', action='store_true',
                   help='7-bit weights: onnxruntime recommends it for x86 CPUs without VNNI, where u8×s8 sums can saturate')
    p.add_argument('--rounds', type=int, default=7)
    args = p.parse_args(argv)
    # quantize_static logs a suggestion to run its pre-processing on every call; this graph's
    # shapes come from the exporter, and stdout is the caller's JSON.
    logging.getLogger().setLevel(logging.ERROR)

    shape = tuple(int(v) for v in args.shape.split(','))
    x = np.fromfile(args.tensors, dtype='<f4')
    if len(shape) != 4 or x.size != int(np.prod(shape)):
        raise SystemExit(f'--tensors holds {x.size} floats, --shape {args.shape} needs {int(np.prod(shape))}')
    x = x.reshape(shape)

    model = name_nodes(onnx.load(args.model))
    input_name, trunk, tail, first = graph_parts(model)
    quantisable = [n.name for n in model.graph.node if n.op_type in QUANTISED_OPS and n.name in trunk]
    if len([n for n in quantisable if next(m for m in model.graph.node if m.name == n).op_type == 'Conv']) == 0:
        raise SystemExit('no convolution in the trunk (the nodes from the image input through spatial operators): nothing to quantise')
    tail_quantisable = [n.name for n in model.graph.node if n.op_type in QUANTISED_OPS and n.name in tail]

    with tempfile.TemporaryDirectory() as tmp:
        named = os.path.join(tmp, 'float.onnx')
        onnx.save(model, named)
        reader = Batches(input_name, x, 32)
        candidates = {'int8': [], 'float': first} if args.first_conv == 'auto' else {args.first_conv: first if args.first_conv == 'float' else []}
        float_session = session(named, args.threads)
        names = [o.name for o in float_session.get_outputs()]
        reference = outputs(float_session, input_name, x)
        variants = []
        for label, extra in candidates.items():
            path = os.path.join(tmp, f'int8-first-conv-{label}.onnx')
            quantise(named, path, reader, tail_quantisable + extra, args.reduce_range)
            s = session(path, args.threads)
            errs, agree = error(reference, outputs(s, input_name, x), names)
            variants.append({'firstConv': label, 'path': path, 'error': errs, 'argmaxAgreement': agree,
                             'excluded': tail_quantisable + extra, 'session': s})
        speeds = {}
        for batch in (1, 32):
            ips = images_per_second([float_session] + [v['session'] for v in variants], input_name, x, batch, args.rounds)
            speeds[str(batch)] = ips[0]
            for v, r in zip(variants, ips[1:]):
                v.setdefault('imagesPerCpuSecond', {})[str(batch)] = r
        chosen = choose(variants)
        with open(chosen['path'], 'rb') as f:
            data = f.read()
        with open(args.out, 'wb') as f:
            f.write(data)
    report = {
        'tool': f'onnxruntime {ort.__version__} quantize_static', 'format': 'QDQ', 'weights': 'int8, per channel',
        'activations': 'uint8', 'calibration': f'MinMax on {shape[0]} images', 'quantisedOps': QUANTISED_OPS,
        'trunk': trunk, 'keptFloat': chosen['excluded'], 'agreementSlack': AGREEMENT_SLACK,
        'tail': tail, 'firstConv': first, 'chosen': chosen['firstConv'],
        'floatImagesPerCpuSecond': speeds,
        'variants': [{k: v for k, v in var.items() if k not in ('session', 'path')} for var in variants],
        'threads': args.threads, 'reduceRange': args.reduce_range, 'cpuFlags': cpu_flags()
    }
    json.dump(report, sys.stdout)
    sys.stdout.write('\n')


def cpu_flags():
    """The x86 instruction sets ONNX Runtime's int8 kernels choose between, as /proc/cpuinfo lists them."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
    except OSError:
        return []
    return [f for f in ('avx2', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'amx_int8') if f in flags]


if __name__ == '__main__':
    main()
