// Real worker threads and ONNX sessions: a worker that dies fails only its own batch and is
// replaced; closing releases every worker.
import t from 'tap'
import { Engine } from '../../src/inference/engine.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { MANIFEST } from '../helpers/data.js'
import { golden } from '../helpers/images.js'

const quiet = { warn: () => {}, error: () => {} }
const manifest = await loadManifest(MANIFEST)
const model = manifest.defaultModel
const tensor = (): Float32Array => Float32Array.from(golden.images[0]!.tensor)

t.test('classifies through the pool, survives a worker crash, closes', async (t) => {
  const engine = await Engine.start(manifest, { provider: 'cpu', workers: 2, intraOpThreads: 1, maxQueueSize: 64, maxQueueDelayMs: 0 }, quiet)
  t.equal(engine.workerCount, 2)
  t.same(Object.values(engine.providers), [...manifest.models.keys()].map(() => 'cpu'))
  const before = await engine.classifyTensor(model, tensor(), 5000)
  t.equal(before.logits.length, 10)

  await engine.crashOneWorker()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const during = await engine.classifyTensor(model, tensor(), 5000)
  t.same([...during.logits], [...before.logits], 'the surviving worker answers identically')

  const until = Date.now() + 30_000
  while (engine.workerCount < 2 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(engine.workerCount, 2, 'the dead worker was replaced')
  const results = await Promise.all(Array.from({ length: 20 }, async () => await engine.classifyTensor(model, tensor(), 5000)))
  t.ok(results.every((r) => r.logits[9] === before.logits[9]))
  await engine.close(new Error('closing'))
  t.equal(engine.workerCount, 0)
})
