// POST /classify (default model) and POST /models/:name/classify.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import type { z } from 'zod'
import { BadRequestError, ModelNotFoundError } from '../errors.js'
import { decide } from '../ood/decision.js'
import { graphScoresOf } from '../ood/scores.js'
import { inputImageDataUrl } from '../preprocess/input-image.js'
import { preprocess, type PreprocessLimits } from '../preprocess/preprocess.js'
import type { LoadedModel } from '../registry/load-manifest.js'
import { observeClassified } from '../plugins/metrics.js'
import { readImages, type BodyLimits } from './read-images.js'
import { ClassifyQuerySchema, ClassifyResponseSchema, ErrorSchema, ModelParamsSchema, TOPK_RULE, type ClassifyResultSchema } from './schemas.js'
import type { Generation } from '../inference/generation.js'

type ClassifyResult = z.infer<typeof ClassifyResultSchema>
type ClassifyQuery = z.infer<typeof ClassifyQuerySchema>

export interface ClassifyRouteOptions {
  limits: PreprocessLimits
  requestTimeoutMs: number
  body: BodyLimits
}

/** topK when the query leaves it out, for a model with at least this many classes (else all of them). */
const DEFAULT_TOP_K = 3

const round = (ms: number): number => Math.round(ms * 1000) / 1000

const errorResponses = {
  400: ErrorSchema.describe('No image, an empty or undecodable image, or a bad query parameter'),
  404: ErrorSchema.describe('Unknown model'),
  413: ErrorSchema.describe('An image over MAX_UPLOAD_BYTES, a body over MAX_REQUEST_BYTES, an image over MAX_INPUT_PIXELS or MAX_DECODE_BYTES, or more than MAX_FILES images'),
  415: ErrorSchema.describe('Content-Type not accepted, or an image format this service does not decode (SVG, PDF, GIF, ...)'),
  422: ErrorSchema.describe('The model\'s output for an image is not finite (NaN or infinite): no score, no decision (ISOMAX_NON_FINITE_OUTPUT)'),
  503: ErrorSchema.describe('Overloaded (queue full, or request bodies in flight over MAX_INFLIGHT_BYTES), deadline passed in the queue, or shutting down; retry (see Retry-After)')
}

export default async function classifyRoutes (app: FastifyInstance, opts: ClassifyRouteOptions): Promise<void> {
  const { engine, metrics } = app
  const { limits } = opts

  async function classifyOne (generation: Generation, model: LoadedModel, data: Buffer, what: string, query: ClassifyQuery, startedAt: number): Promise<ClassifyResult> {
    let decodeMs = 0
    let input: Float32Array | undefined
    // Admission comes first: an overloaded model answers 503 without decoding the image.
    const run = await generation.batcher(model.name).prepareAndSubmit(async () => {
      const t0 = performance.now()
      const { tensor } = await preprocess(data, model.input, limits, what)
      decodeMs = performance.now() - t0
      input = tensor
      return tensor
    }, opts.requestTimeoutMs)
    const decision = decide(model, run.logits, query.topK ?? DEFAULT_TOP_K, graphScoresOf(model.output, run.scores), what)
    observeClassified(metrics, model.name, run.queueMs, decision.ood)
    return {
      model: model.name,
      version: model.version,
      ...decision,
      ...(query.include.includes('logits') ? { logits: Array.from(run.logits) } : {}),
      ...(query.include.includes('input') && input !== undefined ? { input: await inputImageDataUrl(input, model.input) } : {}),
      batchSize: run.batchSize,
      timings: {
        decode: round(decodeMs),
        queue: round(run.queueMs),
        inference: round(run.inferenceMs),
        total: round(performance.now() - startedAt)
      }
    }
  }

  // The whole request is served by the generation current when it starts: its model entry,
  // threshold, version and sessions, whatever reload happens meanwhile.
  async function handle (modelName: string | undefined, query: ClassifyQuery, req: FastifyRequest, reply: FastifyReply): Promise<ClassifyResult | ClassifyResult[]> {
    const startedAt = performance.now() - reply.elapsedTime
    return await engine.use(async (generation) => {
      const name = modelName ?? generation.manifest.defaultModel
      const model = generation.model(name)
      if (model === undefined) throw new ModelNotFoundError(name)
      const classes = model.labels.length
      if (query.topK !== undefined && query.topK > classes) {
        throw new BadRequestError(`invalid querystring: topK: must be at most ${classes}, the number of classes of "${model.name}" (${TOPK_RULE.replace(/^must be /, '')})`)
      }
      query = { ...query, topK: query.topK ?? Math.min(DEFAULT_TOP_K, classes) }
      const { images, multipart } = await readImages(req, opts.body)
      const results = await Promise.all(images.map(async (img) => await classifyOne(generation, model, img.data, img.what, query, startedAt)))
      return multipart ? results : results[0] as ClassifyResult
    })
  }

  const consumes = ['image/png', 'image/jpeg', 'image/webp', 'multipart/form-data']

  app.withTypeProvider<ZodTypeProvider>().post('/classify', {
    schema: {
      summary: 'Classify an image with the default model',
      description: 'Send one image as the raw body (Content-Type image/png, image/jpeg or image/webp) → one result; or multipart/form-data with one or more `image` file parts → an array of results, in order.',
      tags: ['classify'],
      consumes,
      querystring: ClassifyQuerySchema,
      response: { 200: ClassifyResponseSchema, ...errorResponses }
    }
  }, async (req, reply) => await handle(undefined, req.query, req, reply))

  app.withTypeProvider<ZodTypeProvider>().post('/models/:name/classify', {
    schema: {
      summary: 'Classify an image with a named model',
      description: 'As POST /classify, with the model chosen by name.',
      tags: ['classify'],
      consumes,
      params: ModelParamsSchema,
      querystring: ClassifyQuerySchema,
      response: { 200: ClassifyResponseSchema, ...errorResponses, 414: ErrorSchema.describe('A model name longer than 200 characters') }
    }
  }, async (req, reply) => await handle(req.params.name, req.query, req, reply))
}
