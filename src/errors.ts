// The error catalogue: every error a client or operator can see is declared here once,
// with its code, HTTP status and message, in the @fastify/error style. Routes throw these;
// plugins/error-handler.ts maps Fastify's own errors onto them and turns all of them into `{ error: { code, message } }`.
import createError from '@fastify/error'

export const ManifestError = createError('ISOMAX_MANIFEST_INVALID', '%s', 500)
/** Another process holds <manifest>.lock past the wait (the tools that rewrite the manifest). */
export const ManifestLockedError = createError('ISOMAX_MANIFEST_LOCKED', '%s', 503)
export const ModelLoadError = createError('ISOMAX_MODEL_LOAD_FAILED', 'Model "%s" could not be loaded: %s', 500)
export const ProviderUnavailableError = createError('ISOMAX_PROVIDER_UNAVAILABLE', 'Execution provider "%s" is not usable: %s', 500)

export const NoImageError = createError('ISOMAX_NO_IMAGE', '%s', 400)
export const EmptyBodyError = createError('ISOMAX_EMPTY_BODY', 'The request body is empty: send an image', 400)
export const InvalidImageError = createError('ISOMAX_INVALID_IMAGE', '%s', 400)
export const UnsupportedImageTypeError = createError('ISOMAX_UNSUPPORTED_IMAGE_TYPE', '%s', 415)
export const UnsupportedMediaTypeError = createError('ISOMAX_UNSUPPORTED_MEDIA_TYPE', '%s', 415)
export const PayloadTooLargeError = createError('ISOMAX_PAYLOAD_TOO_LARGE', '%s', 413)
export const PixelLimitError = createError('ISOMAX_PIXEL_LIMIT_EXCEEDED', '%s', 413)
export const TooManyFilesError = createError('ISOMAX_TOO_MANY_FILES', '%s', 413)
export const TooManyFieldsError = createError('ISOMAX_TOO_MANY_FIELDS', 'Too many form fields', 413)
export const BadRequestError = createError('ISOMAX_BAD_REQUEST', '%s', 400)
export const RequestTimeoutError = createError('ISOMAX_REQUEST_TIMEOUT', 'The request was not received completely within %d ms (REQUEST_TIMEOUT_MS)', 408)
export const UriTooLongError = createError('ISOMAX_URI_TOO_LONG', '%s', 414)
export const ExpectationFailedError = createError('ISOMAX_EXPECTATION_FAILED', 'Expect: %s is not supported; only "100-continue" is', 417)
export const HeadersTooLargeError = createError('ISOMAX_HEADERS_TOO_LARGE', 'The request headers are larger than the server accepts (%d bytes)', 431)
export const ModelNotFoundError = createError('ISOMAX_MODEL_NOT_FOUND', 'Model "%s" is not served here; GET /models lists the models', 404)
export const ModelVersionNotFoundError = createError('ISOMAX_MODEL_NOT_FOUND', 'Model "%s" has no version "%s"; it serves version "%s"', 404)
export const NotReadyError = createError('ISOMAX_NOT_READY', 'Not ready: %s', 503)
export const ModelNotLoadedError = createError('ISOMAX_MODEL_NOT_READY', 'Model "%s" is in the repository but not loaded (%s); POST /v2/repository/models/%s/load serves it', 503)
export const UnauthorizedError = createError('ISOMAX_UNAUTHORIZED', 'This route needs "Authorization: Bearer <ADMIN_TOKEN>"', 401)
export const ConflictError = createError('ISOMAX_CONFLICT', '%s', 409)
export const ReloadFailedError = createError('ISOMAX_RELOAD_FAILED', 'Nothing changed: %s', 422)
export const RepositoryError = createError('ISOMAX_REPOSITORY_INVALID', 'The manifest file cannot be listed: %s', 422)
export const RouteNotFoundError = createError('ISOMAX_NOT_FOUND', 'route %s %s not found', 404)

// A model whose output for an input is NaN or infinite (a bring-your-own model on an all-black
// image, an FP32 tensor that overflows inside the graph): no score, so no decision. Not our
// fault and not retryable, so neither 500 nor 503.
export const NonFiniteOutputError = createError('ISOMAX_NON_FINITE_OUTPUT', '%s', 422)

export const OverloadedError = createError('ISOMAX_OVERLOADED', '%s', 503)
export const DeadlineExceededError = createError('ISOMAX_DEADLINE_EXCEEDED', '%s', 503)
export const ShuttingDownError = createError('ISOMAX_SHUTTING_DOWN', 'The server is shutting down; retry on another replica', 503)
export const InferenceFailedError = createError('ISOMAX_INFERENCE_FAILED', 'Inference failed: %s', 500)
export const InternalError = createError('ISOMAX_INTERNAL', 'Internal server error', 500)

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: string, message: string }
}

export function errorBody (code: string, message: string): ErrorBody {
  return { error: { code, message } }
}
