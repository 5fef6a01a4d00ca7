// OpenAPI pieces that route schemas cannot express: the classify request bodies are binary
// (raw image or multipart upload), which Fastify never validates as JSON, and /metrics
// answers text. transformObject patches them into the generated document.
import type { OpenAPIV3 } from 'openapi-types'

const binary: OpenAPIV3.SchemaObject = { type: 'string', format: 'binary' }

export const classifyRequestBody: OpenAPIV3.RequestBodyObject = {
  required: true,
  description: 'One image as the raw body, or a multipart form with one or more `image` file parts. PNG, JPEG and WebP are decoded; anything else is refused (415).',
  content: {
    'image/png': { schema: binary },
    'image/jpeg': { schema: binary },
    'image/webp': { schema: binary },
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: ['image'],
        properties: {
          image: {
            type: 'array',
            items: binary,
            description: 'One or more image files (repeat the field); results come back in the same order'
          }
        }
      },
      encoding: { image: { contentType: 'image/png, image/jpeg, image/webp' } }
    }
  }
}

const metricsResponse: OpenAPIV3.ResponseObject = {
  description: 'Prometheus text exposition format',
  content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } }
}

export function patchDocument (doc: OpenAPIV3.Document): OpenAPIV3.Document {
  for (const path of ['/classify', '/models/{name}/classify']) {
    const op = doc.paths[path]?.post
    if (op !== undefined) op.requestBody = classifyRequestBody
  }
  const metrics = doc.paths['/metrics']?.get
  if (metrics !== undefined) metrics.responses = { 200: metricsResponse }
  return doc
}
