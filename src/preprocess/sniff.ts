// Identify an image by its leading bytes, before any decoder sees it. The service decodes
// only PNG, JPEG and WebP; formats sharp *could* open (SVG, PDF, GIF, TIFF, HEIF, ...) are
// refused up front, so e.g. an SVG never reaches librsvg.

export type SupportedFormat = 'png' | 'jpeg' | 'webp'
export type SniffResult =
  | { kind: 'supported', format: SupportedFormat }
  | { kind: 'unsupported', format: string }
  | { kind: 'unknown' }

export const SUPPORTED_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const

function startsWith (buf: Uint8Array, bytes: number[], offset = 0): boolean {
  if (buf.length < offset + bytes.length) return false
  for (let i = 0; i < bytes.length; i++) if (buf[offset + i] !== bytes[i]) return false
  return true
}

function ascii (buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.subarray(start, Math.min(end, buf.length))).toString('latin1')
}

export function sniffImage (buf: Uint8Array): SniffResult {
  if (startsWith(buf, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'supported', format: 'png' }
  if (startsWith(buf, [0xff, 0xd8, 0xff])) return { kind: 'supported', format: 'jpeg' }
  if (ascii(buf, 0, 4) === 'RIFF' && ascii(buf, 8, 12) === 'WEBP') return { kind: 'supported', format: 'webp' }

  if (ascii(buf, 0, 5) === '%PDF-') return { kind: 'unsupported', format: 'PDF' }
  if (ascii(buf, 0, 6) === 'GIF87a' || ascii(buf, 0, 6) === 'GIF89a') return { kind: 'unsupported', format: 'GIF' }
  if (startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a])) return { kind: 'unsupported', format: 'TIFF' }
  if (ascii(buf, 0, 2) === 'BM') return { kind: 'unsupported', format: 'BMP' }
  if (ascii(buf, 4, 8) === 'ftyp') {
    const brand = ascii(buf, 8, 12)
    return { kind: 'unsupported', format: brand.startsWith('avi') ? 'AVIF' : 'HEIF' }
  }
  if (startsWith(buf, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50])) return { kind: 'unsupported', format: 'JPEG 2000' }
  if (startsWith(buf, [0xff, 0x0a]) || startsWith(buf, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return { kind: 'unsupported', format: 'JPEG XL' }
  const head = ascii(buf, 0, 512).replace(/^\uFEFF/, '').trimStart().toLowerCase()
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return { kind: 'unsupported', format: 'SVG' }
  return { kind: 'unknown' }
}
