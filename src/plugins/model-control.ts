// Changing the served models without a restart: reload the manifest file (SIGHUP, POST
// /admin/reload), or load / unload one model (the Open Inference Protocol's repository
// extension). Each builds the manifest to serve next and hands it to engine.swap(), which
// validates and loads before it swaps (engine.ts). A failure changes nothing, is logged with
// its reason and counted in isomax_model_reloads_total{outcome="failure"}.
//
// The manifest file is the repository: reload serves every model in it; load takes one
// model's entry from it. Replace the file by writing a new one and renaming it over the old
// (what `npm run calibrate` and `npm run models` do): a reader then sees the old file or the
// new one, never half of one; a half-written file fails validation and changes nothing.
import fp from 'fastify-plugin'
import { ConflictError, ModelNotFoundError, ReloadFailedError, RepositoryError } from '../errors.js'
import type { SwapResult } from '../inference/engine.js'
import { loadManifest, type LoadedManifest, type LoadedModel } from '../registry/load-manifest.js'

export interface ReloadOutcome extends SwapResult {
  manifestSha256: string
  models: string[]
  default: string
}

export interface RepositoryEntry {
  name: string
  version: string
  state: 'READY' | 'UNAVAILABLE'
  reason: string
}

export interface ModelControl {
  /** Serve every model of the manifest file. */
  reload: () => Promise<ReloadOutcome>
  /** Serve `name` as the manifest file has it now (add it, or replace what is served). */
  load: (name: string) => Promise<ReloadOutcome>
  /** Stop serving `name` (not the default model). */
  unload: (name: string) => Promise<ReloadOutcome>
  /** The models of the manifest file and of the served set, with their state. */
  index: () => Promise<RepositoryEntry[]>
}

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelControl
  }
}

export interface ModelControlOptions {
  /** The manifest file (MODELS_MANIFEST). */
  manifestFile: string
}

export default fp<ModelControlOptions>(async function modelControlPlugin (app, opts) {
  const { engine, metrics } = app

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
    for (const model of m.models.values()) {
      metrics.calibratedRejectRate.set({ model: model.name }, 1 - model.ood.calibration.achievedTpr)
      metrics.oodThreshold.set({ model: model.name }, model.ood.threshold)
    }
  }
  describeServed()

  async function swapTo (what: string, build: () => Promise<LoadedManifest>): Promise<ReloadOutcome> {
    let result: SwapResult
    let next: LoadedManifest
    const started = performance.now()
    const durationMs = (): number => Math.round(performance.now() - started)
    try {
      next = await build()
      result = await engine.swap(next)
    } catch (err) {
      const e = err as Error & { code?: string, statusCode?: number }
      metrics.reloads.inc({ outcome: 'failure' })
      // The caller's own mistakes (an unknown model, the default) are not failed reloads.
      if (e.statusCode === 404 || e.statusCode === 409) throw err
      app.log.warn({ code: e.code, what, durationMs: durationMs() }, `model change refused, nothing changed: ${e.message}`)
      throw new ReloadFailedError(e.message)
    }
    metrics.reloads.inc({ outcome: 'success' })
    describeServed()
    const outcome = { ...result, manifestSha256: next.sha256, models: [...next.models.keys()], default: next.defaultModel }
    app.log.info({ ...outcome, durationMs: durationMs() }, `${what}: generation ${result.generation} serving after ${durationMs()} ms`)
    return outcome
  }

  const file = opts.manifestFile
  const control: ModelControl = {
    reload: async () => await swapTo('reload', async () => await loadManifest(file)),
    load: async (name) => await swapTo(`load ${name}`, async () => {
      const fromFile = await loadManifest(file, { uncalibrated: true })
      const entry = fromFile.models.get(name)
      if (entry === undefined) throw new ModelNotFoundError(name)
      if (entry.ood === undefined) throw new Error(`${file}: model "${name}" is not calibrated yet (no OOD block); run npm run calibrate`)
      const current = engine.manifest
      const models = new Map(current.models)
      models.set(name, entry as LoadedModel)
      return { ...current, sha256: fromFile.sha256, models }
    }),
    unload: async (name) => await swapTo(`unload ${name}`, async () => {
      const current = engine.manifest
      if (!current.models.has(name)) throw new ModelNotFoundError(name)
      if (current.defaultModel === name) throw new ConflictError(`model "${name}" is the default model; make another one the default in the manifest and reload first`)
      const models = new Map(current.models)
      models.delete(name)
      return { ...current, models }
    }),
    index: async () => {
      const served = engine.manifest
      const entries: RepositoryEntry[] = []
      let fromFile
      try {
        fromFile = await loadManifest(file, { uncalibrated: true })
      } catch (err) {
        throw new RepositoryError((err as Error).message)
      }
      for (const m of fromFile.models.values()) {
        const live = served.models.get(m.name)
        if (live !== undefined) entries.push({ name: m.name, version: live.version, state: 'READY', reason: live.sha256 === m.sha256 ? '' : 'serving an older file; load or reload to serve this one' })
        else entries.push({ name: m.name, version: m.version, state: 'UNAVAILABLE', reason: m.ood === undefined ? 'not calibrated' : 'not loaded' })
      }
      for (const m of served.models.values()) {
        if (!fromFile.models.has(m.name)) entries.push({ name: m.name, version: m.version, state: 'READY', reason: 'no longer in the manifest file' })
      }
      return entries
    }
  }
  app.decorate('models', control)
}, { name: 'model-control', dependencies: ['engine', 'metrics'] })
