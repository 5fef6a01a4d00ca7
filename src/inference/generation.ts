// One generation of served models: a validated manifest, the session key of each model and a
// batcher per model. A request takes the current generation when it starts and is served by it
// to the end — its model entry, threshold, version and sessions — however many reloads happen
// meanwhile. A retired generation is disposed of (its sessions released unless a newer one
// shares them) once its last request is done.
import type { LoadedEntry, LoadedManifest, LoadedModel } from '../registry/load-manifest.js'
import { Batcher, type BatchObserver, type BatcherOptions, type BatchRunner } from './batcher.js'
import { maxBatchSizeOf, sessionKey, type SpecOptions } from './model-specs.js'
import type { InferenceRunner } from './runner.js'

export interface GenerationOptions extends SpecOptions {
  maxQueueSize: number
  maxQueueDelayMs?: number | undefined
}

/** Batches of a model run on its session: the runner sees the key, the batcher the name. */
function keyedRunner (runner: InferenceRunner, key: string): BatchRunner {
  return {
    get idleCount () { return runner.idleCount },
    on: (event, listener) => runner.on(event, listener),
    run: async (_model, batch, data) => await runner.run(key, batch, data)
  }
}

export class Generation<M extends LoadedEntry = LoadedModel> {
  readonly keys = new Map<string, string>()
  readonly batchers = new Map<string, Batcher>()
  /** Requests holding this generation. */
  inflight = 0
  retired = false

  constructor (
    readonly id: number,
    readonly manifest: LoadedManifest<M>,
    runner: InferenceRunner,
    options: GenerationOptions,
    observer: (model: string) => BatchObserver
  ) {
    for (const m of manifest.models.values()) {
      const key = sessionKey(m, options)
      this.keys.set(m.name, key)
      const batching: BatcherOptions = {
        maxBatchSize: maxBatchSizeOf(m, options),
        maxQueueDelayMs: options.maxQueueDelayMs ?? m.batching.maxQueueDelayMs,
        maxQueueSize: options.maxQueueSize,
        sampleSize: m.input.channels * m.input.height * m.input.width
      }
      this.batchers.set(m.name, new Batcher(m.name, keyedRunner(runner, key), batching, observer(m.name)))
    }
  }

  model (name: string): M | undefined {
    return this.manifest.models.get(name)
  }

  batcher (name: string): Batcher {
    const b = this.batchers.get(name)
    if (b === undefined) throw new Error(`model "${name}" is not in generation ${this.id}`)
    return b
  }

  pump (): void {
    for (const b of this.batchers.values()) b.pump()
  }

  drain (reason: Error): void {
    for (const b of this.batchers.values()) b.drain(reason)
  }
}
