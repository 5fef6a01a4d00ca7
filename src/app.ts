// Builds the Fastify application: plugins and routes registered explicitly, in dependency
// order. Everything it needs comes in as options, so tests, the CLI tools and server.ts
// build the same app.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import multipart from '@fastify/multipart'
import swagger from '@fastify/swagger'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import type { OpenAPIV3 } from 'openapi-types'
import type { Config } from './config.js'
import { patchDocument } from './openapi/document.js'
import { engineOptions } from './inference/engine-options.js'
import enginePlugin from './plugins/engine.js'
import errorHandler from './plugins/error-handler.js'
import lifecycle from './plugins/lifecycle.js'
import metricsPlugin from './plugins/metrics.js'
import requestLog from './plugins/request-log.js'
import { preprocessLimits } from './preprocess/limits.js'
import { SUPPORTED_MEDIA_TYPES } from './preprocess/sniff.js'
import type { LoadedManifest } from './registry/load-manifest.js'
import classifyRoutes from './routes/classify.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import modelRoutes from './routes/models.js'

export interface AppOptions {
  config: Config
  manifest: LoadedManifest
  /** A pino logger (server.ts) or false (tests). */
  logger?: FastifyBaseLogger | false
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Honour a caller's X-Request-Id when it is a sane token; otherwise make one. */
function requestId (req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

export const PACKAGE_VERSION = '0.1.0'

export async function buildApp (opts: AppOptions): Promise<FastifyInstance> {
  const { config, manifest } = opts
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    genReqId: requestId,
    requestIdHeader: false,
    // Fastify's per-request lines are off: plugins/request-log.ts writes one line per request
    // and leaves out health and metrics probes.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    bodyLimit: config.MAX_UPLOAD_BYTES,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    // Drain: idle keep-alive sockets close at once; busy ones once their response is sent.
    forceCloseConnections: 'idle',
    // plugins/lifecycle.ts answers requests that arrive while closing, in the API's error format.
    return503OnClosing: false,
    // Loading and warming every model can take longer than the 10 s default.
    pluginTimeout: 180_000
  }) as unknown as FastifyInstance
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)

  // The API takes images and forms only: no JSON or text parsers, so anything else is a 415.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser([...SUPPORTED_MEDIA_TYPES], { parseAs: 'buffer', bodyLimit: config.MAX_UPLOAD_BYTES }, (_req, body, done) => {
    done(null, body)
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'isomax-serve',
        version: PACKAGE_VERSION,
        description: 'Image classification with a calibrated out-of-distribution reject (IsoMax+ models on ONNX Runtime).'
      }
    },
    transform: jsonSchemaTransform,
    transformObject: (documentObject) => {
      const doc = jsonSchemaTransformObject(documentObject) as OpenAPIV3.Document
      return patchDocument(doc) as unknown as ReturnType<typeof jsonSchemaTransformObject>
    }
  })
  await app.register(lifecycle)
  await app.register(errorHandler, { maxUploadBytes: config.MAX_UPLOAD_BYTES, maxFiles: config.MAX_FILES })
  await app.register(requestLog)
  await app.register(metricsPlugin, { models: [...manifest.models.values()] })
  await app.register(multipart, {
    limits: { fileSize: config.MAX_UPLOAD_BYTES, files: config.MAX_FILES, fields: 16, parts: config.MAX_FILES + 16 },
    throwFileSizeLimit: true
  })
  await app.register(enginePlugin, {
    manifest,
    engine: engineOptions(config)
  })

  await app.register(healthRoutes)
  await app.register(modelRoutes)
  await app.register(metricsRoutes)
  await app.register(classifyRoutes, { limits: preprocessLimits(config), requestTimeoutMs: config.REQUEST_TIMEOUT_MS })
  await app.ready()
  return app
}
