// Per-model dynamic batcher (Triton style). Requests queue per model; a batch leaves when it
// is full (maxBatchSize) or when its oldest request has waited maxQueueDelayMs, and only when
// a worker is free to take it, so requests that arrive while every worker is busy coalesce
// into the next batch. With a delay of 0 whatever is queued goes as soon as a worker frees up.
// The queue is bounded (overload → 503 at once) and every request has a deadline.
import { DeadlineExceededError, OverloadedError } from '../errors.js'

export interface BatchRunner {
  readonly idleCount: number
  run: (model: string, batch: number, data: Float32Array) => Promise<{ logits: Float32Array, classes: number, inferenceMs: number }>
  on: (event: 'idle', listener: () => void) => unknown
}

export interface BatcherOptions {
  maxBatchSize: number
  maxQueueDelayMs: number
  maxQueueSize: number
  sampleSize: number
}

export interface BatchResult {
  logits: Float32Array
  queueMs: number
  inferenceMs: number
  batchSize: number
}

export interface BatchObserver {
  onBatch?: (size: number, inferenceMs: number) => void
  onQueueDepth?: (depth: number) => void
}

interface Pending {
  tensor: Float32Array
  enqueuedAt: number
  deadline: number
  resolve: (r: BatchResult) => void
  reject: (e: Error) => void
}

export interface Clock {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout)
}

export class Batcher {
  private readonly queue: Pending[] = []
  private timer: unknown = null
  private timerAt = Infinity

  constructor (
    readonly model: string,
    private readonly runner: BatchRunner,
    readonly options: BatcherOptions,
    private readonly observer: BatchObserver = {},
    private readonly clock: Clock = realClock
  ) {}

  get depth (): number {
    return this.queue.length
  }

  submit (tensor: Float32Array, timeoutMs: number): Promise<BatchResult> {
    if (this.queue.length >= this.options.maxQueueSize) {
      return Promise.reject(new OverloadedError(`model "${this.model}" has ${this.queue.length} requests queued (MAX_QUEUE_SIZE); retry shortly`))
    }
    return new Promise<BatchResult>((resolve, reject) => {
      const now = this.clock.now()
      this.queue.push({ tensor, enqueuedAt: now, deadline: now + timeoutMs, resolve, reject })
      this.observer.onQueueDepth?.(this.queue.length)
      this.pump()
    })
  }

  /** Dispatch every batch that is due and can be placed; arm a timer for the next one. */
  pump (): void {
    const now = this.clock.now()
    this.expire(now)
    while (this.queue.length > 0 && this.runner.idleCount > 0) {
      const oldest = this.queue[0] as Pending
      const full = this.queue.length >= this.options.maxBatchSize
      const waited = now - oldest.enqueuedAt >= this.options.maxQueueDelayMs
      if (!full && !waited) break
      this.dispatch(this.queue.splice(0, this.options.maxBatchSize), now)
    }
    this.arm(now)
  }

  /** Fail (503) every queued request whose deadline has passed. */
  private expire (now: number): void {
    let kept = 0
    for (const p of this.queue) {
      if (p.deadline <= now) {
        p.reject(new DeadlineExceededError(`request for model "${this.model}" waited ${Math.round(now - p.enqueuedAt)} ms in the queue and passed its deadline`))
      } else {
        this.queue[kept++] = p
      }
    }
    if (kept !== this.queue.length) {
      this.queue.length = kept
      this.observer.onQueueDepth?.(kept)
    }
  }

  private arm (now: number): void {
    if (this.queue.length === 0) return this.disarm()
    const oldest = this.queue[0] as Pending
    let at = Math.min(...this.queue.map((p) => p.deadline))
    // The delay trigger only matters while a worker is free to take the batch; otherwise the
    // pool's 'idle' event pumps again.
    if (this.runner.idleCount > 0) at = Math.min(at, oldest.enqueuedAt + this.options.maxQueueDelayMs)
    if (at >= this.timerAt && this.timer !== null) return
    this.disarm()
    this.timerAt = at
    this.timer = this.clock.setTimeout(() => {
      this.timer = null
      this.timerAt = Infinity
      this.pump()
    }, Math.max(0, at - now))
  }

  private disarm (): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer)
    this.timer = null
    this.timerAt = Infinity
  }

  private dispatch (batch: Pending[], now: number): void {
    this.observer.onQueueDepth?.(this.queue.length)
    const n = this.options.sampleSize
    const data = new Float32Array(batch.length * n)
    batch.forEach((p, i) => data.set(p.tensor, i * n))
    this.runner.run(this.model, batch.length, data).then(({ logits, classes, inferenceMs }) => {
      this.observer.onBatch?.(batch.length, inferenceMs)
      batch.forEach((p, i) => {
        p.resolve({
          logits: logits.subarray(i * classes, (i + 1) * classes),
          queueMs: now - p.enqueuedAt,
          inferenceMs,
          batchSize: batch.length
        })
      })
    }, (err: Error) => {
      for (const p of batch) p.reject(err)
    })
  }

  /** Reject everything still queued (shutdown). */
  drain (err: Error): void {
    this.disarm()
    for (const p of this.queue.splice(0)) p.reject(err)
  }
}
