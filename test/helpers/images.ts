// Real fixture images and deliberately broken ones.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { deflateSync } from 'node:zlib'
import { REPO } from './data.js'

const dir = path.join(REPO, 'test', 'fixtures', 'fashion')
export const golden = JSON.parse(readFileSync(path.join(dir, 'golden.json'), 'utf8')) as {
  images: Array<{ index: number, label: number, file: string, tensor: number[] }>
}
export const fixturePng = (i: number): Buffer => readFileSync(path.join(dir, golden.images[i]!.file))

function crc32 (buf: Buffer): number {
  let c = ~0
  for (const b of buf) {
    c ^= b
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1))
  }
  return ~c >>> 0
}

function chunk (kind: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(kind, 'latin1'), data])
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body))
  return Buffer.concat([len, body, crc])
}

/**
 * A valid 1-bit greyscale PNG of width × height, all black: tiny on the wire (deflate of
 * zeros), huge when decoded — a decompression bomb.
 */
export function bombPng (width = 20000, height = 20000): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4)
  ihdr.set([1, 0, 0, 0, 0], 8) // bit depth 1, greyscale, deflate, filter 0, no interlace
  const rowBytes = 1 + Math.ceil(width / 8)
  const idat = deflateSync(Buffer.alloc(rowBytes * height), { level: 9 })
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))])
}
