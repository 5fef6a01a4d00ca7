// Greyscale images from an IDX file (optionally with an IDX label file and a subset of indices).
import { readFile } from 'node:fs/promises'
import { readIdxImages } from './idx.js'
import { DatasetError, type Dataset, type Sample } from './types.js'

export interface IdxOptions {
  labels?: string | undefined
  /** JSON file `{ "indices": [...] }` or an array: only these images, in this order. */
  indices?: number[] | undefined
  description?: string
  transform?: (pixels: Uint8Array, index: number) => Uint8Array
}

export async function loadIndices (file: string): Promise<number[]> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new DatasetError(`${file}: cannot read the index list (${(err as Error).message})`)
  }
  const indices = Array.isArray(parsed) ? parsed : (parsed as { indices?: unknown }).indices
  if (!Array.isArray(indices) || !indices.every((i) => Number.isInteger(i) && i >= 0)) {
    throw new DatasetError(`${file}: expected a JSON array of image indices, or { "indices": [...] }`)
  }
  return indices as number[]
}

export async function idxDataset (imagesFile: string, opts: IdxOptions = {}): Promise<Dataset> {
  let set
  try {
    set = await readIdxImages(imagesFile, opts.labels)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DatasetError(`${(err as NodeJS.ErrnoException).path ?? imagesFile}: no such file`)
    throw new DatasetError((err as Error).message)
  }
  const { count, height, width, pixels, labels } = set
  const order = opts.indices ?? Array.from({ length: count }, (_, i) => i)
  const bad = order.find((i) => i >= count)
  if (bad !== undefined) throw new DatasetError(`${imagesFile}: index ${bad} is out of range (the file has ${count} images)`)
  if (order.length === 0) throw new DatasetError(`${imagesFile}: no images selected`)
  const size = height * width
  return {
    description: opts.description ?? `IDX ${imagesFile}${opts.labels !== undefined ? ` + labels ${opts.labels}` : ''} (${order.length} of ${count} images)`,
    size: order.length,
    async * samples (): AsyncIterable<Sample> {
      for (const i of order) {
        let img = pixels.subarray(i * size, (i + 1) * size)
        if (opts.transform !== undefined) img = opts.transform(img, i)
        yield {
          name: `${imagesFile}#${i}`,
          image: { pixels: img, width, height, channels: 1 },
          ...(labels !== undefined ? { labelIndex: labels[i] as number } : {})
        }
      }
    }
  }
}
