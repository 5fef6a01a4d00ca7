import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { loadManifest, parseManifest } from '../../src/registry/load-manifest.js'
import { MANIFEST } from '../helpers/data.js'

const original = JSON.parse(readFileSync(MANIFEST, 'utf8'))
const clone = (): any => structuredClone(original)

/** A manifest directory with the default model's ONNX copied in, and `manifest` written. */
function workspace (manifest: any): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-manifest-'))
  for (const m of original.models) {
    mkdirSync(path.join(dir, path.dirname(m.path)), { recursive: true })
    copyFileSync(path.join(path.dirname(MANIFEST), m.path), path.join(dir, m.path))
  }
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest))
  return path.join(dir, 'manifest.json')
}

t.test('the shipped manifest loads, with sha256 verified', async (t) => {
  const loaded = await loadManifest(MANIFEST)
  t.ok(loaded.models.has(loaded.defaultModel))
  t.equal(loaded.defaultModel, 'fashion-mnist-isomaxplus-md')
  for (const m of loaded.models.values()) t.ok(path.isAbsolute(m.onnxPath))
})

t.test('schema errors name the file, the model and the field', async (t) => {
  const m = clone()
  m.models[0].ood.threshold = 'low'
  delete m.models[0].input.height
  const err = t.throws(() => parseManifest('/x/manifest.json', m)) as Error & { code: string }
  t.equal(err.code, 'ISOMAX_MANIFEST_INVALID')
  const where = `models[0] (model "${original.models[0].name}")`
  t.match(err.message, /^\/x\/manifest\.json: invalid manifest/)
  t.ok(err.message.includes(`${where}.ood.threshold: `), 'names the threshold field of that model')
  t.ok(err.message.includes(`${where}.input.height: `), 'and every other bad field')
})

t.test('semantic errors: unknown default, duplicate names, mds on a softmax head', async (t) => {
  const a = clone(); a.default = 'nope'
  t.throws(() => parseManifest('m.json', a), { message: /m\.json: default: "nope" is not one of the models/ })
  const b = clone(); b.models.push(structuredClone(b.models[0]))
  t.throws(() => parseManifest('m.json', b), { message: /duplicate model name/ })
  const c = clone(); const soft = c.models.find((x: any) => x.head === 'softmax'); soft.ood.score = 'mds'
  t.throws(() => parseManifest('m.json', c), { message: /ood\.score: "mds" needs a distance head/ })
})

t.test('a wrong sha256 refuses the whole manifest', async (t) => {
  const m = clone()
  m.models[1].sha256 = 'a'.repeat(64)
  const file = workspace(m)
  await t.rejects(loadManifest(file), { message: new RegExp(`models\\[1\\] \\(model "${m.models[1].name}"\\)\\.sha256: .*model\\.onnx has sha256 [0-9a-f]{64}, the manifest says a{64}`) })
})

t.test('a missing ONNX file, bad JSON and a missing manifest are reported with the path', async (t) => {
  const m = clone()
  m.models[0].path = 'nowhere/model.onnx'
  await t.rejects(loadManifest(workspace(m)), { message: /models\[0\].*\.path: .*nowhere\/model\.onnx: ENOENT/ })
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-manifest-'))
  writeFileSync(path.join(dir, 'manifest.json'), '{ not json')
  await t.rejects(loadManifest(path.join(dir, 'manifest.json')), { message: /manifest\.json: not valid JSON/ })
  await t.rejects(loadManifest(path.join(dir, 'absent.json')), { message: /absent\.json: cannot read the manifest/ })
})

t.test('an entry without an OOD block (published, not calibrated) is refused by the service, named; calibrate may load it', async (t) => {
  const m = clone()
  delete m.models[2].ood
  const file = workspace(m)
  await t.rejects(loadManifest(file), { message: new RegExp(`models\\[2\\] \\(model "${m.models[2].name}"\\)\\.ood: missing: the model is not calibrated yet; run \`npm run calibrate -- --model ${m.models[2].name} `) })
  const relaxed = await loadManifest(file, { uncalibrated: true })
  t.equal(relaxed.models.get(m.models[2].name)!.ood, undefined)
  t.ok(relaxed.models.get(m.models[0].name)!.ood !== undefined, 'calibrated entries keep their block')
})
