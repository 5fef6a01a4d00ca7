// The batcher against a fake clock and a stub runner: every trigger and failure path, with
// no threads and no timing flakiness.
import { EventEmitter } from 'node:events'
import t from 'tap'
import { Batcher, type Clock } from '../../src/inference/batcher.js'

class FakeClock implements Clock {
  t = 0
  private timers: Array<{ at: number, fn: () => void, id: number }> = []
  private nextId = 1
  now = (): number => this.t
  setTimeout = (fn: () => void, ms: number): unknown => { const id = this.nextId++; this.timers.push({ at: this.t + ms, fn, id }); return id }
  clearTimeout = (h: unknown): void => { this.timers = this.timers.filter((x) => x.id !== h) }
  advance (ms: number): void {
    const until = this.t + ms
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at)
      const next = this.timers[0]
      if (next === undefined || next.at > until) break
      this.timers.shift()
      this.t = next.at
      next.fn()
    }
    this.t = until
  }
}

/** Workers that finish when the test says so; each sample's logit row = [its first value, batch index]. */
class StubRunner extends EventEmitter {
  idleCount: number
  calls: Array<{ batch: number, data: Float32Array, finish: (fail?: Error) => void }> = []
  constructor (workers: number) { super(); this.idleCount = workers }
  async run (_model: string, batch: number, data: Float32Array): Promise<{ logits: Float32Array, classes: number, inferenceMs: number }> {
    this.idleCount--
    return await new Promise((resolve, reject) => {
      this.calls.push({
        batch,
        data,
        finish: (fail?: Error) => {
          this.idleCount++
          if (fail !== undefined) reject(fail)
          else {
            const logits = new Float32Array(batch * 2)
            for (let i = 0; i < batch; i++) { logits[2 * i] = data[i * 4]!; logits[2 * i + 1] = i }
            resolve({ logits, classes: 2, inferenceMs: 1 })
          }
          this.emit('idle')
        }
      })
    })
  }
}

const sample = (v: number): Float32Array => Float32Array.of(v, 0, 0, 0)
const flush = async (): Promise<void> => { for (let i = 0; i < 5; i++) await Promise.resolve() }

function setup (opts: { workers?: number, maxBatchSize?: number, maxQueueDelayMs?: number, maxQueueSize?: number } = {}) {
  const clock = new FakeClock()
  const runner = new StubRunner(opts.workers ?? 1)
  const depths: number[] = []
  const batcher = new Batcher('m', runner, {
    maxBatchSize: opts.maxBatchSize ?? 4,
    maxQueueDelayMs: opts.maxQueueDelayMs ?? 5,
    maxQueueSize: opts.maxQueueSize ?? 100,
    sampleSize: 4
  }, { onQueueDepth: (d) => depths.push(d) }, clock)
  runner.on('idle', () => batcher.pump())
  return { clock, runner, batcher, depths }
}

t.test('size trigger: a full batch leaves at once', async (t) => {
  const { runner, batcher } = setup({ maxBatchSize: 3, maxQueueDelayMs: 1000 })
  const results = [1, 2, 3].map((v) => batcher.submit(sample(v), 10_000))
  t.equal(runner.calls.length, 1)
  t.equal(runner.calls[0]!.batch, 3)
  runner.calls[0]!.finish()
  const r = await Promise.all(results)
  t.same(r.map((x) => x.logits[0]), [1, 2, 3], 'each caller gets its own row, in order')
  t.same(r.map((x) => x.batchSize), [3, 3, 3])
})

t.test('delay trigger: a partial batch leaves when the oldest has waited maxQueueDelayMs', async (t) => {
  const { clock, runner, batcher } = setup({ maxBatchSize: 8, maxQueueDelayMs: 5 })
  const a = batcher.submit(sample(1), 10_000)
  clock.advance(2)
  const b = batcher.submit(sample(2), 10_000)
  clock.advance(2)
  t.equal(runner.calls.length, 0, 'nothing leaves before 5 ms')
  clock.advance(1)
  t.equal(runner.calls.length, 1)
  t.equal(runner.calls[0]!.batch, 2)
  runner.calls[0]!.finish()
  const [ra, rb] = await Promise.all([a, b])
  t.equal(ra!.queueMs, 5)
  t.equal(rb!.queueMs, 3)
})

t.test('delay 0: whatever is queued leaves as soon as a worker is free', async (t) => {
  const { runner, batcher } = setup({ maxBatchSize: 8, maxQueueDelayMs: 0 })
  const first = batcher.submit(sample(1), 10_000)
  t.equal(runner.calls.length, 1, 'alone, it goes at once')
  const rest = [2, 3, 4].map((v) => batcher.submit(sample(v), 10_000))
  t.equal(runner.calls.length, 1, 'the only worker is busy: the others wait')
  runner.calls[0]!.finish()
  await flush()
  t.equal(runner.calls.length, 2)
  t.equal(runner.calls[1]!.batch, 3, 'they coalesced into one batch')
  runner.calls[1]!.finish()
  t.same((await Promise.all([first, ...rest])).map((r) => r.logits[0]), [1, 2, 3, 4])
})

t.test('batches never exceed maxBatchSize and keep FIFO order', async (t) => {
  const { runner, batcher } = setup({ workers: 1, maxBatchSize: 2, maxQueueDelayMs: 0 })
  const all = [1, 2, 3, 4, 5].map((v) => batcher.submit(sample(v), 10_000))
  for (let i = 0; i < 4 && runner.calls.length > i; i++) { runner.calls[i]!.finish(); await flush() }
  t.same(runner.calls.map((c) => c.batch), [1, 2, 2])
  t.same((await Promise.all(all)).map((r) => r.logits[0]), [1, 2, 3, 4, 5])
})

t.test('bounded queue: overflow is an immediate 503', async (t) => {
  const { runner, batcher } = setup({ workers: 1, maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 2 })
  const busy = batcher.submit(sample(1), 10_000) // taken by the worker
  const q1 = batcher.submit(sample(2), 10_000)
  const q2 = batcher.submit(sample(3), 10_000)
  await t.rejects(batcher.submit(sample(4), 10_000), { code: 'ISOMAX_OVERLOADED', statusCode: 503 })
  t.equal(batcher.depth, 2)
  runner.calls[0]!.finish(); await flush()
  runner.calls[1]!.finish(); await flush()
  runner.calls[2]!.finish()
  await Promise.all([busy, q1, q2])
})

t.test('deadline: a request that waits too long fails with 503, never hangs', async (t) => {
  const { clock, runner, batcher } = setup({ workers: 1, maxBatchSize: 1, maxQueueDelayMs: 0 })
  const busy = batcher.submit(sample(1), 10_000)
  const late = batcher.submit(sample(2), 50)
  clock.advance(49)
  clock.advance(1)
  await t.rejects(late, { code: 'ISOMAX_DEADLINE_EXCEEDED', statusCode: 503 })
  t.equal(batcher.depth, 0)
  runner.calls[0]!.finish()
  await busy
  t.equal(runner.calls.length, 1, 'the expired request never ran')
})

t.test('a failing batch fails only its own requests', async (t) => {
  const { runner, batcher } = setup({ workers: 2, maxBatchSize: 1, maxQueueDelayMs: 0 })
  const a = batcher.submit(sample(1), 10_000)
  const b = batcher.submit(sample(2), 10_000)
  runner.calls[0]!.finish(new Error('worker died'))
  runner.calls[1]!.finish()
  await t.rejects(a, /worker died/)
  t.equal((await b).logits[0], 2)
})

t.test('drain rejects everything still queued', async (t) => {
  const { runner, batcher } = setup({ workers: 1, maxBatchSize: 1, maxQueueDelayMs: 0 })
  const running = batcher.submit(sample(1), 10_000)
  const queued = batcher.submit(sample(2), 10_000)
  batcher.drain(new Error('shutting down'))
  await t.rejects(queued, /shutting down/)
  runner.calls[0]!.finish()
  await running
})
