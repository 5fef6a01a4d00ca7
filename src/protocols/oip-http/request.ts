// An Open Inference Protocol inference request (kserve/open-inference-protocol, REST), parsed
// and checked against what an isomax-serve model accepts: one input, either
//   image  BYTES [N]: N encoded images (PNG, JPEG, WebP), preprocessed as /classify does, or
//   <the ONNX input's name>  FP32 [N, C, H, W]: tensors the caller preprocessed itself.
// Data comes as JSON `data` (flat or nested, row-major; BYTES elements base64-encoded) or
// binary (binary-body.ts). Every problem is a 400 naming the field.
import { z } from 'zod'
import { BadRequestError } from '../../errors.js'
import type { LoadedModel } from '../../registry/load-manifest.js'
import { readBytesElements, splitBody, takeBinary } from './binary-body.js'
import { jsonShapeProblem, type JsonShapeLimits } from './json-shape.js'

export const IMAGE_INPUT = 'image'

/**
 * An optional field that may also be `null`, read as absent: generated clients
 * (open-inference-openapi) send every unset optional field as null.
 */
const optional = <T extends z.ZodType>(schema: T): z.ZodOptional<z.ZodPipe<z.ZodNullable<T>, z.ZodTransform<z.output<T> | undefined, z.output<T> | null>>> =>
  schema.nullable().transform((v) => v ?? undefined).optional()

const Parameters = z.record(z.string(), z.unknown())

const TensorSchema = z.object({
  name: z.string().min(1).max(256),
  shape: z.array(z.number().int().min(0).max(2 ** 31)).max(8),
  datatype: z.string().min(1).max(16),
  parameters: optional(Parameters),
  data: z.unknown().optional()
})

const RequestedOutputSchema = z.object({
  name: z.string().min(1).max(256),
  parameters: optional(Parameters)
})

export const InferRequestSchema = z.object({
  id: optional(z.string().max(256)),
  parameters: optional(Parameters),
  inputs: z.array(TensorSchema).min(1).max(16),
  outputs: optional(z.array(RequestedOutputSchema).max(32))
})

export type InferRequest = z.infer<typeof InferRequestSchema>
export type RequestedOutput = z.infer<typeof RequestedOutputSchema>

export type ModelInput =
  | { kind: 'images', images: Buffer[] }
  | { kind: 'tensor', count: number, data: Float32Array }

export interface ParsedInfer {
  request: InferRequest
  input: ModelInput
}

export interface InferLimits {
  /** Most images or samples in one request (MAX_FILES). */
  maxElements: number
  /** Largest encoded image (MAX_UPLOAD_BYTES). */
  maxImageBytes: number
  /** Largest JSON header: JSON is parsed on the event loop, so it stays small. */
  maxJsonBytes: number
}

/**
 * The JSON shapes a request may have: a few levels of objects around tensor data nested at most
 * 8 deep (the shape's rank), tens of keys, and as many elements as MAX_FILES samples hold plus
 * room for shapes, outputs and parameters. Far more than any client sends, far less than what
 * stalls the event loop.
 */
export function jsonShapeLimits (limits: InferLimits, sampleSize: number): JsonShapeLimits {
  return { maxDepth: 16, maxKeys: 1024, maxElements: limits.maxElements * Math.max(1, sampleSize) + 4096 }
}

function parseHeader (header: Buffer, limits: InferLimits, sampleSize: number): InferRequest {
  if (header.length > limits.maxJsonBytes) {
    throw new BadRequestError(`the JSON part of the request is ${header.length} bytes, more than ${limits.maxJsonBytes}; send tensor data in binary (binary_data_size)`)
  }
  const problem = jsonShapeProblem(header, jsonShapeLimits(limits, sampleSize))
  if (problem !== null) throw new BadRequestError(`the inference request's JSON is ${problem}; send tensor data flat or nested as its shape, or in binary (binary_data_size)`)
  let raw: unknown
  try {
    raw = JSON.parse(header.toString('utf8'))
  } catch (err) {
    throw new BadRequestError(`the inference request is not valid JSON: ${(err as Error).message}`)
  }
  const parsed = InferRequestSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new BadRequestError(`invalid inference request: ${issue.path.join('.') || '(root)'}: ${issue.message}`)
  }
  return parsed.data
}

const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1)

/** Where the `i`-th value (row-major) sits in a tensor of `shape`: "[0, 0, 3, 17]". */
function at (i: number, shape: number[]): string {
  const index = new Array<number>(shape.length)
  for (let d = shape.length - 1; d >= 0; d--) {
    const size = shape[d] as number
    index[d] = i % size
    i = Math.floor(i / size)
  }
  return `[${index.join(', ')}]`
}

/**
 * JSON `data` as a flat list of the shape's values, row-major. The protocol allows it flat
 * (one list of every value) or nested exactly as the shape; anything else — ragged rows, a
 * nesting that is neither — is refused, naming where it departs from the shape.
 */
export function flattenData (data: unknown, shape: number[], what: string): unknown[] {
  const count = product(shape)
  if (!Array.isArray(data)) throw new BadRequestError(`${what}: data must be a list of values`)
  if (!data.some(Array.isArray)) {
    if (data.length !== count) throw new BadRequestError(`${what}: data has ${data.length} values, the shape says ${count}`)
    return data
  }
  const out: unknown[] = []
  const walk = (v: unknown, dim: number, path: string): void => {
    if (dim === shape.length) {
      if (Array.isArray(v)) throw new BadRequestError(`${what}: ${path} is a list; the shape [${shape.join(', ')}] has ${shape.length} dimensions`)
      out.push(v)
      return
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) {
      const got = Array.isArray(v) ? `${v.length} elements` : 'a single value'
      throw new BadRequestError(`${what}: ${path} has ${got}, the shape [${shape.join(', ')}] says ${shape[dim]} (data must be flat, or nested exactly as the shape)`)
    }
    v.forEach((x, i) => walk(x, dim + 1, `${path}[${i}]`))
  }
  walk(data, 0, 'data')
  return out
}

function imagesInput (t: z.infer<typeof TensorSchema>, binary: Buffer | undefined, limits: InferLimits): ModelInput {
  const what = `input "${t.name}"`
  // [N] as KServe clients send it, or [N, 1] as the metadata and config state it (Triton's dims
  // [1] per sample, what perf_analyzer sends): one encoded image per element either way.
  if (!(t.shape.length === 1 || (t.shape.length === 2 && t.shape[1] === 1))) throw new BadRequestError(`${what}: shape must be [N] or [N, 1] (one encoded image per element), got [${t.shape.join(', ')}]`)
  const n = t.shape[0]!
  if (n < 1 || n > limits.maxElements) throw new BadRequestError(`${what}: between 1 and ${limits.maxElements} images per request (MAX_FILES), got ${n}`)
  let images: Buffer[]
  if (binary !== undefined) {
    images = readBytesElements(binary, n, what)
  } else if (t.data !== undefined) {
    images = flattenData(t.data, t.shape, what).map((v, i) => {
      if (typeof v !== 'string') throw new BadRequestError(`${what}: element ${i}: BYTES data in JSON must be a base64 string (or send it in binary)`)
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new BadRequestError(`${what}: element ${i} is not base64`)
      return Buffer.from(v, 'base64')
    })
  } else {
    throw new BadRequestError(`${what}: no data (neither "data" nor parameters.binary_data_size)`)
  }
  images.forEach((img, i) => {
    if (img.length === 0) throw new BadRequestError(`${what}: element ${i} is empty`)
    if (img.length > limits.maxImageBytes) throw new BadRequestError(`${what}: element ${i} is ${img.length} bytes, more than ${limits.maxImageBytes} (MAX_UPLOAD_BYTES)`)
  })
  return { kind: 'images', images }
}

function tensorInput (t: z.infer<typeof TensorSchema>, binary: Buffer | undefined, model: LoadedModel, limits: InferLimits): ModelInput {
  const what = `input "${t.name}"`
  const { channels, height, width } = model.input
  const want = [channels, height, width]
  if (t.shape.length !== 4 || t.shape.slice(1).some((d, i) => d !== want[i])) {
    throw new BadRequestError(`${what}: shape must be [N, ${want.join(', ')}], got [${t.shape.join(', ')}]`)
  }
  const n = t.shape[0]!
  if (n < 1 || n > limits.maxElements) throw new BadRequestError(`${what}: between 1 and ${limits.maxElements} samples per request (MAX_FILES), got ${n}`)
  const count = product(t.shape)
  let data: Float32Array
  if (binary !== undefined) {
    if (binary.length !== count * 4) throw new BadRequestError(`${what}: binary_data_size is ${binary.length} bytes; FP32 [${t.shape.join(', ')}] is ${count * 4}`)
    // A copy: the body's bytes need not be 4-byte aligned, and the engine transfers buffers.
    data = new Float32Array(count)
    for (let i = 0; i < count; i++) {
      const v = binary.readFloatLE(i * 4)
      if (!Number.isFinite(v)) throw new BadRequestError(`${what}: value ${i} is ${v} (element ${at(i, t.shape)}); FP32 inputs must be finite`)
      data[i] = v
    }
  } else if (t.data !== undefined) {
    const values = flattenData(t.data, t.shape, what)
    data = new Float32Array(count)
    values.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequestError(`${what}: value ${i} is not a finite number (element ${at(i, t.shape)})`)
      // A double past ±3.4028235e38 is finite here and Infinity in a Float32Array.
      if (!Number.isFinite(Math.fround(v))) throw new BadRequestError(`${what}: value ${i} is ${v}, beyond the FP32 range ±3.4028235e38 (element ${at(i, t.shape)})`)
      data[i] = v
    })
  } else {
    throw new BadRequestError(`${what}: no data (neither "data" nor parameters.binary_data_size)`)
  }
  return { kind: 'tensor', count: n, data }
}

/**
 * `binary_data` (per output) and `binary_data_output` (per request) are booleans in the
 * protocol; anything else ("yes", 1) was silently ignored, leaving the client JSON it did
 * not ask for.
 */
function checkBinaryFlags (request: InferRequest): void {
  const flag = request.parameters?.binary_data_output
  if (flag !== undefined && typeof flag !== 'boolean') throw new BadRequestError(`parameters.binary_data_output must be true or false, got ${JSON.stringify(flag).slice(0, 40)}`)
  for (const [i, out] of (request.outputs ?? []).entries()) {
    const v = out.parameters?.binary_data
    if (v !== undefined && typeof v !== 'boolean') throw new BadRequestError(`outputs[${i}] ("${out.name}"): parameters.binary_data must be true or false, got ${JSON.stringify(v).slice(0, 40)}`)
  }
}

/**
 * The request's JSON and input data from a body (Inference-Header-Content-Length: the JSON's
 * length when binary data follows; "0": the whole body is one encoded image).
 */
export function parseInfer (body: Buffer, headerLength: string | string[] | undefined, model: LoadedModel, limits: InferLimits): ParsedInfer {
  if (headerLength === '0') {
    // Raw binary: the model's one input is the whole body, here one encoded image.
    if (body.length === 0) throw new BadRequestError('the body is empty: send an image')
    if (body.length > limits.maxImageBytes) throw new BadRequestError(`the image is ${body.length} bytes, more than ${limits.maxImageBytes} (MAX_UPLOAD_BYTES)`)
    return { request: { inputs: [{ name: IMAGE_INPUT, shape: [1], datatype: 'BYTES' }] }, input: { kind: 'images', images: [body] } }
  }
  const { header, binary } = splitBody(body, headerLength)
  const request = parseHeader(header, limits, model.input.channels * model.input.height * model.input.width)
  checkBinaryFlags(request)
  if (request.inputs.length !== 1) {
    throw new BadRequestError(`the model takes one input, "${IMAGE_INPUT}" (BYTES) or "${model.input.name}" (FP32); got ${request.inputs.length}`)
  }
  const sizes = request.inputs.map((t) => {
    const s = t.parameters?.binary_data_size
    if (s === undefined) return undefined
    if (typeof s !== 'number') throw new BadRequestError(`input "${t.name}": parameters.binary_data_size must be a number`)
    return s
  })
  const [data] = takeBinary(binary, sizes)
  const t = request.inputs[0]!
  let input: ModelInput
  if (t.name === IMAGE_INPUT && t.datatype === 'BYTES') input = imagesInput(t, data, limits)
  else if (t.name === model.input.name && t.datatype === 'FP32') input = tensorInput(t, data, model, limits)
  else throw new BadRequestError(`unknown input "${t.name}" (${t.datatype}): the model takes "${IMAGE_INPUT}" (BYTES, encoded images) or "${model.input.name}" (FP32 [N, ${model.input.channels}, ${model.input.height}, ${model.input.width}])`)
  return { request, input }
}
