// A fast path for the PNG this service sees most: 8-bit, non-interlaced greyscale (or R = G = B
// truecolour) already at the model's input size. For such an image sharp's pipeline (decode →
// greyscale → resize to the same size) is an identity on the decoded samples, and its cost is
// almost all fixed per-call overhead (thread hand-offs, pipeline set-up), several times the
// cost of decoding 1 kB here.
//
// It is a fast path, not a second decoder. Three checks decide which PNGs it takes: the size
// bound (fast-path-limit.ts), the chunk layout (png-structure.ts: what sharp would decode to
// these same samples, CRCs valid) and the zlib stream (png-zlib.ts: what libpng inflates
// without complaint, inflated by node:zlib). Then the row filters are undone
// (png-unfilter.ts). Everything the checks refuse returns null and the caller hands the bytes
// to sharp, which decodes them or rejects them with its own error. So the fast path never
// accepts what sharp refuses and never produces a tensor sharp would not (fast-path.test.ts,
// fast-path-hostile.test.ts, differential-fuzz.test.ts).
//
// Why no PNG library here: fast-png 8 and pngjs 7 give the same pixels, but neither honours the
// window a zlib header declares (so neither gives libpng's verdict), fast-png's JavaScript
// inflater spends ~20 ms on a hostile 3 kB stream, and wrapping it behind node:zlib cost the
// service 10–14 % of its c=32 throughput on PNG bodies (docs/performance.md). What remains of
// ours after the checks is the five row filters.
import { crc32 } from './crc32.js'
import { fastPathMaxBytes } from './fast-path-limit.js'
import { fastPngLayout } from './png-structure.js'
import { unfilter } from './png-unfilter.js'
import { inflateLikeLibpng } from './png-zlib.js'

// The test PNG writer (test/helpers/png-writer.ts) takes its CRC from here.
export { crc32 }

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
  const { width, height } = want
  if (buf.length > fastPathMaxBytes(width, height)) return null
  const layout = fastPngLayout(buf, width, height)
  if (layout === null) return null
  const { channels } = layout
  const filtered = inflateLikeLibpng(layout.zlib, (width * channels + 1) * height)
  if (filtered === null) return null
  const samples = unfilter(filtered, width, height, channels)
  if (samples === null) return null
  return channels === 1 ? samples : greyOf(samples)
}

/**
 * Truecolour to grey only where every pixel is grey, which sharp's sRGB → B_W conversion maps to
 * itself (pinned for all 256 levels by fast-path.test.ts); real colour goes to sharp.
 */
function greyOf (rgb: Uint8Array): Uint8Array | null {
  const grey = new Uint8Array(rgb.length / 3)
  for (let i = 0, j = 0; i < grey.length; i++, j += 3) {
    const r = rgb[j] as number
    if (rgb[j + 1] !== r || rgb[j + 2] !== r) return null
    grey[i] = r
  }
  return grey
}
