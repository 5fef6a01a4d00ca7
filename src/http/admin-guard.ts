// What every admin route asks of a request, whichever protocol serves it: "Authorization:
// Bearer <ADMIN_TOKEN>" (401 otherwise), and a body that is empty or JSON. Called inside the
// encapsulated context of the admin routes only.
import type { FastifyInstance } from 'fastify'
import { BadRequestError, UnauthorizedError, UnsupportedMediaTypeError } from '../errors.js'
import { bearerMatches } from './bearer.js'

const MAX_ADMIN_BODY = 64 * 1024

export function guardAdmin (app: FastifyInstance, token: string): void {
  // JSON bodies here only (the repository index takes `{"ready": true}`); an empty body is no body.
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: MAX_ADMIN_BODY }, (_req, body, done) => {
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
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_ADMIN_BODY }, (req, body, done) => {
    if ((body as Buffer).length === 0) { done(null, undefined); return }
    done(new UnsupportedMediaTypeError(`Content-Type ${req.headers['content-type'] ?? '(none)'} is not accepted here: send no body, or application/json`), undefined)
  })
  app.addHook('onRequest', async (req, reply) => {
    if (!bearerMatches(req.headers.authorization, token)) {
      void reply.header('www-authenticate', 'Bearer realm="isomax-serve admin"')
      throw new UnauthorizedError()
    }
  })
}
