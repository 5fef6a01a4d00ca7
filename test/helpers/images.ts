// Real fixture images and deliberately broken ones.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { deflateSync } from 'node:zlib'
import { REPO } from './data.js'
import { chunk, ihdr, SIGNATURE } from './png-writer.js'

const dir = path.join(REPO, 'test', 'fixtures', 'fashion')
export const golden = JSON.parse(readFileSync(path.join(dir, 'golden.json'), 'utf8')) as {
  images: Array<{ index: number, label: number, file: string, tensor: number[] }>
}
export const fixturePng = (i: number): Buffer => readFileSync(path.join(dir, golden.images[i]!.file))

/**
 * A valid 1-bit greyscale PNG of width × height, all black: tiny on the wire (deflate of
 * zeros), huge when decoded — a decompression bomb.
 */
export function bombPng (width = 20000, height = 20000): Buffer {
  const rowBytes = 1 + Math.ceil(width / 8)
  const idat = deflateSync(Buffer.alloc(rowBytes * height), { level: 9 })
  // bit depth 1, greyscale
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(width, height, 1, 0)), chunk('IDAT', idat), chunk('IEND')])
}
