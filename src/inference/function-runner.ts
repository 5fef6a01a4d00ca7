// An InferenceRunner without ONNX Runtime: each row's logits come from a function of its
// tensor. It lets route tests exercise HTTP behaviour (errors, limits, readiness, overload)
// through the real batchers without loading models, and scripts/openapi.ts build the app.
import { EventEmitter } from 'node:events'
import type { Provider } from './protocol.js'
import type { InferenceRunner, RunResult } from './runner.js'

export type LogitsFunction = (model: string, tensor: Float32Array) => ArrayLike<number>

export interface FunctionRunnerOptions {
  /** Concurrent batches (default 1), like a pool's worker count. */
  slots?: number
  /** Resolve each batch after this many ms (default 0: on the next tick). */
  delayMs?: number
}

export class FunctionRunner extends EventEmitter implements InferenceRunner {
  private busy = 0
  private closed = false
  readonly providers: Record<string, Provider>

  constructor (
    models: Iterable<{ name: string, input: { channels: number, height: number, width: number } }>,
    private readonly fn: LogitsFunction,
    private readonly options: FunctionRunnerOptions = {}
  ) {
    super()
    this.sampleSizes = new Map([...models].map((m) => [m.name, m.input.channels * m.input.height * m.input.width]))
    this.providers = Object.fromEntries([...this.sampleSizes.keys()].map((name) => [name, 'cpu' as Provider]))
  }

  private readonly sampleSizes: Map<string, number>

  get idleCount (): number {
    return this.closed ? 0 : (this.options.slots ?? 1) - this.busy
  }

  get workerCount (): number {
    return this.closed ? 0 : this.options.slots ?? 1
  }

  async run (model: string, batch: number, data: Float32Array): Promise<RunResult> {
    const n = this.sampleSizes.get(model)
    if (n === undefined) throw new Error(`model "${model}" is not loaded`)
    this.busy++
    try {
      await new Promise((resolve) => setTimeout(resolve, this.options.delayMs ?? 0))
      const rows = Array.from({ length: batch }, (_, i) => Float32Array.from(this.fn(model, data.subarray(i * n, (i + 1) * n))))
      const classes = rows[0]?.length ?? 0
      const logits = new Float32Array(batch * classes)
      rows.forEach((r, i) => logits.set(r, i * classes))
      return { logits, classes, inferenceMs: this.options.delayMs ?? 0 }
    } finally {
      this.busy--
      this.emit('idle')
    }
  }

  async close (): Promise<void> {
    this.closed = true
  }
}
