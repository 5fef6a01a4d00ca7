// The preprocessing fast paths must give sharp's tensors bit for bit on everything they accept,
// and hand everything else to sharp, so that errors, too, are sharp's.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { deflateSync } from 'node:zlib'
import sharp from 'sharp'
import t, { type Test } from 'tap'
import { decodeGreyJpeg } from '../../src/preprocess/jpeg-fast.js'
import { crc32, decodeGreyPng } from '../../src/preprocess/png-fast.js'
import { preprocess, type Preprocessed, type RawImage } from '../../src/preprocess/preprocess.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { fashionTest, MANIFEST, png as sharpPng, REPO } from '../helpers/data.js'
import { bombPng } from '../helpers/images.js'
import { chunk, ihdr, SIGNATURE, writePng } from '../helpers/png-writer.js'

const manifest = await loadManifest(MANIFEST)
const spec = manifest.models.get(manifest.defaultModel)!.input
const limits = { maxInputPixels: 40_000_000 }
const dir = path.join(REPO, 'test', 'fixtures', 'fashion')
const fixtures = readFileSync(path.join(dir, 'golden.json'), 'utf8')
const files = (JSON.parse(fixtures) as { images: Array<{ file: string }> }).images.map((g) => readFileSync(path.join(dir, g.file)))

type Outcome = { ok: true, value: Preprocessed } | { ok: false, code: string, message: string }

async function outcome (input: Uint8Array | RawImage, fastPath: boolean, lim = limits): Promise<Outcome> {
  try {
    return { ok: true, value: await preprocess(input, spec, { ...lim, fastPath }) }
  } catch (err) {
    const e = err as { code: string, message: string }
    return { ok: false, code: e.code, message: e.message }
  }
}

const identical = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((v, i) => Object.is(v, b[i]))

/** Run with and without the fast path; both must agree exactly (tensor or error). Returns the fast run. */
async function agree (t: Test, input: Uint8Array | RawImage, name: string, lim = limits): Promise<Outcome> {
  const fast = await outcome(input, true, lim)
  const slow = await outcome(input, false, lim)
  if (fast.ok && slow.ok) {
    t.equal(slow.value.decoder, 'sharp', `${name}: fastPath false uses sharp`)
    t.ok(identical(fast.value.tensor, slow.value.tensor), `${name}: identical tensors (${fast.value.decoder} vs sharp)`)
  } else if (!fast.ok && !slow.ok) {
    t.same([fast.code, fast.message], [slow.code, slow.message], `${name}: same error ${slow.code}`)
  } else {
    t.fail(`${name}: fast path ${fast.ok ? 'accepted' : 'rejected'} what sharp ${slow.ok ? 'accepted' : 'rejected'}`)
  }
  return fast
}

const decoderOf = (o: Outcome): string => o.ok ? o.value.decoder : `error ${o.code}`

t.test('crc32 matches the standard check value', async (t) => {
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926)
  t.equal(crc32(Buffer.alloc(0)), 0)
})

t.test('the golden fixture PNGs take the fast path and give sharp\'s tensors', async (t) => {
  for (const [i, buf] of files.entries()) {
    const fast = await agree(t, buf, `fixture ${i}`)
    t.equal(decoderOf(fast), 'png-fast', `fixture ${i} is decoded without sharp`)
  }
})

t.test('Fashion-MNIST test images: every filter type, grey and RGB, raw pixels', async (t) => {
  const n = Number(process.env.FAST_PATH_IMAGES ?? 500)
  const images = await fashionTest(n)
  let checked = 0
  for (const [i, { pixels }] of images.entries()) {
    const reference = (await outcome(await sharpPng(pixels), false))
    if (!reference.ok) { t.fail(`sharp could not read image ${i}`); continue }
    const expected = reference.value.tensor
    const variants: Array<[string, Buffer | RawImage, string]> = [
      ['sharp-encoded RGB PNG', await sharpPng(pixels), 'png-fast'],
      ...[0, 1, 2, 3, 4].map((f): [string, Buffer, string] => [`grey PNG filter ${f}`, writePng(pixels, { filter: f }), 'png-fast']),
      ['grey PNG mixed filters, 3 IDAT chunks', writePng(pixels, { filter: (y) => y % 5, idatChunks: 3 }), 'png-fast'],
      ['raw grey pixels', { pixels, width: 28, height: 28, channels: 1 }, 'raw-fast']
    ]
    for (const [name, input, decoder] of variants) {
      const got = await outcome(input, true)
      if (!got.ok || got.value.decoder !== decoder || !identical(got.value.tensor, expected)) {
        t.fail(`image ${i}, ${name}: ${decoderOf(got)}, expected ${decoder} with sharp's tensor`)
      }
      checked++
    }
    // sharp itself on a few of the hand-written variants, not only on its own encoding.
    if (i < 20) for (const [name, input] of variants) await agree(t, input, `image ${i}, ${name}`)
  }
  t.pass(`${checked} fast-path decodes of ${images.length} images equal sharp's tensors`)
})

t.test('truecolour with R = G = B: sharp\'s greyscale maps every level to itself', async (t) => {
  // Pins the assumption the RGB branch of the fast path rests on, for all 256 levels.
  const levels = new Uint8Array(28 * 28)
  for (let i = 0; i < levels.length; i++) levels[i] = i % 256
  const rgb = new Uint8Array(levels.length * 3)
  for (let i = 0; i < levels.length; i++) rgb.fill(levels[i]!, 3 * i, 3 * i + 3)
  const out = await agree(t, writePng(rgb, { channels: 3, filter: 4 }), 'all 256 grey levels as RGB')
  t.equal(decoderOf(out), 'png-fast')
  const viaSharp = await sharp(writePng(rgb, { channels: 3 })).greyscale().raw().toBuffer()
  t.ok(viaSharp.every((v, i) => v === levels[i]), 'sharp: (v, v, v) → v')
})

interface Case { name: string, make: () => Promise<Buffer> | Buffer, decoder: string, lim?: typeof limits }

const px = (): Uint8Array => { const p = new Uint8Array(28 * 28); for (let i = 0; i < p.length; i++) p[i] = (i * 37) % 256; return p }
const rgbOf = (p: Uint8Array): Uint8Array => { const o = new Uint8Array(p.length * 3); p.forEach((v, i) => o.fill(v, 3 * i, 3 * i + 3)); return o }
const base = (): Buffer => writePng(px())
const rawBuf = (p: Uint8Array, channels: number): Promise<Buffer> => sharp(p, { raw: { width: 28, height: 28, channels: channels as 1 } }).png().toBuffer()

const cases: Case[] = [
  { name: 'interlaced (Adam7) grey PNG', make: async () => await sharp(px(), { raw: { width: 28, height: 28, channels: 1 } }).png({ progressive: true }).toBuffer(), decoder: 'sharp' },
  { name: '16-bit grey PNG', make: async () => await sharp(px(), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('grey16').png().toBuffer(), decoder: 'sharp' },
  { name: 'palette PNG', make: async () => await sharp(rgbOf(px()), { raw: { width: 28, height: 28, channels: 3 } }).png({ palette: true, colours: 16 }).toBuffer(), decoder: 'sharp' },
  { name: 'grey + alpha PNG', make: async () => await sharp(Uint8Array.from({ length: 28 * 28 * 2 }, (_, i) => (i * 13) % 256), { raw: { width: 28, height: 28, channels: 2 } }).png().toBuffer(), decoder: 'sharp' },
  { name: 'RGBA PNG', make: async () => await sharp(Uint8Array.from({ length: 28 * 28 * 4 }, (_, i) => (i * 7) % 256), { raw: { width: 28, height: 28, channels: 4 } }).png().toBuffer(), decoder: 'sharp' },
  { name: 'RGB PNG in colour', make: async () => await rawBuf(Uint8Array.from({ length: 28 * 28 * 3 }, (_, i) => (i * 11) % 256), 3), decoder: 'sharp' },
  { name: 'RGB PNG, grey but for one pixel', make: () => { const p = rgbOf(px()); p[500] = (p[500]! + 1) % 256; return writePng(p, { channels: 3 }) }, decoder: 'sharp' },
  { name: '1-bit grey PNG', make: () => Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(28, 28, 1, 0)), chunk('IDAT', deflateSync(Buffer.from(Array.from({ length: 28 * 5 }, (_, i) => i % 5 === 0 ? 0 : 0x5a)))), chunk('IEND')]), decoder: 'sharp' },
  { name: 'grey PNG 56×56 (needs a resize)', make: async () => await sharp(px(), { raw: { width: 28, height: 28, channels: 1 } }).resize(56, 56).png().toBuffer(), decoder: 'sharp' },
  { name: 'grey PNG 28×27', make: () => writePng(px().subarray(0, 28 * 27), { height: 27 }), decoder: 'sharp' },
  { name: 'grey PNG with tRNS', make: () => writePng(px(), { before: [chunk('tRNS', Buffer.from([0, 0]))] }), decoder: 'sharp' },
  { name: 'grey PNG with gAMA', make: () => writePng(px(), { before: [chunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f]))] }), decoder: 'sharp' },
  { name: 'grey PNG with sRGB', make: () => writePng(px(), { before: [chunk('sRGB', Buffer.from([0]))] }), decoder: 'sharp' },
  { name: 'grey PNG with a text chunk', make: () => writePng(px(), { before: [chunk('tEXt', Buffer.from('Comment\0hello', 'latin1'))] }), decoder: 'sharp' },
  { name: 'grey PNG with pHYs (harmless)', make: () => writePng(px(), { before: [chunk('pHYs', Buffer.from([0, 0, 0x0b, 0x13, 0, 0, 0x0b, 0x13, 1]))] }), decoder: 'png-fast' },
  { name: 'grey PNG with pHYs after IDAT', make: () => writePng(px(), { after: [chunk('pHYs', Buffer.from([0, 0, 0x0b, 0x13, 0, 0, 0x0b, 0x13, 1]))] }), decoder: 'sharp' },
  {
    name: 'grey PNG with an eXIf orientation chunk',
    make: async () => {
      const withExif = await sharp(px(), { raw: { width: 28, height: 28, channels: 1 } }).png().withMetadata({ orientation: 6 }).toBuffer()
      if (!withExif.includes(Buffer.from('eXIf')) && !withExif.includes(Buffer.from('zTXt')) && !withExif.includes(Buffer.from('tEXt'))) throw new Error('sharp wrote no EXIF')
      return withExif
    },
    decoder: 'sharp'
  },
  { name: 'truncated PNG', make: () => base().subarray(0, 60), decoder: 'error ISOMAX_INVALID_IMAGE' },
  { name: 'PNG cut before IEND', make: () => { const b = base(); return b.subarray(0, b.length - 12) }, decoder: 'any' },
  { name: 'bad IDAT CRC', make: () => writePng(px(), { badIdatCrc: true }), decoder: 'any' },
  { name: 'bad CRC in pHYs', make: () => writePng(px(), { before: [chunk('pHYs', Buffer.from([0, 0, 0x0b, 0x13, 0, 0, 0x0b, 0x13, 1]), true)] }), decoder: 'any' },
  { name: 'bytes after IEND', make: () => writePng(px(), { trailer: Buffer.from('trailing garbage') }), decoder: 'any' },
  { name: 'data after the zlib stream', make: () => writePng(px(), { zlibTrailer: Buffer.from([1, 2, 3, 4]) }), decoder: 'any' },
  { name: 'too little image data', make: () => Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(28, 28)), chunk('IDAT', deflateSync(Buffer.alloc(29 * 27))), chunk('IEND')]), decoder: 'any' },
  { name: 'too much image data', make: () => Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(28, 28)), chunk('IDAT', deflateSync(Buffer.alloc(29 * 29))), chunk('IEND')]), decoder: 'any' },
  { name: 'bad filter byte', make: () => writePng(px(), { filter: (y) => y === 5 ? 7 : 0 }), decoder: 'any' },
  { name: 'IDAT that is not zlib', make: () => Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(28, 28)), chunk('IDAT', Buffer.from('not zlib at all')), chunk('IEND')]), decoder: 'error ISOMAX_INVALID_IMAGE' },
  { name: 'no IDAT', make: () => Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(28, 28)), chunk('IEND')]), decoder: 'error ISOMAX_INVALID_IMAGE' },
  { name: 'pixel bomb', make: () => bombPng(20000, 20000), decoder: 'error ISOMAX_PIXEL_LIMIT_EXCEEDED' },
  { name: 'model-size PNG over a tiny MAX_INPUT_PIXELS', make: base, decoder: 'error ISOMAX_PIXEL_LIMIT_EXCEEDED', lim: { maxInputPixels: 100 } }
]

for (const c of cases) {
  t.test(`edge case: ${c.name} → ${c.decoder}`, async (t) => {
    const buf = await c.make()
    const got = await agree(t, buf, c.name, c.lim)
    if (c.decoder !== 'any') t.equal(decoderOf(got), c.decoder)
    else t.not(decoderOf(got), 'png-fast', 'never the fast path')
  })
}

t.test('raw pixels the fast path does not take go to sharp', async (t) => {
  const p = px()
  t.equal(decoderOf(await agree(t, { pixels: rgbOf(p), width: 28, height: 28, channels: 3 }, 'raw RGB')), 'sharp')
  t.equal(decoderOf(await agree(t, { pixels: new Uint8Array(56 * 56), width: 56, height: 56, channels: 1 }, 'raw 56×56')), 'sharp')
})

t.test('decodeGreyPng never throws on garbage', async (t) => {
  const good = base()
  let nulls = 0
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(good)
    const at = 8 + ((i * 7919) % (b.length - 8))
    b[at] = (b[at]! + 1 + (i % 255)) & 0xff
    const out = decodeGreyPng(b, { width: 28, height: 28 })
    if (out === null) nulls++
  }
  t.equal(nulls, 2000, 'every one-byte corruption is caught (CRC) and left to sharp')
})

// JPEG: the fast path must be libjpeg-turbo's islow IDCT to the bit, and only where sharp would
// hand back that plane unchanged (grey content, model size, nothing to orient).

const greyRaw = (p: Uint8Array): ReturnType<typeof sharp> => sharp(p, { raw: { width: 28, height: 28, channels: 1 } })

t.test('Fashion-MNIST as JPEG (grey and YCbCr, 4:2:0 and 4:4:4, q 50–100): the fast path gives sharp\'s tensors', async (t) => {
  const n = Number(process.env.FAST_PATH_IMAGES ?? 300)
  const images = await fashionTest(n)
  const counts: Record<string, number> = {}
  for (const [i, { pixels }] of images.entries()) {
    const q = [50, 75, 90, 100][i % 4]!
    const variants: Array<[string, Buffer]> = [
      [`YCbCr 4:2:0 q${q}`, await greyRaw(pixels).jpeg({ quality: q }).toBuffer()],
      [`YCbCr 4:4:4 q${q}`, await greyRaw(pixels).jpeg({ quality: q, chromaSubsampling: '4:4:4' }).toBuffer()],
      [`grey q${q}`, await greyRaw(pixels).toColourspace('b-w').jpeg({ quality: q }).toBuffer()],
      ['grey, standard Huffman tables', await greyRaw(pixels).toColourspace('b-w').jpeg({ quality: 85, optimiseCoding: false }).toBuffer()]
    ]
    for (const [name, buf] of variants) {
      const expected = await outcome(buf, false)
      const got = await outcome(buf, true)
      if (!expected.ok || !got.ok || got.value.decoder !== 'jpeg-fast' || !identical(got.value.tensor, expected.value.tensor)) {
        t.fail(`image ${i}, ${name}: ${decoderOf(got)}`)
      }
      counts[name.replace(/ q\d+$/, '')] = (counts[name.replace(/ q\d+$/, '')] ?? 0) + 1
    }
  }
  t.pass(`identical on ${JSON.stringify(counts)}`)
})

t.test('JPEG of noise and of hard black/white edges (clamping, large AC terms)', async (t) => {
  let s = 12345
  const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) / 4294967296 }
  let fast = 0
  for (let i = 0; i < 150; i++) {
    const pixels = Uint8Array.from({ length: 784 }, () => i % 2 === 0 ? Math.floor(rnd() * 256) : rnd() < 0.5 ? 0 : 255)
    for (const q of [30, 100]) {
      for (const buf of [await greyRaw(pixels).jpeg({ quality: q }).toBuffer(), await greyRaw(pixels).toColourspace('b-w').jpeg({ quality: q }).toBuffer()]) {
        const got = await outcome(buf, true)
        const expected = await outcome(buf, false)
        if (!got.ok || !expected.ok || !identical(got.value.tensor, expected.value.tensor)) t.fail(`noise ${i} q${q}`)
        if (got.ok && got.value.decoder === 'jpeg-fast') fast++
      }
    }
  }
  t.equal(fast, 600, 'all on the fast path, all identical')
})

const jpegBase = async (): Promise<Buffer> => await greyRaw(px()).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer()
/** Insert a marker segment right after SOI (and JFIF APP0 when there is one). */
const withSegment = (jpeg: Buffer, marker: number, payload: Buffer): Buffer => {
  const at = jpeg[3] === 0xe0 ? 4 + jpeg.readUInt16BE(4) : 2
  const len = Buffer.alloc(2); len.writeUInt16BE(payload.length + 2)
  return Buffer.concat([jpeg.subarray(0, at), Buffer.from([0xff, marker]), len, payload, jpeg.subarray(at)])
}

const jpegCases: Case[] = [
  { name: 'progressive JPEG', make: async () => await greyRaw(px()).jpeg({ progressive: true }).toBuffer(), decoder: 'sharp' },
  { name: 'JPEG in colour', make: async () => await sharp(Uint8Array.from({ length: 28 * 28 * 3 }, (_, i) => (i * 11) % 256), { raw: { width: 28, height: 28, channels: 3 } }).jpeg().toBuffer(), decoder: 'sharp' },
  { name: 'JPEG with EXIF orientation', make: async () => await greyRaw(px()).jpeg().withMetadata({ orientation: 6 }).toBuffer(), decoder: 'sharp' },
  { name: 'JPEG with an ICC profile', make: async () => await greyRaw(px()).jpeg().withIccProfile('srgb').toBuffer(), decoder: 'sharp' },
  { name: 'JPEG 56×56 (needs a resize)', make: async () => await greyRaw(px()).resize(56, 56).jpeg().toBuffer(), decoder: 'sharp' },
  { name: 'JPEG with a restart interval segment', make: async () => withSegment(await jpegBase(), 0xdd, Buffer.from([0, 0])), decoder: 'sharp' },
  { name: 'JPEG with an Adobe segment', make: async () => withSegment(await jpegBase(), 0xee, Buffer.from('Adobe\0\x64\0\0\0\0\x01', 'latin1')), decoder: 'sharp' },
  { name: 'JPEG with a comment (harmless)', make: async () => withSegment(await jpegBase(), 0xfe, Buffer.from('hello')), decoder: 'jpeg-fast' },
  { name: 'truncated JPEG', make: async () => (await jpegBase()).subarray(0, 200), decoder: 'error ISOMAX_INVALID_IMAGE' },
  { name: 'JPEG without EOI', make: async () => { const b = await jpegBase(); return b.subarray(0, b.length - 2) }, decoder: 'any' },
  { name: 'JPEG with bytes after EOI', make: async () => Buffer.concat([await jpegBase(), Buffer.from('trailing')]), decoder: 'any' },
  { name: 'JPEG with fill bytes before a marker', make: async () => { const b = await jpegBase(); return Buffer.concat([b.subarray(0, 2), Buffer.from([0xff]), b.subarray(2)]) }, decoder: 'any' },
  { name: 'JPEG over a tiny MAX_INPUT_PIXELS', make: jpegBase, decoder: 'error ISOMAX_PIXEL_LIMIT_EXCEEDED', lim: { maxInputPixels: 100 } }
]

for (const c of jpegCases) {
  t.test(`edge case: ${c.name} → ${c.decoder}`, async (t) => {
    const buf = await c.make()
    const got = await agree(t, buf, c.name, c.lim)
    if (c.decoder !== 'any') t.equal(decoderOf(got), c.decoder)
    else t.not(decoderOf(got), 'jpeg-fast', 'never the fast path')
  })
}

t.test('corrupted JPEGs: whatever the fast path accepts, sharp accepts with the same tensor', async (t) => {
  // No CRC in JPEG: a flipped byte in the entropy data often still decodes, in both.
  const good = await greyRaw(px()).jpeg({ quality: 90 }).toBuffer()
  let accepted = 0
  let disagreements = 0
  for (let i = 0; i < 400; i++) {
    const b = Buffer.from(good)
    const at = 2 + ((i * 7919) % (b.length - 2))
    b[at] = (b[at]! ^ (1 + (i % 255))) & 0xff
    if (decodeGreyJpeg(b, { width: 28, height: 28 }) === null) continue
    accepted++
    const fast = await outcome(b, true)
    const slow = await outcome(b, false)
    if (!fast.ok || !slow.ok || !identical(fast.value.tensor, slow.value.tensor)) disagreements++
  }
  t.equal(disagreements, 0, `${accepted} of 400 corrupted files still decode on the fast path; sharp agrees on every one`)
})
