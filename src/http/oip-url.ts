// Which URLs belong to the Open Inference Protocol: they answer errors in its own shape,
// `{"error": "message"}`, which Triton's and KServe's clients read; every other route answers
// the catalogue's `{"error": {"code", "message"}}`. The status is the catalogue's either way.
import { errorBody } from '../errors.js'

export function isOipUrl (url: string): boolean {
  return url === '/v2' || url.startsWith('/v2/') || url.startsWith('/v2?')
}

/** The error body for `url`: the protocol's shape on /v2 routes, the catalogue's elsewhere. */
export function errorBodyFor (url: string, code: string, message: string): object {
  return isOipUrl(url) ? { error: message } : errorBody(code, message)
}
