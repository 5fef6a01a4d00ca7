// BYTES tensor elements in binary form, the same in every transport of the Open Inference
// Protocol: HTTP's binary tensor data extension and gRPC's raw_input_contents /
// raw_output_contents. Every length is checked against what is there before anything is sliced.
import { BadRequestError } from '../../errors.js'

/** BYTES tensor elements in binary form: each a 4-byte little-endian length, then its bytes. */
export function readBytesElements (data: Buffer, count: number, what: string): Buffer[] {
  const out: Buffer[] = []
  let o = 0
  for (let i = 0; i < count; i++) {
    if (o + 4 > data.length) throw new BadRequestError(`${what}: element ${i} has no length prefix (the data ends after ${out.length} of ${count} elements)`)
    const n = data.readUInt32LE(o)
    o += 4
    if (n > data.length - o) throw new BadRequestError(`${what}: element ${i} declares ${n} bytes, but only ${data.length - o} are left`)
    out.push(data.subarray(o, o + n))
    o += n
  }
  if (o !== data.length) throw new BadRequestError(`${what}: ${data.length - o} bytes left after the ${count} elements the shape declares`)
  return out
}

export function writeBytesElements (elements: Buffer[]): Buffer {
  const out = Buffer.alloc(elements.reduce((s, e) => s + 4 + e.length, 0))
  let o = 0
  for (const e of elements) {
    out.writeUInt32LE(e.length, o)
    e.copy(out, o + 4)
    o += 4 + e.length
  }
  return out
}
