// Differential fuzz of the main-thread fast paths against sharp. Seeded and bounded, so CI runs
// the same few thousand cases every time in a few seconds: real images (the Fashion-MNIST
// fixtures, as PNG and as JPEG at several qualities, grey and YCbCr) mutated blindly and with
// knowledge of their structure. The rule checked is the fast paths' contract: whatever a fast
// path decodes, sharp decodes to the same tensor bit for bit; whatever it leaves (null), sharp
// decides. A fast path accepting what sharp refuses, or decoding it differently, is a failure.
// FUZZ_SEED and FUZZ_CASES replay or widen a run; a failure prints the input as base64.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import sharp from 'sharp'
import t from 'tap'
import { fastPixels, preprocess } from '../../src/preprocess/preprocess.js'
import { sniffImage } from '../../src/preprocess/sniff.js'
import { hwcToNormalizedChw } from '../../src/preprocess/to-tensor.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { MANIFEST, REPO } from '../helpers/data.js'
import { golden } from '../helpers/images.js'
import { chunk, writePng } from '../helpers/png-writer.js'
import { rng } from './fuzz-random.js'
import { mutateJpeg } from './jpeg-mutations.js'
import { mutatePng } from './png-mutations.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20250101)
const CASES = Number(process.env.FUZZ_CASES ?? 6000)
const manifest = await loadManifest(MANIFEST)
const spec = manifest.models.get(manifest.defaultModel)!.input
const limits = { maxInputPixels: 40_000_000 }

const dir = path.join(REPO, 'test', 'fixtures', 'fashion')
const fixtures = golden.images.map((g) => readFileSync(path.join(dir, g.file)))
const pixelsOf = async (png: Buffer): Promise<Uint8Array> => await sharp(png).greyscale().raw().toBuffer()
const grey = (p: Uint8Array): ReturnType<typeof sharp> => sharp(p, { raw: { width: 28, height: 28, channels: 1 } })
const rgbOf = (p: Uint8Array): Uint8Array => { const o = new Uint8Array(p.length * 3); p.forEach((v, i) => o.fill(v, 3 * i, 3 * i + 3)); return o }
const pHYs = chunk('pHYs', Buffer.from([0, 0, 0x0b, 0x13, 0, 0, 0x0b, 0x13, 1]))

async function bases (): Promise<{ png: Buffer[], jpeg: Buffer[] }> {
  const png: Buffer[] = []
  const jpeg: Buffer[] = []
  for (const [i, file] of fixtures.entries()) {
    const p = await pixelsOf(file)
    png.push(file, await grey(p).png().toBuffer(), writePng(p, { filter: i % 5 }), writePng(rgbOf(p), { channels: 3, filter: (y) => y % 5 }), writePng(p, { filter: 4, idatChunks: 3, before: [pHYs] }))
    for (const quality of [50, 75, 90, 100]) {
      jpeg.push(
        await grey(p).toColourspace('b-w').jpeg({ quality }).toBuffer(),
        await grey(p).toColourspace('b-w').jpeg({ quality, optimiseCoding: false }).toBuffer(),
        await grey(p).jpeg({ quality }).toBuffer(),
        await grey(p).jpeg({ quality, chromaSubsampling: '4:4:4', optimiseCoding: false }).toBuffer()
      )
    }
  }
  return { png, jpeg }
}

async function sharpTensor (buf: Uint8Array): Promise<Float32Array | string> {
  try {
    return (await preprocess(buf, spec, { ...limits, fastPath: false })).tensor
  } catch (err) {
    return (err as Error).message
  }
}

t.test('fast paths vs sharp on mutated real images', async (t) => {
  const started = Date.now()
  const { png, jpeg } = await bases()
  // Every base image is one the fast paths take: the mutations start from the accepted set.
  for (const buf of [...png, ...jpeg]) {
    const format = sniffImage(buf)
    if (format.kind !== 'supported' || fastPixels(buf, format.format, spec, limits) === null) t.fail('a base image is not on the fast path')
  }
  const r = rng(SEED)
  const counts = { png: { accepted: 0, deferred: 0 }, jpeg: { accepted: 0, deferred: 0 } }
  const failures: string[] = []
  for (let i = 0; i < CASES; i++) {
    const kind = i % 2 === 0 ? 'png' : 'jpeg'
    const base = r.pick(kind === 'png' ? png : jpeg)
    const { buf, steps } = kind === 'png' ? mutatePng(base, r) : mutateJpeg(base, r)
    const sniffed = sniffImage(buf)
    const fast = sniffed.kind === 'supported' ? fastPixels(buf, sniffed.format, spec, limits) : null
    if (fast === null) {
      counts[kind].deferred++
      continue
    }
    counts[kind].accepted++
    const reference = await sharpTensor(buf)
    const tensor = hwcToNormalizedChw(fast.pixels, spec.width, spec.height, 1, spec.mean, spec.std)
    const problem = typeof reference === 'string'
      ? `${fast.decoder} accepted what sharp refuses (${reference})`
      : reference.every((v, j) => Object.is(v, tensor[j])) ? null : `${fast.decoder} and sharp decode it differently`
    if (problem !== null) failures.push(`case ${i} (seed ${SEED}), ${kind}: ${problem}; ${steps.join(' → ')}; ${buf.toString('base64')}`)
  }
  for (const f of failures.slice(0, 10)) t.fail(f)
  const accepted = counts.png.accepted + counts.jpeg.accepted
  const deferred = counts.png.deferred + counts.jpeg.deferred
  t.comment(`differential fuzz: ${CASES} cases, ${accepted} fast-accepted (${failures.length === 0 ? 'all equal to sharp' : `${accepted - failures.length} equal to sharp`}), ${deferred} deferred to sharp, ${failures.length} disagreements (seed ${SEED}, ${((Date.now() - started) / 1000).toFixed(1)} s)`)
  t.comment(`differential fuzz by format: ${JSON.stringify(counts)}`)
  t.equal(failures.length, 0, 'no disagreements')
})
