// HTTP checks Node would otherwise answer itself with an empty body: a missing Host header on
// an HTTP/1.1 request (Node's requireHostHeader is turned off in app.ts so that the check
// lands here) and an Expect header other than 100-continue. Both answer from the catalogue.
import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import { BadRequestError, ExpectationFailedError, errorBody } from '../errors.js'

export default fp(async function protocolChecksPlugin (app) {
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const err = new ExpectationFailedError(String(req.headers.expect).slice(0, 100))
    app.log.info({ code: err.code, status: 417 }, err.message)
    const body = JSON.stringify(errorBody(err.code, err.message))
    // The body was never asked for: close rather than read it.
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
    res.end(body)
  })
  app.addHook('onRequest', async (req) => {
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) {
      throw new BadRequestError('an HTTP/1.1 request needs a Host header')
    }
  })
}, { name: 'protocol-checks', dependencies: ['error-handler'] })
