// Hands the app its model repository (src/repository/repository.ts) and follows its events:
// the metrics that describe the served set, the reload counter and the log lines. Routes and
// SIGHUP call app.repository; nothing else changes the served models.
import fp from 'fastify-plugin'
import { ModelRepository } from '../repository/repository.js'

declare module 'fastify' {
  interface FastifyInstance {
    repository: ModelRepository
  }
}

export interface RepositoryPluginOptions {
  /** The manifest file (MODELS_MANIFEST). */
  manifestFile: string
  /** DEFAULT_MODEL: replaces the manifest's `default` at every reload. */
  defaultModel?: string | undefined
}

export default fp<RepositoryPluginOptions>(async function repositoryPlugin (app, opts) {
  const { engine, metrics } = app
  const repository = new ModelRepository(engine, opts.manifestFile, engine.manifest.models, opts.defaultModel)

  /** The metrics that describe the served set: after start and after every swap. */
  function describeServed (): void {
    const m = engine.manifest
    metrics.modelsLoaded.set(m.models.size)
    metrics.manifestGeneration.set(engine.generationId)
    metrics.manifestInfo.reset()
    metrics.manifestInfo.set({ sha256: m.sha256 }, 1)
    metrics.modelProvider.reset()
    for (const [model, provider] of Object.entries(engine.providers)) metrics.modelProvider.set({ model, provider }, 1)
    // What the alerting rules compare live traffic with (deploy/prometheus/rules): per model,
    // replaced as a whole so a model that is gone leaves no stale series.
    metrics.calibratedRejectRate.reset()
    metrics.oodThreshold.reset()
    metrics.calibratedUncertainRate.reset()
    for (const model of m.models.values()) {
      if (model.selective !== undefined) metrics.calibratedUncertainRate.set({ model: model.name }, model.selective.calibration.uncertainRate)
      metrics.calibratedRejectRate.set({ model: model.name }, 1 - model.ood.calibration.achievedTpr)
      metrics.oodThreshold.set({ model: model.name }, model.ood.threshold)
    }
  }
  describeServed()

  repository.on('changed', ({ what, outcome, durationMs }) => {
    metrics.reloads.inc({ outcome: 'success' })
    describeServed()
    app.log.info({ ...outcome, durationMs }, `${what}: generation ${outcome.generation} serving after ${durationMs} ms`)
  })
  repository.on('failed', ({ what, error, durationMs }) => {
    metrics.reloads.inc({ outcome: 'failure' })
    app.log.warn({ code: (error as { code?: string }).code, what, durationMs }, `model change failed, nothing changed: ${error.message}`)
  })
  repository.on('refused', ({ what, error }) => {
    metrics.reloads.inc({ outcome: 'refused' })
    app.log.info({ code: (error as { code?: string }).code, what }, `model change refused, nothing changed: ${error.message}`)
  })

  // The names the file lists beyond those served (staged, uncalibrated entries): their readiness
  // is "not ready", not "not found". A file that cannot be read now is the next reload's problem.
  try {
    await repository.index()
  } catch (err) {
    app.log.warn({ file: opts.manifestFile }, `the manifest file cannot be listed: ${(err as Error).message}`)
  }

  app.decorate('repository', repository)
}, { name: 'repository', dependencies: ['engine', 'metrics'] })
