// What an isomax-serve model accepts as an Open Inference Protocol input, whatever transport
// carried it (HTTP JSON or binary, gRPC typed contents or raw_input_contents): one input, either
//   image  BYTES [N] or [N, 1]: N encoded images (PNG, JPEG, WebP), preprocessed as /classify does, or
//   <the ONNX input's name>  FP32 [N, C, H, W]: tensors the caller preprocessed itself.
// Every problem is a BadRequestError naming the input and the element; a declared shape is
// checked against the limits before any data is read or allocated.
import { BadRequestError } from '../../errors.js'
import type { LoadedModel } from '../../registry/load-manifest.js'
import type { Samples } from '../../serving/data-plane.js'
import { readBytesElements } from './bytes-elements.js'

export const IMAGE_INPUT = 'image'

/** An input tensor as a request declares it, before its data is read. */
export interface InputTensor {
  name: string
  datatype: string
  shape: number[]
}

/**
 * An input's data as its transport carried it:
 *   raw    the tensor's bytes (HTTP binary_data_size, gRPC raw_input_contents): FP32 little-endian,
 *          BYTES as 4-byte-length-prefixed elements;
 *   json   HTTP JSON `data`, flat or nested as the shape (BYTES elements base64 strings);
 *   typed  gRPC's InferTensorContents, already split: one number per FP32 value, one buffer per
 *          BYTES element.
 */
export type TensorData =
  | { kind: 'raw', bytes: Buffer }
  | { kind: 'json', data: unknown }
  | { kind: 'typed', values: ArrayLike<number> }
  | { kind: 'typed', elements: Buffer[] }

export type ModelInput =
  | { kind: 'images', images: Buffer[] }
  | { kind: 'tensor', count: number, data: Float32Array }

export interface InferLimits {
  /** Most images or samples in one request (MAX_FILES). */
  maxElements: number
  /** Largest encoded image (MAX_UPLOAD_BYTES). */
  maxImageBytes: number
  /** Largest JSON header: JSON is parsed on the event loop, so it stays small. */
  maxJsonBytes: number
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

function imagesInput (t: InputTensor, data: TensorData | undefined, limits: InferLimits, missing: string): ModelInput {
  const what = `input "${t.name}"`
  // [N] as KServe clients send it, or [N, 1] as the metadata and config state it (Triton's dims
  // [1] per sample, what perf_analyzer sends): one encoded image per element either way.
  if (!(t.shape.length === 1 || (t.shape.length === 2 && t.shape[1] === 1))) throw new BadRequestError(`${what}: shape must be [N] or [N, 1] (one encoded image per element), got [${t.shape.join(', ')}]`)
  const n = t.shape[0]!
  if (n < 1 || n > limits.maxElements) throw new BadRequestError(`${what}: between 1 and ${limits.maxElements} images per request (MAX_FILES), got ${n}`)
  if (data === undefined) throw new BadRequestError(`${what}: no data (${missing})`)
  let images: Buffer[]
  if (data.kind === 'raw') {
    images = readBytesElements(data.bytes, n, what)
  } else if (data.kind === 'json') {
    images = flattenData(data.data, t.shape, what).map((v, i) => {
      if (typeof v !== 'string') throw new BadRequestError(`${what}: element ${i}: BYTES data in JSON must be a base64 string (or send it in binary)`)
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new BadRequestError(`${what}: element ${i} is not base64`)
      return Buffer.from(v, 'base64')
    })
  } else if ('elements' in data) {
    if (data.elements.length !== n) throw new BadRequestError(`${what}: ${data.elements.length} elements, the shape [${t.shape.join(', ')}] says ${n}`)
    images = data.elements
  } else {
    throw new BadRequestError(`${what}: BYTES data must be encoded images, not numbers`)
  }
  images.forEach((img, i) => {
    if (img.length === 0) throw new BadRequestError(`${what}: element ${i} is empty`)
    if (img.length > limits.maxImageBytes) throw new BadRequestError(`${what}: element ${i} is ${img.length} bytes, more than ${limits.maxImageBytes} (MAX_UPLOAD_BYTES)`)
  })
  return { kind: 'images', images }
}

function tensorInput (t: InputTensor, data: TensorData | undefined, model: LoadedModel, limits: InferLimits, missing: string): ModelInput {
  const what = `input "${t.name}"`
  const { channels, height, width } = model.input
  const want = [channels, height, width]
  if (t.shape.length !== 4 || t.shape.slice(1).some((d, i) => d !== want[i])) {
    throw new BadRequestError(`${what}: shape must be [N, ${want.join(', ')}], got [${t.shape.join(', ')}]`)
  }
  const n = t.shape[0]!
  if (n < 1 || n > limits.maxElements) throw new BadRequestError(`${what}: between 1 and ${limits.maxElements} samples per request (MAX_FILES), got ${n}`)
  if (data === undefined) throw new BadRequestError(`${what}: no data (${missing})`)
  const count = product(t.shape)
  const out = new Float32Array(count)
  if (data.kind === 'raw') {
    const binary = data.bytes
    if (binary.length !== count * 4) throw new BadRequestError(`${what}: the data is ${binary.length} bytes; FP32 [${t.shape.join(', ')}] is ${count * 4}`)
    // A copy: the bytes need not be 4-byte aligned, and the engine transfers buffers.
    for (let i = 0; i < count; i++) {
      const v = binary.readFloatLE(i * 4)
      if (!Number.isFinite(v)) throw new BadRequestError(`${what}: value ${i} is ${v} (element ${at(i, t.shape)}); FP32 inputs must be finite`)
      out[i] = v
    }
  } else {
    let values: ArrayLike<unknown>
    if (data.kind === 'json') values = flattenData(data.data, t.shape, what)
    else if ('values' in data) values = data.values
    else throw new BadRequestError(`${what}: FP32 data must be numbers, not bytes`)
    if (values.length !== count) throw new BadRequestError(`${what}: data has ${values.length} values, the shape says ${count}`)
    for (let i = 0; i < count; i++) {
      const v = values[i]
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequestError(`${what}: value ${i} is not a finite number (element ${at(i, t.shape)})`)
      // A double past ±3.4028235e38 is finite here and Infinity in a Float32Array.
      if (!Number.isFinite(Math.fround(v))) throw new BadRequestError(`${what}: value ${i} is ${v}, beyond the FP32 range ±3.4028235e38 (element ${at(i, t.shape)})`)
      out[i] = v
    }
  }
  return { kind: 'tensor', count: n, data: out }
}

/**
 * The one input of a request, checked against `model`: its name, datatype, shape and data
 * (`missing`: where the transport would have carried the data, for the message when none came).
 */
export function modelInput (t: InputTensor, data: TensorData | undefined, model: LoadedModel, limits: InferLimits, missing: string): ModelInput {
  if (t.name === IMAGE_INPUT && t.datatype === 'BYTES') return imagesInput(t, data, limits, missing)
  if (t.name === model.input.name && t.datatype === 'FP32') return tensorInput(t, data, model, limits, missing)
  throw new BadRequestError(`unknown input "${t.name}" (${t.datatype}): the model takes "${IMAGE_INPUT}" (BYTES, encoded images) or "${model.input.name}" (FP32 [N, ${model.input.channels}, ${model.input.height}, ${model.input.width}])`)
}

/** One input, as the data plane takes it. */
export function samplesOf (input: ModelInput): Samples {
  return input.kind === 'images'
    ? { kind: 'images', images: input.images.map((data, i) => ({ data, what: `image ${i + 1}` })) }
    : { kind: 'tensors', data: input.data, count: input.count }
}

/** The number of inputs a model takes, as a message for a request with another number. */
export function oneInputMessage (model: LoadedModel, got: number): string {
  return `the model takes one input, "${IMAGE_INPUT}" (BYTES) or "${model.input.name}" (FP32); got ${got}`
}
