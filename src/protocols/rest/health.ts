// Liveness (the process answers) and readiness (models warmed, not draining) for load
// balancers and Kubernetes probes.
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { LiveSchema, ReadySchema } from './schemas.js'

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>()
  typed.get('/health/live', {
    schema: { summary: 'Liveness: the process is up', tags: ['health'], response: { 200: LiveSchema } }
  }, async () => ({ status: 'live' as const }))

  typed.get('/health/ready', {
    schema: {
      summary: 'Readiness: every model loaded and warmed, and not draining',
      tags: ['health'],
      response: { 200: ReadySchema, 503: ReadySchema }
    }
  }, async (_req, reply) => {
    const reason = app.lifecycle.notReadyReason()
    const providers = app.hasDecorator('engine') ? app.engine.providers : {}
    const models = [...Object.entries(providers)].map(([name, provider]) => ({ name, provider }))
    if (reason !== null) return await reply.code(503).send({ status: 'not-ready' as const, reason, models })
    return { status: 'ready' as const, models }
  })
}
