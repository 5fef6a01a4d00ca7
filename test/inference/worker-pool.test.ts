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

t.test('load adds sessions to every worker, all or nothing; unload releases them', async (t) => {
  const specs = modelSpecs(manifest, {})
  const first = specs.find((s) => s.name === manifest.defaultModel)!
  const pool = new WorkerPool({ provider: 'cpu', intraOpThreads: 1, models: [first] }, 2, quiet)
  await pool.start()
  t.teardown(async () => await pool.close())
  t.same(pool.loadedKeys, [first.key])
  const other = specs.find((s) => s.key !== first.key)!
  await t.rejects(pool.run(other.key, 1, tensor()), { code: 'ISOMAX_INFERENCE_FAILED' }, 'not loaded yet')

  await pool.load([first, other])
  t.same(pool.loadedKeys.sort(), [first.key, other.key].sort(), 'the one it had is kept, the new one added')
  t.equal(pool.providers[other.key], 'cpu')
  const [a, b] = await Promise.all([pool.run(other.key, 1, tensor()), pool.run(other.key, 1, tensor())])
  t.same([...a.logits], [...b.logits], 'both workers hold it')

  // A spec that disagrees with its graph: refused with the field named, and nothing added.
  const broken = { ...other, key: 'broken', labels: 3 }
  await t.rejects(pool.load([broken]), { code: 'ISOMAX_MANIFEST_INVALID', message: /\.labels: the manifest lists 3 labels/ })
  t.notOk(pool.loadedKeys.includes('broken'))
  t.equal(pool.providers.broken, undefined)

  pool.unload([other.key])
  t.same(pool.loadedKeys, [first.key])
  await t.rejects(pool.run(other.key, 1, tensor()), { code: 'ISOMAX_INFERENCE_FAILED', message: /not loaded in this worker/ })
  t.equal((await pool.run(first.key, 1, tensor())).logits.length, 10, 'the rest serves on')
})

t.test('a replacement worker loads what the pool holds now, loaded sessions included', async (t) => {
  const specs = modelSpecs(manifest, {})
  const pool = new WorkerPool({ provider: 'cpu', intraOpThreads: 1, models: [specs[0]!] }, 1, quiet)
  await pool.start()
  t.teardown(async () => await pool.close())
  await pool.load([specs[1]!])
  await pool.crashOneWorker()
  await idleWorkers(pool, 1)
  t.equal((await pool.run(specs[1]!.key, 1, tensor())).logits.length, 10, 'the session loaded after start survives the crash')
})
