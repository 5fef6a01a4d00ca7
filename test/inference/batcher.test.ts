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
  setTimeout = (fn: () => void, ms: number): unknown => this.setTimeoutAt(fn, this.t + ms)
  setTimeoutAt (fn: () => void, at: number): unknown { const id = this.nextId++; this.timers.push({ at, fn, id }); return id }
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

t.test('several workers: batches go out in parallel, each caller gets its own row', async (t) => {
  const { runner, batcher } = setup({ workers: 2, maxBatchSize: 2, maxQueueDelayMs: 1000 })
  const all = [1, 2, 3, 4, 5].map((v) => batcher.submit(sample(v), 10_000))
  t.same(runner.calls.map((c) => c.batch), [2, 2], 'two full batches, one per worker')
  t.equal(batcher.depth, 1, 'the fifth waits for the delay or a full batch')
  runner.calls[1]!.finish()
  runner.calls[0]!.finish()
  await flush()
  const first = await Promise.all(all.slice(0, 4))
  t.same(first.map((r) => r.logits[0]), [1, 2, 3, 4], 'results reach their callers whatever order batches finish in')
  t.same(first.map((r) => r.logits[1]), [0, 1, 0, 1], 'row i of the batch goes to the i-th request in it')
})

t.test('delay trigger waits for a free worker, then takes everything that queued meanwhile', async (t) => {
  const { clock, runner, batcher } = setup({ workers: 1, maxBatchSize: 8, maxQueueDelayMs: 5 })
  const a = batcher.submit(sample(1), 10_000)
  clock.advance(5)
  t.equal(runner.calls.length, 1)
  const rest = [2, 3, 4].map((v) => batcher.submit(sample(v), 10_000))
  clock.advance(50)
  t.equal(runner.calls.length, 1, 'overdue, but no worker is free: nothing leaves')
  runner.calls[0]!.finish()
  await flush()
  t.equal(runner.calls.length, 2)
  t.equal(runner.calls[1]!.batch, 3, 'the overdue requests leave together as soon as the worker frees up')
  runner.calls[1]!.finish()
  const r = await Promise.all([a, ...rest])
  t.same(r.map((x) => x.queueMs), [5, 50, 50, 50])
})

t.test('queue depth is reported as it changes', async (t) => {
  const { runner, batcher, depths } = setup({ workers: 1, maxBatchSize: 2, maxQueueDelayMs: 0 })
  const all = [1, 2, 3].map((v) => batcher.submit(sample(v), 10_000))
  t.same(depths, [1, 0, 1, 2], 'first leaves at once; two queue behind it')
  runner.calls[0]!.finish(); await flush()
  t.equal(depths.at(-1), 0)
  runner.calls[1]!.finish()
  await Promise.all(all)
})

t.test('deadlines: only the expired requests fail, the rest still run', async (t) => {
  const { clock, runner, batcher } = setup({ workers: 1, maxBatchSize: 4, maxQueueDelayMs: 0 })
  const busy = batcher.submit(sample(1), 10_000)
  const short = batcher.submit(sample(2), 10)
  const long = batcher.submit(sample(3), 1000)
  clock.advance(10)
  await t.rejects(short, { code: 'ISOMAX_DEADLINE_EXCEEDED' })
  t.equal(batcher.depth, 1)
  runner.calls[0]!.finish(); await flush()
  t.equal(runner.calls[1]!.batch, 1)
  runner.calls[1]!.finish()
  t.equal((await long).logits[0], 3)
  await busy
})

t.test('overload is decided before queueing: a full queue answers at once, then recovers', async (t) => {
  const { runner, batcher } = setup({ workers: 1, maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 1 })
  const running = batcher.submit(sample(1), 10_000)
  const queued = batcher.submit(sample(2), 10_000)
  const refused = await Promise.allSettled([3, 4, 5].map(async (v) => await batcher.submit(sample(v), 10_000)))
  t.ok(refused.every((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'ISOMAX_OVERLOADED'))
  runner.calls[0]!.finish(); await flush()
  const again = batcher.submit(sample(6), 10_000)
  runner.calls[1]!.finish(); await flush()
  runner.calls[2]!.finish()
  t.same((await Promise.all([running, queued, again])).map((r) => r.logits[0]), [1, 2, 6])
})

t.test('a delay timer that fires early by the monotonic clock still dispatches (no second timer)', async (t) => {
  // Node measures timers against the loop's cached millisecond clock: a 2 ms timer can fire when
  // performance.now() says 1.4 ms have passed.
  class EarlyClock extends FakeClock {
    override setTimeout = (fn: () => void, ms: number): unknown => super.setTimeoutAt(fn, this.t + Math.max(0, ms - 0.6))
  }
  const clock = new EarlyClock()
  const runner = new StubRunner(1)
  const batcher = new Batcher('m', runner, { maxBatchSize: 8, maxQueueDelayMs: 2, maxQueueSize: 10, sampleSize: 4 }, {}, clock)
  runner.on('idle', () => batcher.pump())
  const r = batcher.submit(sample(1), 10_000)
  clock.advance(1.4)
  t.equal(runner.calls.length, 1, 'left when the 2 ms timer fired')
  runner.calls[0]!.finish()
  t.equal((await r).queueMs, 1.4)
})

t.test('prepareAndSubmit: places are taken before decoding, so overload never decodes', async (t) => {
  const { runner, batcher } = setup({ workers: 1, maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 2 })
  const running = batcher.submit(sample(1), 10_000) // on the worker
  const gates: Array<() => void> = []
  let prepared = 0
  const slow = (v: number) => async (): Promise<Float32Array> => { prepared++; await new Promise<void>((resolve) => gates.push(resolve)); return sample(v) }
  const a = batcher.prepareAndSubmit(slow(2), 10_000)
  const b = batcher.prepareAndSubmit(slow(3), 10_000)
  t.equal(batcher.preparing, 2)
  let decodedRefused = false
  await t.rejects(batcher.prepareAndSubmit(() => { decodedRefused = true; return sample(4) }, 10_000), { code: 'ISOMAX_OVERLOADED', statusCode: 503 })
  t.notOk(decodedRefused, 'the refused request was never decoded')
  await t.rejects(batcher.submit(sample(5), 10_000), { code: 'ISOMAX_OVERLOADED' }, 'plain submit sees the same bound')
  t.equal(prepared, 2)
  gates.forEach((g) => g())
  await flush()
  t.equal(batcher.preparing, 0)
  t.equal(batcher.depth, 2, 'both prepared requests are queued')
  for (let i = 0; i < 3; i++) { runner.calls[i]!.finish(); await flush() }
  t.same((await Promise.all([running, a, b])).map((r) => r.logits[0]), [1, 2, 3])
})

t.test('prepareAndSubmit: a failed preparation gives its place back; its error passes through', async (t) => {
  const { runner, batcher } = setup({ workers: 1, maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 1 })
  await t.rejects(batcher.prepareAndSubmit(async () => { throw new Error('undecodable') }, 10_000), /undecodable/)
  t.equal(batcher.preparing, 0)
  const ok = batcher.prepareAndSubmit(() => sample(7), 10_000)
  await flush()
  runner.calls[0]!.finish()
  t.equal((await ok).logits[0], 7)
})

t.test('prepareAndSubmit: the deadline runs from admission', async (t) => {
  const { clock, batcher } = setup({ workers: 1, maxBatchSize: 1, maxQueueDelayMs: 0 })
  let release!: () => void
  const r = batcher.prepareAndSubmit(async () => { await new Promise<void>((resolve) => { release = resolve }); return sample(1) }, 50)
  clock.advance(60)
  release()
  await t.rejects(r, { code: 'ISOMAX_DEADLINE_EXCEEDED', statusCode: 503 })
  t.equal(batcher.depth, 0, 'an expired request is not queued')
})

t.test('the queue bound counts images: a 503 says so, naming MAX_QUEUE_SIZE and its value', async (t) => {
  const { runner, batcher } = setup({ workers: 1, maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 2 })
  const taken = [1, 2, 3].map(async (i) => await batcher.submit(sample(i), 10_000)) // 1 on the worker, 2 queued
  const err = await batcher.submit(sample(4), 10_000).catch((e: Error) => e)
  t.match(err, { code: 'ISOMAX_OVERLOADED', message: /2 images \(or samples\) queued or being decoded, MAX_QUEUE_SIZE=2 counts images, not requests/ })
  for (let i = 0; i < 3; i++) { runner.calls[i]!.finish(); await flush() }
  await Promise.all(taken)
})
