// The service's preprocessing must reproduce the training transform (training/train.py
// to_tensor) on real Fashion-MNIST test images: tensors made by Python, PNGs made by Python.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { preprocess } from '../../src/preprocess/preprocess.js'
import { hwcToNormalizedChw } from '../../src/preprocess/to-tensor.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { MANIFEST, REPO } from '../helpers/data.js'

const dir = path.join(REPO, 'test', 'fixtures', 'fashion')
const golden = JSON.parse(readFileSync(path.join(dir, 'golden.json'), 'utf8')) as { images: Array<{ file: string, tensor: number[] }> }

t.test('preprocess(PNG) equals the training transform within 1e-3', async (t) => {
  const manifest = await loadManifest(MANIFEST)
  const spec = manifest.models.get(manifest.defaultModel)!.input
  t.ok(golden.images.length >= 16)
  let worst = 0
  for (const g of golden.images) {
    const { tensor } = await preprocess(readFileSync(path.join(dir, g.file)), spec, { maxInputPixels: 1e6 })
    t.equal(tensor.length, g.tensor.length)
    for (let i = 0; i < tensor.length; i++) worst = Math.max(worst, Math.abs(tensor[i]! - g.tensor[i]!))
  }
  t.comment(`max |Δ| over ${golden.images.length} images: ${worst.toExponential(2)}`)
  t.ok(worst <= 1e-3, `max |Δ| ${worst} ≤ 1e-3`)
})

t.test('hwcToNormalizedChw de-interleaves channels and normalises each', async (t) => {
  const pixels = Uint8Array.from([0, 255, 51, 255, 0, 102]) // 2 pixels × RGB
  const out = hwcToNormalizedChw(pixels, 2, 1, 3, [0, 0.5, 0], [1, 0.5, 0.2])
  const expected = [0, 1, 1, -1, 1, 2] // R: 0, 1 · G: (1 − .5)/.5, (0 − .5)/.5 · B: .2/.2, .4/.2
  for (let i = 0; i < 6; i++) t.ok(Math.abs(out[i]! - expected[i]!) < 1e-6, `${out[i]} ≈ ${expected[i]}`)
})

t.test('EXIF orientation is applied before the model sees the image', async (t) => {
  const manifest = await loadManifest(MANIFEST)
  const spec = manifest.models.get(manifest.defaultModel)!.input
  const upright = readFileSync(path.join(dir, golden.images[0]!.file))
  // Store the image rotated 90° anticlockwise with orientation 6 ("rotate 90° clockwise to view").
  const sharp = (await import('sharp')).default
  const stored = await sharp(upright).rotate(-90).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer()
  const a = (await preprocess(upright, spec, { maxInputPixels: 1e6 })).tensor
  const b = (await preprocess(stored, spec, { maxInputPixels: 1e6 })).tensor
  let diff = 0
  for (let i = 0; i < a.length; i++) diff += Math.abs(a[i]! - b[i]!)
  const rotatedAway = (await preprocess(await sharp(upright).rotate(-90).png().toBuffer(), spec, { maxInputPixels: 1e6 })).tensor
  let diffRotated = 0
  for (let i = 0; i < a.length; i++) diffRotated += Math.abs(a[i]! - rotatedAway[i]!)
  t.ok(diff / a.length < 0.05, `auto-oriented JPEG ≈ upright PNG (mean |Δ| ${(diff / a.length).toFixed(4)}, JPEG loss only)`)
  t.ok(diffRotated / a.length > 5 * diff / a.length, `without the tag the image differs (mean |Δ| ${(diffRotated / a.length).toFixed(4)})`)
})
