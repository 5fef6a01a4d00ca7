// Request bodies in memory, bounded at the door and while they arrive. At the door, from the
// headers: one request may announce at most MAX_REQUEST_BYTES (413), and it is let in only if
// its whole body would fit in what is free now, of the total (MAX_INFLIGHT_BYTES) and of its
// client's share (MAX_INFLIGHT_BYTES_PER_CLIENT) — else 503 + Retry-After before a byte of it
// is read. While it is read, every chunk is charged as it arrives, and held until the
// response is done or the connection dies; a chunk that does not fit ends the request with a
// 503. So memory is bounded by bytes that are really here, and a client that announces much
// and sends little holds nothing (issue 20; docs/configuration.md § Memory has the worst case).
// A body without a Content-Length (chunked) is announced as MAX_REQUEST_BYTES, the most it may
// send (routes/read-images.ts and Fastify's parser enforce that while reading).
import type { IncomingHttpHeaders } from 'node:http'
import { Transform } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { OverloadedError, PayloadTooLargeError } from '../errors.js'
import { ByteBudget, type Refusal } from '../http/byte-budget.js'

declare module 'fastify' {
  interface FastifyInstance {
    bodyBudget: ByteBudget
  }
}

export interface BodyBudgetOptions {
  maxRequestBytes: number
  maxInflightBytes: number
  /** Default: the whole budget. */
  maxInflightBytesPerClient?: number
}

/** How many body bytes a request may bring: its Content-Length, or the most it may send. */
export function bodyBytesToReserve (headers: IncomingHttpHeaders, maxRequestBytes: number): number {
  const length = headers['content-length']
  if (length !== undefined) return Number(length)
  return headers['transfer-encoding'] !== undefined ? maxRequestBytes : 0
}

/** The bytes one request has brought so far, charged to its client. */
interface BodyAccount {
  take: (bytes: number) => void
}

const accounts = new WeakMap<FastifyRequest, BodyAccount>()

/**
 * Charge `bytes` of `req`'s body that have just been read to the budget (routes/read-images.ts,
 * for multipart forms, which are read from the raw request); throws the 503 when they do not fit.
 */
export function takeBodyBytes (req: FastifyRequest, bytes: number): void {
  accounts.get(req)?.take(bytes)
}

export default fp<BodyBudgetOptions>(async function bodyBudgetPlugin (app, opts) {
  const budget = new ByteBudget(opts.maxInflightBytes, opts.maxInflightBytesPerClient ?? opts.maxInflightBytes)
  app.decorate('bodyBudget', budget)

  const overloaded = (refusal: Refusal, what: string): Error => new OverloadedError(refusal === 'total'
    ? `request bodies being received exceed ${opts.maxInflightBytes} bytes (MAX_INFLIGHT_BYTES)${what}; retry shortly`
    : `request bodies being received from this client exceed ${budget.perClient} bytes (MAX_INFLIGHT_BYTES_PER_CLIENT)${what}; retry shortly`)

  app.addHook('onRequest', async (req, reply) => {
    const bytes = bodyBytesToReserve(req.headers, opts.maxRequestBytes)
    if (!(bytes > 0)) return
    if (bytes > opts.maxRequestBytes) {
      void reply.header('connection', 'close') // not worth reading; plugins/linger.ts lets the client read this
      throw new PayloadTooLargeError(`the request body is ${bytes} bytes, more than ${opts.maxRequestBytes} (MAX_REQUEST_BYTES)`)
    }
    const client = req.ip
    const refused = budget.refusal(client, bytes)
    if (refused !== null) {
      void reply.header('connection', 'close')
      throw overloaded(refused, '')
    }
    let held = 0
    let open = true
    accounts.set(req, {
      take (n: number): void {
        if (!open) return
        const refusal = budget.take(client, n)
        if (refusal !== null) {
          void reply.header('connection', 'close')
          throw overloaded(refusal, ' while this body was arriving')
        }
        held += n
      }
    })
    // 'close' follows 'finish' on a sent response and also fires when the connection dies.
    reply.raw.once('close', () => {
      open = false
      budget.give(client, held)
      held = 0
    })
  })

  // Bodies that Fastify's content-type parsers read (images, the /v2 body): charged chunk by
  // chunk on their way in. Multipart forms are read from the raw request by
  // @fastify/multipart, past this stream: routes/read-images.ts charges them.
  app.addHook('preParsing', async (req, _reply, payload) => {
    const account = accounts.get(req)
    if (account === undefined || /^multipart\//i.test(req.headers['content-type'] ?? '')) return payload
    const metered = new Transform({
      transform (chunk: Buffer, _encoding, callback) {
        try {
          account.take(chunk.length)
        } catch (err) {
          callback(err as Error)
          return
        }
        callback(null, chunk)
      }
    })
    // pipe(), not pipeline(): a refusal must not destroy the request (and its socket) before
    // the 503 is sent. A client that goes away still ends the parser's read.
    payload.once('error', (err) => metered.destroy(err))
    payload.once('aborted', () => metered.destroy(new Error('the client closed the connection before its body arrived')))
    return payload.pipe(metered)
  })
}, { name: 'body-budget' })
