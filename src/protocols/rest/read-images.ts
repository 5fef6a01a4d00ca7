// The request's images as buffers: every `image` part of a multipart form, or the raw body.
import type { FastifyRequest } from 'fastify'
import { BadRequestError, EmptyBodyError, NoImageError, PayloadTooLargeError } from '../../errors.js'
import { takeBodyBytes } from '../../plugins/body-budget.js'

export interface UploadedImage {
  data: Buffer
  /** How error messages name this image: "image" or "image 2 (shoe.png)". */
  what: string
}

export interface UploadedImages {
  images: UploadedImage[]
  multipart: boolean
}

const IMAGE_FIELD = 'image'

export interface BodyLimits {
  /** One image (MAX_UPLOAD_BYTES). */
  maxUploadBytes: number
  /** A whole form (MAX_REQUEST_BYTES). */
  maxRequestBytes: number
}

export async function readImages (req: FastifyRequest, limits: BodyLimits): Promise<UploadedImages> {
  if (!req.isMultipart()) return readBody(req)
  try {
    return await readForm(req, limits)
  } catch (err) {
    if (isFramingError(err)) throw new BadRequestError(`malformed multipart/form-data body: ${err.message}`)
    throw err
  }
}

/**
 * busboy reports malformed framing (no or empty boundary, a boundary the body never uses,
 * LF-only line endings, a truncated or unterminated form) as plain Errors with no code. They
 * are the client's mistake: a 400, logged without a stack, never a 500 that pages someone.
 */
function isFramingError (err: unknown): err is Error {
  return err instanceof Error && err.constructor === Error && (err as { code?: unknown }).code === undefined
}

async function readForm (req: FastifyRequest, { maxUploadBytes, maxRequestBytes }: BodyLimits): Promise<UploadedImages> {
  const images: UploadedImage[] = []
  let total = 0
  for await (const part of req.parts()) {
    // Every byte of the form that is held is charged to the body budget as it arrives
    // (plugins/body-budget.ts); a field's value is in memory by now.
    if (part.type !== 'file') {
      takeBodyBytes(req, Buffer.byteLength(String(part.value)))
      continue
    }
    // Read the part even when it is refused, so the stream stays in step; count every byte
    // against the whole form's bound while reading, not after (a chunked form declares none).
    const chunks: Buffer[] = []
    for await (const chunk of part.file as AsyncIterable<Buffer>) {
      total += chunk.length
      if (total > maxRequestBytes) throw new PayloadTooLargeError(`the form carries more than ${maxRequestBytes} bytes (MAX_REQUEST_BYTES)`)
      takeBodyBytes(req, chunk.length)
      chunks.push(chunk)
    }
    // busboy stops a file at MAX_UPLOAD_BYTES and marks it truncated.
    if (part.file.truncated) throw new PayloadTooLargeError(`the image is larger than ${maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`)
    const data = Buffer.concat(chunks)
    if (part.fieldname !== IMAGE_FIELD) {
      throw new BadRequestError(`unexpected file field "${part.fieldname}": send images in the "${IMAGE_FIELD}" field`)
    }
    const n = images.length + 1
    const name = part.filename !== undefined && part.filename !== '' ? ` (${part.filename})` : ''
    if (data.length === 0) throw new EmptyBodyError()
    images.push({ data, what: `image ${n}${name}` })
  }
  if (images.length === 0) throw new NoImageError(`the form has no "${IMAGE_FIELD}" file field`)
  return { images, multipart: true }
}

function readBody (req: FastifyRequest): UploadedImages {
  const body = req.body
  if (body === undefined || body === null) {
    throw new NoImageError('no image: send a PNG, JPEG or WebP body with its Content-Type, or multipart/form-data with an "image" field')
  }
  if (!Buffer.isBuffer(body)) throw new BadRequestError('the body must be an image')
  if (body.length === 0) throw new EmptyBodyError()
  return { images: [{ data: body, what: 'image' }], multipart: false }
}
