// Readiness state: ready while the engine says every model is warmed up (plugins/engine.ts
// supplies modelsReady); draining from the first shutdown signal.
// Once the server is closing, a request that still arrives on an open keep-alive connection
// gets our JSON 503 (ISOMAX_SHUTTING_DOWN, Connection: close) so a balancer resends it elsewhere.
import fp from 'fastify-plugin'
import { ShuttingDownError } from '../errors.js'

export interface Lifecycle {
  /** Whether every model is loaded and warmed up; the engine plugin replaces this. */
  modelsReady: () => boolean
  draining: boolean
  closing: boolean
  notReadyReason: () => string | null
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}

export default fp(async function lifecyclePlugin (app) {
  const lifecycle: Lifecycle = {
    modelsReady: () => false,
    draining: false,
    closing: false,
    notReadyReason () {
      if (this.draining) return 'draining: the server is shutting down'
      if (!this.modelsReady()) return 'models are still loading'
      return null
    }
  }
  app.decorate('lifecycle', lifecycle)
  app.addHook('preClose', async () => { lifecycle.closing = true })
  app.addHook('onRequest', async (_req, reply) => {
    if (!lifecycle.closing) return
    // Thrown, so that the protocol the request belongs to answers it in its own shape.
    void reply.header('connection', 'close')
    throw new ShuttingDownError()
  })
}, { name: 'lifecycle' })
