// Which PNGs the fast path takes, judged from the chunk layout alone before any decoding:
// IHDR first (the model's size, 8-bit grey or truecolour, deflate, adaptive filtering, no
// interlace), at most one pHYs (pixel density: it cannot change decoded samples) before the
// image data, one run of IDAT chunks, then IEND and nothing after it; every CRC valid.
// Everything else that may appear in a PNG either can change the samples (tRNS, gAMA, cHRM,
// sRGB, iCCP, sBIT, PLTE) or could carry metadata sharp acts on (eXIf orientation, EXIF in text
// chunks), or is a malformation whose verdict (error or warning) is libpng's to give: sharp.
import { crc32 } from './crc32.js'

const readU32 = (b: Uint8Array, o: number): number =>
  (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0

// Chunk types as big-endian integers, so the loop compares numbers, not strings.
const type = (s: string): number => readU32(Buffer.from(s, 'latin1'), 0)
const IHDR = type('IHDR')
const PHYS = type('pHYs')
const IDAT = type('IDAT')
const IEND = type('IEND')
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

export interface PngLayout {
  /** 1 for greyscale, 3 for truecolour (8 bits per sample either way). */
  channels: 1 | 3
  /** The zlib stream: the IDAT chunks' data, concatenated. */
  zlib: Uint8Array
}

/**
 * The layout of `buf` if it is a PNG the fast path takes for a width × height input, else null.
 * Reads every byte once (CRCs); callers bound the input's size first.
 */
export function fastPngLayout (buf: Uint8Array, width: number, height: number): PngLayout | null {
  if (buf.length < SIGNATURE.length + 25 || SIGNATURE.some((v, i) => buf[i] !== v)) return null
  const idat: Uint8Array[] = []
  let channels: 1 | 3 | 0 = 0
  let state: 'header' | 'ancillary' | 'data' = 'header'
  let sawPhys = false
  for (let o = SIGNATURE.length; ;) {
    if (o + 12 > buf.length) return null
    const length = readU32(buf, o)
    const kind = readU32(buf, o + 4)
    const dataStart = o + 8
    const dataEnd = dataStart + length
    if (dataEnd + 4 > buf.length || crc32(buf, o + 4, dataEnd) !== readU32(buf, dataEnd)) return null
    if (state === 'header') {
      if (kind !== IHDR || length !== 13) return null
      if (readU32(buf, dataStart) !== width || readU32(buf, dataStart + 4) !== height) return null
      // Bit depth 8; compression 0, filter method 0, no interlace.
      if (buf[dataStart + 8] !== 8 || buf[dataStart + 10] !== 0 || buf[dataStart + 11] !== 0 || buf[dataStart + 12] !== 0) return null
      const colourType = buf[dataStart + 9]
      if (colourType === 0) channels = 1
      else if (colourType === 2) channels = 3
      else return null
      state = 'ancillary'
    } else if (kind === IDAT) {
      state = 'data'
      idat.push(buf.subarray(dataStart, dataEnd))
    } else if (kind === IEND) {
      // Nothing may follow IEND: sharp decides what trailing bytes mean.
      if (state !== 'data' || length !== 0 || dataEnd + 4 !== buf.length) return null
      break
    } else if (kind === PHYS && state === 'ancillary' && !sawPhys && length === 9) {
      // Once, before the image data and 9 bytes long, as the spec has it (libpng warns otherwise).
      sawPhys = true
    } else {
      return null
    }
    o = dataEnd + 4
  }
  const zlib = idat.length === 1 ? idat[0] as Uint8Array : Buffer.concat(idat)
  return { channels: channels as 1 | 3, zlib }
}
