// Every protocol answers errors from the one catalogue (src/errors.ts), each in its own shape:
// REST `{ error: { code, message } }`, the Open Inference Protocol `{"error": "message"}`. The
// status is the catalogue's either way. A protocol registers errorHandler(its encoder) in its
// own encapsulated context (src/protocols/*/index.ts), so no handler asks which URL it serves.
// Client mistakes (4xx) are logged at info without a stack, overload/drain 503s at warn without
// one, our own faults (other 5xx) at error with one.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import {
  BadRequestError, InternalError, PayloadTooLargeError, RouteNotFoundError, TooManyFieldsError,
  TooManyFilesError, UnsupportedMediaTypeError
} from '../errors.js'

/** How a protocol writes an error: its body shape and content type, and its advice on a 415. */
export interface ErrorEncoder {
  body: (code: string, message: string) => object
  contentType: string
  /** What the protocol's routes take, for "Content-Type X is not accepted; <advice>". */
  mediaTypeAdvice: string
}

export interface ErrorLimits {
  maxUploadBytes: number
  maxFiles: number
}

/** Any error → an error of the catalogue: its code, status and message are what is sent. */
export function catalogueError (err: FastifyError, req: FastifyRequest, limits: ErrorLimits, encoder: ErrorEncoder): FastifyError {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? 'request'
    const details = err.validation.map((v) => {
      const field = v.instancePath.replace(/^\//, '').replace(/\//g, '.') || where
      return `${field}: ${v.message ?? 'invalid'}`
    })
    return new BadRequestError(`invalid ${where}: ${details.join('; ')}`)
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(`Content-Type ${req.headers['content-type'] ?? '(none)'} is not accepted; ${encoder.mediaTypeAdvice}`)
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
      return new PayloadTooLargeError(`the image is larger than ${limits.maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`)
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new TooManyFilesError(`at most ${limits.maxFiles} images per request (MAX_FILES)`)
    case 'FST_FIELDS_LIMIT':
      return new TooManyFieldsError()
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new UnsupportedMediaTypeError('expected multipart/form-data')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new BadRequestError(err.message)
  }
  if (err.code?.startsWith('ISOMAX_') === true) return err
  const status = err.statusCode ?? 500
  // Multipart framing errors from busboy ("Unexpected end of form") and the like keep their
  // 4xx status under the generic code.
  if (status >= 400 && status < 500) return Object.assign(new BadRequestError(err.message), { statusCode: status })
  return new InternalError()
}

/** Fastify's setErrorHandler for a protocol's context. */
export function errorHandler (encoder: ErrorEncoder, limits: ErrorLimits): (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => void {
  return function (err, req, reply) {
    const mapped = catalogueError(err, req, limits, encoder)
    const status = mapped.statusCode ?? 500
    if (status === 503) {
      // Overload and drain are expected under load: one short line, no stack. A stack per 503
      // in a storm of them buffered ~180 MiB of log output in 30 s (docs/performance.md).
      req.log.warn({ code: mapped.code, status: 503 }, mapped.message)
      void reply.header('retry-after', '1')
    } else if (status >= 500) {
      req.log.error({ err }, mapped.message)
    } else {
      req.log.info({ code: mapped.code, status }, mapped.message)
    }
    // Not through the route's response schema: a route whose 503 is a health document still
    // answers an error body when the error comes from elsewhere (draining, say).
    void reply.code(status).type(encoder.contentType).serializer(JSON.stringify).send(encoder.body(mapped.code, mapped.message))
  }
}

/** Fastify's setNotFoundHandler for a protocol's context (its prefix). */
export function notFoundHandler (encoder: ErrorEncoder): (req: FastifyRequest, reply: FastifyReply) => void {
  return function (req, reply) {
    const err = new RouteNotFoundError(req.method, req.url.split('?')[0])
    void reply.code(404).type(encoder.contentType).send(encoder.body(err.code, err.message))
  }
}
