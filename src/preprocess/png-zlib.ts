// A PNG's zlib stream inflated, where libpng (sharp's PNG decoder) would inflate it to exactly
// `expected` bytes without complaint; null where it would not, or where node:zlib cannot tell,
// and then sharp decides. Neither fast-png nor node's one-shot inflate is enough on its own:
// - libpng inflates with the window the zlib header declares (CINFO: 2^(CINFO + 8) bytes) and
//   a distance beyond it fails, "invalid distance too far back". zlib allows a back-reference
//   into the output of the same inflate() call, so node's inflateSync, which writes the whole
//   image in one call, accepts such streams even with windowBits = CINFO + 8; libpng, which
//   inflates one row per call, refuses them unless the distance happens to fall inside the row
//   being written (measured with sharp 0.35.5 / libpng 1.6.58: CINFO 0 refused, 1 accepted for
//   406-byte distances). Where the window covers the whole image no distance can exceed it, so
//   the two agree; that is all this fast path takes. Real encoders never declare less: libpng
//   (sharp's encoder) picks the smallest power of two ≥ the image data (1 kB for a 28×28 grey
//   image, 4 kB for truecolour), zlib 32 kB.
// - The stream must end exactly where the data ends, its Adler-32 right, and be no longer than
//   storing the rows would take (below): the most inflate work per byte a hostile stream buys.
import { inflateSync } from 'node:zlib'

export function inflateLikeLibpng (z: Uint8Array, expected: number): Buffer | null {
  if (z.length < 6) return null
  const cmf = z[0] as number
  const flg = z[1] as number
  // Deflate, a window of at most 32 kB, check bits right, no preset dictionary.
  if ((cmf & 15) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flg) % 31 !== 0 || (flg & 0x20) !== 0) return null
  if (2 ** ((cmf >> 4) + 8) < expected) return null
  // No encoder needs more than storing the rows uncompressed takes (5 bytes per block of up to
  // 16 kB as zlib writes them, 6 of zlib framing; 64 to spare). More is padding, and the most
  // inflate work per byte a hostile stream can buy: tiny dynamic-Huffman blocks, ~3 µs each.
  if (z.length > expected + 5 * Math.ceil(expected / 16384) + 70) return null
  try {
    const inflated = inflateSync(z, { info: true, maxOutputLength: expected + 1 }) as unknown as { buffer: Buffer, engine: { bytesWritten: number } }
    // Exactly the image's bytes, and a stream (Adler-32 checked) that ends where the data ends.
    return inflated.buffer.length === expected && inflated.engine.bytesWritten === z.length ? inflated.buffer : null
  } catch {
    return null
  }
}
