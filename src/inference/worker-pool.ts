// A fixed pool of inference workers. Each job goes to an idle worker; the batchers in front of
// the pool decide what a job holds. Every worker holds the same sessions: load() adds sessions
// to all of them (all or nothing), unload() releases them. A worker that dies fails only its
// own job and is replaced by one that loads the sessions the pool holds at that moment.
import { EventEmitter, once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { InferenceFailedError, ManifestError, ModelLoadError, ProviderUnavailableError } from '../errors.js'
import type { FromWorker, LoadFailure, Provider, ToWorker, WorkerInit, WorkerModelSpec } from './protocol.js'
import type { InferenceRunner, RunResult } from './runner.js'

interface Job {
  id: number
  resolve: (r: RunResult) => void
  reject: (e: Error) => void
}

interface Slot {
  worker: Worker
  job: Job | null
  ready: boolean
  /** Loads sent to this worker and not answered yet, by message id. */
  loads: Map<number, (failure: LoadFailure | null, providers: Record<string, Provider>) => void>
}

export interface PoolLogger {
  /** Optional: the command-line tools print warnings and errors only. */
  info?: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}

// The compiled service runs worker.js; tests (tap's TypeScript loader) run worker.ts.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url)

/** The catalogue error for a failed load: a manifest mismatch, an unusable provider, or ORT. */
export function loadError (f: LoadFailure): Error {
  if (f.manifest) return new ManifestError(f.message)
  if (f.providerFailed) return new ProviderUnavailableError(f.provider, f.message)
  const m = /^model "([^"]+)": ([\s\S]*)$/.exec(f.message)
  return new ModelLoadError(m?.[1] ?? '(unknown)', m?.[2] ?? f.message)
}

export class WorkerPool extends EventEmitter implements InferenceRunner {
  /** Provider of each loaded session, by session key. */
  readonly providers: Record<string, Provider> = {}
  private readonly slots: Slot[] = []
  /** The sessions every worker holds (or is loading): what a replacement worker loads. */
  private readonly specs = new Map<string, WorkerModelSpec>()
  private nextId = 1
  private closing = false
  private readonly warned = new Set<string>()
  private replenishing = false

  /** `workerUrl` is for tests, which put a stub in place of the ONNX Runtime worker. */
  constructor (private readonly init: WorkerInit, private readonly size: number, private readonly log: PoolLogger, private readonly workerUrl: URL = WORKER_URL) {
    super()
    for (const spec of init.models) this.specs.set(spec.key, spec)
  }

  /** Start every worker and wait until each has loaded and warmed all models. */
  async start (): Promise<void> {
    try {
      await Promise.all(Array.from({ length: this.size }, async () => await this.spawn()))
    } catch (err) {
      await this.close()
      throw err
    }
  }

  get idleCount (): number {
    let n = 0
    for (const s of this.slots) if (s.ready && s.job === null) n++
    return n
  }

  get workerCount (): number {
    return this.slots.length
  }

  /** Session keys the pool holds. */
  get loadedKeys (): string[] {
    return [...this.specs.keys()]
  }

  /** Run one batch on an idle worker. Callers check idleCount first; if none is idle this rejects. */
  async run (key: string, batch: number, data: Float32Array): Promise<RunResult> {
    const slot = this.slots.find((s) => s.ready && s.job === null)
    if (slot === undefined) throw new InferenceFailedError('no idle inference worker')
    return await new Promise<RunResult>((resolve, reject) => {
      const job: Job = { id: this.nextId++, resolve, reject }
      slot.job = job
      const buffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : data.slice().buffer
      const msg: ToWorker = { type: 'run', id: job.id, key, batch, data: buffer as ArrayBuffer }
      slot.worker.postMessage(msg, [buffer as ArrayBuffer])
    })
  }

  /**
   * Load sessions into every worker (the ones already held are kept as they are). All or
   * nothing: if any worker fails, the sessions this call added are released everywhere and it
   * rejects with the worker's reason (a catalogue error).
   */
  async load (specs: WorkerModelSpec[]): Promise<void> {
    const fresh = specs.filter((s) => !this.specs.has(s.key))
    if (fresh.length === 0) return
    // Held from now on, so a worker started meanwhile (a crash replacement) loads them too.
    for (const s of fresh) this.specs.set(s.key, s)
    const answers = await Promise.all(this.slots.map(async (slot) => await this.loadInto(slot, fresh)))
    const failed = answers.find((a) => a !== null)
    if (failed !== undefined && failed !== null) {
      this.unload(fresh.map((s) => s.key))
      throw loadError(failed)
    }
  }

  /** Release sessions in every worker. */
  unload (keys: string[]): void {
    const held = keys.filter((k) => this.specs.delete(k))
    if (held.length === 0) return
    for (const k of held) Reflect.deleteProperty(this.providers, k)
    const msg: ToWorker = { type: 'unload', keys: held }
    for (const slot of this.slots) slot.worker.postMessage(msg)
    // A replacement that failed on a session no longer held (a file changed on disk, then the
    // manifest reloaded) can start now.
    this.replenish()
  }

  /** Start workers up to the pool's size, one at a time; a failure is logged and waits for the next trigger. */
  private replenish (): void {
    if (this.closing || this.replenishing || this.slots.length >= this.size) return
    this.replenishing = true
    this.spawn().then(() => {
      this.replenishing = false
      this.replenish()
    }, (err: Error) => {
      this.replenishing = false
      this.log.error({ err }, `could not replace an inference worker: ${err.message}`)
    })
  }

  private async loadInto (slot: Slot, specs: WorkerModelSpec[]): Promise<LoadFailure | null> {
    const id = this.nextId++
    return await new Promise((resolve) => {
      slot.loads.set(id, (failure, providers) => {
        if (failure === null) Object.assign(this.providers, providers)
        resolve(failure)
      })
      const msg: ToWorker = { type: 'load', id, models: specs }
      slot.worker.postMessage(msg)
    })
  }

  private warnOnce (warnings: string[]): void {
    for (const w of warnings) {
      // Every worker finds the same thing; say it once. The only note today is auto's fallback
      // to the CPU: expected on a machine without a GPU, so info, not a warning to puzzle over.
      if (!this.warned.has(w)) this.log.info?.({ provider: 'cpu' }, w)
      this.warned.add(w)
    }
  }

  private async spawn (): Promise<void> {
    const worker = new Worker(this.workerUrl, { workerData: { ...this.init, models: [...this.specs.values()] } satisfies WorkerInit })
    const slot: Slot = { worker, job: null, ready: false, loads: new Map() }
    this.slots.push(slot)
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            Object.assign(this.providers, msg.providers)
            this.warnOnce(msg.warnings)
            slot.ready = true
            resolve()
            this.emit('idle')
            break
          case 'init-error':
            // A worker that could not load what the pool holds never serves: end it, so that
            // workerCount (and readiness) says so.
            reject(loadError(msg))
            void worker.terminate()
            break
          case 'loaded':
          case 'load-error': {
            const answer = slot.loads.get(msg.id)
            slot.loads.delete(msg.id)
            if (msg.type === 'loaded') {
              this.warnOnce(msg.warnings)
              answer?.(null, msg.providers)
            } else {
              answer?.(msg, {})
            }
            break
          }
          case 'result':
          case 'run-error': {
            const job = slot.job
            if (job === null || job.id !== msg.id) break
            slot.job = null
            if (msg.type === 'result') {
              job.resolve({ logits: new Float32Array(msg.logits), classes: msg.classes, ...(msg.scores !== undefined ? { scores: new Float32Array(msg.scores) } : {}), inferenceMs: msg.inferenceMs })
            } else {
              job.reject(new InferenceFailedError(msg.message))
            }
            this.emit('idle')
            break
          }
          case 'closed':
            void worker.terminate()
            break
        }
      })
      worker.on('error', (err) => {
        this.log.error({ err }, 'inference worker failed')
        if (!slot.ready) reject(new ModelLoadError('(worker)', err.message))
      })
      worker.on('exit', (code) => {
        const index = this.slots.indexOf(slot)
        if (index >= 0) this.slots.splice(index, 1)
        if (slot.job !== null) {
          slot.job.reject(new InferenceFailedError(`inference worker exited (code ${code}) during the batch`))
          slot.job = null
        }
        // Loads it had not answered: its replacement loads everything the pool holds.
        for (const answer of slot.loads.values()) answer(null, {})
        slot.loads.clear()
        if (!slot.ready) {
          reject(new ModelLoadError('(worker)', `worker exited with code ${code} before it was ready`))
          return
        }
        if (!this.closing) {
          this.log.warn({ code }, 'inference worker exited; starting a replacement')
          this.replenish()
        }
      })
    })
  }

  /**
   * Test hook and operator aid: kill one worker as if it had crashed. Resolves once the pool
   * has handled the exit (its slot gone, a replacement starting).
   */
  async crashOneWorker (): Promise<void> {
    const slot = this.slots[0]
    if (slot === undefined) return
    const handled = once(slot.worker, 'exit') // after the pool's own 'exit' listener
    await slot.worker.terminate()
    await handled
  }

  async close (): Promise<void> {
    this.closing = true
    await Promise.all(this.slots.map(async (slot) => {
      const exited = new Promise<void>((resolve) => slot.worker.once('exit', () => resolve()))
      if (slot.ready) {
        const msg: ToWorker = { type: 'close' }
        slot.worker.postMessage(msg)
      } else {
        void slot.worker.terminate()
      }
      // A worker stuck in a long run still goes away: terminate after a grace period.
      const timer = setTimeout(() => { void slot.worker.terminate() }, 5000)
      await exited
      clearTimeout(timer)
    }))
  }
}
