// What the engine's batchers run batches on: the ONNX Runtime worker pool in the service, or a
// function in memory (tests, OpenAPI generation). Both answer one batch at a time per idle slot.
import type { Provider } from './protocol.js'

export interface RunResult {
  logits: Float32Array
  classes: number
  inferenceMs: number
}

export interface InferenceRunner {
  /** Slots free to take a batch now; the batchers dispatch only while this is > 0. */
  readonly idleCount: number
  readonly workerCount: number
  readonly providers: Readonly<Record<string, Provider>>
  run: (model: string, batch: number, data: Float32Array) => Promise<RunResult>
  /** 'idle' fires whenever a slot frees up, so queued batches can go. */
  on: (event: 'idle', listener: () => void) => unknown
  close: () => Promise<void>
}
