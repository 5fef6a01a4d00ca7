// `models quantize` refuses what it cannot do well before any Python runs: one line, exit code
// 2, the manifest unchanged. Overlapping quantisation and threshold images are refused (the
// threshold must come from images the quantisation ranges never saw), and the built-in
// quantisation sample is disjoint from the threshold's split. The full run on a real model is
// test/tools/cli/quantize-byom.slow.ts.
import { readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { builtinDataset } from '../../../src/tools/datasets/builtin.js'
import { models } from '../../../src/tools/cli/models.js'
import { cli } from '../../helpers/cli.js'
import { copyModels, editManifest } from '../../helpers/manifest-copy.js'

const manifest = copyModels()
t.teardown(() => rmSync(path.dirname(manifest), { recursive: true, force: true }))
const before = readFileSync(manifest, 'utf8')
const run = async (...argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> =>
  await cli('models', async () => { await models(['quantize', ...argv, '--manifest', manifest], { LOG_LEVEL: 'silent' }) })

t.test('refusals: one line, exit code 2, nothing written', async (t) => {
  const src = 'fashion-mnist-isomaxplus-md'
  const cases: Array<[string, string[], RegExp]> = [
    ['no model', ['--calibration-images', 'fashion-mnist:train-sample'], /missing NAME, the model to quantise/],
    ['no calibration images', [src], /missing --calibration-images/],
    ['unknown model', ['nope', '--calibration-images', 'fashion-mnist:train-sample'], /model "nope" is not in .*manifest\.json \(it has: /],
    ['name taken', [src, '--as', 'fashion-mnist-isomax', '--calibration-images', 'fashion-mnist:train-sample'], /model "fashion-mnist-isomax" is already in .*: pass --force to replace it, or choose another --as/],
    ['its own name', [src, '--as', src, '--calibration-images', 'fashion-mnist:train-sample'], /--as fashion-mnist-isomaxplus-md: that is the model being quantised/],
    ['bad --first-conv', [src, '--first-conv', 'maybe', '--calibration-images', 'fashion-mnist:train-sample'], /--first-conv maybe: expected auto, int8 or float/],
    ['bad --count', [src, '--count', '0', '--calibration-images', 'fashion-mnist:train-sample'], /--count 0: expected an integer from 1 to 100000/],
    ['missing data', [src, '--as', 'x-int8', '--calibration-images', '/no/such/images'], /\/no\/such\/images: no such file or directory, and not a built-in set/],
    // The default's OOD threshold comes from fashion-mnist:val-fit, its confidence threshold from
    // fashion-mnist:val-risk (the two halves of fashion-mnist:val): neither may share an image
    // with the quantisation images.
    ['overlap', [src, '--as', 'x-int8', '--calibration-images', 'fashion-mnist:val', '--count', '200'],
      /--calibration-images fashion-mnist:val and --calibrate fashion-mnist:val-fit share \d+ images: the thresholds must be calibrated on images the quantisation ranges never saw/],
    ['overlap with the confidence threshold\'s images', [src, '--as', 'x-int8', '--calibration-images', 'fashion-mnist:val-risk', '--count', '200'],
      /--calibration-images fashion-mnist:val-risk and the confidence threshold's fashion-mnist:val-risk share 200 images: the thresholds must be calibrated on images the quantisation ranges never saw/]
  ]
  for (const [what, argv, message] of cases) {
    const r = await run(...argv)
    t.equal(r.code, 2, `${what}: exit code 2`)
    t.match(r.stderr, new RegExp(`^models: error: ${message.source}`), `${what}: ${r.stderr.trim()}`)
  }
  t.equal(readFileSync(manifest, 'utf8'), before, 'the manifest is unchanged')
})

t.test('a model calibrated on a folder needs --calibrate: its threshold data is not a built-in set', async (t) => {
  editManifest(manifest, (m) => { m.models.find((e: { name: string }) => e.name === 'fashion-mnist-isomax').ood.calibration.data = 'calibration: 250 images in /some/folder' })
  const r = await run('fashion-mnist-isomax', '--calibration-images', 'fashion-mnist:train-sample')
  t.equal(r.code, 2)
  t.match(r.stderr, /--calibrate: "fashion-mnist-isomax" was calibrated on "calibration: 250 images in \/some\/folder", not a built-in set; name the held-out images for the threshold/)
})

t.test('fashion-mnist:train-sample: 1,000 labelled training images, none of them in fashion-mnist:val', async (t) => {
  const key = (pixels: Uint8Array): string => Buffer.from(pixels).toString('base64')
  const sample = (await builtinDataset('fashion-mnist:train-sample'))!
  const val = (await builtinDataset('fashion-mnist:val'))!
  t.equal(sample.size, 1000)
  const names = new Set<string>()
  const seen = new Set<string>()
  for await (const s of sample.samples()) {
    names.add(s.name)
    seen.add(key((s.image as { pixels: Uint8Array }).pixels))
    t.ok(s.labelIndex !== undefined && s.labelIndex >= 0 && s.labelIndex < 10)
  }
  t.equal(names.size, 1000, '1,000 different training images')
  let shared = 0
  for await (const s of val.samples()) if (seen.has(key((s.image as { pixels: Uint8Array }).pixels))) shared++
  t.equal(shared, 0, 'no image of the threshold split')
  t.match(sample.description, /^fashion-mnist:train-sample: 1000 Fashion-MNIST training images outside the held-out split/)
})
