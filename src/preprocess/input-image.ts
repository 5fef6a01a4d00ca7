// The image as the model saw it (?include=input): the input tensor read back into 8-bit pixels
// and encoded as PNG. Read back from the tensor rather than kept from the decoder, so it shows
// what went into ONNX Runtime whichever path (fast path or sharp) made it.
import sharp from 'sharp'
import type { InputSpec } from '../registry/manifest-schema.js'

/**
 * Normalised Float32 CHW → interleaved 8-bit HWC: the inverse of hwcToNormalizedChw
 * (to-tensor.ts). Exact: a pixel p became p·a + b in float32, whose rounding error is far
 * below half a level, so rounding (x − b) / a gives p back.
 */
export function tensorToPixels (tensor: Float32Array, spec: Pick<InputSpec, 'channels' | 'height' | 'width' | 'mean' | 'std'>): Uint8Array {
  const { channels, height, width } = spec
  const plane = width * height
  if (tensor.length !== plane * channels) throw new RangeError(`tensor of ${tensor.length} values for a ${channels}×${height}×${width} input`)
  const pixels = new Uint8Array(plane * channels)
  for (let c = 0; c < channels; c++) {
    const a = 1 / (255 * (spec.std[c] as number))
    const b = -(spec.mean[c] as number) / (spec.std[c] as number)
    for (let i = 0, j = c; i < plane; i++, j += channels) {
      const p = Math.round(((tensor[c * plane + i] as number) - b) / a)
      pixels[j] = p < 0 ? 0 : p > 255 ? 255 : p
    }
  }
  return pixels
}

/** The tensor as a PNG data URL (greyscale or RGB, at the model's input size). */
export async function inputImageDataUrl (tensor: Float32Array, spec: Pick<InputSpec, 'channels' | 'height' | 'width' | 'mean' | 'std'>): Promise<string> {
  const pixels = tensorToPixels(tensor, spec)
  const image = sharp(pixels, { raw: { width: spec.width, height: spec.height, channels: spec.channels } })
  // One band would be written as RGB unless it is said to be grey.
  const png = await (spec.channels === 1 ? image.toColourspace('b-w') : image).png().toBuffer()
  return `data:image/png;base64,${png.toString('base64')}`
}
