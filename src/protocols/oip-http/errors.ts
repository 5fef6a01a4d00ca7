// The Open Inference Protocol's error shape, `{"error": "message"}`, which Triton's and KServe's
// clients read. KServe's Python client compares the content type exactly with
// "application/json" before it reads a message, so no charset parameter (JSON is UTF-8 anyway).
import type { ErrorEncoder } from '../../http/error-handler.js'

export const OIP_CONTENT_TYPE = 'application/json'

export const oipErrors: ErrorEncoder = {
  body: (_code, message) => ({ error: message }),
  contentType: OIP_CONTENT_TYPE,
  mediaTypeAdvice: 'send JSON (application/json), or JSON followed by binary tensor data with Inference-Header-Content-Length'
}
