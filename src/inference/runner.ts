// What the engine's batchers run batches on: the ONNX Runtime worker pool in the service, or a
// function in memory (tests, OpenAPI generation). Both hold sessions by session key, load and
// unload them, and answer one batch at a time per idle slot.
import type { Provider, WorkerModelSpec } from './protocol.js'

export interface RunResult {
  logits: Float32Array
  classes: number
  /** The graph's score outputs (output.scores), batch × their number, row-major. */
  scores?: Float32Array
  inferenceMs: number
}

export interface InferenceRunner {
  /** Slots free to take a batch now; the batchers dispatch only while this is > 0. */
  readonly idleCount: number
  readonly workerCount: number
  /** Provider of each loaded session, by session key. */
  readonly providers: Readonly<Record<string, Provider>>
  /** Make these sessions ready in every slot (all or nothing; rejects with a catalogue error). */
  load: (specs: WorkerModelSpec[]) => Promise<void>
  /** Release sessions no generation needs any more. */
  unload: (keys: string[]) => void
  run: (key: string, batch: number, data: Float32Array) => Promise<RunResult>
  /** 'idle' fires whenever a slot frees up, so queued batches can go. */
  on: (event: 'idle', listener: () => void) => unknown
  close: () => Promise<void>
}
