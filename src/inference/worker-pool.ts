// A fixed pool of inference workers. Each job goes to an idle worker; the batchers in front of
// the pool decide what a job holds. A worker that dies fails only its own job and is replaced.
import { EventEmitter, once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { InferenceFailedError, ManifestError, ModelLoadError, ProviderUnavailableError } from '../errors.js'
import type { FromWorker, Provider, ToWorker, WorkerInit } from './protocol.js'
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
}

export interface PoolLogger {
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}

// The compiled service runs worker.js; tests (tap's TypeScript loader) run worker.ts.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url)

export class WorkerPool extends EventEmitter implements InferenceRunner {
  readonly providers: Record<string, Provider> = {}
  private readonly slots: Slot[] = []
  private nextId = 1
  private closing = false
  private readonly warned = new Set<string>()

  /** `workerUrl` is for tests, which put a stub in place of the ONNX Runtime worker. */
  constructor (private readonly init: WorkerInit, private readonly size: number, private readonly log: PoolLogger, private readonly workerUrl: URL = WORKER_URL) {
    super()
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

  /** Run one batch on an idle worker. Callers check idleCount first; if none is idle this rejects. */
  async run (model: string, batch: number, data: Float32Array): Promise<RunResult> {
    const slot = this.slots.find((s) => s.ready && s.job === null)
    if (slot === undefined) throw new InferenceFailedError('no idle inference worker')
    return await new Promise<RunResult>((resolve, reject) => {
      const job: Job = { id: this.nextId++, resolve, reject }
      slot.job = job
      const buffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : data.slice().buffer
      const msg: ToWorker = { type: 'run', id: job.id, model, batch, data: buffer as ArrayBuffer }
      slot.worker.postMessage(msg, [buffer as ArrayBuffer])
    })
  }

  private async spawn (): Promise<void> {
    const worker = new Worker(this.workerUrl, { workerData: this.init })
    const slot: Slot = { worker, job: null, ready: false }
    this.slots.push(slot)
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            Object.assign(this.providers, msg.providers)
            for (const w of msg.warnings) {
              // Every worker finds the same thing; say it once.
              if (!this.warned.has(w)) this.log.warn({ provider: 'cpu' }, w)
              this.warned.add(w)
            }
            slot.ready = true
            resolve()
            this.emit('idle')
            break
          case 'init-error':
            if (msg.manifest === true) {
              reject(new ManifestError(msg.message))
            } else if (msg.providerFailed) {
              reject(new ProviderUnavailableError(msg.provider, msg.message))
            } else {
              const m = /^model "([^"]+)": ([\s\S]*)$/.exec(msg.message)
              reject(new ModelLoadError(m?.[1] ?? '(unknown)', m?.[2] ?? msg.message))
            }
            break
          case 'result':
          case 'run-error': {
            const job = slot.job
            if (job === null || job.id !== msg.id) break
            slot.job = null
            if (msg.type === 'result') {
              job.resolve({ logits: new Float32Array(msg.logits), classes: msg.classes, inferenceMs: msg.inferenceMs })
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
        if (!slot.ready) {
          reject(new ModelLoadError('(worker)', `worker exited with code ${code} before it was ready`))
          return
        }
        if (!this.closing) {
          this.log.warn({ code }, 'inference worker exited; starting a replacement')
          this.spawn().catch((err: Error) => { this.log.error({ err }, 'could not replace an inference worker') })
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
