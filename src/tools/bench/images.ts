// The images the bench sends and preprocesses: real Fashion-MNIST test images, encoded the way
// clients send them, plus a large photo-like JPEG for the resize path.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import sharp from 'sharp'
import { fashionDir } from '../datasets/builtin.js'
import { readIdxImages } from '../datasets/idx.js'
import { repoRoot } from '../datasets/repo-root.js'
import type { SupportedFormat } from '../../preprocess/sniff.js'

/** `count` Fashion-MNIST test images as 28×28 grey pixels (the repo's fixtures when the data set is missing). */
export async function fashionPixels (count: number): Promise<Uint8Array[]> {
  const images = path.join(fashionDir(), 't10k-images-idx3-ubyte.gz')
  if (existsSync(images)) {
    const set = await readIdxImages(images)
    const size = set.width * set.height
    return Array.from({ length: Math.min(count, set.count) }, (_, i) => set.pixels.slice(i * size, (i + 1) * size))
  }
  const dir = path.join(repoRoot(), 'test', 'fixtures', 'fashion')
  const files = readdirSync(dir).filter((f) => f.endsWith('.png')).sort()
  return await Promise.all(files.slice(0, count).map(async (f) => new Uint8Array(await sharp(readFileSync(path.join(dir, f))).greyscale().raw().toBuffer())))
}

const grey = (pixels: Uint8Array): ReturnType<typeof sharp> => sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })

export async function encode (pixels: Uint8Array, format: SupportedFormat | 'png-rgb'): Promise<Buffer> {
  switch (format) {
    // An 8-bit greyscale PNG, as PIL, torchvision and most data set exports write it.
    case 'png': return await grey(pixels).toColourspace('b-w').png().toBuffer()
    // sharp's default for a one-band input: an RGB PNG with R = G = B.
    case 'png-rgb': return await grey(pixels).png().toBuffer()
    case 'jpeg': return await grey(pixels).jpeg({ quality: 90 }).toBuffer()
    case 'webp': return await grey(pixels).webp({ quality: 90 }).toBuffer()
  }
}

/**
 * A 1024×768 colour JPEG with a photo's entropy: a Fashion-MNIST image scaled up, tinted, with
 * noise, so decoding it costs what a camera image of that size costs.
 */
export async function largePhoto (pixels: Uint8Array, seed: number): Promise<Buffer> {
  const width = 1024
  const height = 768
  const base = await grey(pixels).resize(width, height, { kernel: 'cubic', fit: 'fill' }).raw().toBuffer()
  const rgb = Buffer.alloc(width * height * 3)
  let s = seed >>> 0 || 1
  for (let i = 0; i < width * height; i++) {
    const v = base[i] as number
    for (let c = 0; c < 3; c++) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5
      const noise = ((s >>> 0) % 41) - 20
      rgb[3 * i + c] = Math.max(0, Math.min(255, v * (0.8 + 0.1 * c) + 20 + noise))
    }
  }
  return await sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer()
}
