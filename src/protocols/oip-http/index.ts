// The Open Inference Protocol over HTTP ("KServe v2", Triton's HTTP/REST API), under /v2: a
// codec over the data plane (routes.ts: metadata, health, infer; repository.ts: the model
// repository extension, with ADMIN_TOKEN). Its own context answers every error in the
// protocol's shape, `{"error": "message"}` (errors.ts), and every JSON body with the content
// type its clients compare exactly.
import type { FastifyInstance } from 'fastify'
import { errorHandler, notFoundHandler, type ErrorLimits } from '../../http/error-handler.js'
import type { ErrorShapes } from '../../http/error-shapes.js'
import { OIP_CONTENT_TYPE, oipErrors } from './errors.js'
import repositoryRoutes from './repository.js'
import { requestDecoding } from './request-encoding.js'
import oipRoutes, { type V2RouteOptions } from './routes.js'

export const OIP_PREFIX = '/v2'

export interface OipHttpOptions extends Omit<V2RouteOptions, 'repository'> {
  errors: ErrorLimits
  shapes: ErrorShapes
  /** ADMIN_TOKEN: the repository extension is served with it, absent without. */
  adminToken?: string | undefined
}

export default async function oipHttpProtocol (app: FastifyInstance, opts: OipHttpOptions): Promise<void> {
  // Errors before any route (the HTTP parser's, Expect) and the request metrics find this
  // protocol by its prefix.
  opts.shapes.add(OIP_PREFIX, oipErrors, 'oip-http')
  app.setErrorHandler(errorHandler(oipErrors, opts.errors))
  app.setNotFoundHandler(notFoundHandler(oipErrors))
  // Content-Encoding gzip/deflate bodies, inflated to at most MAX_REQUEST_BYTES.
  app.addHook('preParsing', requestDecoding(opts.maxRequestBytes))
  app.addHook('onSend', async (_req, reply, payload) => {
    if (String(reply.getHeader('content-type')).startsWith('application/json')) void reply.header('content-type', OIP_CONTENT_TYPE)
    return payload
  })
  await app.register(oipRoutes, { infer: opts.infer, maxRequestBytes: opts.maxRequestBytes, repository: opts.adminToken !== undefined })
  if (opts.adminToken !== undefined) await app.register(repositoryRoutes, { token: opts.adminToken })
}
