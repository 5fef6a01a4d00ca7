// ?include=input: the image as the model saw it, read back from the input tensor — exact for
// every level, a PNG whose pixels give the tensor again, on the fast path and through sharp.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import sharp from 'sharp'
import t from 'tap'
import { inputImageDataUrl, tensorToPixels } from '../../src/preprocess/input-image.js'
import { preprocess, type PreprocessLimits } from '../../src/preprocess/preprocess.js'
import { hwcToNormalizedChw } from '../../src/preprocess/to-tensor.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { buildOver } from '../helpers/build.js'
import { MANIFEST, REPO } from '../helpers/data.js'
import { fixturePng } from '../helpers/images.js'

const spec = (await loadManifest(MANIFEST)).models.get('fashion-mnist-isomaxplus')!.input
const limits: PreprocessLimits = { maxInputPixels: 40_000_000 }

async function pixelsOf (dataUrl: string): Promise<{ data: Buffer, info: { width: number, height: number, channels: number } }> {
  t.match(dataUrl, /^data:image\/png;base64,/)
  const png = Buffer.from(dataUrl.split(',')[1]!, 'base64')
  // What the PNG holds (sharp's raw output would be sRGB, three bands, whatever the file).
  const { channels } = await sharp(png).metadata()
  const { data, info } = await sharp(png).toColourspace(channels === 1 ? 'b-w' : 'srgb').raw().toBuffer({ resolveWithObject: true })
  return { data, info: { ...info, channels } }
}

t.test('every 8-bit level survives the round trip, grey and RGB', async (t) => {
  const levels = Uint8Array.from({ length: 256 }, (_, i) => i)
  t.same(tensorToPixels(hwcToNormalizedChw(levels, 16, 16, 1, spec.mean, spec.std), { ...spec, height: 16, width: 16 }), levels)
  const rgb = Uint8Array.from({ length: 256 * 3 }, (_, i) => (i * 7 + (i % 3) * 85) % 256)
  const rgbSpec = { channels: 3 as const, height: 16, width: 16, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }
  t.same(tensorToPixels(hwcToNormalizedChw(rgb, 16, 16, 3, rgbSpec.mean, rgbSpec.std), rgbSpec), rgb)
  t.throws(() => tensorToPixels(new Float32Array(10), spec), RangeError, 'a tensor of the wrong size')
})

t.test('an RGB model\'s input is an RGB PNG; values past the 8-bit range are clamped', async (t) => {
  const rgbSpec = { channels: 3 as const, height: 2, width: 2, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }
  const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
  const { data, info } = await pixelsOf(await inputImageDataUrl(hwcToNormalizedChw(rgb, 2, 2, 3, rgbSpec.mean, rgbSpec.std), rgbSpec))
  t.same([info.width, info.height, info.channels], [2, 2, 3])
  t.same(data, Buffer.from(rgb))
  // A tensor a client made itself (the v2 protocol takes raw tensors) may hold any value.
  t.same(tensorToPixels(Float32Array.from([-100, 100, 0, -2]), { channels: 1, height: 2, width: 2, mean: [0.5], std: [0.25] }), Uint8Array.from([0, 255, 128, 0]))
})

t.test('a 28 × 28 fixture (fast path): the PNG holds its very pixels', async (t) => {
  const png = fixturePng(0)
  const { tensor, decoder } = await preprocess(png, spec, limits)
  t.equal(decoder, 'png-fast')
  const { data, info } = await pixelsOf(await inputImageDataUrl(tensor, spec))
  t.same([info.width, info.height, info.channels], [28, 28, 1])
  t.same(data, await sharp(png).toColourspace('b-w').raw().toBuffer())
})

t.test('a colour photo (sharp: grey, resized): the PNG\'s pixels give the tensor back exactly', async (t) => {
  const photo = readFileSync(path.join(REPO, 'src', 'ui', 'public', 'samples', 'photo-cat.jpg'))
  const { tensor, decoder } = await preprocess(photo, spec, limits)
  t.equal(decoder, 'sharp')
  const { data, info } = await pixelsOf(await inputImageDataUrl(tensor, spec))
  t.same([info.width, info.height, info.channels], [28, 28, 1])
  t.same(hwcToNormalizedChw(data, 28, 28, 1, spec.mean, spec.std), tensor)
})

t.test('POST /classify?include=input adds the data URL; without it there is none', async (t) => {
  const { app } = await buildOver(t)
  const post = async (url: string): Promise<any> => (await app.inject({ method: 'POST', url, payload: fixturePng(2), headers: { 'content-type': 'image/png' } })).json()
  const withInput = await post('/classify?include=input,logits')
  const { data } = await pixelsOf(withInput.input)
  t.same(data, await sharp(fixturePng(2)).toColourspace('b-w').raw().toBuffer())
  t.type(withInput.logits, Array, 'with logits too')
  t.equal((await post('/classify')).input, undefined)
  const bad = await app.inject({ method: 'POST', url: '/classify?include=pixels', payload: fixturePng(2), headers: { 'content-type': 'image/png' } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().error.message, /a comma-separated list of: logits, input/)
})
