// Starts the inference engine (workers, sessions, warm-up) before the app is ready and closes
// it — sessions released — when the app closes.
import fp from 'fastify-plugin'
import { ShuttingDownError } from '../errors.js'
import { Engine, type EngineOptions } from '../inference/engine.js'
import type { LoadedManifest } from '../registry/load-manifest.js'

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
  }
}

export interface EnginePluginOptions {
  manifest: LoadedManifest
  engine: EngineOptions
}

export default fp<EnginePluginOptions>(async function enginePlugin (app, opts) {
  const { metrics } = app
  const engine = await Engine.start(opts.manifest, opts.engine, app.log, {
    onBatch: (model, size, ms) => {
      metrics.batchSize.observe({ model }, size)
      metrics.inferenceDuration.observe({ model }, ms / 1000)
    },
    onQueueDepth: (model, depth) => metrics.queueDepth.set({ model }, depth)
  })
  app.decorate('engine', engine)
  for (const [model, provider] of Object.entries(engine.providers)) {
    metrics.modelProvider.set({ model, provider }, 1)
    app.log.info({ model, provider }, 'model loaded and warmed up')
  }
  metrics.modelsLoaded.set(opts.manifest.models.size)
  metrics.inferenceWorkers.set(engine.workerCount)
  app.lifecycle.ready = true
  app.addHook('onClose', async () => {
    app.lifecycle.ready = false
    metrics.modelsLoaded.set(0)
    await engine.close(new ShuttingDownError())
  })
}, { name: 'engine', dependencies: ['metrics', 'lifecycle'] })
