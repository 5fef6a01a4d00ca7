// Per-model inference statistics in the shape of Triton's statistics extension
// (GET /v2/models/{name}/stats; tritonclient's get_inference_statistics, perf_analyzer's
// server-side breakdown). Counts and nanoseconds since start, per model name, whatever protocol
// or generation served the request. Pure bookkeeping: the data plane and the engine report.
export interface StatDuration { count: number, ns: number }

export interface InferenceStats extends Record<string, StatDuration> {
  success: StatDuration
  fail: StatDuration
  queue: StatDuration
  compute_input: StatDuration
  compute_infer: StatDuration
  compute_output: StatDuration
  cache_hit: StatDuration
  cache_miss: StatDuration
}

export interface BatchStats {
  batch_size: number
  compute_input: StatDuration
  compute_infer: StatDuration
  compute_output: StatDuration
}

export interface ModelStatistics {
  name: string
  version: string
  /** Milliseconds since the epoch of the last inference; 0 before the first. */
  last_inference: number
  inference_count: number
  execution_count: number
  inference_stats: InferenceStats
  batch_stats: BatchStats[]
  memory_usage: never[]
}

/** What one successful prediction (a sample, or a whole request) took, in milliseconds. */
export interface PredictionTimes {
  totalMs: number
  queueMs: number
  /** Decoding and preprocessing (compute_input). */
  inputMs: number
  /** Its batch's inference (compute_infer). */
  inferMs: number
  /** Scores and decision (compute_output). */
  outputMs: number
}

/**
 * A request's times from its samples': the whole request as it took, and each stage as long as
 * its slowest sample's (the samples go through the stages side by side, so their sum would
 * count one batch's inference once per image in it).
 */
export function requestTimes (totalMs: number, samples: PredictionTimes[]): PredictionTimes {
  const slowest = (k: keyof PredictionTimes): number => samples.reduce((m, t) => Math.max(m, t[k]), 0)
  return { totalMs, queueMs: slowest('queueMs'), inputMs: slowest('inputMs'), inferMs: slowest('inferMs'), outputMs: slowest('outputMs') }
}

const zero = (): StatDuration => ({ count: 0, ns: 0 })
const ns = (ms: number): number => Math.round(ms * 1e6)
const add = (d: StatDuration, ms: number): void => { d.count++; d.ns += ns(ms) }

interface Entry {
  lastInference: number
  inferences: number
  executions: number
  stats: InferenceStats
  batches: Map<number, BatchStats>
}

export class ModelStats {
  private readonly models = new Map<string, Entry>()

  private entry (model: string): Entry {
    let e = this.models.get(model)
    if (e === undefined) {
      e = { lastInference: 0, inferences: 0, executions: 0, stats: { success: zero(), fail: zero(), queue: zero(), compute_input: zero(), compute_infer: zero(), compute_output: zero(), cache_hit: zero(), cache_miss: zero() }, batches: new Map() }
      this.models.set(model, e)
    }
    return e
  }

  /** One successful request of `samples` inferences (Triton: success counts requests, inference_count samples). */
  success (model: string, t: PredictionTimes, samples = 1, now = Date.now()): void {
    const e = this.entry(model)
    e.inferences += samples
    e.lastInference = now
    add(e.stats.success, t.totalMs)
    add(e.stats.queue, t.queueMs)
    add(e.stats.compute_input, t.inputMs)
    add(e.stats.compute_infer, t.inferMs)
    add(e.stats.compute_output, t.outputMs)
  }

  fail (model: string, totalMs: number): void {
    add(this.entry(model).stats.fail, totalMs)
  }

  /** One execution of the model (a batch of `size` samples) that took `inferMs`. */
  execution (model: string, size: number, inferMs: number): void {
    const e = this.entry(model)
    e.executions++
    let b = e.batches.get(size)
    if (b === undefined) {
      b = { batch_size: size, compute_input: zero(), compute_infer: zero(), compute_output: zero() }
      e.batches.set(size, b)
    }
    add(b.compute_infer, inferMs)
  }

  /** Triton's model_stats entry for a served model (zeros when it has served nothing yet). */
  snapshot (model: string, version: string): ModelStatistics {
    const e = this.entry(model)
    const copy = (d: StatDuration): StatDuration => ({ ...d })
    return {
      name: model,
      version,
      last_inference: e.lastInference,
      inference_count: e.inferences,
      execution_count: e.executions,
      inference_stats: Object.fromEntries(Object.entries(e.stats).map(([k, v]) => [k, copy(v)])) as unknown as InferenceStats,
      batch_stats: [...e.batches.values()].sort((a, b) => a.batch_size - b.batch_size).map((b) => ({ batch_size: b.batch_size, compute_input: copy(b.compute_input), compute_infer: copy(b.compute_infer), compute_output: copy(b.compute_output) })),
      memory_usage: []
    }
  }
}
