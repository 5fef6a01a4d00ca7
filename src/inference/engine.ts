// The inference engine: one worker pool shared by all models, one batcher per model.
// It knows nothing of HTTP: the classify route calls classify() (admission before decoding),
// the CLI tools call classifyTensor() on tensors they have already made.
import type { LoadedManifest, LoadedModel } from '../registry/load-manifest.js'
import { Batcher, type BatchObserver, type BatchResult } from './batcher.js'
import type { Provider, ProviderRequest, WorkerInit } from './protocol.js'
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
export function workerInit (manifest: LoadedManifest, options: Pick<EngineOptions, 'provider' | 'intraOpThreads' | 'maxBatchSize'>): WorkerInit {
  return {
    provider: options.provider,
    intraOpThreads: options.intraOpThreads,
    models: [...manifest.models.values()].map((m) => ({
      name: m.name,
      onnxPath: m.onnxPath,
      inputName: m.input.name,
      outputName: m.output.name,
      sampleShape: [m.input.channels, m.input.height, m.input.width],
      warmupBatchSizes: [...new Set([1, options.maxBatchSize ?? m.batching.maxBatchSize])]
    }))
  }
}

export class Engine {
  private readonly batchers = new Map<string, Batcher>()

  private constructor (readonly manifest: LoadedManifest, private readonly pool: WorkerPool) {}

  static async start (manifest: LoadedManifest, options: EngineOptions, log: PoolLogger, observer: EngineObserver = {}): Promise<Engine> {
    const models = [...manifest.models.values()]
    const pool = new WorkerPool(workerInit(manifest, options), options.workers, log)
    await pool.start()
    const engine = new Engine(manifest, pool)
    for (const m of models) {
      const batchObserver: BatchObserver = {
        onBatch: (size, ms) => observer.onBatch?.(m.name, size, ms),
        onQueueDepth: (depth) => observer.onQueueDepth?.(m.name, depth)
      }
      const batcher = new Batcher(m.name, pool, {
        maxBatchSize: options.maxBatchSize ?? m.batching.maxBatchSize,
        maxQueueDelayMs: options.maxQueueDelayMs ?? m.batching.maxQueueDelayMs,
        maxQueueSize: options.maxQueueSize,
        sampleSize: m.input.channels * m.input.height * m.input.width
      }, batchObserver)
      engine.batchers.set(m.name, batcher)
    }
    pool.on('idle', () => { for (const b of engine.batchers.values()) b.pump() })
    return engine
  }

  get providers (): Record<string, Provider> {
    return this.pool.providers
  }

  get workerCount (): number {
    return this.pool.workerCount
  }

  model (name: string): LoadedModel | undefined {
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
    await this.pool.crashOneWorker()
  }

  async close (reason: Error): Promise<void> {
    for (const b of this.batchers.values()) b.drain(reason)
    await this.pool.close()
  }
}
