// IDX files (the MNIST family's format), optionally gzipped: magic 0x00 0x00 0x08 ndim,
// big-endian uint32 dimensions, then unsigned bytes.
import { readFile } from 'node:fs/promises'
import { gunzipSync } from 'node:zlib'

export class IdxError extends Error {
  override name = 'IdxError'
}

export interface IdxArray {
  dims: number[]
  data: Uint8Array
}

export function parseIdx (bytes: Uint8Array, file = 'IDX data'): IdxArray {
  const buf = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08) {
    const magic = Buffer.from(buf.subarray(0, 4)).toString('hex')
    throw new IdxError(`${file}: not an unsigned-byte IDX file (bad magic number 0x${magic}; expected 0x000008NN)`)
  }
  const ndim = buf[3] as number
  if (ndim < 1 || buf.length < 4 + 4 * ndim) throw new IdxError(`${file}: truncated IDX header`)
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false))
  const size = dims.reduce((a, b) => a * b, 1)
  const data = buf.subarray(4 + 4 * ndim)
  if (data.length !== size) throw new IdxError(`${file}: expected ${size} data bytes for shape [${dims.join(', ')}], found ${data.length}`)
  return { dims, data }
}

export async function readIdx (file: string): Promise<IdxArray> {
  return parseIdx(await readFile(file), file)
}

/** N greyscale images of H×W from an IDX3 file, plus labels from an IDX1 file when given. */
export async function readIdxImages (imagesFile: string, labelsFile?: string): Promise<{ count: number, height: number, width: number, pixels: Uint8Array, labels?: Uint8Array }> {
  const images = await readIdx(imagesFile)
  if (images.dims.length !== 3) throw new IdxError(`${imagesFile}: expected 3 dimensions (N, H, W), found ${images.dims.length}`)
  const [count, height, width] = images.dims as [number, number, number]
  if (labelsFile === undefined) return { count, height, width, pixels: images.data }
  const labels = await readIdx(labelsFile)
  if (labels.dims.length !== 1 || labels.dims[0] !== count) {
    throw new IdxError(`${labelsFile}: expected ${count} labels to match ${imagesFile}, found shape [${labels.dims.join(', ')}]`)
  }
  return { count, height, width, pixels: images.data, labels: labels.data }
}
