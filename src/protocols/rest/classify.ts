// POST /classify (default model) and POST /models/:name/classify.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import type { z } from 'zod'
import { BadRequestError } from '../../errors.js'
import { inputImageDataUrl } from '../../preprocess/input-image.js'
import { readImages, type BodyLimits } from './read-images.js'
import { ClassifyQuerySchema, ClassifyResponseSchema, ErrorSchema, ModelParamsSchema, TOPK_RULE, type ClassifyResultSchema } from './schemas.js'

type ClassifyResult = z.infer<typeof ClassifyResultSchema>
type ClassifyQuery = z.infer<typeof ClassifyQuerySchema>

export interface ClassifyRouteOptions {
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
  // The whole request is served by the generation current when it starts (the data plane).
  async function handle (modelName: string | undefined, query: ClassifyQuery, req: FastifyRequest, reply: FastifyReply): Promise<ClassifyResult | ClassifyResult[]> {
    const startedAt = performance.now() - reply.elapsedTime
    return await app.dataPlane.serve(modelName, undefined, async ({ model, predict }) => {
      const classes = model.labels.length
      if (query.topK !== undefined && query.topK > classes) {
        throw new BadRequestError(`invalid querystring: topK: must be at most ${classes}, the number of classes of "${model.name}" (${TOPK_RULE.replace(/^must be /, '')})`)
      }
      const topK = query.topK ?? Math.min(DEFAULT_TOP_K, classes)
      const { images, multipart } = await readImages(req, opts.body)
      const predictions = await predict({ kind: 'images', images }, { topK })
      const results = await Promise.all(predictions.map(async (p): Promise<ClassifyResult> => ({
        model: model.name,
        version: model.version,
        ...p.decision,
        ...(query.include.includes('logits') ? { logits: Array.from(p.logits) } : {}),
        ...(query.include.includes('input') ? { input: await inputImageDataUrl(p.input, model.input) } : {}),
        batchSize: p.batchSize,
        timings: {
          decode: round(p.timings.decode),
          queue: round(p.timings.queue),
          inference: round(p.timings.inference),
          total: round(performance.now() - startedAt)
        }
      })))
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
