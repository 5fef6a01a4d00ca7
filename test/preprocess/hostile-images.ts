// Inputs built to make a main-thread decoder work hard or to find where it and sharp disagree:
// each is a valid 28×28 grey image wrapped in something a real encoder never writes.
import { deflateRawSync } from 'node:zlib'
import sharp from 'sharp'
import { chunk, filterRows, ihdr, SIGNATURE, writePng } from '../helpers/png-writer.js'
import { findTable, joinJpeg, segment, splitJpeg, writeDht } from './jpeg-segments.js'
import { adler32 } from './png-chunks.js'

/** A 28×28 grey test pattern with every kind of edge. */
export function pattern (): Uint8Array {
  const p = new Uint8Array(28 * 28)
  for (let i = 0; i < p.length; i++) p[i] = (i * 37) % 256
  return p
}

/** A grey baseline JPEG of `pixels` with libjpeg's standard (not optimised) Huffman tables. */
export async function greyJpeg (pixels = pattern(), quality = 90): Promise<Buffer> {
  return await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').jpeg({ quality, optimiseCoding: false }).toBuffer()
}

/** `jpeg` with `extra` (whole segments) inserted after SOI and the JFIF segment. */
function insertAfterHeader (jpeg: Buffer, extra: Buffer[]): Buffer {
  const at = jpeg[3] === 0xe0 ? 4 + jpeg.readUInt16BE(4) : 2
  return Buffer.concat([jpeg.subarray(0, at), ...extra, jpeg.subarray(at)])
}

/** Segments of `tableBytes`-sized tables, `bytes` in all, each segment as full as it can be. */
function flood (marker: number, table: Buffer, bytes: number): Buffer[] {
  const perSegment = Math.floor((0xffff - 2) / table.length)
  const segments: Buffer[] = []
  for (let left = bytes; left > 0;) {
    const n = Math.max(1, Math.min(perSegment, Math.floor((left - 4) / table.length)))
    segments.push(segment(marker, Buffer.concat(Array.from({ length: n }, () => table))))
    left -= 4 + n * table.length
  }
  return segments
}

/**
 * About `bytes` of DHT segments in front of a valid frame: 256-symbol AC tables in a slot the
 * scan does not use, the most work per byte for a decoder that builds every table it reads.
 */
export async function dhtFloodJpeg (bytes: number): Promise<Buffer> {
  const counts = new Array<number>(16).fill(0)
  counts[8] = 255
  counts[9] = 1
  const table = Buffer.from([0x13, ...counts, ...Array.from({ length: 256 }, (_, i) => i)])
  return insertAfterHeader(await greyJpeg(), flood(0xc4, table, bytes))
}

/** About `bytes` of DQT segments (8-bit tables for slot 3, which no component uses). */
export async function dqtFloodJpeg (bytes: number): Promise<Buffer> {
  const table = Buffer.from([0x03, ...new Array<number>(64).fill(1)])
  return insertAfterHeader(await greyJpeg(), flood(0xdb, table, bytes))
}

/**
 * The standard luma DC table with one more 9-bit code: the last code is then all ones, which
 * libjpeg refuses ("Bogus Huffman table definition"). The image never uses that code.
 */
export async function allOnesCodeJpeg (): Promise<Buffer> {
  const parts = splitJpeg(await greyJpeg())
  const { seg, tables, table } = findTable(parts, 0)
  let last = 15
  while (table.counts[last] === 0) last--
  table.counts[last]!++
  table.symbols.push(11)
  seg.data = writeDht(tables)
  return joinJpeg(parts)
}

/** The standard luma DC table with its rarest symbol (11, never used here) replaced by 16. */
export async function dcSymbolOver15Jpeg (symbol = 16): Promise<Buffer> {
  const parts = splitJpeg(await greyJpeg())
  const { seg, tables, table } = findTable(parts, 0)
  table.symbols[table.symbols.length - 1] = symbol
  seg.data = writeDht(tables)
  return joinJpeg(parts)
}

/** A grey PNG of the pattern with an ancillary chunk of `bytes` zeros before IDAT. */
export function bigAncillaryPng (bytes: number, type = 'tEXt'): Buffer {
  return writePng(pattern(), { before: [chunk(type, Buffer.alloc(bytes))] })
}

/**
 * A grey PNG whose zlib stream starts with `count` empty stored deflate blocks (5 bytes each):
 * valid, and 5 × count bytes of work for an inflater before the first pixel.
 */
export function emptyStoredBlocksPng (count: number): Buffer {
  const raw = filterRows(pattern(), 28, 28, 1, 0)
  const adler = Buffer.alloc(4)
  adler.writeUInt32BE(adler32(raw))
  const empty = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff])
  const z = Buffer.concat([Buffer.from([0x78, 0x01]), Buffer.alloc(count * 5).fill(empty), deflateRawSync(raw), adler])
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(28, 28)), chunk('IDAT', z), chunk('IEND')])
}

/**
 * A grey PNG whose zlib header declares a 2^(8 + cinfo)-byte window while the stream refers
 * 406 bytes back (the lower half of the image repeats the upper half).
 */
export function smallWindowPng (cinfo: number): Buffer {
  let s = 7
  const pixels = new Uint8Array(28 * 28)
  for (let i = 0; i < 28 * 14; i++) { s = (s * 1103515245 + 12345) >>> 0; pixels[i] = s >>> 24 }
  pixels.copyWithin(28 * 14, 0, 28 * 14)
  const raw = filterRows(pixels, 28, 28, 1, 0)
  const adler = Buffer.alloc(4)
  adler.writeUInt32BE(adler32(raw))
  const cmf = (cinfo << 4) | 8
  const flg = (31 - ((cmf * 256) % 31)) % 31
  const z = Buffer.concat([Buffer.from([cmf, flg]), deflateRawSync(raw, { level: 9 }), adler])
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(28, 28)), chunk('IDAT', z), chunk('IEND')])
}

/** LSB-first bit writer for hand-made deflate blocks; Huffman codes go in MSB first. */
class BitWriter {
  private readonly bytes: number[] = []
  private cur = 0
  private n = 0
  bits (v: number, len: number): void {
    for (let i = 0; i < len; i++) {
      this.cur |= ((v >> i) & 1) << this.n
      if (++this.n === 8) { this.bytes.push(this.cur); this.cur = 0; this.n = 0 }
    }
  }

  code (c: number, len: number): void {
    for (let i = len - 1; i >= 0; i--) this.bits((c >> i) & 1, 1)
  }

  done (): Buffer {
    if (this.n > 0) this.bytes.push(this.cur)
    return Buffer.from(this.bytes)
  }
}

/** Canonical Huffman codes for symbol → length. */
function canonical (lengths: Map<number, number>): Map<number, [number, number]> {
  const codes = new Map<number, [number, number]>()
  const sorted = [...lengths].sort((a, b) => a[1] - b[1] || a[0] - b[0])
  let code = 0
  let len = sorted[0]![1]
  for (const [symbol, l] of sorted) {
    code <<= l - len
    len = l
    codes.set(symbol, [code++, l])
  }
  return codes
}

/**
 * A 28×28 PNG (all black; grey or truecolour) whose zlib stream is `blocks` empty dynamic-Huffman
 * blocks, each with a complete literal code 1..15 bits deep, then one block with the image:
 * valid for zlib and libpng, 22 bytes a block, and as much table building per byte as it gets.
 */
export function deepBlocksPng (blocks: number, channels: 1 | 3 = 1): Buffer {
  // Literals 0..14 get lengths 1..15 and end-of-block 15: a complete code, 15 bits deep.
  const lit = new Map<number, number>(Array.from({ length: 15 }, (_, s) => [s, s + 1]))
  lit.set(256, 15)
  const litCodes = canonical(lit)
  // Code-length alphabet: lengths 1..15 and 18 (a run of zeros), 4 bits each (complete).
  const clLengths = new Map<number, number>([...Array.from({ length: 15 }, (_, i): [number, number] => [i + 1, 4]), [18, 4]])
  const cl = canonical(clLengths)
  const ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
  const raw = Buffer.alloc((28 * channels + 1) * 28)
  const w = new BitWriter()
  for (let b = 0; b <= blocks; b++) {
    w.bits(b === blocks ? 1 : 0, 1) // BFINAL
    w.bits(2, 2) // dynamic Huffman
    w.bits(0, 5) // 257 literal/length codes
    w.bits(0, 5) // 1 distance code
    w.bits(15, 4) // all 19 code-length code lengths
    for (const s of ORDER) w.bits(clLengths.get(s) ?? 0, 3)
    const put = (s: number): void => { const [c, l] = cl.get(s)!; w.code(c, l) }
    for (let s = 0; s < 15; s++) put(s + 1) // literals 0..14: lengths 1..15
    put(18); w.bits(138 - 11, 7) // literals 15..152: unused
    put(18); w.bits(103 - 11, 7) // literals 153..255: unused
    put(15) // end of block: length 15
    put(1) // the one distance code: length 1
    if (b === blocks) for (const v of raw) { const [c, l] = litCodes.get(v)!; w.code(c, l) }
    const [c, l] = litCodes.get(256)!
    w.code(c, l)
  }
  const adler = Buffer.alloc(4)
  adler.writeUInt32BE(adler32(raw))
  const z = Buffer.concat([Buffer.from([0x78, 0x01]), w.done(), adler])
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(28, 28, 8, channels === 1 ? 0 : 2)), chunk('IDAT', z), chunk('IEND')])
}
