// GET /metrics in the Prometheus text exposition format.
import type { FastifyInstance } from 'fastify'

export default async function metricsRoutes (app: FastifyInstance): Promise<void> {
  app.get('/metrics', {
    schema: { summary: 'Prometheus metrics', tags: ['metrics'] }
  }, async (_req, reply) => {
    const { registry } = app.metrics
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}
