// What an Open Inference Protocol response carries, whatever the transport: the same values
// POST /classify returns, in one vocabulary — logits, label, class_index, ood_score,
// ood_threshold, ood_reject, ood_p_value, min_distance, confidence, confidence_threshold,
// reject, reject_reasons — as tensors of N rows, with the classification extension
// (`"parameters": {"classification": k}` on an output → BYTES "value:index:label"). The one
// output builder: HTTP (oip-http/response.ts) writes its tensors as JSON `data` or binary, gRPC
// (oip-grpc/codec.ts) as typed contents or raw_output_contents.
import { BadRequestError } from '../../errors.js'
import type { Decision } from '../../ood/decision.js'
import type { LoadedModel } from '../../registry/load-manifest.js'
import { writeBytesElements } from './bytes-elements.js'

export type Datatype = 'FP32' | 'INT64' | 'BOOL' | 'BYTES'

export interface TensorMetadata {
  name: string
  datatype: Datatype
  shape: number[]
}

/** One classified image or sample: the model's output row and the decision made from it. */
export interface Classified {
  logits: Float32Array
  decision: Decision
}

/** The outputs a model offers (−1: the batch axis). */
export function modelOutputs (model: LoadedModel): TensorMetadata[] {
  const out: TensorMetadata[] = [
    { name: 'logits', datatype: 'FP32', shape: [-1, model.labels.length] },
    { name: 'label', datatype: 'BYTES', shape: [-1] },
    { name: 'class_index', datatype: 'INT64', shape: [-1] },
    { name: 'ood_score', datatype: 'FP32', shape: [-1] },
    { name: 'ood_threshold', datatype: 'FP32', shape: [-1] },
    { name: 'ood_reject', datatype: 'BOOL', shape: [-1] }
  ]
  if ((model.ood.calibration.scores?.length ?? 0) > 0) out.push({ name: 'ood_p_value', datatype: 'FP32', shape: [-1] })
  if (model.output.holds === 'negative-distances') out.push({ name: 'min_distance', datatype: 'FP32', shape: [-1] })
  // The one verdict over both reasons, as /classify's reject, rejectReasons and confidence.
  out.push({ name: 'confidence', datatype: 'FP32', shape: [-1] })
  if (model.selective !== undefined) out.push({ name: 'confidence_threshold', datatype: 'FP32', shape: [-1] })
  out.push({ name: 'reject', datatype: 'BOOL', shape: [-1] }, { name: 'reject_reasons', datatype: 'BYTES', shape: [-1] })
  return out
}

/** An output a request asks for (all of them when it lists none). */
export interface RequestedOutput {
  name: string
  parameters?: Record<string, unknown> | undefined
}

export interface Tensor {
  name: string
  datatype: Datatype
  shape: number[]
  values: number[] | boolean[] | string[]
}

/** An output tensor and whether the client asked for it in binary (raw) form. */
export interface OutputTensor extends Tensor {
  binary: boolean
}

function tensorOf (meta: TensorMetadata, rows: Classified[], classes: number): Tensor {
  const n = rows.length
  switch (meta.name) {
    case 'logits': return { ...meta, shape: [n, classes], values: rows.flatMap((r) => Array.from(r.logits)) }
    case 'label': return { ...meta, shape: [n], values: rows.map((r) => r.decision.label) }
    case 'class_index': return { ...meta, shape: [n], values: rows.map((r) => r.decision.classIndex) }
    case 'ood_score': return { ...meta, shape: [n], values: rows.map((r) => Math.fround(r.decision.ood.score)) }
    case 'ood_threshold': return { ...meta, shape: [n], values: rows.map((r) => Math.fround(r.decision.ood.threshold)) }
    case 'ood_reject': return { ...meta, shape: [n], values: rows.map((r) => r.decision.ood.reject) }
    case 'ood_p_value': return { ...meta, shape: [n], values: rows.map((r) => Math.fround(r.decision.ood.pValue ?? NaN)) }
    case 'confidence': return { ...meta, shape: [n], values: rows.map((r) => Math.fround(r.decision.confidence.value)) }
    case 'confidence_threshold': return { ...meta, shape: [n], values: rows.map((r) => Math.fround(r.decision.confidence.threshold ?? NaN)) }
    case 'reject': return { ...meta, shape: [n], values: rows.map((r) => r.decision.reject) }
    // One string per image: the reasons comma-separated ("ood", "uncertain", "ood,uncertain"), "" when accepted.
    case 'reject_reasons': return { ...meta, shape: [n], values: rows.map((r) => r.decision.rejectReasons.join(',')) }
    default: return { ...meta, shape: [n], values: rows.map((r) => Math.fround(r.decision.ood.minDistance ?? NaN)) }
  }
}

/** The classification extension: the top k of `logits` per row as "value:index:label". */
function classification (rows: Classified[], k: number, labels: readonly string[]): Tensor {
  const values = rows.flatMap((r) => {
    const order = Array.from(r.logits.keys()).sort((a, b) => (r.logits[b] as number) - (r.logits[a] as number))
    return order.slice(0, k).map((i) => `${r.logits[i] as number}:${i}:${labels[i] as string}`)
  })
  return { name: 'logits', datatype: 'BYTES', shape: [rows.length, k], values }
}

/** A tensor's raw bytes: little-endian numbers, BOOL one byte each, BYTES length-prefixed. */
export function encodeTensor (t: Tensor): Buffer {
  switch (t.datatype) {
    case 'FP32': return Buffer.from(Float32Array.from(t.values as number[]).buffer)
    case 'INT64': return Buffer.from(BigInt64Array.from((t.values as number[]).map((v) => BigInt(v))).buffer)
    case 'BOOL': return Buffer.from((t.values as boolean[]).map((v) => v ? 1 : 0))
    default: return writeBytesElements((t.values as string[]).map((s) => Buffer.from(s, 'utf8')))
  }
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1

/**
 * The outputs `requested` (every output when undefined) for `rows`, in the order asked, each
 * binary when its `binary_data` parameter says so, else `binaryDefault`.
 */
export function outputTensors (model: LoadedModel, rows: Classified[], requested: RequestedOutput[] | undefined, binaryDefault: boolean): OutputTensor[] {
  const available = modelOutputs(model)
  const wanted: RequestedOutput[] = requested ?? available.map((o) => ({ name: o.name }))
  return wanted.map((req) => {
    const meta = available.find((o) => o.name === req.name)
    if (meta === undefined) throw new BadRequestError(`unknown output "${req.name}": the model has ${available.map((o) => o.name).join(', ')}`)
    const k = req.parameters?.classification
    let tensor: Tensor
    if (k !== undefined) {
      if (req.name !== 'logits') throw new BadRequestError(`output "${req.name}": classification applies to "logits" only`)
      if (!positiveInt(k) || k > model.labels.length) throw new BadRequestError(`output "logits": classification must be a whole number from 1 to ${model.labels.length}`)
      tensor = classification(rows, k, model.labels)
    } else {
      tensor = tensorOf(meta, rows, model.labels.length)
    }
    const binary = req.parameters?.binary_data
    return { ...tensor, binary: typeof binary === 'boolean' ? binary : binaryDefault }
  })
}

/**
 * The decision rule travels with the scores: ood_reject = ood_score < ood_threshold, each
 * image's threshold an output of its own, since under per-class calibration it is the
 * predicted class's. Parameters stay scalars, as the protocol's $parameter_value requires.
 */
export function responseParameters (model: LoadedModel): { ood_score_kind: string, ood_calibration: 'per-class' | 'global' } {
  return {
    ood_score_kind: model.ood.score,
    ood_calibration: model.ood.classThresholds !== undefined ? 'per-class' : 'global'
  }
}
