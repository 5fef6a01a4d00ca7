// GET /models: what is served, how inputs are prepared, and how the OOD decision is made.
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { ModelsResponseSchema } from './schemas.js'

export default async function modelRoutes (app: FastifyInstance): Promise<void> {
  app.withTypeProvider<ZodTypeProvider>().get('/models', {
    schema: { summary: 'List the served models', tags: ['models'], response: { 200: ModelsResponseSchema } }
  }, async () => {
    const { manifest, providers } = app.engine
    return {
      default: manifest.defaultModel,
      models: [...manifest.models.values()].map((m) => ({
        name: m.name,
        version: m.version,
        default: m.name === manifest.defaultModel,
        head: m.head,
        labels: m.labels,
        input: m.input,
        ood: {
          score: m.ood.score,
          threshold: m.ood.threshold,
          targetTpr: m.ood.calibration.targetTpr,
          achievedTpr: m.ood.calibration.achievedTpr,
          calibrationN: m.ood.calibration.n,
          calibrationDate: m.ood.calibration.date
        },
        batching: app.engine.batching(m.name) ?? m.batching,
        provider: providers[m.name] ?? 'cpu'
      }))
    }
  })
}
