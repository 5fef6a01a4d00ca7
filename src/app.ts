// The Fastify application as a plugin (fastify/demo style): plugins and routes registered
// explicitly, in dependency order. Everything it needs comes in as options — the parsed config
// and a started inference engine — so server.ts, tests and scripts build the same app.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, Server } from 'node:http'
import multipart from '@fastify/multipart'
import swagger from '@fastify/swagger'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import type { OpenAPIV3 } from 'openapi-types'
import type { Config } from './config.js'
import { API_TAGS, patchDocument } from './openapi/document.js'
import { PACKAGE_VERSION } from './version.js'
import type { Engine } from './inference/engine.js'
import dataPlane from './plugins/data-plane.js'
import enginePlugin from './plugins/engine.js'
import bodyBudget from './plugins/body-budget.js'
import { clientErrorHandler, frameworkErrors } from './http/client-errors.js'
import { errorHandler, notFoundHandler } from './http/error-handler.js'
import { ErrorShapes } from './http/error-shapes.js'
import lifecycle from './plugins/lifecycle.js'
import linger from './plugins/linger.js'
import metricsPlugin from './plugins/metrics.js'
import protocolChecks from './plugins/protocol-checks.js'
import repositoryPlugin from './plugins/repository.js'
import requestLog from './plugins/request-log.js'
import { preprocessLimits } from './preprocess/limits.js'
import oipGrpc from './protocols/oip-grpc/index.js'
import oipHttp, { OIP_PREFIX } from './protocols/oip-http/index.js'
import rest from './protocols/rest/index.js'
import { restErrors } from './protocols/rest/errors.js'
import apiDocs from './ui/api-docs.js'
import tryItPage from './ui/try-it.js'

export interface AppOptions {
  config: Config
  /** Started by the caller (server.ts: Engine.start); the app closes it when it closes. */
  engine: Engine
  /** Error shapes by URL prefix for errors before a route (serverOptions' handlers share it). */
  shapes: ErrorShapes
}

export interface BuildOptions extends AppOptions {
  /** A pino logger (server.ts) or false (tests). */
  logger?: FastifyBaseLogger | false
}

/** The X-Request-Id a caller may choose; deploy/nginx.conf passes on only these (a test checks). */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Honour a caller's X-Request-Id when it is a sane token; otherwise make one. */
function requestId (req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

/**
 * Largest JSON part of an Open Inference Protocol request: JSON is parsed on the event loop
 * (~5 ms per MiB), so bigger tensors go in binary. 16 FP32 28×28 samples in JSON are ~200 kB.
 */
export const V2_MAX_JSON_BYTES = 1024 * 1024

/** Longest path parameter (a model name): protocols/rest/schemas.ts allows the same. */
export const MAX_PARAM_LENGTH = 200

/** Server-level settings (limits, timeouts, logging) that a plugin cannot set. */
export function serverOptions (config: Config, logger: FastifyBaseLogger | false, shapes: ErrorShapes): FastifyHttpOptions<Server> {
  return {
    ...(logger !== false ? { loggerInstance: logger } : { logger: false }),
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
    pluginTimeout: 30_000,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    http: {
      // plugins/protocol-checks.ts answers a missing Host in the catalogue's format.
      requireHostHeader: false,
      // Given at construction: Node enforces requestTimeout only when headersTimeout is not
      // above it, and Fastify's own requestTimeout option is applied after construction, when
      // headersTimeout is still Node's 60 s — so a slow body was never cut off (found by the
      // 408 test in test/http/protocol-errors.test.ts).
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      headersTimeout: Math.min(60_000, config.REQUEST_TIMEOUT_MS),
      // How often Node looks for requests past REQUEST_TIMEOUT_MS (default 30 s): a slow
      // sender gets its 408 within about a quarter of the timeout after it.
      connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.round(config.REQUEST_TIMEOUT_MS / 4)))
    },
    // Errors from Node's HTTP parser and from the router, in the catalogue's format.
    clientErrorHandler: clientErrorHandler(config.REQUEST_TIMEOUT_MS, shapes),
    frameworkErrors: frameworkErrors(MAX_PARAM_LENGTH, shapes)
  } as FastifyHttpOptions<Server>
}

/**
 * The application as a plugin: every plugin and route, registered explicitly in order. Not
 * encapsulated (fastify-plugin), so server.ts sees its decorators (lifecycle, engine).
 */
export const app = fp<AppOptions>(async function isomaxApp (fastify, opts) {
  const { config, engine, shapes } = opts
  // One set of preprocessing limits (and so one decode budget) for every route.
  const limits = preprocessLimits(config)
  const errorLimits = { maxUploadBytes: config.MAX_UPLOAD_BYTES, maxFiles: config.MAX_FILES }
  fastify.setValidatorCompiler(validatorCompiler)
  fastify.setSerializerCompiler(serializerCompiler)
  // No JSON or text parsers by default: each protocol adds what it takes, so anything else is a 415.
  fastify.removeAllContentTypeParsers()
  // Outside any protocol (the pages, an unknown path): the catalogue's shape.
  fastify.setErrorHandler(errorHandler(restErrors, errorLimits))
  fastify.setNotFoundHandler(notFoundHandler(restErrors))

  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'isomax-serve',
        version: PACKAGE_VERSION,
        description: 'Image classification with a calibrated out-of-distribution reject (IsoMax+ models on ONNX Runtime).'
      },
      // The order Swagger UI lists the groups in: what a newcomer calls first, first.
      tags: API_TAGS,
      // Only with the admin routes: without them there is nothing to authorize, and Swagger UI
      // would still show an Authorize button for the scheme.
      ...(config.ADMIN_TOKEN !== undefined
        ? { components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN; the admin routes exist only when it is set' } } } }
        : {})
    },
    transform: jsonSchemaTransform,
    transformObject: (documentObject) => {
      const doc = jsonSchemaTransformObject(documentObject) as OpenAPIV3.Document
      return patchDocument(doc) as unknown as ReturnType<typeof jsonSchemaTransformObject>
    }
  })
  await fastify.register(lifecycle)
  await fastify.register(protocolChecks, { shapes })
  await fastify.register(linger)
  await fastify.register(bodyBudget, { maxRequestBytes: config.MAX_REQUEST_BYTES, maxInflightBytes: config.MAX_INFLIGHT_BYTES, maxInflightBytesPerClient: config.MAX_INFLIGHT_BYTES_PER_CLIENT })
  await fastify.register(requestLog)
  await fastify.register(metricsPlugin, { models: [...engine.manifest.models.values()], protocolOf: (url) => shapes.protocolFor(url) })
  await fastify.register(multipart, {
    limits: { fileSize: config.MAX_UPLOAD_BYTES, files: config.MAX_FILES, fields: 16, parts: config.MAX_FILES + 16 },
    throwFileSizeLimit: true
  })
  await fastify.register(enginePlugin, { engine })
  await fastify.register(repositoryPlugin, { manifestFile: engine.manifest.file, defaultModel: config.DEFAULT_MODEL })
  await fastify.register(dataPlane, { limits, requestTimeoutMs: config.REQUEST_TIMEOUT_MS })

  // The protocols: codecs over the data plane, each in its own context with its own error shape.
  // A new protocol is a new folder under src/protocols and one line here.
  await fastify.register(rest, { body: { maxUploadBytes: config.MAX_UPLOAD_BYTES, maxRequestBytes: config.MAX_REQUEST_BYTES }, errors: errorLimits, adminToken: config.ADMIN_TOKEN })
  await fastify.register(oipHttp, {
    prefix: OIP_PREFIX,
    maxRequestBytes: config.MAX_REQUEST_BYTES,
    infer: { maxElements: config.MAX_FILES, maxImageBytes: config.MAX_UPLOAD_BYTES, maxJsonBytes: V2_MAX_JSON_BYTES },
    errors: errorLimits,
    shapes,
    adminToken: config.ADMIN_TOKEN
  })
  // gRPC on its own port (GRPC_PORT), opened by server.ts after HTTP's: app.grpc.listen().
  await fastify.register(oipGrpc, {
    port: config.GRPC_PORT,
    host: config.HOST,
    maxMessageBytes: config.MAX_REQUEST_BYTES,
    infer: { maxElements: config.MAX_FILES, maxImageBytes: config.MAX_UPLOAD_BYTES, maxJsonBytes: V2_MAX_JSON_BYTES },
    adminToken: config.ADMIN_TOKEN,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS
  })

  // Pages for people, each in its own context (their CSP stays off the API's routes); off by
  // config, their paths are 404s like any unknown route.
  if (config.UI_ENABLED) await fastify.register(tryItPage)
  if (config.API_DOCS_ENABLED) await fastify.register(apiDocs)
}, { name: 'isomax-app' })

export default app

/** A ready Fastify instance: server options plus the app plugin (server.ts, tests, scripts). */
export async function buildApp (opts: Omit<BuildOptions, 'shapes'>): Promise<FastifyInstance> {
  const shapes = new ErrorShapes(restErrors)
  const fastify = Fastify(serverOptions(opts.config, opts.logger ?? false, shapes)) as unknown as FastifyInstance
  try {
    await fastify.register(app, { ...opts, shapes })
    await fastify.ready()
  } catch (err) {
    // The engine is the app's from the start: a failed build must not leak its workers.
    await opts.engine.close(err as Error)
    throw err
  }
  return fastify
}
