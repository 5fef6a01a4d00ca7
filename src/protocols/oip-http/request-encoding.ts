// Compressed request bodies, as Triton takes them: `Content-Encoding: gzip` or `deflate` (what
// tritonclient's request_compression_algorithm sends), inflated on their way to the parser.
// A small body may inflate to gigabytes, so the inflated bytes are counted as they come out:
// past MAX_REQUEST_BYTES the inflater stops and the client gets a 413, and every inflated
// byte is charged to the body budget like a received one (plugins/body-budget.ts). zlib's
// streams inflate in the thread pool, chunk by chunk, so the event loop never runs a whole
// inflation. Other encodings: 415 naming the encoding.
import { Transform, type Readable } from 'node:stream'
import { createGunzip, createInflate, type Gunzip, type Inflate } from 'node:zlib'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../../errors.js'
import { takeBodyBytes } from '../../plugins/body-budget.js'

const INFLATERS: Record<string, () => Gunzip | Inflate> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  // zlib-wrapped, as HTTP's "deflate" is and as tritonclient and Triton (zlib's inflate) use it.
  deflate: createInflate
}

export const ACCEPTED_ENCODINGS = ['gzip', 'deflate']

type PreParsing = (req: FastifyRequest, reply: FastifyReply, payload: Readable) => Promise<Readable>

/** A preParsing hook that inflates gzip/deflate bodies, at most `maxRequestBytes` of them. */
export function requestDecoding (maxRequestBytes: number): PreParsing {
  return async function decodeBody (req, reply, payload) {
    const header = req.headers['content-encoding']
    if (header === undefined) return payload
    const encoding = header.trim().toLowerCase()
    if (encoding === '' || encoding === 'identity') return payload
    const make = INFLATERS[encoding]
    if (make === undefined) {
      throw new UnsupportedMediaTypeError(`Content-Encoding ${JSON.stringify(header.slice(0, 60))} is not accepted; send the body uncompressed or with Content-Encoding ${ACCEPTED_ENCODINGS.join(' or ')}`)
    }
    // No body to inflate (a GET, an empty POST): the parser will not read one.
    const length = req.headers['content-length']
    if (req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return payload
    const inflater = make()
    let encoded = 0
    let decoded = 0
    const bounded: Transform & { receivedEncodedLength?: number } = new Transform({
      transform (chunk: Buffer, _encoding, callback) {
        decoded += chunk.length
        if (decoded > maxRequestBytes) {
          void reply.header('connection', 'close') // the rest of the body is not worth reading
          callback(new PayloadTooLargeError(`the request body inflates (Content-Encoding ${encoding}) to more than ${maxRequestBytes} bytes (MAX_REQUEST_BYTES)`))
          return
        }
        try {
          takeBodyBytes(req, chunk.length)
        } catch (err) {
          callback(err as Error)
          return
        }
        callback(null, chunk)
      }
    })
    // Fastify compares the bytes received with Content-Length: the compressed ones.
    payload.on('data', (chunk: Buffer) => { encoded += chunk.length; bounded.receivedEncodedLength = encoded })
    payload.once('error', (err) => bounded.destroy(err))
    // Fastify listens while it parses; this keeps an error after that (or without a parse)
    // from being an unhandled 'error' event.
    bounded.on('error', () => {})
    inflater.once('error', (err) => bounded.destroy(new BadRequestError(`the request body is not valid ${encoding} (Content-Encoding): ${err.message}`)))
    // Once the parser stops (done, or refused), stop inflating; the request itself is left to
    // Fastify (pipe, not pipeline: destroying it would lose the error response).
    bounded.once('close', () => {
      payload.unpipe(inflater)
      inflater.destroy()
    })
    payload.pipe(inflater).pipe(bounded)
    return bounded
  }
}
