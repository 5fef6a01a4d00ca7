// An InferenceRunner without ONNX Runtime: each row's logits come from a function of its
// tensor. It lets route tests exercise HTTP behaviour (errors, limits, readiness, overload,
// reloads) through the real engine and batchers without loading models, and scripts/openapi.ts
// build the app. A graph score output (output.scores) reads as the row's max logit, so a model
// that declares one is served here as if its detector agreed with its distances.
import { EventEmitter } from 'node:events'
import type { Provider, WorkerModelSpec } from './protocol.js'
import type { InferenceRunner, RunResult } from './runner.js'

export type LogitsFunction = (model: string, tensor: Float32Array) => ArrayLike<number>

export interface FunctionRunnerOptions {
  /** Concurrent batches (default 1), like a pool's worker count. */
  slots?: number
  /** Resolve each batch after this many ms (default 0: on the next tick). */
  delayMs?: number
  /** Resolve each load after this many ms (default 0), as creating real sessions takes time. */
  loadDelayMs?: number
}

export class FunctionRunner extends EventEmitter implements InferenceRunner {
  private busy = 0
  private closed = false
  readonly providers: Record<string, Provider> = {}
  private readonly sessions = new Map<string, { name: string, sampleSize: number, scoreOutputs: number }>()

  constructor (private readonly fn: LogitsFunction, private readonly options: FunctionRunnerOptions = {}) {
    super()
  }

  get idleCount (): number {
    return this.closed ? 0 : (this.options.slots ?? 1) - this.busy
  }

  get workerCount (): number {
    return this.closed ? 0 : this.options.slots ?? 1
  }

  /** Session keys held (tests check that reloads release what they no longer need). */
  get loadedKeys (): string[] {
    return [...this.sessions.keys()]
  }

  async load (specs: WorkerModelSpec[]): Promise<void> {
    if ((this.options.loadDelayMs ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, this.options.loadDelayMs))
    for (const s of specs) {
      this.sessions.set(s.key, { name: s.name, sampleSize: s.sampleShape[0] * s.sampleShape[1] * s.sampleShape[2], scoreOutputs: s.scoreOutputs.length })
      this.providers[s.key] = 'cpu'
    }
  }

  unload (keys: string[]): void {
    for (const k of keys) {
      this.sessions.delete(k)
      Reflect.deleteProperty(this.providers, k)
    }
  }

  async run (key: string, batch: number, data: Float32Array): Promise<RunResult> {
    const session = this.sessions.get(key)
    if (session === undefined) throw new Error(`session ${key} is not loaded`)
    const n = session.sampleSize
    this.busy++
    try {
      await new Promise((resolve) => setTimeout(resolve, this.options.delayMs ?? 0))
      const rows = Array.from({ length: batch }, (_, i) => Float32Array.from(this.fn(session.name, data.subarray(i * n, (i + 1) * n))))
      const classes = rows[0]?.length ?? 0
      const logits = new Float32Array(batch * classes)
      rows.forEach((r, i) => logits.set(r, i * classes))
      const k = session.scoreOutputs
      if (k === 0) return { logits, classes, inferenceMs: this.options.delayMs ?? 0 }
      const scores = new Float32Array(batch * k)
      rows.forEach((r, i) => scores.fill(Math.max(...r), i * k, (i + 1) * k))
      return { logits, classes, scores, inferenceMs: this.options.delayMs ?? 0 }
    } finally {
      this.busy--
      this.emit('idle')
    }
  }

  async close (): Promise<void> {
    this.closed = true
  }
}
