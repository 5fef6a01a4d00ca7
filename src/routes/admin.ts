// Admin routes: reload the manifest (POST /admin/reload) and the Open Inference Protocol's
// model repository extension (POST /v2/repository/index, /v2/repository/models/{name}/load
// and /unload; bodies, states, reasons and persistence in docs/api.md § Model repository).
// Registered only when ADMIN_TOKEN is set
// (else they are 404s, like any unknown route); every call needs "Authorization: Bearer
// <ADMIN_TOKEN>" (401 otherwise). All go through src/repository/repository.ts: validate, load,
// then swap; a failure changes nothing and says why.
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { BadRequestError, UnauthorizedError, UnsupportedMediaTypeError } from '../errors.js'
import { bearerMatches } from '../http/bearer.js'
import { ErrorSchema, ModelParamsSchema, OipErrorSchema } from './schemas.js'

export interface AdminRouteOptions {
  token: string
}

const ReloadSchema = z.object({
  generation: z.number().int().describe('Generation now serving (isomax_manifest_generation)'),
  manifestSha256: z.string().describe('sha256 of the manifest file it came from'),
  default: z.string(),
  models: z.array(z.string()).describe('Every model now served'),
  loaded: z.array(z.string()).describe('Models whose ONNX session was (re)loaded: new, or a new file or shape'),
  kept: z.array(z.string()).describe('Models that kept their session (a threshold-only change, for one)'),
  removed: z.array(z.string()).describe('Models no longer served')
}).meta({ id: 'ReloadResult' })

const IndexSchema = z.array(z.object({
  name: z.string(),
  version: z.string(),
  state: z.enum(['READY', 'UNAVAILABLE']),
  reason: z.string()
})).meta({ id: 'RepositoryIndex' })

const IndexRequestSchema = z.object({
  ready: z.boolean().optional().describe('true: list only the models ready to serve')
}).strict().nullish()

// Each route lists the statuses it can answer, no more: model-control.ts throws 404 only for a
// named model, 409 only on unloading the default model, and the index 422s when the manifest
// file cannot be read.
const unauthorized = { 401: ErrorSchema.describe('No or wrong bearer token') }
const notJson = 'A body that is neither empty nor application/json'
const oip = {
  400: OipErrorSchema.describe('The body is not valid JSON, or not what the route takes'),
  401: OipErrorSchema.describe('No or wrong bearer token'),
  415: OipErrorSchema.describe(notJson)
}
const named = {
  404: OipErrorSchema.describe('No model of that name in the manifest file (load) or served (unload)'),
  414: OipErrorSchema.describe('A model name longer than 200 characters')
}

export default async function adminRoutes (app: FastifyInstance, opts: AdminRouteOptions): Promise<void> {
  // JSON bodies here only (the repository index takes `{"ready": true}`); an empty body is no body.
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
    if (body === '') { done(null, undefined); return }
    try {
      done(null, JSON.parse(body as string))
    } catch (err) {
      done(new BadRequestError(`the body is not valid JSON: ${(err as Error).message}`), undefined)
    }
  })
  // Any other content type: no body is no body (`curl -X POST -d ''` sends a form type and
  // Python's urllib `data=b""` too), so the routes answer as to a bare POST; a body that is
  // really there is refused with what these routes take, not the image routes' advice.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (req, body, done) => {
    if ((body as Buffer).length === 0) { done(null, undefined); return }
    done(new UnsupportedMediaTypeError(`Content-Type ${req.headers['content-type'] ?? '(none)'} is not accepted here: send no body, or application/json`), undefined)
  })
  app.addHook('onRequest', async (req, reply) => {
    if (!bearerMatches(req.headers.authorization, opts.token)) {
      void reply.header('www-authenticate', 'Bearer realm="isomax-serve admin"')
      throw new UnauthorizedError()
    }
  })
  const typed = app.withTypeProvider<ZodTypeProvider>()

  typed.post('/admin/reload', {
    schema: {
      summary: 'Reload the manifest file: validate every entry, load and warm new sessions, then swap',
      description: 'Requests in flight finish on the models they started with. A failed reload changes nothing (422, the reason names the field). Same as SIGHUP.',
      tags: ['admin'],
      security: [{ bearer: [] }],
      response: { 200: ReloadSchema, 400: ErrorSchema.describe('The body is not valid JSON'), ...unauthorized, 415: ErrorSchema.describe(notJson), 422: ErrorSchema.describe('The manifest or a model cannot be loaded; nothing changed') }
    }
  }, async () => await app.repository.reload())

  typed.post('/v2/repository/index', {
    schema: {
      summary: 'Models of the repository (the manifest file) and their state',
      tags: ['model repository'],
      security: [{ bearer: [] }],
      body: IndexRequestSchema,
      response: { 200: IndexSchema, ...oip, 422: OipErrorSchema.describe('The manifest file cannot be read or is invalid') }
    }
  }, async (req) => {
    const entries = await app.repository.index()
    return req.body?.ready === true ? entries.filter((e) => e.state === 'READY') : entries
  })

  typed.post('/v2/repository/models/:name/load', {
    schema: {
      summary: 'Load (or reload) one model as the manifest file has it now',
      tags: ['model repository'],
      security: [{ bearer: [] }],
      params: ModelParamsSchema,
      response: { 200: z.object({}).describe('Loaded and serving'), ...oip, ...named, 422: OipErrorSchema.describe('The manifest file is invalid, the entry is not calibrated, or the model cannot be loaded; nothing changed') }
    }
  }, async (req) => {
    await app.repository.load(req.params.name)
    return {}
  })

  typed.post('/v2/repository/models/:name/unload', {
    schema: {
      summary: 'Stop serving one model (not the default)',
      tags: ['model repository'],
      security: [{ bearer: [] }],
      params: ModelParamsSchema,
      response: {
        200: z.object({}).describe('No longer served; its requests in flight finish'),
        ...oip,
        ...named,
        409: OipErrorSchema.describe('The model is the default model'),
        422: OipErrorSchema.describe('The change could not be applied; nothing changed')
      }
    }
  }, async (req) => {
    await app.repository.unload(req.params.name)
    return {}
  })
}
