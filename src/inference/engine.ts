// The inference engine: one runner (the worker pool) shared by all models, one batcher per
// model. It knows nothing of HTTP: the classify route calls classify() (admission before
// decoding), the CLI tools call classifyTensor() on tensors they have already made.
// server.ts starts the real one (Engine.start) and hands it to the app; tests may hand the app
// an engine over a FunctionRunner instead (Engine.over).
import type { LoadedEntry, LoadedManifest, LoadedModel } from '../registry/load-manifest.js'
import { Batcher, type BatchResult } from './batcher.js'
import type { Provider, ProviderRequest, WorkerInit } from './protocol.js'
import type { InferenceRunner } from './runner.js'
import { WorkerPool, type PoolLogger } from './worker-pool.js'

export interface EngineOptions {
  provider: ProviderRequest
  workers: number
  intraOpThreads: number
  maxQueueSize: number
  /** Overrides of every model's manifest batching (env MAX_BATCH_SIZE / MAX_QUEUE_DELAY_MS). */
  maxBatchSize?: number | undefined
  maxQueueDelayMs?: number | undefined
}

export interface EngineObserver {
  onBatch?: (model: string, size: number, inferenceMs: number) => void
  onQueueDepth?: (model: string, depth: number) => void
}

/** What every inference worker loads: the same for the engine and for the bench's ceilings. */
export function workerInit (manifest: LoadedManifest<LoadedEntry>, options: Pick<EngineOptions, 'provider' | 'intraOpThreads' | 'maxBatchSize'>): WorkerInit {
  return {
    provider: options.provider,
    intraOpThreads: options.intraOpThreads,
    models: [...manifest.models.values()].map((m) => ({
      name: m.name,
      onnxPath: m.onnxPath,
      inputName: m.input.name,
      outputName: m.output.name,
      sampleShape: [m.input.channels, m.input.height, m.input.width],
      warmupBatchSizes: [...new Set([1, options.maxBatchSize ?? m.batching.maxBatchSize])],
      labels: m.labels.length,
      where: `${manifest.file}: models[${m.index}] (model "${m.name}")`
    }))
  }
}

/** M: the served, calibrated models; calibrate runs models whose OOD block it is about to write. */
export class Engine<M extends LoadedEntry = LoadedModel> {
  private readonly batchers = new Map<string, Batcher>()
  private observer: EngineObserver = {}
  private closed = false

  private constructor (readonly manifest: LoadedManifest<M>, private readonly runner: InferenceRunner, options: Pick<EngineOptions, 'maxQueueSize' | 'maxBatchSize' | 'maxQueueDelayMs'>) {
    for (const m of manifest.models.values()) {
      const batcher = new Batcher(m.name, runner, {
        maxBatchSize: options.maxBatchSize ?? m.batching.maxBatchSize,
        maxQueueDelayMs: options.maxQueueDelayMs ?? m.batching.maxQueueDelayMs,
        maxQueueSize: options.maxQueueSize,
        sampleSize: m.input.channels * m.input.height * m.input.width
      }, {
        onBatch: (size, ms) => this.observer.onBatch?.(m.name, size, ms),
        onQueueDepth: (depth) => this.observer.onQueueDepth?.(m.name, depth)
      })
      this.batchers.set(m.name, batcher)
    }
    runner.on('idle', () => { for (const b of this.batchers.values()) b.pump() })
  }

  /** Start the worker pool: every worker loads and warms every model before this resolves. */
  static async start<M extends LoadedEntry = LoadedModel> (manifest: LoadedManifest<M>, options: EngineOptions, log: PoolLogger): Promise<Engine<M>> {
    const pool = new WorkerPool(workerInit(manifest, options), options.workers, log)
    await pool.start()
    return new Engine(manifest, pool, options)
  }

  /** An engine over any runner (tests: a FunctionRunner in place of ONNX Runtime). */
  static over<M extends LoadedEntry = LoadedModel> (manifest: LoadedManifest<M>, runner: InferenceRunner, options: Pick<EngineOptions, 'maxQueueSize' | 'maxBatchSize' | 'maxQueueDelayMs'>): Engine<M> {
    return new Engine(manifest, runner, options)
  }

  /** Where batch and queue events go (the app's metrics); one observer at a time. */
  observe (observer: EngineObserver): void {
    this.observer = observer
  }

  /** Every model loaded and warmed, and the engine not closed. */
  get ready (): boolean {
    return !this.closed && this.runner.workerCount > 0
  }

  get providers (): Readonly<Record<string, Provider>> {
    return this.runner.providers
  }

  get workerCount (): number {
    return this.runner.workerCount
  }

  model (name: string): M | undefined {
    return this.manifest.models.get(name)
  }

  /** Batching in effect for a model: the manifest's, unless overridden by the environment. */
  batching (name: string): { maxBatchSize: number, maxQueueDelayMs: number } | undefined {
    const b = this.batchers.get(name)
    return b === undefined ? undefined : { maxBatchSize: b.options.maxBatchSize, maxQueueDelayMs: b.options.maxQueueDelayMs }
  }

  async classifyTensor (model: string, tensor: Float32Array, timeoutMs: number): Promise<BatchResult> {
    return await this.batcher(model).submit(tensor, timeoutMs)
  }

  /**
   * Admit a request to the model's bounded queue, then make its tensor (`prepare`: decoding)
   * and queue it. Overload is refused before any decoding (Batcher.prepareAndSubmit).
   */
  async classify (model: string, prepare: () => Promise<Float32Array> | Float32Array, timeoutMs: number): Promise<BatchResult> {
    return await this.batcher(model).prepareAndSubmit(prepare, timeoutMs)
  }

  private batcher (model: string): Batcher {
    const batcher = this.batchers.get(model)
    if (batcher === undefined) throw new Error(`no batcher for model "${model}"`)
    return batcher
  }

  /** Test hook: make one worker die as if it had crashed. */
  async crashOneWorker (): Promise<void> {
    if (this.runner instanceof WorkerPool) await this.runner.crashOneWorker()
  }

  async close (reason: Error): Promise<void> {
    this.closed = true
    for (const b of this.batchers.values()) b.drain(reason)
    await this.runner.close()
  }
}
