// Errors that happen before Fastify has a request to hand to its error handler: Node's HTTP
// parser (bad chunking, Content-Length with chunked, CR/LF/NUL in headers, oversized headers,
// a request not received within REQUEST_TIMEOUT_MS) and the router (bad %-encoding, a path
// parameter over maxParamLength). Left to the defaults they answer in Fastify's own shape or
// with an empty body; here they answer with a catalogue error in the shape of the protocol the
// URL belongs to (error-shapes.ts), as far as the request got: the URL is read from the bytes
// the parser failed on.
import http from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError, HeadersTooLargeError, RequestTimeoutError, UriTooLongError } from '../errors.js'
import type { ErrorEncoder } from './error-handler.js'
import type { ErrorShapes } from './error-shapes.js'

interface ParserError extends Error {
  code?: string
  /** llhttp's explanation, e.g. "Invalid character in chunk size". */
  reason?: string
  /** The bytes the parser failed on (a Buffer from Node), from the start of the request when it failed in it. */
  rawPacket?: unknown
}

/** The request target, when the failed bytes start with a request line ("POST /v2/… HTTP/1.1"). */
export function requestTarget (err: ParserError, socket?: Socket): string | undefined {
  const head = Buffer.isBuffer(err.rawPacket) ? err.rawPacket.subarray(0, 2048).toString('latin1') : undefined
  const fromPacket = head !== undefined ? /^[A-Z]+ (\S+) HTTP\/1\.[01]\r?\n/.exec(head)?.[1] : undefined
  if (fromPacket !== undefined) return fromPacket
  // A request that timed out has been parsed as far as its headers: Node keeps it on the socket.
  const incoming = (socket as unknown as { parser?: { incoming?: { url?: unknown } } } | undefined)?.parser?.incoming
  return typeof incoming?.url === 'string' ? incoming.url : undefined
}

/** The catalogue error for a parser-level failure. */
export function parserError (err: ParserError, requestTimeoutMs: number, maxHeaderBytes: number): FastifyError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new RequestTimeoutError(requestTimeoutMs)
  if (err.code === 'HPE_HEADER_OVERFLOW') return new HeadersTooLargeError(maxHeaderBytes)
  const reason = typeof err.reason === 'string' && err.reason !== '' ? err.reason : 'malformed request'
  return new BadRequestError(`malformed HTTP request: ${reason}`)
}

/** A complete HTTP/1.1 response carrying a catalogue error; the connection closes after it. */
export function rawErrorResponse (err: FastifyError, encoder: ErrorEncoder): string {
  const status = err.statusCode ?? 400
  const body = JSON.stringify(encoder.body(err.code, err.message))
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Content-Type: ${encoder.contentType}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' + body
}

/**
 * Fastify's clientErrorHandler option (Fastify calls it with `this` = the instance): answer in
 * the catalogue's shape, then close.
 */
export function clientErrorHandler (requestTimeoutMs: number, shapes: ErrorShapes): (this: { log: FastifyBaseLogger }, err: ParserError, socket: Socket) => void {
  return function (err, socket) {
    // A reset connection has no one left to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const mapped = parserError(err, requestTimeoutMs, http.maxHeaderSize)
    this.log.info({ code: mapped.code, status: mapped.statusCode, parserCode: err.code }, mapped.message)
    if (socket.writable) socket.end(rawErrorResponse(mapped, shapes.for(requestTarget(err, socket) ?? '/')))
    socket.destroySoon()
  }
}

/** Fastify's frameworkErrors option: the router's refusals, as catalogue errors. */
export function frameworkErrors (maxParamLength: number, shapes: ErrorShapes): (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => void {
  return (err, req, reply) => {
    let mapped: FastifyError
    if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
      mapped = new UriTooLongError(`a path parameter is longer than ${maxParamLength} characters`)
    } else if (err.code === 'FST_ERR_BAD_URL') {
      mapped = new BadRequestError('the URL is not valid: bad %-encoding')
    } else {
      mapped = new BadRequestError(err.message)
    }
    req.log.info({ code: mapped.code, status: mapped.statusCode }, mapped.message)
    const encoder = shapes.for(req.url)
    void reply.code(mapped.statusCode ?? 400).type(encoder.contentType).send(encoder.body(mapped.code, mapped.message))
  }
}
