// Errors that happen before Fastify has a request to hand to its error handler: Node's HTTP
// parser (bad chunking, Content-Length with chunked, CR/LF/NUL in headers, oversized headers,
// a request not received within REQUEST_TIMEOUT_MS) and the router (bad %-encoding, a path
// parameter over maxParamLength). Left to the defaults they answer in Fastify's own shape or
// with an empty body; here they answer in the catalogue's `{ error: { code, message } }`.
import http from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError, HeadersTooLargeError, RequestTimeoutError, UriTooLongError, errorBody } from '../errors.js'
import { errorBodyFor } from './oip-url.js'

interface ParserError extends Error {
  code?: string
  /** llhttp's explanation, e.g. "Invalid character in chunk size". */
  reason?: string
}

/** The catalogue error for a parser-level failure. */
export function parserError (err: ParserError, requestTimeoutMs: number, maxHeaderBytes: number): FastifyError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new RequestTimeoutError(requestTimeoutMs)
  if (err.code === 'HPE_HEADER_OVERFLOW') return new HeadersTooLargeError(maxHeaderBytes)
  const reason = typeof err.reason === 'string' && err.reason !== '' ? err.reason : 'malformed request'
  return new BadRequestError(`malformed HTTP request: ${reason}`)
}

/** A complete HTTP/1.1 response carrying a catalogue error; the connection closes after it. */
export function rawErrorResponse (err: FastifyError): string {
  const status = err.statusCode ?? 400
  const body = JSON.stringify(errorBody(err.code, err.message))
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' + body
}

/**
 * Fastify's clientErrorHandler option (Fastify calls it with `this` = the instance): answer in
 * the catalogue's shape, then close.
 */
export function clientErrorHandler (requestTimeoutMs: number): (this: { log: FastifyBaseLogger }, err: ParserError, socket: Socket) => void {
  return function (err, socket) {
    // A reset connection has no one left to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const mapped = parserError(err, requestTimeoutMs, http.maxHeaderSize)
    this.log.info({ code: mapped.code, status: mapped.statusCode, parserCode: err.code }, mapped.message)
    if (socket.writable) socket.end(rawErrorResponse(mapped))
    socket.destroySoon()
  }
}

/** Fastify's frameworkErrors option: the router's refusals, as catalogue errors. */
export function frameworkErrors (maxParamLength: number): (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => void {
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
    void reply.code(mapped.statusCode ?? 400).send(errorBodyFor(req.url, mapped.code, mapped.message))
  }
}
