// Take a PNG apart into chunks and put it back together with fresh CRCs, so a test can change
// a chunk's type, length or data and still get past the CRC check to the part it means to test.
import { chunk, SIGNATURE } from '../helpers/png-writer.js'

export interface PngChunk {
  type: string
  data: Buffer
}

export function splitPng (png: Uint8Array): PngChunk[] {
  const buf = Buffer.from(png)
  const chunks: PngChunk[] = []
  for (let o = 8; o + 12 <= buf.length;) {
    const length = buf.readUInt32BE(o)
    chunks.push({ type: buf.toString('latin1', o + 4, o + 8), data: buf.subarray(o + 8, o + 8 + length) })
    o += 12 + length
  }
  return chunks
}

export function joinPng (chunks: PngChunk[]): Buffer {
  return Buffer.concat([SIGNATURE, ...chunks.map((c) => chunk(c.type, c.data))])
}

/** The concatenated IDAT data: the zlib stream. */
export function zlibOf (chunks: PngChunk[]): Buffer {
  return Buffer.concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.data))
}

/** Replace all IDAT chunks with one holding `z`, where the first IDAT was. */
export function withZlib (chunks: PngChunk[], z: Buffer): PngChunk[] {
  const at = chunks.findIndex((c) => c.type === 'IDAT')
  const rest = chunks.filter((c) => c.type !== 'IDAT')
  rest.splice(at, 0, { type: 'IDAT', data: z })
  return rest
}

/** Set CINFO (the window size, 2^(CINFO+8) bytes) of a zlib header and fix its check bits. */
export function setZlibWindow (z: Uint8Array, cinfo: number): Buffer {
  const b = Buffer.from(z)
  b[0] = (cinfo << 4) | (b[0]! & 15)
  const flg = b[1]! & 0xe0
  b[1] = flg | ((31 - ((b[0]! * 256 + flg) % 31)) % 31)
  return b
}

export function adler32 (data: Uint8Array): number {
  let a = 1
  let b = 0
  for (const v of data) {
    a = (a + v) % 65521
    b = (b + a) % 65521
  }
  return ((b << 16) | a) >>> 0
}
