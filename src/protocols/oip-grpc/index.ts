// The Open Inference Protocol over gRPC: inference.GRPCInferenceService (service.ts: the
// protocol's RPCs and Triton's extensions) and grpc.health.v1.Health (health.ts), on their own
// port (GRPC_PORT) beside the HTTP one, as codecs over the same data plane. Registered in
// app.ts like the other protocols; the port opens when server.ts calls app.grpc.listen() after
// the HTTP server listens. Draining: readiness (ServerReady, Health) follows the lifecycle; once
// the app closes, new calls get UNAVAILABLE with retry information, the port stops accepting,
// and in-flight calls finish before the engine closes (preClose runs before any onClose).
import { Server, ServerCredentials, type UntypedServiceImplementation } from '@grpc/grpc-js'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { InferLimits } from '../oip/inputs.js'
import { definitions } from './definitions.js'
import { healthService } from './health.js'
import { unary } from './rpc.js'
import { inferenceService } from './service.js'

export interface OipGrpcOptions {
  /** GRPC_PORT: null when gRPC is off (listen() then opens nothing). */
  port: number | null
  host: string
  /** Largest message received (MAX_REQUEST_BYTES, HTTP's body limit): RESOURCE_EXHAUSTED above. */
  maxMessageBytes: number
  infer: InferLimits
  adminToken?: string | undefined
  /** How long a drain waits for in-flight calls before cancelling them. */
  shutdownTimeoutMs: number
}

export interface GrpcEndpoint {
  /** Open the port (once); the port bound, or null when gRPC is off. */
  listen: () => Promise<number | null>
  /** The port bound, or null. */
  port: () => number | null
}

declare module 'fastify' {
  interface FastifyInstance {
    grpc: GrpcEndpoint
  }
}

export const INFERENCE_SERVICE = 'inference.GRPCInferenceService'

export default fp<OipGrpcOptions>(async function oipGrpcProtocol (app: FastifyInstance, opts) {
  const defs = definitions()
  const server = new Server({
    'grpc.max_receive_message_length': opts.maxMessageBytes,
    // Responses are small (N rows of a few numbers); the default 4 MiB cap is not what bounds them.
    'grpc.max_send_message_length': -1
  })
  const implementation: UntypedServiceImplementation = {}
  for (const [name, rpc] of Object.entries(inferenceService(app, { infer: opts.infer, adminToken: opts.adminToken }))) {
    implementation[name] = unary(app, `/${INFERENCE_SERVICE}/${name}`, rpc)
  }
  server.addService(defs.inference, implementation)
  const health = healthService(app)
  server.addService(defs.health, health.handlers as unknown as UntypedServiceImplementation)

  let bound: number | null = null
  let listening: Promise<number | null> | undefined
  app.decorate('grpc', {
    listen: async () => {
      listening ??= opts.port === null
        ? Promise.resolve(null)
        : new Promise<number | null>((resolve, reject) => {
          // IPv6 hosts go in brackets in a gRPC target.
          const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host
          server.bindAsync(`${host}:${opts.port}`, ServerCredentials.createInsecure(), (err, port) => {
            if (err !== null) { reject(err); return }
            bound = port
            resolve(port)
          })
        })
      return await listening
    },
    port: () => bound
  })

  app.addHook('preClose', async () => {
    health.close()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { server.forceShutdown(); resolve() }, opts.shutdownTimeoutMs)
      server.tryShutdown(() => { clearTimeout(timer); resolve() })
    })
  })
}, { name: 'oip-grpc', dependencies: ['lifecycle', 'metrics', 'data-plane', 'repository', 'body-budget'] })
