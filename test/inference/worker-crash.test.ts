// A worker thread that dies during a batch fails that batch's requests (500, never a hang),
// and only those: queued requests run on the replacement worker, which the pool starts itself.
// Real threads, with a stub worker in place of ONNX Runtime so the crash comes on cue.
import { once } from 'node:events'
import t from 'tap'
import { Batcher } from '../../src/inference/batcher.js'
import { WorkerPool } from '../../src/inference/worker-pool.js'

const STUB = new URL('./fixtures/stub-worker.ts', import.meta.url)
const init = { models: [], provider: 'cpu' as const, intraOpThreads: 1 }
const sample = (v: number): Float32Array => Float32Array.of(v, 0, 0, 0)

t.test('a crash mid-batch fails only that batch; the worker is replaced', async (t) => {
  const warnings: string[] = []
  const pool = new WorkerPool(init, 1, { warn: (_o, m) => warnings.push(m), error: () => {} }, STUB)
  await pool.start()
  t.teardown(async () => await pool.close())
  const batcher = new Batcher('m', pool, { maxBatchSize: 2, maxQueueDelayMs: 200, maxQueueSize: 16, sampleSize: 4 })
  pool.on('idle', () => batcher.pump())

  // A full batch [1, −1] leaves at once (the −1 crashes the worker); [2, 3] and [4] queue.
  const doomed = [1, -1].map(async (v) => await batcher.submit(sample(v), 120_000))
  const queued = [2, 3, 4].map(async (v) => await batcher.submit(sample(v), 120_000))
  t.equal(batcher.depth, 3, 'the rest queue behind the running batch')

  const settled = await Promise.allSettled(doomed)
  for (const r of settled) {
    t.equal(r.status, 'rejected')
    if (r.status === 'rejected') {
      t.match(r.reason, { code: 'ISOMAX_INFERENCE_FAILED', statusCode: 500 })
      t.match((r.reason as Error).message, /exited \(code 7\) during the batch/)
    }
  }
  const results = await Promise.all(queued)
  t.same(results.map((r) => r.logits[0]), [2, 3, 4], 'queued requests run on the replacement, in order')
  t.same(results.map((r) => r.batchSize), [2, 2, 1])
  t.equal(pool.workerCount, 1, 'the pool is back to its size')
  t.ok(warnings.some((w) => /starting a replacement/.test(w)), 'the crash is logged')
})

t.test('with two workers a crash does not touch the batch running on the other', async (t) => {
  const pool = new WorkerPool(init, 2, { warn: () => {}, error: () => {} }, STUB)
  await pool.start()
  t.teardown(async () => await pool.close())
  const batcher = new Batcher('m', pool, { maxBatchSize: 2, maxQueueDelayMs: 200, maxQueueSize: 16, sampleSize: 4 })
  pool.on('idle', () => batcher.pump())
  const a = [10, -1].map(async (v) => await batcher.submit(sample(v), 120_000))
  const b = [20, 21].map(async (v) => await batcher.submit(sample(v), 120_000))
  const [ra, rb] = await Promise.all([Promise.allSettled(a), Promise.all(b)])
  t.ok(ra.every((r) => r.status === 'rejected'), 'the crashed batch fails')
  t.same(rb.map((r) => r.logits[0]), [20, 21], 'the other worker\'s batch succeeds')
  while (pool.idleCount < 2) await once(pool, 'idle') // the replacement announces itself idle
  t.equal(pool.workerCount, 2)
  t.same((await batcher.submit(sample(5), 120_000)).logits[0], 5, 'and the pool serves on')
})
