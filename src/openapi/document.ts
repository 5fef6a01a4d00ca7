// OpenAPI pieces that route schemas cannot express: the classify request bodies are binary
// (raw image or multipart upload), which Fastify never validates as JSON, and /metrics
// answers text. transformObject patches them into the generated document.
import type { OpenAPIV3 } from 'openapi-types'
import { z } from 'zod'
import { InferRequestSchema } from '../protocols/oip-http/request.js'

// Every tag the routes use, in the order Swagger UI shows them (without this list, the order
// the routes were registered in: /classify came last, after every /v2 operation).
export const API_TAGS: OpenAPIV3.TagObject[] = [
  { name: 'classify', description: 'Classify images, with the calibrated out-of-distribution verdict' },
  { name: 'models', description: 'The served models, their labels and calibration' },
  { name: 'health', description: 'Liveness and readiness probes' },
  { name: 'metrics', description: 'Prometheus metrics' },
  { name: 'open inference protocol', description: 'The Open Inference Protocol (KServe v2, Triton\'s HTTP API) over the same models' },
  { name: 'model repository', description: 'Triton\'s model repository extension: list, load and unload models (ADMIN_TOKEN)' },
  { name: 'admin', description: 'Reload the manifest (ADMIN_TOKEN)' }
]

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

// The Open Inference Protocol's inference request, as JSON; with the binary tensor data
// extension the same JSON is followed by raw tensor data (Inference-Header-Content-Length
// gives the JSON's length), and "0" makes the whole body one encoded image.
const inferRequestBody: OpenAPIV3.RequestBodyObject = {
  required: true,
  description: 'An inference request. JSON, or (binary tensor data extension) JSON of Inference-Header-Content-Length bytes followed by the inputs\' binary data; with Inference-Header-Content-Length: 0, the whole body is one encoded image.',
  content: {
    'application/json': { schema: z.toJSONSchema(InferRequestSchema, { target: 'openapi-3.0', io: 'input' }) as OpenAPIV3.SchemaObject },
    'application/octet-stream': { schema: binary }
  }
}

const metricsResponse: OpenAPIV3.ResponseObject = {
  description: 'Prometheus text exposition format',
  content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } }
}

export function patchDocument (doc: OpenAPIV3.Document): OpenAPIV3.Document {
  // @fastify/swagger marks every body it has a schema for as required; the index takes none.
  const index = doc.paths['/v2/repository/index']?.post?.requestBody as OpenAPIV3.RequestBodyObject | undefined
  if (index !== undefined) {
    index.required = false
    index.description = 'Optional: no body, an empty one, `{}` or `{"ready": false}` lists every model; `{"ready": true}` only those ready to serve.'
  }
  for (const path of ['/classify', '/models/{name}/classify']) {
    const op = doc.paths[path]?.post
    if (op !== undefined) op.requestBody = classifyRequestBody
  }
  for (const path of ['/v2/models/{name}/infer', '/v2/models/{name}/versions/{version}/infer']) {
    const op = doc.paths[path]?.post
    if (op !== undefined) op.requestBody = inferRequestBody
  }
  const metrics = doc.paths['/metrics']?.get
  if (metrics !== undefined) metrics.responses = { 200: metricsResponse }
  return doc
}
