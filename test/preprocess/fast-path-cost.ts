// What a fast path costs on the main thread against one sharp call, on typical 28×28 images and
// on the worst inputs the size bound still lets in. Not a test (no pass/fail: the machine is
// shared and noisy); the numbers in docs/performance.md come from it. Run:
//   node --import @tapjs/typescript/import test/preprocess/fast-path-cost.ts
import { performance } from 'node:perf_hooks'
import { deflateSync } from 'node:zlib'
import sharp from 'sharp'
import { fastPathMaxBytes } from '../../src/preprocess/fast-path-limit.js'
import { fastPixels, preprocess } from '../../src/preprocess/preprocess.js'
import type { SupportedFormat } from '../../src/preprocess/sniff.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { fashionTest, MANIFEST } from '../helpers/data.js'
import { chunk, ihdr, SIGNATURE } from '../helpers/png-writer.js'
import { bigAncillaryPng, deepBlocksPng, dhtFloodJpeg, dqtFloodJpeg, emptyStoredBlocksPng, greyJpeg } from './hostile-images.js'
import { segment } from './jpeg-segments.js'

const manifest = await loadManifest(MANIFEST)
const spec = manifest.models.get(manifest.defaultModel)!.input
const limits = { maxInputPixels: 40_000_000 }
const bound = fastPathMaxBytes(spec.width, spec.height)

/** Median µs per call over 25 batches (after a warm-up). */
function fastMicros (bufs: Buffer[], format: SupportedFormat): number {
  const run = (i: number): unknown => fastPixels(bufs[i % bufs.length]!, format, spec, limits)
  for (let i = 0; i < 200; i++) run(i)
  const batches: number[] = []
  for (let b = 0, k = 0; b < 25; b++) {
    const start = performance.now()
    for (let i = 0; i < 40; i++) run(k++)
    batches.push((performance.now() - start) * 1000 / 40)
  }
  return batches.sort((x, y) => x - y)[12]!
}

/** Median µs per sharp call, one image in flight. */
async function sharpMicros (bufs: Buffer[]): Promise<number> {
  const run = async (b: Buffer): Promise<unknown> => await preprocess(b, spec, { ...limits, fastPath: false }).catch(() => null)
  for (const b of bufs.slice(0, 20)) await run(b)
  const batches: number[] = []
  for (let b = 0, k = 0; b < 15; b++) {
    const start = performance.now()
    for (let i = 0; i < 10; i++) await run(bufs[k++ % bufs.length]!)
    batches.push((performance.now() - start) * 100)
  }
  return batches.sort((x, y) => x - y)[7]!
}

/** The largest k for which make(k) is still within the bound and decoded by the fast path. */
async function largest (make: (k: number) => Promise<Buffer> | Buffer, format: SupportedFormat, hi: number): Promise<Buffer> {
  let lo = 0
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (fastPixels(await make(mid), format, spec, limits) !== null) lo = mid
    else hi = mid - 1
  }
  return await make(lo)
}

const grey = (p: Uint8Array): ReturnType<typeof sharp> => sharp(p, { raw: { width: 28, height: 28, channels: 1 } })
const images = (await fashionTest(200)).map((x) => x.pixels)
let s = 5
const noise = Uint8Array.from({ length: 784 }, () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) % 256 })
const jpeg = await greyJpeg()
const at = jpeg[3] === 0xe0 ? 4 + jpeg.readUInt16BE(4) : 2
const comments = (n: number): Buffer => Buffer.concat([jpeg.subarray(0, at), ...Array.from({ length: n }, () => segment(0xfe, Buffer.alloc(20))), jpeg.subarray(at)])
const emptyIdats = (n: number): Buffer => Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(28, 28)), ...Array.from({ length: n }, () => chunk('IDAT')), chunk('IDAT', deflateSync(Buffer.alloc(29 * 28))), chunk('IEND')])

const rows: Array<[string, Buffer[], SupportedFormat]> = [
  ['PNG grey, Fashion-MNIST (200)', await Promise.all(images.map(async (p) => await grey(p).toColourspace('b-w').png().toBuffer())), 'png'],
  ['PNG RGB as sharp writes it, Fashion-MNIST (200)', await Promise.all(images.map(async (p) => await grey(p).png().toBuffer())), 'png'],
  ['JPEG grey q90, Fashion-MNIST (200)', await Promise.all(images.map(async (p) => await grey(p).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer())), 'jpeg'],
  ['JPEG YCbCr 4:2:0 q90, Fashion-MNIST (200)', await Promise.all(images.map(async (p) => await grey(p).jpeg({ quality: 90 }).toBuffer())), 'jpeg'],
  ['PNG real maximum: noise, RGB, stored', [await grey(noise).png({ compressionLevel: 0 }).toBuffer()], 'png'],
  ['JPEG real maximum: noise, 4:4:4 q100, standard tables', [await grey(noise).jpeg({ quality: 100, chromaSubsampling: '4:4:4', optimiseCoding: false }).toBuffer()], 'jpeg'],
  ['PNG hostile: 15-bit dynamic deflate blocks, grey', [await largest((k) => deepBlocksPng(k), 'png', 400)], 'png'],
  ['PNG hostile: 15-bit dynamic deflate blocks, RGB', [await largest((k) => deepBlocksPng(k, 3), 'png', 400)], 'png'],
  ['PNG hostile: empty stored deflate blocks', [await largest(emptyStoredBlocksPng, 'png', 2000)], 'png'],
  ['PNG hostile: empty IDAT chunks', [await largest(emptyIdats, 'png', 1000)], 'png'],
  ['PNG hostile: a tEXt chunk up to the bound (refused after its CRC)', [bigAncillaryPng(bound - 500)], 'png'],
  ['JPEG hostile: 256-symbol Huffman tables', [await largest(dhtFloodJpeg, 'jpeg', bound)], 'jpeg'],
  ['JPEG hostile: quantisation tables', [await largest(dqtFloodJpeg, 'jpeg', bound)], 'jpeg'],
  ['JPEG hostile: comments', [await largest(comments, 'jpeg', bound)], 'jpeg']
]

console.log(`size bound ${bound} bytes; µs per image, median of batches; sharp with one image in flight\n`)
console.log('| input | bytes | decoded by | fast path µs | sharp µs | fast / sharp |')
console.log('| --- | ---: | --- | ---: | ---: | ---: |')
for (const [name, bufs, format] of rows) {
  const bytes = Math.round(bufs.reduce((a, b) => a + b.length, 0) / bufs.length)
  const decoder = fastPixels(bufs[0]!, format, spec, limits)?.decoder ?? 'sharp'
  const fast = fastMicros(bufs, format)
  const slow = await sharpMicros(bufs)
  console.log(`| ${name} | ${bytes} | ${decoder} | ${fast.toFixed(1)} | ${slow.toFixed(0)} | ${(fast / slow).toFixed(3)} |`)
}
