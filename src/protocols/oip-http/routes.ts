// The Open Inference Protocol ("KServe v2", Triton's HTTP/REST API): server and model metadata,
// health, and inference with the binary tensor data and classification extensions. The OOD
// score and the calibrated reject travel with every prediction, as outputs next to the logits
// (outputs.ts). Registered under the /v2 prefix by index.ts, whose error handler answers in the
// protocol's `{"error": "message"}` with the catalogue's statuses: unknown model or version 404,
// bad input 400, overload or draining 503 with Retry-After, our fault 500.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { ModelNotLoadedError, NotReadyError } from '../../errors.js'
import { servedModel } from '../../serving/served-model.js'
import { IMAGE_INPUT, samplesOf, type InferLimits } from '../oip/inputs.js'
import { modelMetadata, serverMetadata } from '../oip/metadata.js'
import { tritonModelConfig } from '../oip/model-config.js'
import { modelOutputs, type Classified } from '../oip/outputs.js'
import { parseInfer } from './request.js'
import { inferResponse } from './response.js'
import { OipErrorSchema } from './schemas.js'

export interface V2RouteOptions {
  infer: InferLimits
  /** Inference workers (the config's instance_group count). */
  workers?: number
  maxRequestBytes: number
  /** The repository extension is on (ADMIN_TOKEN set). */
  repository: boolean
}

const TensorMetadataSchema = z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number().int()) })

const ServerMetadataSchema = z.object({
  name: z.string(),
  version: z.string(),
  extensions: z.array(z.string())
}).meta({ id: 'OipServerMetadata' })

const ModelMetadataSchema = z.object({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.string(),
  inputs: z.array(TensorMetadataSchema).describe(`The input a request requires: "${IMAGE_INPUT}" (BYTES [N, 1] or [N], encoded PNG/JPEG/WebP images; N at most MAX_FILES, the config's max_batch_size). A request may instead carry the ONNX input (FP32 [N, C, H, W], preprocessed), named in the config's parameters.request_inputs`),
  outputs: z.array(TensorMetadataSchema)
}).meta({ id: 'OipModelMetadata' })

const InferResponseSchema = z.object({
  model_name: z.string(),
  model_version: z.string(),
  id: z.string().optional(),
  parameters: z.object({ ood_score_kind: z.string(), ood_calibration: z.enum(['global', 'per-class']) }).describe('The decision rule: ood_reject = ood_score < ood_threshold (an output: one threshold per image, the predicted class\'s when ood_calibration is "per-class")'),
  outputs: z.array(z.object({
    name: z.string(),
    datatype: z.string(),
    shape: z.array(z.number().int()),
    data: z.array(z.union([z.number(), z.boolean(), z.string()])).optional(),
    parameters: z.object({ binary_data_size: z.number().int() }).optional()
  }))
}).meta({ id: 'OipInferResponse' })

const DurationSchema = z.object({ count: z.number().int(), ns: z.number().int() })

const ModelConfigSchema = z.looseObject({
  name: z.string(),
  platform: z.string(),
  max_batch_size: z.number().int().describe('The most samples one request may carry (MAX_FILES)'),
  input: z.array(z.looseObject({ name: z.string(), data_type: z.string(), dims: z.array(z.number().int()), optional: z.boolean() })),
  output: z.array(z.looseObject({ name: z.string(), data_type: z.string(), dims: z.array(z.number().int()) })),
  dynamic_batching: z.looseObject({ preferred_batch_size: z.array(z.number().int()), max_queue_delay_microseconds: z.number().int() })
}).meta({ id: 'TritonModelConfig' })

const ModelStatsSchema = z.object({
  model_stats: z.array(z.object({
    name: z.string(),
    version: z.string(),
    last_inference: z.number().int(),
    inference_count: z.number().int(),
    execution_count: z.number().int(),
    inference_stats: z.record(z.string(), DurationSchema),
    batch_stats: z.array(z.object({ batch_size: z.number().int(), compute_input: DurationSchema, compute_infer: DurationSchema, compute_output: DurationSchema })),
    memory_usage: z.array(z.unknown())
  }))
}).meta({ id: 'TritonModelStatistics' })

const NameParams = z.object({ name: z.string().min(1).max(200) })
const VersionParams = NameParams.extend({ version: z.string().min(1).max(200) })

const errors = {
  400: OipErrorSchema.describe('Bad input: shape, datatype, size, an undecodable image, header lengths that do not add up'),
  404: OipErrorSchema.describe('Unknown model or version'),
  414: OipErrorSchema.describe('A model name or version longer than 200 characters'),
  413: OipErrorSchema.describe('A body over MAX_REQUEST_BYTES, or an image over the decode limits'),
  415: OipErrorSchema.describe('An image format this service does not decode'),
  422: OipErrorSchema.describe('The model\'s output for an input is not finite (NaN or infinite): no score, no decision'),
  503: OipErrorSchema.describe('Overloaded or shutting down; retry (see Retry-After)')
}

export default async function v2Routes (app: FastifyInstance, opts: V2RouteOptions): Promise<void> {
  const { engine } = app
  // Any body, as bytes: JSON, JSON plus binary tensors, or one raw image (Triton's clients send
  // no Content-Type). Parsed by src/oip/request.ts, which bounds the JSON part.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.maxRequestBytes }, (_req, body, done) => { done(null, body) })
  const typed = app.withTypeProvider<ZodTypeProvider>()

  function requireReady (): void {
    const reason = app.lifecycle.notReadyReason()
    if (reason !== null) throw new NotReadyError(reason)
  }

  async function infer (req: FastifyRequest, reply: FastifyReply, name: string, version: string | undefined): Promise<unknown> {
    return await app.dataPlane.serve(name, version, async ({ model, predict }) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)
      const header = req.headers['inference-header-content-length']
      const { request, input } = parseInfer(body, typeof header === 'string' ? header.trim() : header, model, opts.infer)
      const rows: Classified[] = (await predict(samplesOf(input), { topK: 1 })).map((p) => ({ logits: p.logits, decision: p.decision }))
      const res = inferResponse(model, rows, request.outputs, { id: request.id, binaryOutput: request.parameters?.binary_data_output })
      if (res.binary.length === 0) return res.json
      const json = Buffer.from(JSON.stringify(res.json))
      void reply.header('inference-header-content-length', String(json.length)).type('application/octet-stream')
      return Buffer.concat([json, ...res.binary])
    })
  }

  typed.get('/', {
    prefixTrailingSlash: 'no-slash',
    schema: { summary: 'Server metadata', tags: ['open inference protocol'], response: { 200: ServerMetadataSchema } }
  }, async () => serverMetadata(opts.repository))

  /** Triton's statistics for the served models named (every served model when `name` is undefined). */
  function statistics (name: string | undefined, version: string | undefined): z.infer<typeof ModelStatsSchema> {
    const models = name === undefined ? [...engine.manifest.models.values()] : [servedModel(engine, name, version)]
    return { model_stats: models.map((m) => app.modelStats.snapshot(m.name, m.version)) }
  }

  typed.get('/models/stats', {
    schema: { summary: 'Inference statistics of every served model (Triton\'s statistics extension)', tags: ['open inference protocol'], response: { 200: ModelStatsSchema } }
  }, async () => statistics(undefined, undefined))

  typed.get('/health/live', {
    schema: { summary: 'Liveness (200 = live)', tags: ['open inference protocol'], response: { 200: z.object({ live: z.boolean() }) } }
  }, async () => ({ live: true }))

  typed.get('/health/ready', {
    schema: { summary: 'Readiness (200 = ready; 503 = not ready, with the reason)', tags: ['open inference protocol'], response: { 200: z.object({ ready: z.boolean() }), 503: OipErrorSchema } }
  }, async () => {
    requireReady()
    return { ready: true }
  })

  for (const withVersion of [false, true]) {
    const base = withVersion ? '/models/:name/versions/:version' : '/models/:name'
    const params = withVersion ? VersionParams : NameParams
    const versionOf = (p: object): string | undefined => (p as { version?: string }).version

    typed.get(base, {
      schema: { summary: 'Model metadata', tags: ['open inference protocol'], params, response: { 200: ModelMetadataSchema, 404: errors[404], 414: errors[414] } }
    }, async (req) => modelMetadata(servedModel(engine, req.params.name, versionOf(req.params))))

    typed.get(`${base}/config`, {
      schema: { summary: 'Model configuration (Triton\'s model configuration extension): what a request may carry and how it is batched', tags: ['open inference protocol'], params, response: { 200: ModelConfigSchema, 404: errors[404], 414: errors[414] } }
    }, async (req) => {
      const model = servedModel(engine, req.params.name, versionOf(req.params))
      return tritonModelConfig(model, modelOutputs(model), {
        maxRequestSamples: opts.infer.maxElements,
        batching: engine.batching(model.name)!,
        workers: engine.workerCount,
        provider: engine.providers[model.name] ?? 'cpu'
      }) as z.infer<typeof ModelConfigSchema>
    })

    typed.get(`${base}/stats`, {
      schema: { summary: 'Inference statistics of one model (Triton\'s statistics extension): counts and nanoseconds since start', tags: ['open inference protocol'], params, response: { 200: ModelStatsSchema, 404: errors[404], 414: errors[414] } }
    }, async (req) => statistics(req.params.name, versionOf(req.params)))

    typed.get(`${base}/ready`, {
      schema: { summary: 'Model readiness (200 = ready; 503 = not ready: known to the repository but not loaded, or the server is not ready)', tags: ['open inference protocol'], params, response: { 200: z.object({ name: z.string(), ready: z.boolean() }), 404: errors[404], 414: errors[414], 503: errors[503] } }
    }, async (req) => {
      const name = req.params.name
      // Known to the repository but not served (unloaded, or staged without calibration): not
      // ready, as Triton and KServe say it, rather than unknown.
      if (engine.model(name) === undefined && app.repository.knows(name)) throw new ModelNotLoadedError(name, 'unloaded or not calibrated', name)
      const model = servedModel(engine, name, versionOf(req.params))
      requireReady()
      return { name: model.name, ready: true }
    })

    typed.post(`${base}/infer`, {
      schema: {
        summary: 'Inference: JSON, or JSON plus binary tensor data (Inference-Header-Content-Length)',
        description: `One input: "${IMAGE_INPUT}" (BYTES [N]: encoded images, base64 in JSON or binary) or the model's ONNX input (FP32 [N, C, H, W]). Outputs: logits, label, class_index, ood_score, ood_threshold, ood_reject, ood_p_value, min_distance (distance heads), confidence, confidence_threshold (models with a confidence calibration), reject and reject_reasons (the verdict over both reasons: "ood", "uncertain", both comma-separated, or ""); all unless "outputs" lists some. "parameters": {"classification": k} on "logits" gives the top k as "value:index:label". Binary outputs with "binary_data": true per output or "binary_data_output": true for all.`,
        tags: ['open inference protocol'],
        params,
        response: { 200: InferResponseSchema, ...errors }
      }
    }, async (req, reply) => await infer(req, reply, req.params.name, versionOf(req.params)) as z.infer<typeof InferResponseSchema>)
  }
}
