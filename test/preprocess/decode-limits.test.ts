// Decoding is bounded by what it costs in memory (issue 9, defect 6): an image whose decoded
// size (width × height × channels × bytes per sample, read from its header) is over
// MAX_DECODE_BYTES is refused before sharp allocates a pixel; decodes in flight share
// DECODE_MEMORY_BYTES and DECODE_CONCURRENCY, waiting their turn; the wait is bounded.
import sharp from 'sharp'
import t from 'tap'
import { DecodeBudget, decodeMemory } from '../../src/preprocess/decode-budget.js'
import { preprocess, type PreprocessLimits } from '../../src/preprocess/preprocess.js'
import type { InputSpec } from '../../src/registry/manifest-schema.js'
import { buildOver } from '../helpers/build.js'

const spec: InputSpec = { name: 'input', layout: 'NCHW', channels: 1, height: 28, width: 28, mean: [0.5], std: [0.5], fit: 'fill', colour: 'grey' }
const MiB = 1024 * 1024

/** A flat RGBA image, 8- or 16-bit, interlaced: tiny on the wire, width × height × 4 × bytes decoded. */
async function flatPng (width: number, height: number, bits: 8 | 16): Promise<Buffer> {
  let img = sharp({ create: { width, height, channels: 4, background: { r: 200, g: 100, b: 50, alpha: 1 } } })
  if (bits === 16) img = img.toColourspace('rgb16')
  return await img.png({ progressive: true, compressionLevel: 9 }).toBuffer()
}

t.test('over MAX_DECODE_BYTES: 413 from the header, naming the size and the variable', async (t) => {
  const png = await flatPng(1000, 1000, 16) // 8,000,000 bytes decoded
  t.ok(png.length < 100_000, `${png.length} bytes on the wire`)
  const limits: PreprocessLimits = { maxInputPixels: 40_000_000, maxDecodeBytes: 4 * MiB }
  await t.rejects(preprocess(png, spec, limits), {
    code: 'ISOMAX_PIXEL_LIMIT_EXCEEDED',
    statusCode: 413,
    message: /image decodes to 7\.6 MiB \(1000×1000, 4 channels of ushort\), more than 4194304 bytes \(MAX_DECODE_BYTES\)/
  })
  const ok = await preprocess(await flatPng(1000, 1000, 8), spec, limits)
  t.equal(ok.tensor.length, 784, 'the same image in 8 bits (4 MB decoded) is within the limit')
})

t.test('decodes share the budget: past it they wait, then all finish with the right tensors', async (t) => {
  const png = await flatPng(600, 600, 8) // 1.44 MB decoded
  const budget = new DecodeBudget(decodeMemory(600 * 600 * 4) + 1, 4) // room for one at a time
  const limits: PreprocessLimits = { maxInputPixels: 40_000_000, decodeBudget: budget, decodeWaitMs: 30_000 }
  const alone = await preprocess(png, spec, { maxInputPixels: 40_000_000 })
  let peak = 0
  const sample = setInterval(() => { peak = Math.max(peak, budget.active) }, 1)
  const results = await Promise.all([0, 1, 2].map(async () => await preprocess(png, spec, limits)))
  clearInterval(sample)
  t.ok(peak <= 1, `never more than one decode of that size at once (peak ${peak})`)
  for (const r of results) t.same([...r.tensor], [...alone.tensor])
  t.equal(budget.inUse, 0, 'all memory given back')
  t.equal(budget.queued, 0)
})

t.test('a decode that cannot get memory within decodeWaitMs: 503 ISOMAX_DEADLINE_EXCEEDED', async (t) => {
  const png = await flatPng(600, 600, 8)
  const budget = new DecodeBudget(decodeMemory(600 * 600 * 4) + 1, 4)
  const hold = await budget.acquire(budget.capacity, 1000) // all of it, held by someone else
  await t.rejects(preprocess(png, spec, { maxInputPixels: 40_000_000, decodeBudget: budget, decodeWaitMs: 50 }), { code: 'ISOMAX_DEADLINE_EXCEEDED', statusCode: 503 })
  hold()
  const after = await preprocess(png, spec, { maxInputPixels: 40_000_000, decodeBudget: budget, decodeWaitMs: 50 })
  t.equal(after.tensor.length, 784)
})

t.test('over HTTP: MAX_DECODE_BYTES is a 413 in the catalogue', async (t) => {
  const { app } = await buildOver(t, { env: { MAX_DECODE_BYTES: String(4 * MiB), DECODE_MEMORY_BYTES: String(64 * MiB) } })
  const res = await app.inject({ method: 'POST', url: '/classify', payload: await flatPng(1000, 1000, 16), headers: { 'content-type': 'image/png' } })
  t.equal(res.statusCode, 413)
  t.equal(res.json().error.code, 'ISOMAX_PIXEL_LIMIT_EXCEEDED')
  t.match(res.json().error.message, /MAX_DECODE_BYTES/)
})
