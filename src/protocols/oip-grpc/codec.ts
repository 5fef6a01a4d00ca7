// ModelInfer's messages (inference.ModelInferRequest / ModelInferResponse, as @grpc/proto-loader
// decodes them with the options of definitions.ts) to and from what the Open Inference
// Protocol's shared parts take: the one input (protocols/oip/inputs.ts) and the output tensors
// (protocols/oip/outputs.ts). The input's data comes in raw_input_contents (what Triton's
// clients and perf_analyzer send) or in typed `contents`; the outputs go back the same way:
// raw_output_contents when the inputs came raw or the client asks for binary outputs (Triton's
// clients read numeric outputs only from there, by index, so it is all outputs or none), typed
// contents otherwise.
import { BadRequestError } from '../../errors.js'
import type { LoadedModel } from '../../registry/load-manifest.js'
import { modelInput, oneInputMessage, type InferLimits, type ModelInput, type TensorData } from '../oip/inputs.js'
import { encodeTensor, outputTensors, responseParameters, type Classified, type RequestedOutput } from '../oip/outputs.js'

/** inference.InferParameter: one of its fields is set (oneofs: true names which). */
export interface InferParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param'
  bool_param?: boolean
  int64_param?: number
  string_param?: string
  double_param?: number
  uint64_param?: number
}

export interface InferTensorContents {
  bool_contents?: boolean[]
  int_contents?: number[]
  int64_contents?: number[]
  uint_contents?: number[]
  uint64_contents?: number[]
  fp32_contents?: number[]
  fp64_contents?: number[]
  bytes_contents?: Buffer[]
}

export interface ModelInferRequest {
  model_name?: string
  model_version?: string
  id?: string
  parameters?: Record<string, InferParameter>
  inputs?: Array<{ name?: string, datatype?: string, shape?: number[], parameters?: Record<string, InferParameter>, contents?: InferTensorContents | null }>
  outputs?: Array<{ name?: string, parameters?: Record<string, InferParameter> }>
  raw_input_contents?: Buffer[]
}

export interface ModelInferResponse {
  model_name: string
  model_version: string
  id: string
  parameters: Record<string, InferParameter>
  outputs: Array<{ name: string, datatype: string, shape: number[], contents?: InferTensorContents }>
  raw_output_contents: Buffer[]
}

export interface DecodedInfer {
  input: ModelInput
  outputs: RequestedOutput[] | undefined
  /** Outputs in raw_output_contents. */
  raw: boolean
}

/** The value an InferParameter holds, or undefined when none is set. */
export function parameterValue (p: InferParameter | undefined): unknown {
  const choice = p?.parameter_choice
  return choice === undefined ? undefined : p![choice]
}

function parameters (map: Record<string, InferParameter> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(map ?? {}).map(([k, v]) => [k, parameterValue(v)]))
}

function toParameter (v: string | number | boolean): InferParameter {
  if (typeof v === 'boolean') return { bool_param: v }
  if (typeof v === 'string') return { string_param: v }
  return Number.isInteger(v) ? { int64_param: v } : { double_param: v }
}

/** Where each datatype's values go in InferTensorContents. */
const CONTENTS_FIELD: Record<string, keyof InferTensorContents> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents'
}

const MAX_RANK = 8

/** An input's shape: int64s the client chose, so bounded before anything multiplies them. */
function checkShape (shape: number[], what: string): number[] {
  if (shape.length > MAX_RANK) throw new BadRequestError(`${what}: shape has ${shape.length} dimensions, at most ${MAX_RANK}`)
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0 || d > 2 ** 31) throw new BadRequestError(`${what}: shape [${shape.join(', ')}] has a dimension that is not a whole number from 0 to 2^31`)
  }
  return shape
}

/** The typed contents of an input of `datatype`, refusing values put in another type's field. */
function typedData (datatype: string, contents: InferTensorContents, what: string): TensorData | undefined {
  const field = CONTENTS_FIELD[datatype]
  for (const [name, values] of Object.entries(contents)) {
    if (name !== field && Array.isArray(values) && values.length > 0) {
      throw new BadRequestError(`${what} is ${datatype}: its values go in contents.${field ?? '(none: unknown datatype)'} (or raw_input_contents), not contents.${name}`)
    }
  }
  if (datatype === 'BYTES') return (contents.bytes_contents?.length ?? 0) > 0 ? { kind: 'typed', elements: contents.bytes_contents! } : undefined
  if (datatype === 'FP32') return (contents.fp32_contents?.length ?? 0) > 0 ? { kind: 'typed', values: contents.fp32_contents! } : undefined
  return undefined
}

export function decodeInfer (req: ModelInferRequest, model: LoadedModel, limits: InferLimits): DecodedInfer {
  const inputs = req.inputs ?? []
  if (inputs.length !== 1) throw new BadRequestError(oneInputMessage(model, inputs.length))
  const t = inputs[0]!
  const name = t.name ?? ''
  const datatype = t.datatype ?? ''
  const what = `input "${name}"`
  const shape = checkShape(t.shape ?? [], what)
  const raw = req.raw_input_contents ?? []
  let data: TensorData | undefined
  if (raw.length > 0) {
    // Triton's rule: raw contents for every input or for none, one entry per input.
    if (raw.length !== inputs.length) throw new BadRequestError(`raw_input_contents has ${raw.length} entries for ${inputs.length} input; one per input`)
    if (t.contents != null && Object.values(t.contents).some((v) => Array.isArray(v) && v.length > 0)) throw new BadRequestError(`${what}: data in both raw_input_contents and contents; send one`)
    data = { kind: 'raw', bytes: raw[0]! }
  } else if (t.contents != null) {
    data = typedData(datatype, t.contents, what)
  }
  const input = modelInput({ name, datatype, shape }, data, model, limits, 'neither contents nor raw_input_contents')

  const params = parameters(req.parameters)
  const flag = params.binary_data_output
  if (flag !== undefined && typeof flag !== 'boolean') throw new BadRequestError('parameters.binary_data_output must be a bool_param')
  const outputs = req.outputs !== undefined && req.outputs.length > 0
    ? req.outputs.map((o, i) => {
      if (o.name === undefined || o.name === '') throw new BadRequestError(`outputs[${i}]: no name`)
      return { name: o.name, parameters: parameters(o.parameters) }
    })
    : undefined
  const anyBinary = outputs?.some((o) => o.parameters.binary_data === true) ?? false
  return { input, outputs, raw: raw.length > 0 || flag === true || anyBinary }
}

/** The response: the shared output tensors, typed or raw. */
export function encodeInfer (model: LoadedModel, rows: Classified[], decoded: DecodedInfer, id: string): ModelInferResponse {
  const tensors = outputTensors(model, rows, decoded.outputs, decoded.raw)
  const raw: Buffer[] = []
  const outputs = tensors.map((t) => {
    const meta = { name: t.name, datatype: t.datatype, shape: t.shape }
    if (decoded.raw) {
      raw.push(encodeTensor(t))
      return meta
    }
    const field = CONTENTS_FIELD[t.datatype]!
    const values = t.datatype === 'BYTES' ? (t.values as string[]).map((s) => Buffer.from(s, 'utf8')) : t.values
    return { ...meta, contents: { [field]: values } }
  })
  return {
    model_name: model.name,
    model_version: model.version,
    id,
    parameters: Object.fromEntries(Object.entries(responseParameters(model)).map(([k, v]) => [k, toParameter(v)])),
    outputs,
    raw_output_contents: raw
  }
}
