// PNG's five row filters undone (PNG spec § 9.2), for 8-bit samples: bpp = channels. The only
// part of the PNG fast path that is not a check; it is arithmetic on bytes the checks have
// already vouched for (png-structure.ts, png-zlib.ts), pinned bit for bit against sharp by
// fast-path.test.ts and differential-fuzz.test.ts.

/** Rows of width × channels samples, or null for a filter type other than 0–4 (libpng refuses it). */
export function unfilter (data: Uint8Array, width: number, height: number, channels: number): Uint8Array | null {
  const stride = width * channels
  const rows = new Uint8Array(stride * height)
  for (let y = 0; y < height; y++) {
    const filter = data[y * (stride + 1)]
    const src = y * (stride + 1) + 1
    const dst = y * stride
    const up = dst - stride
    switch (filter) {
      case 0:
        rows.set(data.subarray(src, src + stride), dst)
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
  return rows
}
