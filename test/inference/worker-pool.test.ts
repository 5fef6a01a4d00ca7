// Real worker threads and ONNX sessions: a worker that dies fails only its own batch and is
// replaced; closing releases every worker. Waits on the pool's events, never on the clock.
import { once } from 'node:events'
import t from 'tap'
import { modelSpecs, sessionKey } from '../../src/inference/model-specs.js'
import { WorkerPool } from '../../src/inference/worker-pool.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { MANIFEST } from '../helpers/data.js'
import { golden } from '../helpers/images.js'

const quiet = { warn: () => {}, error: () => {} }
const manifest = await loadManifest(MANIFEST)
const key = sessionKey(manifest.models.get(manifest.defaultModel)!, {})
const tensor = (): Float32Array => Float32Array.from(golden.images[0]!.tensor)

/** Resolve once `n` workers are ready and idle: every 'idle' event is a worker becoming free. */
async function idleWorkers (pool: WorkerPool, n: number): Promise<void> {
  while (pool.idleCount < n) await once(pool, 'idle')
}

t.test('classifies through the pool, survives a worker crash, closes', async (t) => {
  const pool = new WorkerPool({ provider: 'cpu', intraOpThreads: 1, models: modelSpecs(manifest, {}) }, 2, quiet)
  await pool.start()
  t.equal(pool.workerCount, 2)
  t.same(Object.keys(pool.providers).sort(), modelSpecs(manifest, {}).map((s) => s.key).sort(), 'one session per model')
  t.ok(Object.values(pool.providers).every((p) => p === 'cpu'))
  const before = await pool.run(key, 1, tensor())
  t.equal(before.logits.length, 10)

  await pool.crashOneWorker()
  t.equal(pool.idleCount, 1, 'the crashed worker is out of the pool at once')
  const during = await pool.run(key, 1, tensor())
  t.same([...during.logits], [...before.logits], 'the surviving worker answers identically')

  await idleWorkers(pool, 2)
  t.equal(pool.workerCount, 2, 'the dead worker was replaced')
  const results = await Promise.all([pool.run(key, 1, tensor()), pool.run(key, 1, tensor())])
  t.ok(results.every((r) => r.logits[9] === before.logits[9]), 'both workers answer identically')
  await pool.close()
  t.equal(pool.workerCount, 0)
})
