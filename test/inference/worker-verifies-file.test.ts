// A worker creates a session only from the bytes the manifest's sha256 names (issue 19, defect 3).
// The manifest is verified when it is loaded, but a worker may load later: after a crash, its
// replacement used to load whatever file was at the path then, and the service served other
// weights under the old entry and threshold. Real worker threads, real ONNX models.
import { copyFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Engine } from '../../src/inference/engine.js'
import { engineOptions } from '../../src/inference/engine-options.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { testConfig } from '../helpers/build.js'
import { copyModels, editManifest } from '../helpers/manifest-copy.js'
import { preprocess } from '../../src/preprocess/preprocess.js'
import { fixturePng } from '../helpers/images.js'

t.test('a file replaced on disk: the replacement worker refuses it, and nothing serves the other weights', async (t) => {
  const file = copyModels()
  const config = testConfig({ MODELS_MANIFEST: file, INFERENCE_WORKERS: '1' })
  const manifest = await loadManifest(file)
  const errors: string[] = []
  const engine = await Engine.start(manifest, engineOptions(config), { warn: () => {}, error: (o, m) => errors.push(`${m} ${JSON.stringify(o)}`) })
  t.teardown(async () => await engine.close(new Error('done')))
  // Two models whose graphs have the same outputs (logits only): either file passes the other's
  // graph check, so only the sha256 can tell them apart.
  const name = 'fashion-mnist-isomaxplus'
  const model = manifest.models.get(name)!
  const tensor = async (): Promise<Float32Array> => (await preprocess(fixturePng(0), model.input, { maxInputPixels: 1_000_000 })).tensor
  const before = await engine.classifyTensor(name, await tensor(), 60_000)

  const other = manifest.models.get('fashion-mnist-isomax')!
  copyFileSync(other.onnxPath, model.onnxPath)
  await engine.crashOneWorker()
  for (let i = 0; i < 300 && (engine.workerCount > 0 || !errors.some((e) => /could not replace/.test(e))); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(errors.join('\n'), new RegExp(`could not replace an inference worker.*${path.basename(model.onnxPath)} has sha256 ${other.sha256} now, the manifest entry being served says ${model.sha256}`))
  t.equal(engine.workerCount, 0, 'no worker serves the changed file')
  t.notOk(engine.ready, 'so the replica is not ready: the load balancer sends traffic elsewhere')
  await t.rejects(engine.classifyTensor(name, await tensor(), 500), { code: 'ISOMAX_DEADLINE_EXCEEDED' }, 'and nothing answers with the other weights')

  // The operator makes the entry name the new file and reloads: the stale session is released
  // and a worker starts again, serving the new file under the entry that says so.
  editManifest(file, (m) => { m.models.find((e: { name: string }) => e.name === name).sha256 = other.sha256 })
  await engine.swap(await loadManifest(file))
  for (let i = 0; i < 300 && !engine.ready; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(engine.workerCount, 1, 'a worker again')
  const after = await engine.classifyTensor(name, await tensor(), 60_000)
  const direct = await Engine.start(await loadManifest(file), engineOptions(config), { warn: () => {}, error: () => {} })
  const expected = await direct.classifyTensor(name, await tensor(), 60_000)
  await direct.close(new Error('done'))
  t.same([...after.logits], [...expected.logits], 'the new file\'s logits, under the entry that names it')
  t.notSame([...after.logits], [...before.logits])
})
