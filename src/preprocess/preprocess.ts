// One image (bytes) → one normalised Float32 CHW tensor for a model's input spec.
// sharp does the decoding: failOn 'warning' rejects truncated/corrupt files, and
// limitInputPixels is checked against the header before any pixel is allocated.
import sharp from 'sharp'
import { InvalidImageError, PixelLimitError, UnsupportedImageTypeError } from '../errors.js'
import type { InputSpec } from '../registry/manifest-schema.js'
import { sniffImage, type SupportedFormat } from './sniff.js'
import { hwcToNormalizedChw } from './to-tensor.js'

// Cached decoded images only cost memory here: every request is a different image.
sharp.cache(false)

export interface PreprocessLimits {
  maxInputPixels: number
}

export interface Preprocessed {
  tensor: Float32Array
  format: SupportedFormat | 'raw'
}

/** Pixels already decoded (IDX datasets, generated OOD sets): skip only the decoder. */
export interface RawImage {
  pixels: Uint8Array
  width: number
  height: number
  channels: 1 | 3 | 4
}

/** Check the bytes are a PNG, JPEG or WebP; throws a catalogue error otherwise. */
export function requireSupportedImage (buf: Uint8Array, what = 'image'): SupportedFormat {
  const sniffed = sniffImage(buf)
  if (sniffed.kind === 'supported') return sniffed.format
  if (sniffed.kind === 'unsupported') {
    throw new UnsupportedImageTypeError(`${what} is ${sniffed.format}, which this service does not decode; send PNG, JPEG or WebP`)
  }
  throw new InvalidImageError(`${what} is not a PNG, JPEG or WebP image`)
}

function translateSharpError (err: Error, what: string, limits: PreprocessLimits): Error {
  const message = err.message ?? String(err)
  if (/pixel limit/i.test(message)) {
    return new PixelLimitError(`${what} has more than ${limits.maxInputPixels} pixels (MAX_INPUT_PIXELS)`)
  }
  // sharp/libvips messages are informative ("VipsJpeg: Premature end of input file") and
  // carry no server paths for buffer input, so they are passed on.
  return new InvalidImageError(`${what} could not be decoded: ${message.split('\n')[0]}`)
}

export async function preprocess (input: Uint8Array | RawImage, spec: InputSpec, limits: PreprocessLimits, what = 'image'): Promise<Preprocessed> {
  const raw = !(input instanceof Uint8Array)
  const format = raw ? 'raw' : requireSupportedImage(input, what)
  const source = raw
    ? sharp(input.pixels, { raw: { width: input.width, height: input.height, channels: input.channels } })
    : sharp(input, { failOn: 'warning', limitInputPixels: limits.maxInputPixels })
  let pipeline = source
    .autoOrient()
    // Transparent pixels become black, the background of the training images.
    .flatten({ background: '#000000' })
  pipeline = spec.colour === 'grey' ? pipeline.greyscale() : pipeline.toColourspace('srgb')
  pipeline = pipeline.resize(spec.width, spec.height, { fit: spec.fit, background: '#000000' })
  let result: { data: Buffer, info: { width: number, height: number, channels: number } }
  try {
    result = await pipeline.raw().toBuffer({ resolveWithObject: true })
  } catch (err) {
    throw translateSharpError(err as Error, what, limits)
  }
  const { data, info } = result
  if (info.width !== spec.width || info.height !== spec.height || info.channels !== spec.channels) {
    throw new InvalidImageError(`${what} decoded to ${info.width}×${info.height}×${info.channels}, expected ${spec.width}×${spec.height}×${spec.channels}`)
  }
  const tensor = hwcToNormalizedChw(data, info.width, info.height, info.channels, spec.mean, spec.std)
  return { tensor, format }
}
