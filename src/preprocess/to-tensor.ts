// Interleaved 8-bit pixels (HWC, as sharp's raw output) → normalised Float32 NCHW, the exact
// transform of training/train.py: (pixel / 255 − mean[c]) / std[c].
export function hwcToNormalizedChw (
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  mean: readonly number[],
  std: readonly number[],
  out: Float32Array = new Float32Array(width * height * channels),
  offset = 0
): Float32Array {
  const plane = width * height
  for (let c = 0; c < channels; c++) {
    // Fold the two steps into one multiply-add per pixel: (p/255 − m)/s = p·a + b.
    const a = 1 / (255 * (std[c] as number))
    const b = -(mean[c] as number) / (std[c] as number)
    const base = offset + c * plane
    for (let i = 0, j = c; i < plane; i++, j += channels) out[base + i] = (pixels[j] as number) * a + b
  }
  return out
}
