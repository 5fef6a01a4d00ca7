// Per-model dynamic batcher (Triton style). Requests queue per model; a batch leaves when it
// is full (maxBatchSize) or when its oldest request has waited maxQueueDelayMs, and only when
// a worker is free to take it, so requests that arrive while every worker is busy coalesce
// into the next batch. With a delay of 0 whatever is queued goes as soon as a worker frees up.
// The queue is bounded (overload → 503 at once) and every request has a deadline.
import { DeadlineExceededError, OverloadedError } from '../errors.js'

export interface BatchRunner {
  readonly idleCount: number
  run: (model: string, batch: number, data: Float32Array) => Promise<{ logits: Float32Array, classes: number, scores?: Float32Array, inferenceMs: number }>
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
  /** This image's graph scores (output.scores), in scoreOutputsOf order, when the model has some. */
  scores?: Float32Array
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
  // The earliest deadline in the queue (Infinity when empty), so that neither expiry nor the
  // timer scans the whole queue on every request.
  private earliestDeadline = Infinity
  private inPreparation = 0

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

  /** Requests admitted by prepareAndSubmit() whose tensors are still being made. */
  get preparing (): number {
    return this.inPreparation
  }

  private overloaded (): Error {
    const waiting = this.queue.length + this.inPreparation
    // Each image (or FP32 sample) of a request takes its own place, so the bound is in images.
    return new OverloadedError(`model "${this.model}" is full: ${waiting} images (or samples) queued or being decoded, MAX_QUEUE_SIZE=${this.options.maxQueueSize} counts images, not requests; retry shortly`)
  }

  submit (tensor: Float32Array, timeoutMs: number): Promise<BatchResult> {
    if (this.queue.length + this.inPreparation >= this.options.maxQueueSize) return Promise.reject(this.overloaded())
    return this.enqueue(tensor, this.clock.now() + timeoutMs)
  }

  /**
   * Admission before the work: the request takes its place in the bound (queued + being
   * prepared ≤ maxQueueSize) before `prepare` (decoding) runs, so an overloaded service answers
   * 503 without decoding first, and the decoding stage cannot pile up behind a full queue.
   * The deadline runs from admission.
   */
  async prepareAndSubmit (prepare: () => Promise<Float32Array> | Float32Array, timeoutMs: number): Promise<BatchResult> {
    if (this.queue.length + this.inPreparation >= this.options.maxQueueSize) throw this.overloaded()
    const deadline = this.clock.now() + timeoutMs
    this.inPreparation++
    let tensor: Float32Array
    try {
      tensor = await prepare()
    } finally {
      this.inPreparation--
    }
    // Synchronously from here: the place reserved above becomes a place in the queue.
    if (this.clock.now() >= deadline) {
      throw new DeadlineExceededError(`request for model "${this.model}" passed its deadline before it could be queued`)
    }
    return await this.enqueue(tensor, deadline)
  }

  private enqueue (tensor: Float32Array, deadline: number): Promise<BatchResult> {
    return new Promise<BatchResult>((resolve, reject) => {
      const now = this.clock.now()
      this.queue.push({ tensor, enqueuedAt: now, deadline, resolve, reject })
      if (deadline < this.earliestDeadline) this.earliestDeadline = deadline
      this.observer.onQueueDepth?.(this.queue.length)
      this.pump()
    })
  }

  /**
   * Dispatch every batch that is due and can be placed; arm a timer for the next one.
   * `timerAt` is the time a firing timer was armed for: Node measures timers against the event
   * loop's cached, whole-millisecond clock, so a 2 ms timer can fire when performance.now() says
   * 1.4 ms have passed. Re-arming then would cost another millisecond or more (a lone request at
   * c=1 would wait ~3 ms for a 2 ms delay); the timer's own clock decides instead.
   */
  pump (timerAt = -Infinity): void {
    const now = this.clock.now()
    this.expire(now)
    const delayClock = Math.max(now, timerAt)
    while (this.queue.length > 0 && this.runner.idleCount > 0) {
      const oldest = this.queue[0] as Pending
      const full = this.queue.length >= this.options.maxBatchSize
      const waited = delayClock - oldest.enqueuedAt >= this.options.maxQueueDelayMs
      if (!full && !waited) break
      const batch = this.queue.splice(0, this.options.maxBatchSize)
      this.recomputeEarliestDeadline()
      this.dispatch(batch, now)
    }
    this.arm(now)
  }

  /** Fail (503) every queued request whose deadline has passed. */
  private expire (now: number): void {
    if (now < this.earliestDeadline) return
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
    this.recomputeEarliestDeadline()
  }

  private recomputeEarliestDeadline (): void {
    let earliest = Infinity
    for (const p of this.queue) if (p.deadline < earliest) earliest = p.deadline
    this.earliestDeadline = earliest
  }

  private arm (now: number): void {
    if (this.queue.length === 0) return this.disarm()
    const oldest = this.queue[0] as Pending
    let at = this.earliestDeadline
    // The delay trigger only matters while a worker is free to take the batch; otherwise the
    // pool's 'idle' event pumps again.
    if (this.runner.idleCount > 0) at = Math.min(at, oldest.enqueuedAt + this.options.maxQueueDelayMs)
    if (at >= this.timerAt && this.timer !== null) return
    this.disarm()
    this.timerAt = at
    this.timer = this.clock.setTimeout(() => {
      this.timer = null
      this.timerAt = Infinity
      this.pump(at)
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
    this.runner.run(this.model, batch.length, data).then(({ logits, classes, scores, inferenceMs }) => {
      this.observer.onBatch?.(batch.length, inferenceMs)
      const k = scores === undefined ? 0 : scores.length / batch.length
      batch.forEach((p, i) => {
        p.resolve({
          logits: logits.subarray(i * classes, (i + 1) * classes),
          ...(scores !== undefined ? { scores: scores.subarray(i * k, (i + 1) * k) } : {}),
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
    this.earliestDeadline = Infinity
    for (const p of this.queue.splice(0)) p.reject(err)
  }
}
