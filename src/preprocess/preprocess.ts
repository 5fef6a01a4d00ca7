// One image (bytes) → one normalised Float32 CHW tensor for a model's input spec.
// sharp does the decoding: failOn 'warning' rejects truncated/corrupt files, and
// limitInputPixels is checked against the header before any pixel is allocated.
// In front of sharp sit fast paths for inputs on which sharp's pipeline is an identity
// (already at the model's size, already grey, nothing to flatten or orient): an 8-bit grey
// PNG (png-fast.ts), a baseline JPEG with grey content (jpeg-fast.ts) and raw grey pixels.
// They skip sharp's fixed per-call cost (about 1 ms against 20–70 µs; docs/performance.md)
// and give the same tensors bit for bit; anything they do not vouch for goes to sharp,
// errors included.
import sharp from 'sharp'
import { InvalidImageError, PixelLimitError, UnsupportedImageTypeError } from '../errors.js'
import type { InputSpec } from '../registry/manifest-schema.js'
import { DecodeBudget, decodedBytes, decodeMemory } from './decode-budget.js'
import { fastPathMaxBytes } from './fast-path-limit.js'
import { decodeGreyJpeg } from './jpeg-fast.js'
import { decodeGreyPng } from './png-fast.js'
import { sniffImage, type SupportedFormat } from './sniff.js'
import { hwcToNormalizedChw } from './to-tensor.js'

// Cached decoded images only cost memory here: every request is a different image.
sharp.cache(false)

export interface PreprocessLimits {
  maxInputPixels: number
  /** Use the fast paths where they apply (default true); false = sharp for every image. */
  fastPath?: boolean
  /** Largest decoded size of one image, width × height × channels × bytes per sample. */
  maxDecodeBytes?: number
  /** Memory for sharp decodes, shared by every request of an app; unset: not metered. */
  decodeBudget?: DecodeBudget
  /** Longest a decode waits for that memory, ms (then 503). */
  decodeWaitMs?: number
}

export interface Preprocessed {
  tensor: Float32Array
  format: SupportedFormat | 'raw'
  /** Which decoder produced the pixels: a fast path or sharp. */
  decoder: FastDecoder | 'sharp'
}

export type FastDecoder = 'png-fast' | 'jpeg-fast' | 'raw-fast'

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

/**
 * The fast paths: pixels for `spec` without sharp, or null when sharp must decide. Only for a
 * one-channel grey model, an image already at its size, and a pixel limit it is within.
 */
export function fastPixels (input: Uint8Array | RawImage, format: SupportedFormat | 'raw', spec: InputSpec, limits: PreprocessLimits): { pixels: Uint8Array, decoder: FastDecoder } | null {
  if (limits.fastPath === false || spec.colour !== 'grey' || spec.channels !== 1) return null
  if (spec.width * spec.height > limits.maxInputPixels) return null
  if (input instanceof Uint8Array) {
    // The decoders run on the event loop: above a few kB (more than any real image at the
    // model's size) the bytes go to sharp without being scanned. The decoders check it too.
    if (input.length > fastPathMaxBytes(spec.width, spec.height)) return null
    if (format === 'png') {
      const pixels = decodeGreyPng(input, spec)
      return pixels === null ? null : { pixels, decoder: 'png-fast' }
    }
    if (format === 'jpeg') {
      const pixels = decodeGreyJpeg(input, spec)
      return pixels === null ? null : { pixels, decoder: 'jpeg-fast' }
    }
    return null
  }
  if (input.channels !== 1 || input.width !== spec.width || input.height !== spec.height) return null
  if (input.pixels.length !== spec.width * spec.height) return null
  return { pixels: input.pixels, decoder: 'raw-fast' }
}

export async function preprocess (input: Uint8Array | RawImage, spec: InputSpec, limits: PreprocessLimits, what = 'image'): Promise<Preprocessed> {
  const raw = !(input instanceof Uint8Array)
  const format = raw ? 'raw' : requireSupportedImage(input, what)
  const fast = fastPixels(input, format, spec, limits)
  if (fast !== null) {
    return { tensor: hwcToNormalizedChw(fast.pixels, spec.width, spec.height, 1, spec.mean, spec.std), format, decoder: fast.decoder }
  }
  const release = await reserveDecode(input, limits, what)
  try {
    return await decodeWithSharp(input, format, spec, limits, what)
  } finally {
    release()
  }
}

const MiB = 1024 * 1024

/**
 * Before sharp decodes anything: read the header (sharp's metadata(): header only, off the main
 * thread), refuse an image over MAX_INPUT_PIXELS or MAX_DECODE_BYTES (413), then wait for its
 * share of the decode memory. Returns the function that gives the share back.
 */
async function reserveDecode (input: Uint8Array | RawImage, limits: PreprocessLimits, what: string): Promise<() => void> {
  if (limits.maxDecodeBytes === undefined && limits.decodeBudget === undefined) return () => {}
  let header: { width?: number | undefined, height?: number | undefined, channels?: number | undefined, depth?: string | undefined }
  if (input instanceof Uint8Array) {
    try {
      header = await sharp(input, { limitInputPixels: false }).metadata()
    } catch (err) {
      throw translateSharpError(err as Error, what, limits)
    }
  } else {
    header = { width: input.width, height: input.height, channels: input.channels, depth: 'uchar' }
  }
  const pixels = (header.width ?? 0) * (header.height ?? 0)
  if (pixels > limits.maxInputPixels) {
    throw new PixelLimitError(`${what} has more than ${limits.maxInputPixels} pixels (MAX_INPUT_PIXELS)`)
  }
  const bytes = decodedBytes(header)
  if (limits.maxDecodeBytes !== undefined && bytes > limits.maxDecodeBytes) {
    throw new PixelLimitError(`${what} decodes to ${(bytes / MiB).toFixed(1)} MiB (${header.width}×${header.height}, ${header.channels} channels of ${header.depth}), more than ${limits.maxDecodeBytes} bytes (MAX_DECODE_BYTES)`)
  }
  if (limits.decodeBudget === undefined) return () => {}
  return await limits.decodeBudget.acquire(Math.min(decodeMemory(bytes), limits.decodeBudget.capacity), limits.decodeWaitMs ?? 30_000)
}

async function decodeWithSharp (input: Uint8Array | RawImage, format: SupportedFormat | 'raw', spec: InputSpec, limits: PreprocessLimits, what: string): Promise<Preprocessed> {
  const source = !(input instanceof Uint8Array)
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
  return { tensor, format, decoder: 'sharp' }
}
