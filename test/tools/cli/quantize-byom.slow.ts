// `models quantize` on a model the repository has never seen: training/examples/byom_digits.py
// trains and exports a tiny IsoMax+ digit classifier, `models add --calibrate` serves it, and
// `models quantize` makes its INT8 variant from a folder of digits disjoint from the threshold's
// (a folder that overlaps is refused). The variant is its own calibrated entry with its own
// sha256 and parity fixture; the real server serves it, and what it answers over HTTP is what
// ONNX Runtime gives for the INT8 file on the service's own tensor. Slow (training, the
// quantisation venv on first use, two engines): npm run test:e2e.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import ort from 'onnxruntime-node'
import t from 'tap'
import { loadConfig } from '../../../src/config.js'
import { preprocessLimits } from '../../../src/preprocess/limits.js'
import { preprocess } from '../../../src/preprocess/preprocess.js'
import { loadManifest } from '../../../src/registry/load-manifest.js'
import { addModel } from '../../../src/tools/cli/models-add.js'
import { quantizeModel } from '../../../src/tools/cli/models-quantize.js'
import { mnistByDigit } from '../../../src/tools/datasets/builtin.js'
import { fashionTest, png, REPO } from '../../helpers/data.js'
import { startServer } from '../../helpers/server-process.js'
import { quietly } from '../../helpers/cli.js'

const LABELS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']
// The example trains on images 0..599 of each digit; the rest are held out.
const CALIBRATION = { from: 600, perClass: 25 }
const QUANTISATION = { from: 650, perClass: 20 }
const SERVED = { from: 700, perClass: 2 }
const env = { EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', LOG_LEVEL: 'silent' }

const work = mkdtempSync(path.join(os.tmpdir(), 'isomax-quantize-byom-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const manifestFile = path.join(work, 'models', 'manifest.json')

async function digitFolder (dir: string, digits: Uint8Array[][], from: number, perClass: number): Promise<string> {
  for (const [d, label] of LABELS.entries()) {
    mkdirSync(path.join(dir, label), { recursive: true })
    for (let i = from; i < from + perClass; i++) writeFileSync(path.join(dir, label, `${i}.png`), await png(digits[d]![i]!))
  }
  return dir
}

t.test('quantize a bring-your-own model, serve the INT8 entry: it answers what ONNX Runtime gives for its file', async (t) => {
  const exported = path.join(work, 'export')
  const train = spawnSync('/usr/bin/python3', [path.join(REPO, 'training', 'examples', 'byom_digits.py'), '--out', exported, '--steps', '200'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 })
  t.equal(train.status, 0, `byom_digits.py exits 0\n${train.stderr.slice(-2000)}`)
  if (train.status !== 0) return
  const digits = mnistByDigit()
  const calibration = await digitFolder(path.join(work, 'calibration'), digits, CALIBRATION.from, CALIBRATION.perClass)
  const quantisation = await digitFolder(path.join(work, 'quantisation'), digits, QUANTISATION.from, QUANTISATION.perClass)
  const garments = path.join(work, 'garments')
  mkdirSync(garments)
  for (const [i, g] of (await fashionTest(50)).entries()) writeFileSync(path.join(garments, `garment-${i}.png`), await png(g.pixels))

  await quietly(async () => await addModel(['--name', 'digits', '--onnx', path.join(exported, 'model.onnx'), '--labels', path.join(exported, 'labels.txt'),
    '--head', 'isomaxplus', '--mean', '0.1307', '--std', '0.3081', '--manifest', manifestFile, '--calibrate', calibration, '--score', 'mds'], env))
  const before = readFileSync(manifestFile, 'utf8')

  // Quantisation images that are also threshold images: refused, nothing written.
  await t.rejects(quietly(async () => await quantizeModel(['digits', '--calibration-images', calibration, '--calibrate', calibration, '--manifest', manifestFile], env)),
    { name: 'UsageError', message: /--calibration-images .* and --calibrate .* share 250 images: the thresholds must be calibrated on images the quantisation ranges never saw/ })
  t.equal(readFileSync(manifestFile, 'utf8'), before, 'the manifest is unchanged')

  const { value: result, stdout } = await quietly(async () => await quantizeModel(['digits', '--calibration-images', quantisation, '--calibrate', calibration,
    '--ood', `garments=${garments}`, '--manifest', manifestFile], env))
  t.match(stdout, /^quantize {9}digits → digits-int8: 200 calibration images from /m)
  t.match(stdout, /^first conv {7}(float32|int8) \(int8: ×[\d.]+ at batch 1/m)
  t.match(stdout, /^quality {10}.*calibration \(250 images\): accuracy float [\d.]+ %, int8 [\d.]+ %/m)
  t.match(stdout, /^ood garments: AUROC float [\d.]+, int8 [\d.]+/m)
  t.match(stdout, /^added {12}digits-int8 1\.0\.0-int8 to .*manifest\.json, after digits$/m)
  // The trunk's convolutions are quantised; the head (after the pool) is not.
  t.ok(result.python.trunk.length > 0 && result.python.tail.length > 0, `trunk ${result.python.trunk.length} nodes, tail ${result.python.tail.length}`)
  t.ok(result.quality.id.agreement.classFlips <= 25, `at most 10 % of the 250 classes differ: ${result.quality.id.agreement.classFlips}`)

  const raw = JSON.parse(readFileSync(manifestFile, 'utf8'))
  t.same(raw.models.map((m: { name: string }) => m.name), ['digits', 'digits-int8'])
  t.equal(raw.default, 'digits', 'the default stays')
  const [float, int8] = raw.models
  t.not(int8.sha256, float.sha256)
  t.same({ ...int8, name: 'digits', version: float.version, path: float.path, sha256: float.sha256, ood: float.ood, probabilities: float.probabilities }, float, 'the same entry as the float model but for name, version, file, sha256 and calibration')
  t.match(int8.ood, { score: 'mds', calibration: { n: 250, targetTpr: 0.95 } })
  t.ok(existsSync(path.join(work, 'models', 'digits-int8', 'quantization.json')))
  const parity = JSON.parse(readFileSync(result.parityFile, 'utf8'))
  t.match(parity, { model: 'digits-int8', source: 'digits', tolerance: { runtime: { maxAbs: 1e-4 }, float: { sameClass: true } } })

  const manifest = await loadManifest(manifestFile)
  const model = manifest.models.get('digits-int8')!
  const session = await ort.InferenceSession.create(model.onnxPath)
  t.teardown(async () => await session.release())
  // The fixture replays on the file it was made from.
  const replay = await session.run({ image: new ort.Tensor('float32', Float32Array.from(parity.input), parity.shape) })
  const worst = Math.max(...(parity.outputs.logits as number[]).map((v, i) => Math.abs(v - (replay.logits!.data as Float32Array)[i]!)))
  t.ok(worst <= 1e-4, `parity fixture replays: max |Δ| ${worst}`)

  const server = await startServer({ MODELS_MANIFEST: manifestFile })
  t.teardown(async () => {
    server.child.kill('SIGTERM')
    await server.exited
  })
  const limits = preprocessLimits(loadConfig(env))
  for (const [d] of LABELS.entries()) {
    for (let k = 0; k < SERVED.perClass; k++) {
      const body = await png(digits[d]![SERVED.from + k]!)
      const res = await fetch(`${server.url}/models/digits-int8/classify`, { method: 'POST', body, headers: { 'content-type': 'image/png' } })
      t.equal(res.status, 200)
      const answer = await res.json() as { model: string, classIndex: number, ood: { score: number, threshold: number, reject: boolean } }
      const { tensor } = await preprocess(body, model.input, limits)
      const logits = Array.from((await session.run({ image: new ort.Tensor('float32', tensor, [1, 1, 28, 28]) })).logits!.data as Float32Array)
      t.equal(answer.model, 'digits-int8')
      t.equal(answer.classIndex, logits.indexOf(Math.max(...logits)), `digit ${d}: served class = ONNX Runtime's argmax on the INT8 file`)
      t.ok(Math.abs(answer.ood.score - Math.max(...logits)) <= 1e-5, `digit ${d}: mds ${answer.ood.score} = max logit`)
      t.equal(answer.ood.threshold, model.ood.threshold, 'its own threshold')
    }
  }
})
