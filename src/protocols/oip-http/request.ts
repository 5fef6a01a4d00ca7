// An Open Inference Protocol inference request over HTTP (kserve/open-inference-protocol, REST):
// the JSON header, bounded and validated, and the binary tensor data that may follow it
// (binary-body.ts). What the one input must be is the protocol's, shared with gRPC
// (protocols/oip/inputs.ts). Every problem is a 400 naming the field.
import { z } from 'zod'
import { BadRequestError } from '../../errors.js'
import type { LoadedModel } from '../../registry/load-manifest.js'
import { IMAGE_INPUT, modelInput, oneInputMessage, type InferLimits, type ModelInput } from '../oip/inputs.js'
import { splitBody, takeBinary } from './binary-body.js'
import { jsonShapeProblem, type JsonShapeLimits } from './json-shape.js'

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

export interface ParsedInfer {
  request: InferRequest
  input: ModelInput
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
  if (request.inputs.length !== 1) throw new BadRequestError(oneInputMessage(model, request.inputs.length))
  const sizes = request.inputs.map((t) => {
    const s = t.parameters?.binary_data_size
    if (s === undefined) return undefined
    if (typeof s !== 'number') throw new BadRequestError(`input "${t.name}": parameters.binary_data_size must be a number`)
    return s
  })
  const [bytes] = takeBinary(binary, sizes)
  const t = request.inputs[0]!
  const data = bytes !== undefined ? { kind: 'raw' as const, bytes } : t.data !== undefined ? { kind: 'json' as const, data: t.data } : undefined
  return { request, input: modelInput(t, data, model, limits, 'neither "data" nor parameters.binary_data_size') }
}
