// The REST API's error shape: the catalogue's `{ error: { code, message } }`.
import { errorBody } from '../../errors.js'
import type { ErrorEncoder } from '../../http/error-handler.js'
import { SUPPORTED_MEDIA_TYPES } from '../../preprocess/sniff.js'

export const restErrors: ErrorEncoder = {
  body: errorBody,
  contentType: 'application/json; charset=utf-8',
  mediaTypeAdvice: `send ${SUPPORTED_MEDIA_TYPES.join(', ')} or multipart/form-data with an "image" field`
}
