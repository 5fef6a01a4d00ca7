// docs/byom.md, run: a model the repository has never seen — trained here by
// training/examples/byom_digits.py (a tiny CNN with the authors' cdist IsoMax+ head, on MNIST
// digits labelled "zero".."nine") and exported to ONNX — is added to a manifest that does not
// exist yet with `models add --calibrate`, evaluated against an OOD folder, served by the real
// server, and classified over HTTP. What the service answers must be what ONNX Runtime gives
// for the same tensor: the service's own preprocess(), then the ONNX file run directly.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import ort from 'onnxruntime-node'
import t from 'tap'
import { loadConfig } from '../../../src/config.js'
import { preprocessLimits } from '../../../src/preprocess/limits.js'
import { preprocess } from '../../../src/preprocess/preprocess.js'
import { loadManifest } from '../../../src/registry/load-manifest.js'
import { evaluate } from '../../../src/tools/cli/evaluate.js'
import { addModel } from '../../../src/tools/cli/models-add.js'
import { mnistByDigit } from '../../../src/tools/datasets/builtin.js'
import { fashionTest, png, REPO } from '../../helpers/data.js'
import { startServer } from '../../helpers/server-process.js'
import { quietly } from '../../helpers/cli.js'

const LABELS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']
// The example trains on images 0..599 of each digit; these come from the held-out rest.
const CALIBRATION = { from: 600, perClass: 25 }
const SERVED = { from: 700, perClass: 2 }
const env = { EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', LOG_LEVEL: 'silent' }

const work = mkdtempSync(path.join(os.tmpdir(), 'isomax-byom-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const exported = path.join(work, 'export')
// A manifest in a folder that does not exist yet: `models add` creates both.
const manifestFile = path.join(work, 'models', 'manifest.json')

t.test('export, add with --calibrate, evaluate, serve, classify: the service agrees with ONNX Runtime', async (t) => {
  const started = performance.now()
  const train = spawnSync('/usr/bin/python3', [path.join(REPO, 'training', 'examples', 'byom_digits.py'), '--out', exported, '--steps', '200'], {
    cwd: REPO, encoding: 'utf8', timeout: 120_000
  })
  t.equal(train.status, 0, `byom_digits.py exits 0\n${train.stderr.slice(-2000)}`)
  if (train.status !== 0) return
  t.match(train.stdout, /wrote .*model\.onnx \(input "image" \[batch, 1, 28, 28\], output "logits" \[batch, 10\], opset 13\)/)
  t.same(readFileSync(path.join(exported, 'labels.txt'), 'utf8').trim().split('\n'), LABELS)
  t.comment(`trained and exported in ${((performance.now() - started) / 1000).toFixed(1)} s: ${train.stdout.split('\n')[0]}`)

  // Held-out digits as PNG: one folder per class (the label names) for calibration.
  const digits = mnistByDigit()
  const calibration = path.join(work, 'calibration')
  for (const [d, label] of LABELS.entries()) {
    mkdirSync(path.join(calibration, label), { recursive: true })
    for (let i = CALIBRATION.from; i < CALIBRATION.from + CALIBRATION.perClass; i++) {
      writeFileSync(path.join(calibration, label, `${i}.png`), await png(digits[d]![i]!))
    }
  }
  const garments = path.join(work, 'garments')
  mkdirSync(garments)
  for (const [i, g] of (await fashionTest(50)).entries()) writeFileSync(path.join(garments, `garment-${i}.png`), await png(g.pixels))

  const { value: added, stdout } = await quietly(async () => await addModel([
    '--name', 'digits', '--onnx', path.join(exported, 'model.onnx'), '--labels', path.join(exported, 'labels.txt'),
    '--head', 'isomaxplus', '--mean', '0.1307', '--std', '0.3081', '--manifest', manifestFile,
    '--calibrate', calibration, '--score', 'mds'
  ], env))
  t.match(stdout, /^added {12}digits 1\.0\.0 to .*manifest\.json \(a new manifest\); the default model$/m)
  t.match(stdout, /^input {12}"image" 1×28×28 grey, mean \[0\.1307\] \(--mean\), std \[0\.3081\] \(--std\), fit fill \(size from the graph\)$/m)
  t.match(stdout, /^threshold {8}-?[\d.]+ /m)
  t.notMatch(stdout, /^next /m, 'calibrated in the same command: no "next" step')
  t.equal(added.created, true)
  t.equal(added.calibration?.ood.calibration.n, 10 * CALIBRATION.perClass)

  const raw = JSON.parse(readFileSync(manifestFile, 'utf8'))
  t.equal(raw.default, 'digits')
  t.match(raw.models[0], {
    name: 'digits',
    path: 'digits/model.onnx',
    head: 'isomaxplus',
    input: { name: 'image', layout: 'NCHW', channels: 1, height: 28, width: 28, mean: [0.1307], std: [0.3081], colour: 'grey' },
    output: { name: 'logits', holds: 'negative-distances' },
    labels: LABELS,
    ood: { score: 'mds' }
  })
  // The service's own loader accepts it: calibrated, sha256 right, path relative to the manifest.
  const manifest = await loadManifest(manifestFile)
  const model = manifest.models.get('digits')!
  t.equal(model.onnxPath, path.join(work, 'models', 'digits', 'model.onnx'))

  const report = await quietly(async () => await evaluate([
    '--manifest', manifestFile, '--model', 'digits', '--id', calibration, '--ood', `garments=${garments}`, '--out', path.join(work, 'report')
  ], env))
  const auroc = report.value.results.garments!['digits/mds']!.auroc
  t.ok(auroc >= 0 && auroc <= 1, `evaluate against an OOD folder: AUROC ${auroc.toFixed(3)}`)
  t.ok(report.value.accuracy.digits! > 0.5, `class folders named by label give an accuracy: ${report.value.accuracy.digits}`)

  const server = await startServer({ MODELS_MANIFEST: manifestFile })
  t.teardown(async () => {
    server.child.kill('SIGTERM')
    await server.exited
  })
  const listed = await (await fetch(`${server.url}/models`)).json() as { default: string, models: Array<{ name: string, labels: string[] }> }
  t.equal(listed.default, 'digits')
  t.same(listed.models[0]!.labels, LABELS)

  const session = await ort.InferenceSession.create(model.onnxPath)
  t.teardown(async () => await session.release())
  const limits = preprocessLimits(loadConfig(env))
  const images = [
    ...LABELS.flatMap((_, d) => Array.from({ length: SERVED.perClass }, (_, k) => ({ digit: d, pixels: digits[d]![SERVED.from + k]! }))),
    ...(await fashionTest(3)).map((g) => ({ digit: -1, pixels: g.pixels }))
  ]
  let correct = 0
  for (const image of images) {
    const body = await png(image.pixels)
    const res = await fetch(`${server.url}/classify`, { method: 'POST', body, headers: { 'content-type': 'image/png' } })
    t.equal(res.status, 200)
    const answer = await res.json() as { model: string, label: string, classIndex: number, ood: { score: number, kind: string, threshold: number, reject: boolean, minDistance: number } }

    const { tensor } = await preprocess(body, model.input, limits)
    const input = new ort.Tensor('float32', tensor, [1, 1, 28, 28])
    const logits = Array.from((await session.run({ image: input })).logits!.data as Float32Array)
    const best = logits.indexOf(Math.max(...logits))
    const mds = Math.max(...logits) // minimum-distance score = −(distance to the nearest prototype)

    const what = image.digit >= 0 ? `digit ${image.digit}` : 'a garment'
    t.equal(answer.model, 'digits')
    t.equal(answer.classIndex, best, `${what}: served class = ONNX Runtime's argmax (${best})`)
    t.equal(answer.label, LABELS[best])
    t.ok(Math.abs(answer.ood.minDistance - (-mds)) <= 1e-5, `${what}: minDistance ${answer.ood.minDistance} = −max logit ${-mds}`)
    t.ok(Math.abs(answer.ood.score - mds) <= 1e-5, `${what}: mds score ${answer.ood.score} = max logit ${mds}`)
    t.equal(answer.ood.kind, 'mds')
    t.equal(answer.ood.reject, answer.ood.score < answer.ood.threshold)
    if (best === image.digit) correct++
  }
  t.comment(`served ${images.length} images; ${correct} of ${10 * SERVED.perClass} digits right after 200 training steps; ${((performance.now() - started) / 1000).toFixed(1)} s in all`)
})
