// Hands the app its inference engine (started by server.ts, or built over a FunctionRunner in
// tests) and closes it — sessions released — when the app closes. The app owns the engine from
// here on.
import fp from 'fastify-plugin'
import { ShuttingDownError } from '../errors.js'
import type { Engine } from '../inference/engine.js'

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
  }
}

export interface EnginePluginOptions {
  engine: Engine
}

export default fp<EnginePluginOptions>(async function enginePlugin (app, opts) {
  const { metrics } = app
  const { engine } = opts
  // Its batch and queue events are observed by plugins/data-plane.ts.
  app.decorate('engine', engine)
  for (const [model, provider] of Object.entries(engine.providers)) {
    app.log.info({ model, provider }, 'model loaded and warmed up')
  }
  metrics.inferenceWorkers.set(engine.workerCount)
  app.lifecycle.modelsReady = () => engine.ready
  app.addHook('onClose', async () => {
    metrics.modelsLoaded.set(0)
    await engine.close(new ShuttingDownError())
  })
}, { name: 'engine', dependencies: ['metrics', 'lifecycle'] })
