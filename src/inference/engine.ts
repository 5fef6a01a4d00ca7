// The inference engine: one runner (the worker pool) shared by every model, and the current
// generation of models (generation.ts) with a batcher per model. It knows nothing of HTTP.
// server.ts starts the real one (Engine.start) and hands it to the app; tests may hand the
// app an engine over a FunctionRunner instead (Engine.over).
//
// swap() is the one way the served models change (reload, repository load/unload): validate
// and load first — the new sessions, checked against the manifest and warmed up in every
// worker — then make the new generation current in one assignment. A failed load changes
// nothing. Requests that started on the old generation finish on it; its sessions that the
// new one does not share are released when its last request is done.
import type { LoadedEntry, LoadedManifest, LoadedModel } from '../registry/load-manifest.js'
import type { BatchResult } from './batcher.js'
import { Generation, type GenerationOptions } from './generation.js'
import { modelSpecs } from './model-specs.js'
import type { Provider, ProviderRequest } from './protocol.js'
import type { InferenceRunner } from './runner.js'
import { WorkerPool, type PoolLogger } from './worker-pool.js'

export interface EngineOptions extends GenerationOptions {
  provider: ProviderRequest
  workers: number
  intraOpThreads: number
}

export interface EngineObserver {
  onBatch?: (model: string, size: number, inferenceMs: number) => void
  onQueueDepth?: (model: string, depth: number) => void
}

/** What a swap changed, by model name. */
export interface SwapResult {
  generation: number
  /** Models on another session than before: new models, a new ONNX file or shape. */
  loaded: string[]
  /** Models that kept their session (threshold, labels' text, version... may have changed). */
  kept: string[]
  /** Models no longer served. */
  removed: string[]
}

/** M: the served, calibrated models; calibrate runs models whose OOD block it is about to write. */
export class Engine<M extends LoadedEntry = LoadedModel> {
  private current: Generation<M>
  private readonly live = new Set<Generation<M>>()
  private observer: EngineObserver = {}
  private closed = false
  private lastId = 0
  private swapping: Promise<unknown> = Promise.resolve()

  private constructor (manifest: LoadedManifest<M>, private readonly runner: InferenceRunner, private readonly options: GenerationOptions) {
    this.current = this.generation(manifest)
    runner.on('idle', () => { for (const g of this.live) g.pump() })
  }

  /** Start the worker pool: every worker loads and warms every model before this resolves. */
  static async start<M extends LoadedEntry = LoadedModel> (manifest: LoadedManifest<M>, options: EngineOptions, log: PoolLogger): Promise<Engine<M>> {
    const pool = new WorkerPool({ provider: options.provider, intraOpThreads: options.intraOpThreads, models: modelSpecs(manifest, options) }, options.workers, log)
    await pool.start()
    return new Engine(manifest, pool, options)
  }

  /** An engine over any runner (tests: a FunctionRunner in place of ONNX Runtime). */
  static async over<M extends LoadedEntry = LoadedModel> (manifest: LoadedManifest<M>, runner: InferenceRunner, options: GenerationOptions): Promise<Engine<M>> {
    await runner.load(modelSpecs(manifest, options))
    return new Engine(manifest, runner, options)
  }

  private generation (manifest: LoadedManifest<M>): Generation<M> {
    const g = new Generation(++this.lastId, manifest, this.runner, this.options, (model) => ({
      onBatch: (size, ms) => this.observer.onBatch?.(model, size, ms),
      onQueueDepth: (depth) => this.observer.onQueueDepth?.(model, depth)
    }))
    this.live.add(g)
    return g
  }

  /** Where batch and queue events go (the app's metrics); one observer at a time. */
  observe (observer: EngineObserver): void {
    this.observer = observer
  }

  /** Every model loaded and warmed, and the engine not closed. */
  get ready (): boolean {
    return !this.closed && this.runner.workerCount > 0
  }

  /** The manifest being served now. */
  get manifest (): LoadedManifest<M> {
    return this.current.manifest
  }

  get generationId (): number {
    return this.current.id
  }

  /** Generations still serving requests (the current one, and retired ones draining). */
  get liveGenerations (): number {
    return this.live.size
  }

  /** Execution provider of each model now served. */
  get providers (): Readonly<Record<string, Provider>> {
    const out: Record<string, Provider> = {}
    for (const [name, key] of this.current.keys) {
      const p = this.runner.providers[key]
      if (p !== undefined) out[name] = p
    }
    return out
  }

  get workerCount (): number {
    return this.runner.workerCount
  }

  model (name: string): M | undefined {
    return this.current.model(name)
  }

  /** Batching in effect for a model: the manifest's, unless overridden by the environment. */
  batching (name: string): { maxBatchSize: number, maxQueueDelayMs: number } | undefined {
    const b = this.current.batchers.get(name)
    return b === undefined ? undefined : { maxBatchSize: b.options.maxBatchSize, maxQueueDelayMs: b.options.maxQueueDelayMs }
  }

  /**
   * Run `fn` on the current generation and keep that generation alive until it is done: a
   * swap meanwhile does not touch what `fn` sees.
   */
  async use<T> (fn: (generation: Generation<M>) => Promise<T>): Promise<T> {
    const g = this.current
    g.inflight++
    try {
      return await fn(g)
    } finally {
      g.inflight--
      if (g.retired && g.inflight === 0) this.dispose(g)
    }
  }

  async classifyTensor (model: string, tensor: Float32Array, timeoutMs: number): Promise<BatchResult> {
    return await this.use(async (g) => await g.batcher(model).submit(tensor, timeoutMs))
  }

  /**
   * Admit a request to the model's bounded queue, then make its tensor (`prepare`: decoding)
   * and queue it. Overload is refused before any decoding (Batcher.prepareAndSubmit).
   */
  async classify (model: string, prepare: () => Promise<Float32Array> | Float32Array, timeoutMs: number): Promise<BatchResult> {
    return await this.use(async (g) => await g.batcher(model).prepareAndSubmit(prepare, timeoutMs))
  }

  /**
   * Serve `manifest` from now on: load what it needs (all or nothing), then swap. Swaps run one
   * at a time, in call order. Rejects with the reason (a catalogue error naming the field)
   * and changes nothing when a session cannot be loaded.
   */
  async swap (manifest: LoadedManifest<M>): Promise<SwapResult> {
    const run = this.swapping.then(async () => await this.swapNow(manifest))
    this.swapping = run.catch(() => {})
    return await run
  }

  private async swapNow (manifest: LoadedManifest<M>): Promise<SwapResult> {
    if (this.closed) throw new Error('the engine is closed')
    await this.runner.load(modelSpecs(manifest, this.options))
    const old = this.current
    const next = this.generation(manifest)
    this.current = next
    old.retired = true
    if (old.inflight === 0) this.dispose(old)
    const result: SwapResult = { generation: next.id, loaded: [], kept: [], removed: [] }
    for (const [name, key] of next.keys) (old.keys.get(name) === key ? result.kept : result.loaded).push(name)
    for (const name of old.keys.keys()) if (!next.keys.has(name)) result.removed.push(name)
    return result
  }

  /** A retired generation with no request left: release the sessions no live generation shares. */
  private dispose (g: Generation<M>): void {
    if (!this.live.delete(g)) return
    const needed = new Set<string>()
    for (const other of this.live) for (const key of other.keys.values()) needed.add(key)
    this.runner.unload([...new Set(g.keys.values())].filter((k) => !needed.has(k)))
  }

  /** Test hook: make one worker die as if it had crashed. */
  async crashOneWorker (): Promise<void> {
    if (this.runner instanceof WorkerPool) await this.runner.crashOneWorker()
  }

  async close (reason: Error): Promise<void> {
    this.closed = true
    for (const g of this.live) g.drain(reason)
    await this.runner.close()
  }
}
