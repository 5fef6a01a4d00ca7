// HTTP checks Node would otherwise answer itself with an empty body: a missing Host header on
// an HTTP/1.1 request (Node's requireHostHeader is turned off in app.ts so that the check
// lands here) and an Expect header other than 100-continue. Both answer from the catalogue.
import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import { BadRequestError, ExpectationFailedError } from '../errors.js'
import type { ErrorShapes } from '../http/error-shapes.js'

export interface ProtocolChecksOptions {
  /** Node answers `Expect` before any route: the shape comes from the URL's protocol. */
  shapes: ErrorShapes
}

export default fp<ProtocolChecksOptions>(async function protocolChecksPlugin (app, opts) {
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const err = new ExpectationFailedError(String(req.headers.expect).slice(0, 100))
    app.log.info({ code: err.code, status: 417 }, err.message)
    const encoder = opts.shapes.for(req.url ?? '/')
    const body = JSON.stringify(encoder.body(err.code, err.message))
    // The body was never asked for: close rather than read it.
    res.writeHead(417, { 'content-type': encoder.contentType, 'content-length': Buffer.byteLength(body), connection: 'close' })
    res.end(body)
  })
  app.addHook('onRequest', async (req) => {
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) {
      throw new BadRequestError('an HTTP/1.1 request needs a Host header')
    }
  })
}, { name: 'protocol-checks' })
