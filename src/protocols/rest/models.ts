// GET /models: what is served, how inputs are prepared, and how the OOD decision is made.
// GET /models/:name: the same for one model, with the calibration sample behind its threshold
// and p-values (the try-it page draws a score against it).
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import type { z } from 'zod'
import { ModelNotFoundError } from '../../errors.js'
import type { LoadedModel } from '../../registry/load-manifest.js'
import { ErrorSchema, ModelDetailSchema, ModelParamsSchema, ModelsResponseSchema, type ModelInfoSchema } from './schemas.js'

type ModelInfo = z.infer<typeof ModelInfoSchema>

export default async function modelRoutes (app: FastifyInstance): Promise<void> {
  const info = (m: LoadedModel): ModelInfo => ({
    name: m.name,
    version: m.version,
    default: m.name === app.engine.manifest.defaultModel,
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
    ...(m.selective !== undefined
      ? {
          selective: {
            targetRisk: m.selective.targetRisk,
            delta: m.selective.delta,
            threshold: m.selective.threshold,
            calibrationN: m.selective.calibration.n,
            coverage: m.selective.calibration.coverage,
            risk: m.selective.calibration.risk,
            bound: m.selective.calibration.bound,
            method: m.selective.calibration.method,
            calibrationDate: m.selective.calibration.date
          }
        }
      : {}),
    batching: app.engine.batching(m.name) ?? m.batching,
    provider: app.engine.providers[m.name] ?? 'cpu'
  })

  const typed = app.withTypeProvider<ZodTypeProvider>()
  typed.get('/models', {
    schema: { summary: 'List the served models', tags: ['models'], response: { 200: ModelsResponseSchema } }
  }, async () => {
    const { manifest } = app.engine
    return { default: manifest.defaultModel, models: [...manifest.models.values()].map(info) }
  })

  typed.get('/models/:name', {
    schema: {
      summary: 'One served model, with its calibration sample',
      description: 'As an entry of GET /models, plus the sorted calibration scores (and per-class ones and thresholds, when calibrated per class) that the threshold and the p-values come from, and the temperature behind the probabilities.',
      tags: ['models'],
      params: ModelParamsSchema,
      response: { 200: ModelDetailSchema, 404: ErrorSchema.describe('Unknown model'), 414: ErrorSchema.describe('A model name longer than 200 characters') }
    }
  }, async (req) => {
    const m = app.engine.manifest.models.get(req.params.name)
    if (m === undefined) throw new ModelNotFoundError(req.params.name)
    const base = info(m)
    const { scores, classScores, classN } = m.ood.calibration
    const p = m.probabilities
    return {
      ...base,
      ood: {
        ...base.ood,
        ...(m.ood.classThresholds !== undefined ? { classThresholds: m.ood.classThresholds } : {}),
        calibration: {
          ...(scores !== undefined ? { scores } : {}),
          ...(classScores !== undefined ? { classScores } : {}),
          ...(classN !== undefined ? { classN } : {})
        }
      },
      ...(p !== undefined ? { probabilities: { temperature: p.temperature, n: p.n, ece: p.ece } } : {})
    }
  })
}
