// POST /admin/reload: serve the manifest file again (the same as SIGHUP), through the model
// repository (src/repository/repository.ts): validate, load, then swap; a failure changes
// nothing and says why. Registered only when ADMIN_TOKEN is set (else a 404, like any unknown
// route); http/admin-guard.ts checks the bearer token and the body. The Open Inference
// Protocol's repository routes are protocols/oip-http/repository.ts.
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { guardAdmin } from '../../http/admin-guard.js'
import { ErrorSchema } from './schemas.js'

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

const notJson = 'A body that is neither empty nor application/json'

export default async function adminRoutes (app: FastifyInstance, opts: AdminRouteOptions): Promise<void> {
  guardAdmin(app, opts.token)
  app.withTypeProvider<ZodTypeProvider>().post('/admin/reload', {
    schema: {
      summary: 'Reload the manifest file: validate every entry, load and warm new sessions, then swap',
      description: 'Requests in flight finish on the models they started with. A failed reload changes nothing (422, the reason names the field). Same as SIGHUP.',
      tags: ['admin'],
      security: [{ bearer: [] }],
      response: { 200: ReloadSchema, 400: ErrorSchema.describe('The body is not valid JSON'), 401: ErrorSchema.describe('No or wrong bearer token'), 415: ErrorSchema.describe(notJson), 422: ErrorSchema.describe('The manifest or a model cannot be loaded; nothing changed') }
    }
  }, async () => await app.repository.reload())
}
