// A deliberately narrow PNG decoder for the one case this service sees most: an 8-bit,
// non-interlaced greyscale (or R = G = B truecolour) PNG that is already at the model's input
// size. For such an image sharp's pipeline (decode → greyscale → resize to the same size) is
// an identity on the decoded samples, and its cost is almost all fixed per-call overhead
// (thread hand-offs, pipeline set-up), several times the cost of inflating 1 KB here.
//
// It is a fast path, not a second decoder: it returns null for anything it does not fully
// vouch for (other bit depths or colour types, interlacing, palette, transparency, gamma or
// colour-profile chunks, EXIF, text chunks, a bad CRC, extra or missing image data, trailing
// bytes, a bad filter byte), and the caller hands those bytes to sharp, which then decodes
// them or rejects them with its own error. So the fast path never accepts what sharp would
// refuse, and never produces a tensor sharp would not (test/preprocess/png-fast.test.ts).
import { inflateSync } from 'node:zlib'

const CRC_TABLE = ((): Int32Array => {
  const table = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c
  }
  return table
})()

/** CRC-32 (ISO 3309, as PNG uses) of buf[start, end). */
export function crc32 (buf: Uint8Array, start = 0, end = buf.length): number {
  let c = -1
  for (let i = start; i < end; i++) c = (CRC_TABLE[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

const readU32 = (b: Uint8Array, o: number): number =>
  (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0

// Chunk types as big-endian integers, so the loop compares numbers, not strings.
const type = (s: string): number => readU32(Buffer.from(s, 'latin1'), 0)
const IHDR = type('IHDR')
const IDAT = type('IDAT')
const IEND = type('IEND')
// pHYs (pixel density) cannot change decoded samples. Everything else that may appear in a PNG
// either can (tRNS, gAMA, cHRM, sRGB, iCCP, sBIT, PLTE) or could carry metadata sharp acts on
// (eXIf orientation; ImageMagick-style EXIF in text chunks): those images go to sharp.
const HARMLESS = new Set([type('pHYs')])

export interface FastPngOptions {
  /** Only images of exactly this size are decoded here; sharp resizes everything else. */
  width: number
  height: number
}

/**
 * Decode `buf` to width × height 8-bit grey samples (row-major), or return null when the image
 * is not one this fast path handles. Never throws for malformed input: that is sharp's call.
 */
export function decodeGreyPng (buf: Uint8Array, want: FastPngOptions): Uint8Array | null {
  // Signature (8) + IHDR chunk (25) at least.
  if (buf.length < 8 + 25) return null
  let o = 8
  const idat: Uint8Array[] = []
  let idatLength = 0
  let channels = 0
  let sawIdat = false
  const sawHarmless = new Set<number>()
  for (let first = true; ; first = false) {
    if (o + 12 > buf.length) return null
    const length = readU32(buf, o)
    const kind = readU32(buf, o + 4)
    const dataStart = o + 8
    const dataEnd = dataStart + length
    if (length > 0x7fffffff || dataEnd + 4 > buf.length) return null
    if (crc32(buf, o + 4, dataEnd) !== readU32(buf, dataEnd)) return null
    if (first) {
      if (kind !== IHDR || length !== 13) return null
      const width = readU32(buf, dataStart)
      const height = readU32(buf, dataStart + 4)
      const depth = buf[dataStart + 8]
      const colourType = buf[dataStart + 9]
      if (width !== want.width || height !== want.height) return null
      // 8-bit only; compression 0, filter method 0, no interlace.
      if (depth !== 8 || buf[dataStart + 10] !== 0 || buf[dataStart + 11] !== 0 || buf[dataStart + 12] !== 0) return null
      if (colourType === 0) channels = 1
      else if (colourType === 2) channels = 3
      else return null
    } else if (kind === IDAT) {
      sawIdat = true
      idat.push(buf.subarray(dataStart, dataEnd))
      idatLength += length
    } else if (kind === IEND) {
      // Nothing may follow IEND: sharp decides what trailing bytes mean.
      if (length !== 0 || dataEnd + 4 !== buf.length || !sawIdat) return null
      break
    } else if (HARMLESS.has(kind) && !sawIdat && !sawHarmless.has(kind)) {
      // Once each, and before the image data, as the spec orders (libpng warns otherwise).
      sawHarmless.add(kind)
    } else {
      return null
    }
    o = dataEnd + 4
  }

  const { width, height } = want
  const stride = width * channels
  const expected = (stride + 1) * height
  const compressed = idat.length === 1 ? idat[0] as Uint8Array : Buffer.concat(idat, idatLength)
  let filtered: Buffer
  try {
    const inflated = inflateSync(compressed, { info: true, maxOutputLength: expected + 1 }) as unknown as { buffer: Buffer, engine: { bytesWritten: number } }
    // Exactly the image's bytes, and a zlib stream that ends exactly where the data ends.
    if (inflated.buffer.length !== expected || inflated.engine.bytesWritten !== compressed.length) return null
    filtered = inflated.buffer
  } catch {
    return null
  }
  return unfilter(filtered, width, height, channels)
}

/** Undo PNG's per-row filters (bpp = channels for 8-bit samples); collapse R = G = B to grey. */
function unfilter (data: Uint8Array, width: number, height: number, channels: number): Uint8Array | null {
  const stride = width * channels
  const rows = new Uint8Array(stride * height)
  for (let y = 0; y < height; y++) {
    const filter = data[y * (stride + 1)]
    const src = y * (stride + 1) + 1
    const dst = y * stride
    const up = dst - stride
    switch (filter) {
      case 0:
        for (let x = 0; x < stride; x++) rows[dst + x] = data[src + x] as number
        break
      case 1:
        for (let x = 0; x < stride; x++) {
          const left = x >= channels ? rows[dst + x - channels] as number : 0
          rows[dst + x] = ((data[src + x] as number) + left) & 0xff
        }
        break
      case 2:
        for (let x = 0; x < stride; x++) {
          const above = y > 0 ? rows[up + x] as number : 0
          rows[dst + x] = ((data[src + x] as number) + above) & 0xff
        }
        break
      case 3:
        for (let x = 0; x < stride; x++) {
          const left = x >= channels ? rows[dst + x - channels] as number : 0
          const above = y > 0 ? rows[up + x] as number : 0
          rows[dst + x] = ((data[src + x] as number) + ((left + above) >> 1)) & 0xff
        }
        break
      case 4:
        for (let x = 0; x < stride; x++) {
          const a = x >= channels ? rows[dst + x - channels] as number : 0
          const b = y > 0 ? rows[up + x] as number : 0
          const c = x >= channels && y > 0 ? rows[up + x - channels] as number : 0
          const p = a + b - c
          const pa = Math.abs(p - a)
          const pb = Math.abs(p - b)
          const pc = Math.abs(p - c)
          const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
          rows[dst + x] = ((data[src + x] as number) + pred) & 0xff
        }
        break
      default:
        return null
    }
  }
  if (channels === 1) return rows
  // Truecolour: only when every pixel is grey, which sharp's sRGB → B_W conversion maps to
  // itself (pinned for all 256 levels by the tests); real colour goes to sharp.
  const grey = new Uint8Array(width * height)
  for (let i = 0, j = 0; i < grey.length; i++, j += 3) {
    const r = rows[j] as number
    if (rows[j + 1] !== r || rows[j + 2] !== r) return null
    grey[i] = r
  }
  return grey
}
