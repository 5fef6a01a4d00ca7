// perf_analyzer's --input-data file for the "image" input: real Fashion-MNIST PNGs, one per
// request (batch 1). perf_analyzer sends a "b64" value's decoded bytes as the tensor's raw
// buffer, and a BYTES tensor's raw buffer is Triton's serialization (each element a 4-byte
// little-endian length, then its bytes), so each PNG goes in with that prefix.
// (write-input-data.ts writes the file for a run by hand.)
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export const FASHION_DIR = 'test/fixtures/fashion'

/** Triton's serialization of one BYTES element. */
export function bytesElement (data: Buffer): Buffer {
  const len = Buffer.alloc(4)
  len.writeUInt32LE(data.length)
  return Buffer.concat([len, data])
}

export function fashionPngs (dir: string = FASHION_DIR): Buffer[] {
  return readdirSync(dir).filter((f) => f.endsWith('.png')).sort().map((f) => readFileSync(join(dir, f)))
}

/** The input-data document: one data set per image, for the input named `input`. */
export function inputData (images: Buffer[], input = 'image'): { data: Array<Record<string, { b64: string }>> } {
  return { data: images.map((png) => ({ [input]: { b64: bytesElement(png).toString('base64') } })) }
}
