// The service's own REST API: POST /classify and /models/{name}/classify (a codec over the
// data plane), GET /models, health, metrics and, with ADMIN_TOKEN, POST /admin/reload. Its own
// context answers errors in the catalogue's shape, `{ error: { code, message } }` (errors.ts),
// with the image routes' advice on a 415.
import type { FastifyInstance } from 'fastify'
import { errorHandler, type ErrorLimits } from '../../http/error-handler.js'
import { SUPPORTED_MEDIA_TYPES } from '../../preprocess/sniff.js'
import adminRoutes from './admin.js'
import classifyRoutes from './classify.js'
import { restErrors } from './errors.js'
import healthRoutes from './health.js'
import metricsRoutes from './metrics.js'
import modelRoutes from './models.js'
import type { BodyLimits } from './read-images.js'

export interface RestOptions {
  body: BodyLimits
  errors: ErrorLimits
  /** ADMIN_TOKEN: POST /admin/reload is served with it, absent without. */
  adminToken?: string | undefined
}

export default async function restProtocol (app: FastifyInstance, opts: RestOptions): Promise<void> {
  app.setErrorHandler(errorHandler(restErrors, opts.errors))
  // Images and forms only (multipart's own parser comes from @fastify/multipart): anything else
  // is a 415 with the advice above.
  app.addContentTypeParser([...SUPPORTED_MEDIA_TYPES], { parseAs: 'buffer', bodyLimit: opts.body.maxUploadBytes }, (_req, body, done) => {
    done(null, body)
  })
  await app.register(healthRoutes)
  await app.register(modelRoutes)
  await app.register(metricsRoutes)
  if (opts.adminToken !== undefined) await app.register(adminRoutes, { token: opts.adminToken })
  await app.register(classifyRoutes, { body: opts.body })
}
