// Hands the protocols the data plane (src/serving/data-plane.ts) and watches what it does: each
// prediction and each batch goes to the Prometheus metrics and to the per-model statistics of
// Triton's statistics extension (src/serving/model-stats.ts, GET /v2/models/{name}/stats).
import fp from 'fastify-plugin'
import { DataPlane, type DataPlaneOptions } from '../serving/data-plane.js'
import { ModelStats } from '../serving/model-stats.js'
import { observeClassified } from './metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    dataPlane: DataPlane
    modelStats: ModelStats
  }
}

export default fp<DataPlaneOptions>(async function dataPlanePlugin (app, opts) {
  const { engine, metrics } = app
  const stats = new ModelStats()
  engine.observe({
    onBatch: (model, size, ms) => {
      metrics.batchSize.observe({ model }, size)
      metrics.inferenceDuration.observe({ model }, ms / 1000)
      stats.execution(model, size, ms)
    },
    onQueueDepth: (model, depth) => metrics.queueDepth.set({ model }, depth)
  })
  app.decorate('modelStats', stats)
  app.decorate('dataPlane', new DataPlane(engine, opts, {
    onPrediction: (model, { ood, rejectReasons, times }) => { observeClassified(metrics, model, times.queueMs, ood, rejectReasons) },
    onRequest: (model, { samples, times }) => { stats.success(model, times, samples) },
    onFailure: (model, totalMs) => { stats.fail(model, totalMs) }
  }))
}, { name: 'data-plane', dependencies: ['engine', 'metrics'] })
