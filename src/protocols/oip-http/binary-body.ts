// The Open Inference Protocol's binary tensor data extension (Triton's docs/protocol/
// extension_binary_data.md): a request body is a JSON header of
// `Inference-Header-Content-Length` bytes followed by the raw data of the inputs that declare
// `parameters.binary_data_size`, in input order. Every length is checked against what is there
// before anything is sliced, so bad framing can neither read past the body nor make the
// server allocate from a length it was told.
import { BadRequestError } from '../../errors.js'

export interface SplitBody {
  /** The JSON header's bytes (the whole body when there is no binary part). */
  header: Buffer
  /** What follows the header. */
  binary: Buffer
}

/** Split a request body at the header length the client declared (none: all JSON). */
export function splitBody (body: Buffer, headerLength: string | string[] | undefined): SplitBody {
  if (headerLength === undefined) return { header: body, binary: body.subarray(body.length) }
  const text = Array.isArray(headerLength) ? headerLength[0] ?? '' : headerLength
  if (!/^[0-9]{1,12}$/.test(text.trim())) throw new BadRequestError(`Inference-Header-Content-Length must be a whole number of bytes, got "${text.slice(0, 40)}"`)
  const n = Number(text.trim())
  if (n > body.length) throw new BadRequestError(`Inference-Header-Content-Length is ${n}, but the body has only ${body.length} bytes`)
  return { header: body.subarray(0, n), binary: body.subarray(n) }
}

/**
 * Hand each input its binary data, in order, from `binary`: sizes come from the inputs'
 * `binary_data_size` and must add up to exactly what follows the header.
 */
export function takeBinary (binary: Buffer, sizes: Array<number | undefined>): Array<Buffer | undefined> {
  let offset = 0
  const parts = sizes.map((size, i) => {
    if (size === undefined) return undefined
    if (!Number.isSafeInteger(size) || size < 0) throw new BadRequestError(`inputs[${i}].parameters.binary_data_size must be a whole number of bytes`)
    if (offset + size > binary.length) throw new BadRequestError(`inputs[${i}].parameters.binary_data_size is ${size}, but only ${binary.length - offset} bytes of binary data are left`)
    const part = binary.subarray(offset, offset + size)
    offset += size
    return part
  })
  if (offset !== binary.length) throw new BadRequestError(`the inputs' binary_data_size add up to ${offset} bytes, but ${binary.length} bytes of binary data follow the header`)
  return parts
}
