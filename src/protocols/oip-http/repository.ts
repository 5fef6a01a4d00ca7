// The Open Inference Protocol's model repository extension, as Triton's clients call it:
// POST /v2/repository/index, /v2/repository/models/{name}/load and /unload, over the model
// repository (src/repository/repository.ts; bodies, states, reasons and persistence in
// docs/api.md § Model repository). Registered only when ADMIN_TOKEN is set (else 404s, like any
// unknown route); http/admin-guard.ts checks the bearer token and the body.
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { guardAdmin } from '../../http/admin-guard.js'
import { ModelParamsSchema } from '../rest/schemas.js'
import { OipErrorSchema } from './schemas.js'

export interface RepositoryRouteOptions {
  token: string
}

const IndexSchema = z.array(z.object({
  name: z.string(),
  version: z.string(),
  state: z.enum(['READY', 'UNAVAILABLE']),
  reason: z.string()
})).meta({ id: 'RepositoryIndex' })

const IndexRequestSchema = z.object({
  ready: z.boolean().optional().describe('true: list only the models ready to serve')
}).strict().nullish()

// Each route lists the statuses it can answer, no more: the repository throws 404 only for a
// name neither served nor in the file, 409 only on unloading the default model, and the index
// 422s when the manifest file cannot be read.
const notJson = 'A body that is neither empty nor application/json'
const oip = {
  400: OipErrorSchema.describe('The body is not valid JSON, or not what the route takes'),
  401: OipErrorSchema.describe('No or wrong bearer token'),
  415: OipErrorSchema.describe(notJson)
}
const named = {
  404: OipErrorSchema.describe('No model of that name in the manifest file (load), or neither served nor in the file (unload)'),
  414: OipErrorSchema.describe('A model name longer than 200 characters')
}

export default async function repositoryRoutes (app: FastifyInstance, opts: RepositoryRouteOptions): Promise<void> {
  guardAdmin(app, opts.token)
  const typed = app.withTypeProvider<ZodTypeProvider>()

  typed.post('/repository/index', {
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

  typed.post('/repository/models/:name/load', {
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

  typed.post('/repository/models/:name/unload', {
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
