// Every error leaves as `{ error: { code, message } }` with the right status. Client mistakes
// (4xx) are logged at info without a stack, overload/drain 503s at warn without one, our own
// faults (other 5xx) at error with one.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import {
  BadRequestError, InternalError, PayloadTooLargeError, RouteNotFoundError, TooManyFieldsError,
  TooManyFilesError, UnsupportedMediaTypeError
} from '../errors.js'
import { errorBodyFor } from '../http/oip-url.js'
import { SUPPORTED_MEDIA_TYPES } from '../preprocess/sniff.js'

export interface ErrorHandlerOptions {
  maxUploadBytes: number
  maxFiles: number
}

/** Any error → an error of the catalogue (src/errors.ts): its code, status and message are sent. */
function mapError (err: FastifyError, req: FastifyRequest, opts: ErrorHandlerOptions): FastifyError {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? 'request'
    const details = err.validation.map((v) => {
      const field = v.instancePath.replace(/^\//, '').replace(/\//g, '.') || where
      return `${field}: ${v.message ?? 'invalid'}`
    })
    return new BadRequestError(`invalid ${where}: ${details.join('; ')}`)
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = req.headers['content-type'] ?? '(none)'
      return new UnsupportedMediaTypeError(`Content-Type ${type} is not accepted; send ${SUPPORTED_MEDIA_TYPES.join(', ')} or multipart/form-data with an "image" field`)
    }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
      return new PayloadTooLargeError(`the image is larger than ${opts.maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`)
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new TooManyFilesError(`at most ${opts.maxFiles} images per request (MAX_FILES)`)
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

// /v2 routes answer in the Open Inference Protocol's error shape (http/oip-url.ts).
const body = (req: FastifyRequest, code: string, message: string): object => errorBodyFor(req.url, code, message)

export default fp<ErrorHandlerOptions>(async function errorHandlerPlugin (app, opts) {
  app.setErrorHandler(function (err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
    const mapped = mapError(err, req, opts)
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
    void reply.code(status).send(body(req, mapped.code, mapped.message))
  })
  app.setNotFoundHandler(function (req, reply) {
    const err = new RouteNotFoundError(req.method, req.url.split('?')[0])
    void reply.code(404).send(body(req, err.code, err.message))
  })
}, { name: 'error-handler' })
