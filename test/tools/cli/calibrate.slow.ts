// calibrate through the serving path: the threshold keeps ≥ the target TPR on the calibration
// data and lands within ±1.5 points of it on a disjoint split; only that model's OOD block
// changes; bad input leaves the manifest untouched.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { calibrate } from '../../../src/tools/cli/calibrate.js'
import { builtinDataset } from '../../../src/tools/datasets/builtin.js'
import { runDataset, startEngine } from '../../../src/tools/cli/run-dataset.js'
import { loadConfig } from '../../../src/config.js'
import { argmax, score } from '../../../src/ood/scores.js'
import { ece } from '../../../src/tools/evaluation/calibration-metrics.js'
import { loadManifest } from '../../../src/registry/load-manifest.js'
import { fashionTest, png } from '../../helpers/data.js'
import { copyModels } from '../../helpers/manifest-copy.js'

const env = { EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '2', LOG_LEVEL: 'silent' }
const MODEL = 'fashion-mnist-isomaxplus'

t.test('calibrate on the validation split; check TPR on the test split', async (t) => {
  const manifestFile = copyModels()
  const before = JSON.parse(readFileSync(manifestFile, 'utf8'))
  const { ood, probabilities, skipped } = await calibrate(['--model', MODEL, '--data', 'fashion-mnist:val', '--manifest', manifestFile], env)
  t.equal(skipped, 0)
  t.equal(ood.calibration.n, 5000)
  t.ok(ood.calibration.achievedTpr >= 0.95, `achieved TPR ${ood.calibration.achievedTpr} ≥ 0.95 on the calibration data`)
  t.match(ood.calibration.dataSha256, /^[0-9a-f]{64}$/)
  t.equal(ood.calibration.scores!.length, 1000)
  t.equal(ood.calibration.tool, 'isomax-serve calibrate')

  const after = JSON.parse(readFileSync(manifestFile, 'utf8'))
  const i = after.models.findIndex((m: { name: string }) => m.name === MODEL)
  t.same(after.models[i].ood, ood, 'the new OOD block is in the manifest')
  t.same(after.models[i].probabilities, probabilities, 'and the fitted temperature (the data is labelled)')
  // Without --risk-data the old confidence threshold goes: it was chosen for the OOD threshold
  // and temperature just replaced (docs/selective-risk.md).
  t.not(before.models[i].selective, undefined, 'the model had a confidence threshold')
  t.equal(after.models[i].selective, undefined, 'a calibration without --risk-data removes it')
  after.models[i].ood = before.models[i].ood
  after.models[i].probabilities = before.models[i].probabilities
  after.models[i].selective = before.models[i].selective
  if (after.models[i].probabilities === undefined) delete after.models[i].probabilities
  t.same(after, before, 'nothing else in the manifest changed')

  // Disjoint in-distribution data: the 10,000 test images, through the same engine.
  const manifest = await loadManifest(manifestFile)
  const model = manifest.models.get(MODEL)!
  const config = loadConfig(env)
  const engine = await startEngine(manifest, config)
  t.teardown(async () => await engine.close(new Error('done')))
  const run = await runDataset(engine, [model], (await builtinDataset('fashion-mnist:test'))!, 'test split', config)
  const scores = run.outputs.get(MODEL)!.logits.map((l) => score(model.ood.score, l))
  const tpr = scores.filter((s) => s >= model.ood.threshold).length / scores.length
  t.comment(`TPR on the calibration split ${ood.calibration.achievedTpr.toFixed(4)}, on the disjoint test split ${tpr.toFixed(4)}`)
  t.ok(Math.abs(tpr - 0.95) <= 0.015, `test-split TPR ${tpr} within ±1.5 points of 0.95`)
})

t.test('--per-class and the temperature: per-class reject rates and ECE hold on the disjoint test split', async (t) => {
  const manifestFile = copyModels()
  const name = 'fashion-mnist-softmax' // its max-logit spreads most across classes
  const { ood, probabilities } = await calibrate(['--model', name, '--data', 'fashion-mnist:val', '--per-class', '--manifest', manifestFile], env)
  t.equal(ood.classThresholds!.length, 10)
  t.equal(ood.calibration.classScores!.length, 10)
  t.equal(ood.calibration.classN!.reduce((a, b) => a + b, 0), 5000)
  t.ok(probabilities !== undefined && probabilities.n === 5000 && probabilities.nll.after <= probabilities.nll.before)

  const manifest = await loadManifest(manifestFile)
  const model = manifest.models.get(name)!
  t.same(model.ood.classThresholds, ood.classThresholds, 'the manifest the server loads has them')
  const config = loadConfig(env)
  const engine = await startEngine(manifest, config)
  t.teardown(async () => await engine.close(new Error('done')))
  const run = await runDataset(engine, [model], (await builtinDataset('fashion-mnist:test'))!, 'test split', config)
  const { logits, labels } = run.outputs.get(name)!
  const predicted = logits.map((l) => argmax(l))
  const scores = logits.map((l) => score(model.ood.score, l))
  // The false-reject rate of each predicted class, with the global threshold and with its own.
  const frr = (threshold: (c: number) => number): number[] => Array.from({ length: 10 }, (_, c) => {
    const mine = scores.filter((_, i) => predicted[i] === c)
    return mine.filter((s) => s < threshold(c)).length / mine.length
  })
  const worst = (rates: number[]): number => Math.max(...rates.map((r) => Math.abs(r - 0.05)))
  const mean = (rates: number[]): number => rates.reduce((a, r) => a + Math.abs(r - 0.05), 0) / rates.length
  const globalRates = frr(() => model.ood.threshold)
  const ownRates = frr((c) => model.ood.classThresholds![c]!)
  t.comment(`per-class false-reject rates on the test split, global threshold: ${globalRates.map((r) => r.toFixed(3)).join(' ')}`)
  t.comment(`per-class false-reject rates on the test split, per-class thresholds: ${ownRates.map((r) => r.toFixed(3)).join(' ')}`)
  t.ok(worst(ownRates) < worst(globalRates), `worst class off 5 % by ${worst(ownRates).toFixed(3)} per-class vs ${worst(globalRates).toFixed(3)} global`)
  // ~500 calibration and ~1000 test images per class: each rate carries ±1.2 points of
  // binomial noise (1 SD), so the check is on the average distance from the target.
  t.ok(mean(ownRates) <= mean(globalRates) / 2, `mean distance from 5 %: ${mean(ownRates).toFixed(4)} per-class vs ${mean(globalRates).toFixed(4)} global`)

  const before = ece(logits, labels, 1)
  const after = ece(logits, labels, probabilities!.temperature)
  t.comment(`ECE on the test split: ${before.toFixed(4)} at T=1, ${after.toFixed(4)} at T=${probabilities!.temperature.toFixed(3)}`)
  t.ok(after <= 0.02, 'ECE ≤ 0.02 with the fitted temperature')
  t.ok(after <= before + 0.005, 'the temperature does not make it worse beyond noise')
})

t.test('an image folder with unreadable files: they are skipped, counted and named', async (t) => {
  const manifestFile = copyModels()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-calib-'))
  const images = await fashionTest(60)
  for (const [i, img] of images.entries()) writeFileSync(path.join(dir, `img-${String(i).padStart(3, '0')}.png`), await png(img.pixels))
  writeFileSync(path.join(dir, 'broken.png'), 'not a png')
  writeFileSync(path.join(dir, 'notes.txt'), 'hello')
  const stderr: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string) => { stderr.push(String(chunk)); return true }) as typeof process.stderr.write
  let result
  try {
    result = await calibrate(['--model', MODEL, '--data', dir, '--tpr', '0.9', '--manifest', manifestFile], env)
  } finally {
    process.stderr.write = write
  }
  t.equal(result.skipped, 2)
  t.equal(result.ood.calibration.n, 60)
  t.equal(result.ood.calibration.targetTpr, 0.9)
  t.ok(result.ood.calibration.achievedTpr >= 0.9)
  const warning = stderr.join('').split('\n').find((l) => l.startsWith('warning: ') && l.includes('skipped'))
  t.match(warning, /skipped 2 unreadable image\(s\) of 62; first: broken\.png \(.*\); notes\.txt/)
})

t.test('bad input: a clear error and the manifest untouched', async (t) => {
  const manifestFile = copyModels()
  const original = readFileSync(manifestFile)
  const empty = mkdtempSync(path.join(os.tmpdir(), 'isomax-empty-'))
  const junk = mkdtempSync(path.join(os.tmpdir(), 'isomax-junk-'))
  writeFileSync(path.join(junk, 'a.png'), 'nope')
  const badIdx = path.join(mkdtempSync(path.join(os.tmpdir(), 'isomax-idx-')), 'images.idx')
  writeFileSync(badIdx, Buffer.from([0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]))
  mkdirSync(path.join(empty, 'nested-but-empty'))
  const cases: Array<[string[], RegExp]> = [
    [['--model', MODEL, '--data', '/no/such/folder'], /\/no\/such\/folder: no such file or directory/],
    [['--model', MODEL, '--data', empty], /no image files found/],
    [['--model', 'no-such-model', '--data', 'fashion-mnist:val'], /model "no-such-model" is not in .*manifest\.json \(it has: /],
    [['--model', MODEL, '--data', badIdx], /bad magic number 0x12345678/],
    [['--model', MODEL, '--data', junk], /none of the 1 images could be read; the manifest is unchanged/],
    [['--model', MODEL], /missing --data/],
    [['--model', MODEL, '--data', 'fashion-mnist:val', '--tpr', '1.5'], /--tpr must be a number between 0 and 1/],
    [['--model', 'fashion-mnist-softmax', '--data', 'fashion-mnist:val', '--score', 'mds'], /mds needs a distance head/]
  ]
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = (() => true) as typeof process.stderr.write
  try {
    for (const [argv, message] of cases) {
      await t.rejects(calibrate([...argv, '--manifest', manifestFile], env), { message }, argv.join(' '))
    }
  } finally {
    process.stderr.write = write
  }
  t.same(readFileSync(manifestFile), original, 'the manifest is byte-for-byte unchanged')
})

t.test('--risk-data: the confidence threshold comes from the other half, reproduces the shipped one, and goes when recalibrated without it', async (t) => {
  const manifestFile = copyModels()
  const shipped = JSON.parse(readFileSync(manifestFile, 'utf8')).models.find((m: { name: string }) => m.name === 'fashion-mnist-isomaxplus-md')
  const args = ['--model', 'fashion-mnist-isomaxplus-md', '--per-class', '--data', 'fashion-mnist:val-fit', '--manifest', manifestFile]
  const { selective } = await calibrate([...args, '--risk-data', 'fashion-mnist:val-risk', '--target-risk', '0.02', '--delta', '0.1'], env)
  t.ok(selective !== undefined)
  t.equal(selective!.calibration.n, 2500)
  t.ok(selective!.calibration.bound <= 0.02, `bound ${selective!.calibration.bound} ≤ the target`)
  t.ok(selective!.calibration.risk <= selective!.calibration.bound)
  t.not(selective!.calibration.dataSha256, selective!.calibration.fitDataSha256, 'two different data sets')
  const written = JSON.parse(readFileSync(manifestFile, 'utf8')).models.find((m: { name: string }) => m.name === 'fashion-mnist-isomaxplus-md')
  t.same(written.selective, selective, 'the block is in the manifest')
  // The shipped manifest was written by this very command: same threshold and figures.
  t.equal(selective!.threshold, shipped.selective.threshold, 'the shipped confidence threshold is what the tool chooses')
  t.same({ ...selective!.calibration, date: '', toolVersion: '' }, { ...shipped.selective.calibration, date: '', toolVersion: '' })

  // The same images for both: refused before anything runs, or after, by their hash.
  await t.rejects(calibrate([...args, '--risk-data', 'fashion-mnist:val-fit'], env), /disjoint/)
  await t.rejects(calibrate([...args, '--target-risk', '0.02'], env), /go with --risk-data/)
  await t.rejects(calibrate([...args, '--risk-data', 'fashion-mnist:val-risk', '--delta', '1.5'], env), /--delta must be a number between 0 and 1/)

  // Recalibrated without --risk-data: the old confidence threshold described another OOD
  // threshold and temperature, so it goes.
  await calibrate(args, env)
  t.equal(JSON.parse(readFileSync(manifestFile, 'utf8')).models.find((m: { name: string }) => m.name === 'fashion-mnist-isomaxplus-md').selective, undefined)
})
