// A deliberately narrow JPEG decoder for small grey images at the model's input size: baseline
// (sequential Huffman, 8-bit) JPEGs that are either one-component (greyscale) or YCbCr whose
// chroma carries nothing (every Cb/Cr coefficient zero, as when a grey image is saved as a
// colour JPEG). For those, what sharp produces (libjpeg-turbo decode → sRGB → B_W, no resize)
// is the luma plane as libjpeg-turbo's integer IDCT (jidctint.c, "islow") computes it: with
// Cb = Cr = 128 its YCbCr → RGB conversion gives R = G = B = Y, which B_W maps to Y.
//
// As with png-fast.ts, it returns null for anything it does not vouch for and the caller asks
// sharp: progressive or arithmetic coding, restart markers, EXIF (orientation), ICC or Adobe
// segments, colour, any marker or byte out of place, entropy data that does not end exactly
// where the image ends, and coefficient ranges where libjpeg-turbo's SIMD and C code could
// differ. Inputs over a few kB go to sharp unscanned (fast-path-limit.ts). fast-path.test.ts
// compares it with sharp on thousands of images, differential-fuzz.test.ts on mutated ones.
import { fastPathMaxBytes } from './fast-path-limit.js'

const ZIGZAG = Int32Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
  12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
  58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63
])

/** libjpeg's derived table (jdhuff.c): canonical codes of each length, in order. */
interface Huffman {
  /** Largest code of each length 1..16, or -1 where there is none. */
  maxcode: Int32Array
  /** symbols[valoffset[len] + code] is the symbol of a code of length len. */
  valoffset: Int32Array
  symbols: Uint8Array
}

interface Component {
  id: number
  h: number
  v: number
  tq: number
  dc: Huffman | null
  ac: Huffman | null
  pred: number
  blocksWide: number
  blocksHigh: number
  /** Only luma is kept: dequantised coefficients are turned into pixels block by block. */
  plane: Uint8Array | null
}

class Bail extends Error {}
const bail = (): never => { throw new Bail() }

/**
 * Build a table the way jpeg_make_d_derived_tbl does, bailing wherever it would refuse the table
 * ("Bogus Huffman table definition"), so the fast path never decodes what sharp refuses.
 */
function buildHuffman (counts: Uint8Array, symbols: Uint8Array, isDc: boolean): Huffman {
  const maxcode = new Int32Array(17).fill(-1)
  const valoffset = new Int32Array(17)
  let code = 0
  let k = 0
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1] as number
    if (n > 0) {
      valoffset[len] = k - code
      k += n
      code += n
      maxcode[len] = code - 1
    }
    // The codes of a length must fit in it without the all-ones code, which is reserved.
    if (code >= (1 << len)) bail()
    code <<= 1
  }
  // libjpeg-turbo accepts DC symbols (magnitude categories) 0..15 only.
  if (isDc) for (const s of symbols) if (s > 15) bail()
  return { maxcode, valoffset, symbols: Uint8Array.from(symbols) }
}

/** Bits of the entropy-coded segment; any marker inside it (not a stuffed 0xFF00) ends it. */
class BitReader {
  private bits = 0
  private count = 0
  constructor (private readonly buf: Uint8Array, public pos: number, private readonly end: number) {}

  private fill (): void {
    if (this.pos >= this.end) bail()
    const b = this.buf[this.pos] as number
    if (b === 0xff) {
      // A stuffed zero; anything else is a marker where data should be (libjpeg warns).
      if (this.buf[this.pos + 1] !== 0x00) bail()
      this.pos += 2
    } else {
      this.pos++
    }
    this.bits = ((this.bits << 8) | b) & 0xffffff
    this.count += 8
  }

  bit (): number {
    if (this.count === 0) this.fill()
    this.count--
    return (this.bits >>> this.count) & 1
  }

  receive (n: number): number {
    let v = 0
    for (let i = 0; i < n; i++) v = (v << 1) | this.bit()
    return v
  }

  decode (h: Huffman): number {
    let code = 0
    for (let len = 1; len <= 16; len++) {
      code = (code << 1) | this.bit()
      if (code <= (h.maxcode[len] as number)) return h.symbols[(h.valoffset[len] as number) + code] as number
    }
    return bail()
  }

  /** Bits left in the byte being read: padding, once the last block is decoded. */
  get leftover (): number {
    return this.count
  }
}

const extend = (v: number, s: number): number => v < (1 << (s - 1)) ? v - (1 << s) + 1 : v

// libjpeg-turbo jidctint.c constants (CONST_BITS = 13).
const CONST_BITS = 13
const PASS1_BITS = 2
const FIX_0_298631336 = 2446
const FIX_0_390180644 = 3196
const FIX_0_541196100 = 4433
const FIX_0_765366865 = 6270
const FIX_0_899976223 = 7373
const FIX_1_175875602 = 9633
const FIX_1_501321110 = 12299
const FIX_1_847759065 = 15137
const FIX_1_961570560 = 16069
const FIX_2_053119869 = 16819
const FIX_2_562915447 = 20995
const FIX_3_072711026 = 25172

/** Arithmetic right shift with rounding, exact for any magnitude a double holds. */
const descale = (x: number, n: number): number => Math.floor((x + 2 ** (n - 1)) / 2 ** n)

const work = new Float64Array(64)
const butterfly = new Float64Array(8)
const row = new Float64Array(8)

/**
 * The even/odd butterfly of jpeg_idct_islow on one column or row (d0 … d7), before descaling:
 * b[k] is output k. Both passes share it; only their descale shifts differ.
 */
function idct1d (d0: number, d1: number, d2: number, d3: number, d4: number, d5: number, d6: number, d7: number, b: Float64Array): void {
  let z1 = (d2 + d6) * FIX_0_541196100
  const tmp2e = z1 + d6 * -FIX_1_847759065
  const tmp3e = z1 + d2 * FIX_0_765366865
  const tmp0e = (d0 + d4) * (1 << CONST_BITS)
  const tmp1e = (d0 - d4) * (1 << CONST_BITS)
  const tmp10 = tmp0e + tmp3e
  const tmp13 = tmp0e - tmp3e
  const tmp11 = tmp1e + tmp2e
  const tmp12 = tmp1e - tmp2e
  let tmp0 = d7
  let tmp1 = d5
  let tmp2 = d3
  let tmp3 = d1
  z1 = tmp0 + tmp3
  let z2 = tmp1 + tmp2
  let z3 = tmp0 + tmp2
  let z4 = tmp1 + tmp3
  const z5 = (z3 + z4) * FIX_1_175875602
  tmp0 *= FIX_0_298631336
  tmp1 *= FIX_2_053119869
  tmp2 *= FIX_3_072711026
  tmp3 *= FIX_1_501321110
  z1 *= -FIX_0_899976223
  z2 *= -FIX_2_562915447
  z3 = z3 * -FIX_1_961570560 + z5
  z4 = z4 * -FIX_0_390180644 + z5
  tmp0 += z1 + z3
  tmp1 += z2 + z4
  tmp2 += z2 + z3
  tmp3 += z1 + z4
  b[0] = tmp10 + tmp3
  b[7] = tmp10 - tmp3
  b[1] = tmp11 + tmp2
  b[6] = tmp11 - tmp2
  b[2] = tmp12 + tmp1
  b[5] = tmp12 - tmp1
  b[3] = tmp13 + tmp0
  b[4] = tmp13 - tmp0
}

/**
 * jpeg_idct_islow on one block of dequantised coefficients (natural order), written into
 * `out` at (x0, y0) with row stride `stride`, clipped to width × height. Bails where the SIMD
 * build of libjpeg-turbo (16-bit lanes) and its C code could disagree.
 */
function idctIslow (coef: Float64Array, out: Uint8Array, stride: number, x0: number, y0: number, width: number, height: number): void {
  // Pass 1: columns.
  const n = CONST_BITS - PASS1_BITS
  for (let c = 0; c < 8; c++) {
    const d0 = coef[c] as number
    const d1 = coef[8 + c] as number
    const d2 = coef[16 + c] as number
    const d3 = coef[24 + c] as number
    const d4 = coef[32 + c] as number
    const d5 = coef[40 + c] as number
    const d6 = coef[48 + c] as number
    const d7 = coef[56 + c] as number
    if (d1 === 0 && d2 === 0 && d3 === 0 && d4 === 0 && d5 === 0 && d6 === 0 && d7 === 0) {
      const dc = d0 * (1 << PASS1_BITS)
      for (let r = 0; r < 8; r++) work[r * 8 + c] = dc
      continue
    }
    idct1d(d0, d1, d2, d3, d4, d5, d6, d7, butterfly)
    for (let r = 0; r < 8; r++) work[r * 8 + c] = descale(butterfly[r] as number, n)
  }
  // The SIMD code keeps this workspace in 16-bit lanes.
  for (let i = 0; i < 64; i++) if ((work[i] as number) > 32767 || (work[i] as number) < -32768) bail()

  // Pass 2: rows, then the range limit (+128, clamp), valid where table and SIMD agree.
  const shift = CONST_BITS + PASS1_BITS + 3
  for (let r = 0; r < 8; r++) {
    const w = r * 8
    const d0 = work[w] as number
    const d1 = work[w + 1] as number
    const d2 = work[w + 2] as number
    const d3 = work[w + 3] as number
    const d4 = work[w + 4] as number
    const d5 = work[w + 5] as number
    const d6 = work[w + 6] as number
    const d7 = work[w + 7] as number
    if (d1 === 0 && d2 === 0 && d3 === 0 && d4 === 0 && d5 === 0 && d6 === 0 && d7 === 0) {
      row.fill(descale(d0, PASS1_BITS + 3))
    } else {
      idct1d(d0, d1, d2, d3, d4, d5, d6, d7, butterfly)
      for (let k = 0; k < 8; k++) row[k] = descale(butterfly[k] as number, shift)
    }
    const y = y0 + r
    for (let c = 0; c < 8; c++) {
      const v = row[c] as number
      if (v < -640 || v > 383) bail()
      const x = x0 + c
      if (y < height && x < width) out[y * stride + x] = v < -128 ? 0 : v > 127 ? 255 : v + 128
    }
  }
}

export interface FastJpegOptions {
  width: number
  height: number
}

/**
 * Decode `buf` to width × height 8-bit grey samples, or null when this fast path does not
 * handle the image. Never throws for malformed input: that is sharp's call.
 */
export function decodeGreyJpeg (buf: Uint8Array, want: FastJpegOptions): Uint8Array | null {
  try {
    return decode(buf, want)
  } catch (err) {
    if (err instanceof Bail || err instanceof RangeError) return null
    throw err
  }
}

function decode (buf: Uint8Array, want: FastJpegOptions): Uint8Array | null {
  // Tables and comments cost work per byte before the first pixel: bounded (fast-path-limit.ts).
  if (buf.length > fastPathMaxBytes(want.width, want.height)) return null
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return null
  const qt: Array<Int32Array | undefined> = []
  const dcTables: Array<Huffman | undefined> = []
  const acTables: Array<Huffman | undefined> = []
  let components: Component[] | null = null
  let width = 0
  let height = 0
  let sawJfif = false
  let o = 2
  for (;;) {
    // Exactly one 0xFF before each marker: fill bytes and garbage are sharp's business.
    if (o + 4 > buf.length || buf[o] !== 0xff) return null
    const marker = buf[o + 1] as number
    const length = ((buf[o + 2] as number) << 8) | (buf[o + 3] as number)
    const start = o + 4
    const end = o + 2 + length
    if (length < 2 || end > buf.length) return null
    switch (marker) {
      case 0xe0: {
        // JFIF 1.x without a thumbnail; anything else in APP0 (JFXX, …) goes to sharp.
        const id = String.fromCharCode(...buf.subarray(start, start + 5))
        if (sawJfif || length !== 16 || id !== 'JFIF\0' || buf[start + 5] !== 1 || buf[start + 12] !== 0 || buf[start + 13] !== 0) return null
        sawJfif = true
        break
      }
      case 0xfe: // COM: a comment, no effect on pixels
        break
      case 0xdb: { // DQT
        let p = start
        while (p < end) {
          const pq = (buf[p] as number) >> 4
          const tq = (buf[p] as number) & 15
          if (pq !== 0 || tq > 3 || p + 65 > end) return null
          const table = new Int32Array(64)
          for (let i = 0; i < 64; i++) table[ZIGZAG[i] as number] = buf[p + 1 + i] as number
          qt[tq] = table
          p += 65
        }
        if (p !== end) return null
        break
      }
      case 0xc4: { // DHT
        let p = start
        while (p < end) {
          const tc = (buf[p] as number) >> 4
          const th = (buf[p] as number) & 15
          if (tc > 1 || th > 3 || p + 17 > end) return null
          const counts = buf.subarray(p + 1, p + 17)
          let total = 0
          for (const c of counts) total += c
          if (total > 256 || p + 17 + total > end) return null
          const table = buildHuffman(counts, buf.subarray(p + 17, p + 17 + total), tc === 0)
          if (tc === 0) dcTables[th] = table
          else acTables[th] = table
          p += 17 + total
        }
        if (p !== end) return null
        break
      }
      case 0xc0:
      case 0xc1: { // SOF0 baseline, SOF1 extended sequential (Huffman)
        if (components !== null || length < 8) return null
        if (buf[start] !== 8) return null
        height = ((buf[start + 1] as number) << 8) | (buf[start + 2] as number)
        width = ((buf[start + 3] as number) << 8) | (buf[start + 4] as number)
        if (width !== want.width || height !== want.height) return null
        const nf = buf[start + 5] as number
        if ((nf !== 1 && nf !== 3) || length !== 8 + 3 * nf) return null
        components = []
        for (let i = 0; i < nf; i++) {
          const b = start + 6 + 3 * i
          const hv = buf[b + 1] as number
          components.push({ id: buf[b] as number, h: hv >> 4, v: hv & 15, tq: buf[b + 2] as number, dc: null, ac: null, pred: 0, blocksWide: 0, blocksHigh: 0, plane: null })
        }
        if (nf === 3) {
          // YCbCr as libjpeg reads it without JFIF/Adobe markers: component ids 1, 2, 3.
          const [y, cb, cr] = components as [Component, Component, Component]
          if (y.id !== 1 || cb.id !== 2 || cr.id !== 3) return null
          if (y.h < 1 || y.h > 2 || y.v < 1 || y.v > 2 || cb.h !== 1 || cb.v !== 1 || cr.h !== 1 || cr.v !== 1) return null
        } else if (components[0]!.h < 1 || components[0]!.h > 4 || components[0]!.v < 1 || components[0]!.v > 4) {
          return null
        }
        break
      }
      case 0xda: { // SOS: the one scan, then EOI
        if (components === null) return null
        const ns = buf[start] as number
        if (ns !== components.length || length !== 6 + 2 * ns) return null
        for (let i = 0; i < ns; i++) {
          const comp = components[i]!
          if (buf[start + 1 + 2 * i] !== comp.id) return null
          const sel = buf[start + 2 + 2 * i] as number
          comp.dc = dcTables[sel >> 4] ?? null
          comp.ac = acTables[sel & 15] ?? null
          if (comp.dc === null || comp.ac === null || qt[comp.tq] === undefined) return null
        }
        if (buf[end - 3] !== 0 || buf[end - 2] !== 63 || buf[end - 1] !== 0) return null
        return scan(buf, end, components, qt, width, height)
      }
      default:
        // APP1 (EXIF orientation, XMP), APP2 (ICC), APP14 (Adobe colour transform), other
        // APPn, DRI (restart markers), progressive/lossless/arithmetic SOFs, DNL, …: sharp.
        return null
    }
    o = end
  }
}

function scan (buf: Uint8Array, dataStart: number, components: Component[], qt: Array<Int32Array | undefined>, width: number, height: number): Uint8Array | null {
  const reader = new BitReader(buf, dataStart, buf.length)
  const luma = components[0]!
  const coef = new Float64Array(64)
  const out = new Uint8Array(width * height)
  const decodeBlock = (comp: Component, keep: boolean, bx: number, by: number): void => {
    const q = qt[comp.tq] as Int32Array
    const s = reader.decode(comp.dc!)
    if (s > 11) bail()
    const diff = s === 0 ? 0 : extend(reader.receive(s), s)
    comp.pred += diff
    if (comp.pred > 2047 || comp.pred < -2048) bail()
    if (keep) { coef.fill(0); coef[0] = comp.pred * (q[0] as number) } else if (comp.pred !== 0) bail() // chroma must carry nothing
    for (let k = 1; k < 64;) {
      const rs = reader.decode(comp.ac!)
      const r = rs >> 4
      const size = rs & 15
      if (size === 0) {
        if (r !== 15) break // EOB
        k += 16
        continue
      }
      k += r
      if (k > 63 || size > 10) bail()
      const v = extend(reader.receive(size), size)
      if (!keep) bail()
      const z = ZIGZAG[k] as number
      coef[z] = v * (q[z] as number)
      k++
    }
    if (!keep) return
    // Past these magnitudes libjpeg-turbo's 16-bit SIMD lanes could wrap where C does not.
    for (let i = 0; i < 64; i++) if (Math.abs(coef[i] as number) > 4095) bail()
    idctIslow(coef, out, width, bx * 8, by * 8, width, height)
  }

  if (components.length === 1) {
    // A single-component scan is not interleaved: one block per MCU, only the blocks the image covers.
    const bw = Math.ceil(width / 8)
    const bh = Math.ceil(height / 8)
    for (let by = 0; by < bh; by++) for (let bx = 0; bx < bw; bx++) decodeBlock(luma, true, bx, by)
  } else {
    const mcuW = 8 * luma.h
    const mcuH = 8 * luma.v
    const mcusWide = Math.ceil(width / mcuW)
    const mcusHigh = Math.ceil(height / mcuH)
    for (let my = 0; my < mcusHigh; my++) {
      for (let mx = 0; mx < mcusWide; mx++) {
        for (let v = 0; v < luma.v; v++) for (let h = 0; h < luma.h; h++) decodeBlock(luma, true, mx * luma.h + h, my * luma.v + v)
        decodeBlock(components[1]!, false, 0, 0)
        decodeBlock(components[2]!, false, 0, 0)
      }
    }
  }
  // The entropy data must end here: only padding bits of the last byte, then EOI, then nothing.
  if (reader.leftover >= 8) return null
  const p = reader.pos
  if (p + 2 !== buf.length || buf[p] !== 0xff || buf[p + 1] !== 0xd9) return null
  return out
}
