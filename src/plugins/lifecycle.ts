// Readiness state: ready once every model is warmed up; draining from the first shutdown signal.
import fp from 'fastify-plugin'

export interface Lifecycle {
  ready: boolean
  draining: boolean
  notReadyReason: () => string | null
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}

export default fp(async function lifecyclePlugin (app) {
  const lifecycle: Lifecycle = {
    ready: false,
    draining: false,
    notReadyReason () {
      if (this.draining) return 'draining: the server is shutting down'
      if (!this.ready) return 'models are still loading'
      return null
    }
  }
  app.decorate('lifecycle', lifecycle)
}, { name: 'lifecycle' })
