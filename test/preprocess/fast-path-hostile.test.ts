// Regressions from the adversarial review of the main-thread fast paths: inputs that kept the
// event loop busy for tens to hundreds of milliseconds, and inputs the fast paths accepted
// where sharp refuses. Each must now go to sharp, unscanned or deferred, with sharp's verdict.
import { performance } from 'node:perf_hooks'
import sharp from 'sharp'
import t, { type Test } from 'tap'
import { decodeGreyJpeg } from '../../src/preprocess/jpeg-fast.js'
import { decodeGreyPng } from '../../src/preprocess/png-fast.js'
import { fastPixels, preprocess, type Preprocessed } from '../../src/preprocess/preprocess.js'
import type { SupportedFormat } from '../../src/preprocess/sniff.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { fashionTest, MANIFEST } from '../helpers/data.js'
import { allOnesCodeJpeg, bigAncillaryPng, dcSymbolOver15Jpeg, deepBlocksPng, dhtFloodJpeg, dqtFloodJpeg, emptyStoredBlocksPng, smallWindowPng } from './hostile-images.js'

const manifest = await loadManifest(MANIFEST)
const spec = manifest.models.get(manifest.defaultModel)!.input
const limits = { maxInputPixels: 40_000_000 }
const MiB = 1024 * 1024

type Outcome = { ok: true, value: Preprocessed } | { ok: false, message: string }

async function outcome (buf: Uint8Array, fastPath: boolean): Promise<Outcome> {
  try {
    return { ok: true, value: await preprocess(buf, spec, { ...limits, fastPath }) }
  } catch (err) {
    return { ok: false, message: (err as Error).message }
  }
}

/** preprocess() with the fast paths gives what sharp alone gives: the same tensor or error. */
async function agreesWithSharp (t: Test, buf: Uint8Array, name: string): Promise<Outcome> {
  const fast = await outcome(buf, true)
  const slow = await outcome(buf, false)
  if (fast.ok && slow.ok) t.ok(fast.value.tensor.every((v, i) => Object.is(v, slow.value.tensor[i])), `${name}: same tensor`)
  else if (!fast.ok && !slow.ok) t.equal(fast.message, slow.message, `${name}: same error`)
  else t.fail(`${name}: fast path ${fast.ok ? 'accepted' : 'refused'}, sharp ${slow.ok ? 'accepted' : 'refused'}`)
  return fast
}

/** Fastest of a few calls, in ms: the scan's own cost, not a GC pause or a cold JIT. */
function fastestMs (fn: () => unknown): number {
  let best = Infinity
  for (let i = 0; i < 3; i++) {
    const start = performance.now()
    fn()
    best = Math.min(best, performance.now() - start)
  }
  return best
}

const hostile: Array<[string, () => Promise<Buffer> | Buffer, SupportedFormat]> = [
  ['10 MiB of DHT segments around a valid frame', async () => await dhtFloodJpeg(10 * MiB), 'jpeg'],
  ['10 MiB of DQT segments around a valid frame', async () => await dqtFloodJpeg(10 * MiB), 'jpeg'],
  ['a 10 MiB tEXt chunk', () => bigAncillaryPng(10 * MiB), 'png'],
  ['a 10 MiB pHYs chunk', () => bigAncillaryPng(10 * MiB, 'pHYs'), 'png'],
  ['10 MiB of empty stored deflate blocks', () => emptyStoredBlocksPng(2 * MiB), 'png']
]

for (const [name, make, format] of hostile) {
  t.test(`${name}: straight to sharp, unscanned`, async (t) => {
    const buf = await make()
    const decode = format === 'png' ? decodeGreyPng : decodeGreyJpeg
    t.ok(fastPixels(buf, format, spec, limits) === null, 'fastPixels leaves it to sharp')
    t.ok(decode(buf, spec) === null, 'the decoder itself refuses it too')
    // Before the size bound these took 30–330 ms here; a length check takes microseconds.
    const ms = fastestMs(() => fastPixels(buf, format, spec, limits))
    t.ok(ms < 5, `fastPixels returns in ${ms.toFixed(3)} ms`)
    const got = await agreesWithSharp(t, buf, name)
    t.equal(got.ok ? got.value.decoder : 'error', got.ok ? 'sharp' : 'error', 'decoded by sharp, if at all')
  })
}

t.test('inside the bound, a stream of tiny dynamic deflate blocks costs node:zlib, not fflate', async (t) => {
  // fast-png's own inflater spent ~20 ms on this 2.3 kB image (a 15-bit table per block);
  // png-fast inflates with node:zlib and hands fast-png stored blocks only.
  const png = deepBlocksPng(90, 3)
  t.ok(png.length <= 1024 + 4 * 28 * 28, `${png.length} bytes, within the bound`)
  const ms = fastestMs(() => decodeGreyPng(png, spec))
  t.ok(ms < 5, `decodeGreyPng takes ${ms.toFixed(3)} ms`)
  const got = await agreesWithSharp(t, png, 'deep dynamic blocks')
  t.equal(got.ok ? got.value.decoder : 'error', 'png-fast')
})

t.test('a zlib stream longer than the stored rows would be goes to sharp', async (t) => {
  // 150 empty blocks (3.4 kB) fit the size bound but no encoder pads a stream like that.
  const png = deepBlocksPng(150)
  t.ok(png.length <= 1024 + 4 * 28 * 28, `${png.length} bytes, within the bound`)
  t.ok(decodeGreyPng(png, spec) === null, 'deferred')
  const got = await agreesWithSharp(t, png, 'padded zlib stream')
  t.equal(got.ok ? got.value.decoder : 'error', 'sharp')
})

t.test('real model-size images up to quality 100 stay within the bound and on the fast path', async (t) => {
  let s = 99
  const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) / 4294967296 }
  const images = [
    ...(await fashionTest(60)).map((x) => x.pixels),
    // Noise and hard edges: the most entropy-coded bytes a 28×28 image can have.
    ...Array.from({ length: 20 }, (_, i) => Uint8Array.from({ length: 784 }, () => i % 2 === 0 ? Math.floor(rnd() * 256) : rnd() < 0.5 ? 0 : 255))
  ]
  let largest = 0
  let checked = 0
  for (const pixels of images) {
    const grey = (): ReturnType<typeof sharp> => sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
    const variants: Array<[Buffer, string]> = [
      [await grey().png({ compressionLevel: 0 }).toBuffer(), 'png-fast'], // RGB, stored: the largest PNG
      [await grey().toColourspace('b-w').png().toBuffer(), 'png-fast'],
      [await grey().toColourspace('b-w').jpeg({ quality: 100, optimiseCoding: false }).toBuffer(), 'jpeg-fast'],
      [await grey().jpeg({ quality: 100, chromaSubsampling: '4:4:4', optimiseCoding: false }).toBuffer(), 'jpeg-fast'],
      [await grey().jpeg({ quality: 100 }).toBuffer(), 'jpeg-fast']
    ]
    for (const [buf, decoder] of variants) {
      largest = Math.max(largest, buf.length)
      const got = await outcome(buf, true)
      if (!got.ok || got.value.decoder !== decoder) t.fail(`${buf.length} bytes: ${got.ok ? got.value.decoder : got.message}, expected ${decoder}`)
      checked++
    }
  }
  t.pass(`${checked} images, the largest ${largest} bytes, all on the fast path`)
})

const refused: Array<[string, () => Promise<Buffer> | Buffer, SupportedFormat]> = [
  ['a Huffman table whose last code is all ones', allOnesCodeJpeg, 'jpeg'],
  ['a DC Huffman table with a symbol above 15', async () => await dcSymbolOver15Jpeg(16), 'jpeg'],
  ['a DC Huffman table with symbol 255', async () => await dcSymbolOver15Jpeg(255), 'jpeg'],
  ['a zlib header with a 256-byte window and 406-byte distances', () => smallWindowPng(0), 'png']
]

for (const [name, make, format] of refused) {
  t.test(`sharp refuses ${name}: so does the fast path`, async (t) => {
    const buf = await make()
    const slow = await outcome(buf, false)
    t.notOk(slow.ok, `sharp refuses it${slow.ok ? '' : `: ${slow.message}`}`)
    t.ok(fastPixels(buf, format, spec, limits) === null, 'the fast path defers to sharp')
    await agreesWithSharp(t, buf, name)
  })
}

// The other side of those checks: what sharp accepts must still work, on either path.
const accepted: Array<[string, () => Promise<Buffer> | Buffer]> = [
  ['a DC Huffman table with symbol 15', async () => await dcSymbolOver15Jpeg(15)],
  ...[1, 2, 7].map((cinfo): [string, () => Buffer] => [`a zlib header with a ${2 ** (cinfo + 8)}-byte window`, () => smallWindowPng(cinfo)])
]

for (const [name, make] of accepted) {
  t.test(`sharp accepts ${name}: the same tensor either way`, async (t) => {
    const got = await agreesWithSharp(t, await make(), name)
    t.ok(got.ok, 'accepted')
  })
}
