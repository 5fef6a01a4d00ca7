// The request's images as buffers: every `image` part of a multipart form, or the raw body.
import type { FastifyRequest } from 'fastify'
import { BadRequestError, EmptyBodyError, NoImageError } from '../errors.js'

export interface UploadedImage {
  data: Buffer
  /** How error messages name this image: "image" or "image 2 (shoe.png)". */
  what: string
}

const IMAGE_FIELD = 'image'

export async function readImages (req: FastifyRequest): Promise<{ images: UploadedImage[], multipart: boolean }> {
  if (req.isMultipart()) {
    const images: UploadedImage[] = []
    for await (const part of req.parts()) {
      if (part.type !== 'file') continue
      // Read the part even when it is refused, so the stream stays in step.
      const data = await part.toBuffer()
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
  const body = req.body
  if (body === undefined || body === null) {
    throw new NoImageError('no image: send a PNG, JPEG or WebP body with its Content-Type, or multipart/form-data with an "image" field')
  }
  if (!Buffer.isBuffer(body)) throw new BadRequestError('the body must be an image')
  if (body.length === 0) throw new EmptyBodyError()
  return { images: [{ data: body, what: 'image' }], multipart: false }
}
