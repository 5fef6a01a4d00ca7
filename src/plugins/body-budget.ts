// Request bodies in memory, bounded twice before a byte of them is read: one request may
// declare at most MAX_REQUEST_BYTES (413), and all requests together at most
// MAX_INFLIGHT_BYTES (503 + Retry-After: the client retries or another replica answers). A
// body without a Content-Length (chunked) is counted at MAX_REQUEST_BYTES, the most it may
// send (routes/read-images.ts enforces that while reading). The reservation lasts until the
// response is done or the connection dies.
import type { IncomingHttpHeaders } from 'node:http'
import fp from 'fastify-plugin'
import { OverloadedError, PayloadTooLargeError } from '../errors.js'
import { ByteBudget } from '../http/byte-budget.js'

declare module 'fastify' {
  interface FastifyInstance {
    bodyBudget: ByteBudget
  }
}

export interface BodyBudgetOptions {
  maxRequestBytes: number
  maxInflightBytes: number
}

/** How many body bytes a request may bring: its Content-Length, or the most it may send. */
export function bodyBytesToReserve (headers: IncomingHttpHeaders, maxRequestBytes: number): number {
  const length = headers['content-length']
  if (length !== undefined) return Number(length)
  return headers['transfer-encoding'] !== undefined ? maxRequestBytes : 0
}

export default fp<BodyBudgetOptions>(async function bodyBudgetPlugin (app, opts) {
  const budget = new ByteBudget(opts.maxInflightBytes)
  app.decorate('bodyBudget', budget)
  app.addHook('onRequest', async (req, reply) => {
    const bytes = bodyBytesToReserve(req.headers, opts.maxRequestBytes)
    if (!(bytes > 0)) return
    if (bytes > opts.maxRequestBytes) {
      void reply.header('connection', 'close') // not worth reading; plugins/linger.ts lets the client read this
      throw new PayloadTooLargeError(`the request body is ${bytes} bytes, more than ${opts.maxRequestBytes} (MAX_REQUEST_BYTES)`)
    }
    if (!budget.tryTake(bytes)) {
      void reply.header('connection', 'close')
      throw new OverloadedError(`request bodies being received exceed ${opts.maxInflightBytes} bytes (MAX_INFLIGHT_BYTES); retry shortly`)
    }
    let held = true
    // 'close' follows 'finish' on a sent response and also fires when the connection dies.
    reply.raw.once('close', () => {
      if (held) budget.give(bytes)
      held = false
    })
  })
}, { name: 'body-budget', dependencies: ['error-handler'] })
