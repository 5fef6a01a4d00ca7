// The preprocessing contract (docs/preprocessing.md), checked against its Python reference:
// training/preprocess_reference.py, run on the repository's fixtures and on images made here
// with sharp (every case the document lists), must give the service's tensors bit for bit,
// resized or not, with and without the fast paths. The few documented exceptions are checked
// against the bound the document states, so its figures cannot go stale.
// Everything runs twice: with SIMD as the CPU offers it, and with numpy's SIMD dispatch and
// libvips' vector paths turned off. A result that depends on the CPU (numpy's own float32 pow
// on AVX-512 once did) then shows up as a difference on any machine that has the features.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import sharp, { type Sharp } from 'sharp'
import t from 'tap'
import { preprocess } from '../../src/preprocess/preprocess.js'
import type { InputSpec } from '../../src/registry/manifest-schema.js'
import { REPO } from '../helpers/data.js'

const PYTHON = '/usr/bin/python3'
const REFERENCE = path.join(REPO, 'training', 'preprocess_reference.py')
const LIMITS = { maxInputPixels: 40_000_000 }
// docs/preprocessing.md: a CMYK JPEG with an embedded profile is the one image the reference
// only approximates (lcms 2.14 and sharp's own lcms convert CLUT profiles differently); the
// largest difference measured, in pixel levels.
const CMYK_MAX_LEVELS = 24

type Fit = InputSpec['fit']

function grey (height: number, width: number, fit: Fit = 'fill'): InputSpec {
  return { name: 'input', layout: 'NCHW', channels: 1, height, width, mean: [0.286], std: [0.353], fit, colour: 'grey' }
}

function rgb (height: number, width: number, fit: Fit = 'fill'): InputSpec {
  return { name: 'input', layout: 'NCHW', channels: 3, height, width, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], fit, colour: 'rgb' }
}

/** Both kinds of model, at the (displayed) size of the image: no resize. */
const native = (height: number, width: number): InputSpec[] => [grey(height, width), rgb(height, width)]

interface Case {
  name: string
  bytes: Buffer
  specs: InputSpec[]
  /** Largest allowed difference in pixel levels; absent: the tensors must be identical. */
  within?: number
}

/** A photo stand-in: shading, hard edges and noise (seeded), 8-bit RGB or RGBA. */
function photo (width: number, height: number, seed: number, channels: 3 | 4 = 3): Buffer {
  let s = seed
  const noise = (): number => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 - 0.5 }
  const px = Buffer.alloc(width * height * channels)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels
      const edge = ((x >> 4) + (y >> 3)) & 1
      px[i] = 128 + 100 * Math.sin(x / 9 + seed) + 30 * noise()
      px[i + 1] = (y * 230) / height + 40 * edge + 20 * noise()
      px[i + 2] = ((x + y) * 255) / (width + height) + 25 * noise()
      if (channels === 4) px[i + 3] = (x * 7 + y * 13 + 64 * edge) & 255
    }
  }
  return px
}

const image = (px: Buffer, width: number, height: number, channels: 3 | 4 = 3): Sharp =>
  sharp(px, { raw: { width, height, channels } })

/** 16-bit samples with content in the low byte too (not just v * 257). */
function deep (width: number, height: number, channels: 1 | 3 | 4): Sharp {
  const v = new Uint16Array(width * height * channels).map((_, i) => (i * 40503 + (i >> 5) * 977) & 0xffff)
  return sharp(v, { raw: { width, height, channels } })
}

/** Images at the model's size: decode, alpha, colour and orientation, nothing resized. */
async function nativeCases (): Promise<Case[]> {
  const [w, h] = [40, 30]
  const rgbPx = photo(w, h, 1)
  const rgbaPx = photo(w, h, 2, 4)
  const cases: Case[] = [
    { name: 'PNG grey', bytes: await image(rgbPx, w, h).toColourspace('b-w').png().toBuffer(), specs: native(h, w) },
    { name: 'PNG RGB', bytes: await image(rgbPx, w, h).png().toBuffer(), specs: native(h, w) },
    { name: 'PNG RGBA', bytes: await image(rgbaPx, w, h, 4).png().toBuffer(), specs: native(h, w) },
    { name: 'PNG grey + alpha', bytes: await image(rgbaPx, w, h, 4).toColourspace('b-w').png().toBuffer(), specs: native(h, w) },
    { name: 'PNG palette', bytes: await image(rgbPx, w, h).png({ palette: true, colours: 64 }).toBuffer(), specs: native(h, w) },
    { name: 'PNG palette + transparency', bytes: await image(rgbaPx, w, h, 4).png({ palette: true }).toBuffer(), specs: native(h, w) },
    { name: 'PNG 16-bit RGB', bytes: await deep(w, h, 3).toColourspace('rgb16').png().toBuffer(), specs: native(h, w) },
    { name: 'PNG 16-bit grey', bytes: await deep(w, h, 1).toColourspace('grey16').png().toBuffer(), specs: native(h, w) },
    { name: 'PNG 16-bit RGBA, interlaced', bytes: await deep(w, h, 4).toColourspace('rgb16').png({ progressive: true }).toBuffer(), specs: native(h, w) },
    { name: 'JPEG 4:2:0', bytes: await image(rgbPx, w, h).jpeg({ quality: 90 }).toBuffer(), specs: native(h, w) },
    { name: 'JPEG 4:4:4', bytes: await image(rgbPx, w, h).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer(), specs: native(h, w) },
    { name: 'JPEG progressive', bytes: await image(rgbPx, w, h).jpeg({ quality: 75, progressive: true }).toBuffer(), specs: native(h, w) },
    { name: 'JPEG grey', bytes: await image(rgbPx, w, h).toColourspace('b-w').jpeg().toBuffer(), specs: native(h, w) },
    { name: 'JPEG mozjpeg', bytes: await image(rgbPx, w, h).jpeg({ mozjpeg: true }).toBuffer(), specs: native(h, w) },
    { name: 'WebP lossless', bytes: await image(rgbPx, w, h).webp({ lossless: true }).toBuffer(), specs: native(h, w) },
    { name: 'WebP lossless + alpha', bytes: await image(rgbaPx, w, h, 4).webp({ lossless: true }).toBuffer(), specs: native(h, w) },
    { name: 'WebP lossy', bytes: await image(rgbPx, w, h).webp({ quality: 80 }).toBuffer(), specs: native(h, w) },
    { name: 'WebP lossy + alpha', bytes: await image(rgbaPx, w, h, 4).webp({ quality: 80 }).toBuffer(), specs: native(h, w) },
    { name: 'JPEG, Display P3 profile', bytes: await image(rgbPx, w, h).withIccProfile('p3').jpeg().toBuffer(), specs: native(h, w) },
    { name: 'PNG RGBA, Display P3 profile', bytes: await image(rgbaPx, w, h, 4).withIccProfile('p3').png().toBuffer(), specs: native(h, w) },
    { name: 'PNG 16-bit, sRGB profile', bytes: await deep(w, h, 3).toColourspace('rgb16').withIccProfile('srgb').png().toBuffer(), specs: native(h, w) },
    { name: 'JPEG CMYK, CMYK profile', bytes: await image(rgbPx, w, h).toColourspace('cmyk').withIccProfile('cmyk').jpeg().toBuffer(), specs: native(h, w), within: CMYK_MAX_LEVELS }
  ]
  cases.push(...await exhaustiveCases())
  // EXIF orientation 1-8: stored so that the displayed image is at the model's size.
  for (let o = 1; o <= 8; o++) {
    const [sw, sh] = o >= 5 ? [h, w] : [w, h]
    const stored = image(photo(sw, sh, 10 + o), sw, sh)
    cases.push({ name: `JPEG, EXIF orientation ${o}`, bytes: await stored.jpeg().withMetadata({ orientation: o }).toBuffer(), specs: native(h, w) })
  }
  cases.push({ name: 'PNG, EXIF orientation 6', bytes: await image(photo(h, w, 20), h, w).png().withMetadata({ orientation: 6 }).toBuffer(), specs: native(h, w) })
  cases.push({ name: 'WebP, EXIF orientation 3', bytes: await image(rgbPx, w, h).webp({ lossless: true }).withMetadata({ orientation: 3 }).toBuffer(), specs: native(h, w) })
  return cases
}

/** The formulas in full: flatten over every (value, alpha) pair, 16-bit grey over every level,
 *  greyscale over every (R, G) pair with 64 B values each (all 256 B values overall). */
async function exhaustiveCases (): Promise<Case[]> {
  const pairs = Buffer.alloc(256 * 256 * 4)
  for (let a = 0; a < 256; a++) {
    for (let v = 0; v < 256; v++) pairs.set([v, 255 - v, (v * 7) & 255, a], (a * 256 + v) * 4)
  }
  const greyPairs = Buffer.alloc(256 * 256 * 4)
  for (let i = 0; i < 256 * 256; i++) greyPairs.set([i & 255, i & 255, i & 255, i >> 8], i * 4)
  const levels = new Uint16Array(256 * 256).map((_, i) => i)
  const colours = Buffer.alloc(2048 * 2048 * 3)
  for (let i = 0; i < 2048 * 2048; i++) {
    const [r, g] = [i & 255, (i >> 8) & 255]
    colours.set([r, g, ((i >> 16) << 2) | ((r + g) & 3)], i * 3)
  }
  return [
    { name: 'every (value, alpha) pair, RGBA', bytes: await image(pairs, 256, 256, 4).png().toBuffer(), specs: native(256, 256) },
    { name: 'every (value, alpha) pair, grey + alpha', bytes: await image(greyPairs, 256, 256, 4).toColourspace('b-w').png().toBuffer(), specs: native(256, 256) },
    { name: 'every 16-bit grey level', bytes: await sharp(levels, { raw: { width: 256, height: 256, channels: 1 } }).toColourspace('grey16').png().toBuffer(), specs: native(256, 256) },
    { name: '4,194,304 RGB colours', bytes: await image(colours, 2048, 2048).png({ compressionLevel: 1 }).toBuffer(), specs: [grey(2048, 2048)] }
  ]
}

/** Photos brought to the model's size: shrink-on-load, box shrink, lanczos3, bicubic, fits. */
async function resizedCases (): Promise<Case[]> {
  const [w, h] = [320, 240]
  const px = photo(w, h, 3)
  const pxa = photo(w, h, 4, 4)
  const small = photo(20, 17, 5)
  // 197 → 192 puts many sample positions exactly on a 1/128-pixel boundary, where the float64
  // sums libvips makes (per 10-row region; from a crop's left edge) pick the mask.
  const [bw, bh] = [394, 197]
  const boundary = photo(bw, bh, 6)
  const down = [grey(28, 28), grey(28, 28, 'contain'), grey(28, 28, 'cover'), rgb(28, 28, 'cover'), rgb(224, 224), grey(100, 60)]
  return [
    { name: 'photo PNG', bytes: await image(px, w, h).png().toBuffer(), specs: [...down, rgb(400, 500), grey(250, 30)] },
    { name: 'photo PNG RGBA', bytes: await image(pxa, w, h, 4).png().toBuffer(), specs: [grey(28, 28), rgb(64, 64, 'cover')] },
    { name: 'photo JPEG', bytes: await image(px, w, h).jpeg({ quality: 90 }).toBuffer(), specs: [...down, rgb(48, 64), rgb(72, 96), rgb(224, 224, 'contain')] },
    { name: 'photo JPEG, EXIF orientation 6', bytes: await image(px, w, h).jpeg().withMetadata({ orientation: 6 }).toBuffer(), specs: [grey(28, 28), rgb(28, 28, 'cover'), grey(40, 30, 'contain')] },
    { name: 'photo PNG, EXIF orientation 2', bytes: await image(px, w, h).png().withMetadata({ orientation: 2 }).toBuffer(), specs: [grey(28, 28, 'cover'), rgb(28, 20, 'cover')] },
    { name: 'photo WebP lossless', bytes: await image(pxa, w, h, 4).webp({ lossless: true }).toBuffer(), specs: [grey(28, 28), rgb(100, 120), rgb(64, 64, 'cover')] },
    { name: 'photo WebP lossy', bytes: await image(px, w, h).webp({ quality: 80 }).toBuffer(), specs: [grey(28, 28), rgb(100, 120), rgb(64, 64, 'cover')] },
    { name: 'photo PNG 16-bit', bytes: await deep(w, h, 3).toColourspace('rgb16').png().toBuffer(), specs: [grey(28, 28), rgb(50, 100, 'cover')] },
    { name: 'PNG 394×197, positions on boundaries', bytes: await image(boundary, bw, bh).png().toBuffer(), specs: [grey(192, 192, 'cover'), grey(192, bw), rgb(192, 192, 'cover')] },
    { name: 'small PNG (enlarged)', bytes: await image(small, 20, 17).png().toBuffer(), specs: [grey(28, 28), rgb(28, 28, 'contain'), grey(40, 17), grey(17, 40)] },
    { name: 'small PNG 16-bit (enlarged)', bytes: await deep(20, 17, 3).toColourspace('rgb16').png().toBuffer(), specs: [rgb(28, 28), grey(30, 10)] }
  ]
}

/** The repository's fixtures: Fashion-MNIST and MNIST PNGs, as is, shrunk and enlarged. */
function fixtureCases (): Case[] {
  return ['fashion', 'ood'].flatMap((folder) => {
    const dir = path.join(REPO, 'test', 'fixtures', folder)
    return readdirSync(dir).filter((f) => f.endsWith('.png')).map((f) => ({
      name: `fixtures/${folder}/${f}`,
      bytes: readFileSync(path.join(dir, f)),
      specs: [grey(28, 28), rgb(28, 28), grey(20, 20), rgb(64, 64, 'contain')]
    }))
  })
}

interface Job { image: string, spec: InputSpec, out: string, case: Case }
type Result = { ok: true, exact: boolean, notes: string[] } | { ok: false, error: string }

/** numpy's dispatched SIMD features that this CPU has (numpy turns off those named in
 * NPY_DISABLE_CPU_FEATURES; baseline features cannot be turned off). */
function numpySimdFeatures (): string {
  const code = 'from numpy.core._multiarray_umath import __cpu_features__ as f, __cpu_dispatch__ as d; print(" ".join(x for x in d if f.get(x)))'
  const run = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`numpy's CPU features: ${run.stderr}`)
  return run.stdout.trim()
}

interface SimdMode { name: string, vips: boolean, env: Record<string, string> }
const SIMD_MODES: SimdMode[] = [
  { name: 'SIMD as the CPU offers it', vips: true, env: {} },
  { name: 'SIMD dispatch off', vips: false, env: { NPY_DISABLE_CPU_FEATURES: numpySimdFeatures() } }
]

/** One Python process for every job (its start-up and imports cost more than the work). */
function runReference (dir: string, cases: Case[], mode: SimdMode = SIMD_MODES[0]!): Array<Job & { result: Result }> {
  const tag = SIMD_MODES.indexOf(mode)
  const jobs: Job[] = cases.flatMap((c, i) => {
    const file = path.join(dir, `case${i}.img`)
    writeFileSync(file, c.bytes)
    return c.specs.map((spec, k) => ({ image: file, spec, out: path.join(dir, `case${i}-${k}-simd${tag}.f32`), case: c }))
  })
  writeFileSync(path.join(dir, 'jobs.json'), JSON.stringify(jobs.map(({ case: _, ...job }) => job)))
  const run = spawnSync(PYTHON, [REFERENCE, '--batch', path.join(dir, 'jobs.json')], { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, ...mode.env } })
  if (run.status !== 0) throw new Error(`${REFERENCE} failed (needs numpy and PIL: apt-get install python3-numpy python3-pil): ${run.stderr}`)
  const results = JSON.parse(run.stdout) as Result[]
  return jobs.map((job, i) => ({ ...job, result: results[i]! }))
}

/** Largest difference in pixel levels: the tensor difference undone by the normalisation. */
function maxLevels (a: Float32Array, b: Float32Array, spec: InputSpec): number {
  const plane = spec.width * spec.height
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) * 255 * spec.std[Math.floor(i / plane)]!)
  return worst
}

const identical = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

const label = (job: Job): string => `${job.case.name} → ${job.spec.colour} ${job.spec.width}×${job.spec.height} ${job.spec.fit}`

const dir = mkdtempSync(path.join(tmpdir(), 'reference-parity-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const groups: Array<[string, Case[]]> = [
  ['images at the model size', await nativeCases()],
  ['resized photos', await resizedCases()],
  ['repository fixtures', fixtureCases()]
]
const everyCase = groups.flatMap(([, cases]) => cases)

for (const mode of SIMD_MODES) {
  const ran = runReference(dir, everyCase, mode)
  for (const [title, cases] of groups) {
    t.test(`reference = service: ${title}, ${mode.name}`, async (t) => {
      // libvips' vector paths (highway) are a process-wide switch; the next mode sets it again.
      sharp.simd(mode.vips)
      t.teardown(() => { sharp.simd(true) })
      const jobs = ran.filter((j) => cases.includes(j.case))
      let same = 0
      for (const job of jobs) {
        if (!job.result.ok) {
          t.fail(`${label(job)}: the reference failed: ${job.result.error}`)
          continue
        }
        // The reference says itself when it only approximates (its notes, on stderr in the CLI).
        if (job.result.exact !== (job.case.within === undefined)) t.fail(`${label(job)}: the reference reports exact: ${job.result.exact}`)
        const raw = readFileSync(job.out)
        const reference = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))
        // The fast paths (grey PNG/JPEG at the model's size) and sharp: both must match.
        for (const fastPath of [true, false]) {
          const { tensor } = await preprocess(job.case.bytes, job.spec, { ...LIMITS, fastPath })
          if (job.case.within === undefined) {
            if (identical(tensor, reference)) same++
            else t.fail(`${label(job)}${fastPath ? '' : ' (no fast path)'}: differs by up to ${maxLevels(tensor, reference, job.spec).toFixed(2)} levels`)
          } else {
            const worst = maxLevels(tensor, reference, job.spec)
            t.ok(worst <= job.case.within + 1e-3, `${label(job)}: ${worst.toFixed(2)} ≤ ${job.case.within} levels`)
          }
        }
      }
      const exact = jobs.filter((j) => j.case.within === undefined).length
      t.equal(same, 2 * exact, `${same} tensors identical bit for bit (${exact} images × specs, with and without the fast paths)`)
    })
  }
}

t.test('the reference gives the same tensors with SIMD dispatch on and off', async (t) => {
  const jobs = everyCase.flatMap((c) => c.specs.map((spec) => ({ c, spec })))
  let same = 0
  everyCase.forEach((c, i) => {
    c.specs.forEach((_, k) => {
      const [on, off] = [0, 1].map((tag) => readFileSync(path.join(dir, `case${i}-${k}-simd${tag}.f32`)))
      if (on!.equals(off!)) same++
      else t.fail(`${c.name}, spec ${k}: the reference depends on the CPU's SIMD`)
    })
  })
  t.equal(same, jobs.length, `${same} reference tensors identical in both runs`)
})

t.test('a CMYK JPEG without a profile: the service converts it, the reference refuses', async (t) => {
  const cmyk = await image(photo(40, 30, 7), 40, 30).toColourspace('cmyk').jpeg().toBuffer()
  const { tensor } = await preprocess(cmyk, rgb(30, 40), LIMITS)
  t.equal(tensor.length, 3 * 30 * 40)
  const [job] = runReference(dir, [{ name: 'CMYK', bytes: cmyk, specs: [rgb(30, 40)] }])
  t.notOk(job!.result.ok)
  t.match(!job!.result.ok && job!.result.error, /ReferenceUnavailableError: CMYK JPEG without an embedded ICC profile/)
})
