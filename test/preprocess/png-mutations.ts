// Structure-aware PNG mutations for the differential fuzz test. Most fix the CRCs afterwards,
// so that the change reaches the part of the decoder it aims at (IHDR fields, chunk order,
// the zlib header and window, the deflate data, filter bytes) instead of stopping at a CRC.
import { deflateSync, inflateSync } from 'node:zlib'
import { chunk } from '../helpers/png-writer.js'
import { applyMutations, type Mutation, type Rng } from './fuzz-random.js'
import { joinPng, setZlibWindow, splitPng, withZlib, zlibOf, type PngChunk } from './png-chunks.js'

const TYPES = ['IDAT', 'IEND', 'IHDR', 'pHYs', 'tEXt', 'tRNS', 'gAMA', 'PLTE', 'sRGB', 'iCCP', 'eXIf', 'zTXt', 'sBIT', 'bKGD', 'idat', 'pHYS', 'abcd', 'aBcD']

function dataFor (type: string, r: Rng): Buffer {
  switch (type) {
    case 'pHYs': return r.int(4) === 0 ? r.bytes(r.int(12)) : Buffer.from([0, 0, 0x0b, 0x13, 0, 0, 0x0b, 0x13, r.int(3)])
    case 'tRNS': return r.bytes(r.pick([0, 2, 6]))
    case 'gAMA': return Buffer.from([0, 0, 0xb1, 0x8f])
    case 'sRGB': return Buffer.from([r.int(4)])
    case 'IEND': return r.int(4) === 0 ? r.bytes(1) : Buffer.alloc(0)
    default: return r.bytes(r.int(16))
  }
}

/** Bytes per row plus the filter byte, from IHDR (8-bit grey or RGB only; else a guess). */
function rowBytes (chunks: PngChunk[]): number {
  const ihdr = chunks.find((c) => c.type === 'IHDR')
  if (ihdr === undefined || ihdr.data.length < 13) return 29
  return ihdr.data.readUInt32BE(0) * (ihdr.data[9] === 2 ? 3 : 1) + 1
}

function inflated (chunks: PngChunk[]): Buffer | null {
  try {
    return inflateSync(zlibOf(chunks))
  } catch {
    return null
  }
}

const inChunks = (fn: (chunks: PngChunk[], r: Rng) => string): Mutation => (png, r) => {
  const chunks = splitPng(png)
  if (chunks.length === 0) return [png, 'no chunks']
  const what = fn(chunks, r)
  return [joinPng(chunks), what]
}

const MUTATIONS: Record<string, Mutation> = {
  'flip a byte': (png, r) => {
    const b = Buffer.from(png)
    const at = 8 + r.int(b.length - 8)
    b[at] = b[at]! ^ (1 + r.int(255))
    return [b, `byte ${at}`]
  },
  'flip a byte in chunk data, fix the CRC': inChunks((chunks, r) => {
    const c = r.pick(chunks.filter((c) => c.data.length > 0).concat(chunks[0]!))
    c.data = Buffer.from(c.data)
    if (c.data.length > 0) { const at = r.int(c.data.length); c.data[at] = c.data[at]! ^ (1 + r.int(255)) }
    return c.type
  }),
  'zlib window (CINFO)': inChunks((chunks, r) => {
    const cinfo = r.int(r.int(4) === 0 ? 16 : 8)
    const z = setZlibWindow(zlibOf(chunks), cinfo)
    chunks.splice(0, chunks.length, ...withZlib(chunks, z))
    return `CINFO ${cinfo}`
  }),
  'zlib header bytes': inChunks((chunks, r) => {
    const z = Buffer.from(zlibOf(chunks))
    const which = r.int(4)
    if (which === 0) z[0] = r.int(256)
    else if (which === 1) z[1] = r.int(256)
    else if (which === 2) z[1] = z[1]! | 0x20 // FDICT
    else { z[0] = (z[0]! & 0xf0) | r.int(16); z[1] = (z[1]! & 0xe0) | ((31 - ((z[0] * 256 + (z[1]! & 0xe0)) % 31)) % 31) }
    chunks.splice(0, chunks.length, ...withZlib(chunks, z))
    return `header ${z.subarray(0, 2).toString('hex')}`
  }),
  'flip a byte in the deflate data': inChunks((chunks, r) => {
    const z = Buffer.from(zlibOf(chunks))
    const at = 2 + r.int(Math.max(1, z.length - 2))
    if (at < z.length) z[at] = z[at]! ^ (1 + r.int(255))
    chunks.splice(0, chunks.length, ...withZlib(chunks, z))
    return `zlib byte ${at}`
  }),
  'recompress with a small window, claim a smaller one': inChunks((chunks, r) => {
    const raw = inflated(chunks)
    if (raw === null) return 'not inflatable'
    const bits = 9 + r.int(7)
    const z = setZlibWindow(deflateSync(raw, { windowBits: bits, level: 1 + r.int(9), strategy: r.int(2) }), Math.max(0, bits - 8 - r.int(3)))
    chunks.splice(0, chunks.length, ...withZlib(chunks, z))
    return `windowBits ${bits}, CINFO ${z[0]! >> 4}`
  }),
  'bad filter byte': inChunks((chunks, r) => {
    const raw = inflated(chunks)
    if (raw === null) return 'not inflatable'
    const row = r.int(Math.max(1, Math.floor(raw.length / rowBytes(chunks))))
    const value = r.int(3) === 0 ? r.int(256) : 5 + r.int(3)
    raw[row * rowBytes(chunks)] = value
    chunks.splice(0, chunks.length, ...withZlib(chunks, deflateSync(raw)))
    return `row ${row} filter ${value}`
  }),
  'too little or too much image data': inChunks((chunks, r) => {
    const raw = inflated(chunks)
    if (raw === null) return 'not inflatable'
    const delta = r.pick([-29, -1, 1, 29, 85])
    const z = deflateSync(delta < 0 ? raw.subarray(0, raw.length + delta) : Buffer.concat([raw, Buffer.alloc(delta)]))
    chunks.splice(0, chunks.length, ...withZlib(chunks, z))
    return `${delta} bytes`
  }),
  'bytes after the zlib stream': inChunks((chunks, r) => {
    chunks.splice(0, chunks.length, ...withZlib(chunks, Buffer.concat([zlibOf(chunks), r.bytes(1 + r.int(6))])))
    return 'appended'
  }),
  'split or empty IDAT': inChunks((chunks, r) => {
    const z = zlibOf(chunks)
    const parts = 1 + r.int(5)
    const idats: PngChunk[] = []
    for (let i = 0; i < parts; i++) idats.push({ type: 'IDAT', data: z.subarray(Math.floor((i * z.length) / parts), Math.floor(((i + 1) * z.length) / parts)) })
    if (r.int(2) === 0) idats.splice(r.int(idats.length + 1), 0, { type: 'IDAT', data: Buffer.alloc(0) })
    const at = chunks.findIndex((c) => c.type === 'IDAT')
    const rest = chunks.filter((c) => c.type !== 'IDAT')
    rest.splice(at < 0 ? rest.length : at, 0, ...idats)
    chunks.splice(0, chunks.length, ...rest)
    return `${idats.length} IDATs`
  }),
  'rename a chunk': inChunks((chunks, r) => {
    const c = r.pick(chunks)
    const to = r.int(5) === 0 ? r.bytes(4).toString('latin1') : r.pick(TYPES)
    const from = c.type
    c.type = to
    return `${from} → ${JSON.stringify(to)}`
  }),
  'insert a chunk': inChunks((chunks, r) => {
    const type = r.pick(TYPES)
    const at = r.int(chunks.length + 1)
    chunks.splice(at, 0, { type, data: dataFor(type, r) })
    return `${type} at ${at}`
  }),
  'delete, duplicate or swap chunks': inChunks((chunks, r) => {
    const i = r.int(chunks.length)
    const op = r.int(3)
    if (op === 0) chunks.splice(i, 1)
    else if (op === 1) chunks.splice(i, 0, { ...chunks[i]! })
    else { const j = r.int(chunks.length); [chunks[i], chunks[j]] = [chunks[j]!, chunks[i]!] }
    return ['delete', 'duplicate', 'swap'][op]!
  }),
  'IHDR field': inChunks((chunks, r) => {
    const ihdr = chunks.find((c) => c.type === 'IHDR')
    if (ihdr === undefined || ihdr.data.length < 13) return 'no IHDR'
    const d = Buffer.from(ihdr.data)
    const field = r.int(7)
    if (field === 0) d.writeUInt32BE(r.pick([0, 27, 29, 56, 0x80000000]), 0)
    else if (field === 1) d.writeUInt32BE(r.pick([0, 27, 29, 56, 0x80000000]), 4)
    else if (field === 2) d[8] = r.pick([0, 1, 2, 4, 16, 9])
    else if (field === 3) d[9] = r.pick([0, 1, 2, 3, 4, 6, 7])
    else d[5 + field] = r.pick([1, 2, 255])
    ihdr.data = d
    return `field ${field}`
  }),
  'chunk length field': (png, r) => {
    const chunks = splitPng(png)
    const b = Buffer.from(png)
    let o = 8
    const target = r.int(Math.max(1, chunks.length))
    for (let i = 0; i < target; i++) o += 12 + chunks[i]!.data.length
    if (o + 4 > b.length) return [b, 'past the end']
    const length = b.readUInt32BE(o)
    b.writeUInt32BE(r.pick([length + 1, Math.max(0, length - 1), 0, 0x7fffffff, 0xffffffff, r.int(4096)]) >>> 0, o)
    return [b, `chunk ${target}`]
  },
  'bad CRC': (png, r) => {
    const chunks = splitPng(png)
    const c = r.int(Math.max(1, chunks.length))
    let o = 8
    for (let i = 0; i <= c && i < chunks.length; i++) o += 12 + chunks[i]!.data.length
    const b = Buffer.from(png)
    if (o - 1 < b.length) b[o - 1] = b[o - 1]! ^ (1 + r.int(255))
    return [b, `chunk ${c}`]
  },
  truncate: (png, r) => {
    const at = 8 + r.int(png.length - 8)
    return [png.subarray(0, at), `at ${at}`]
  },
  'bytes after IEND': (png, r) => [Buffer.concat([png, r.int(2) === 0 ? chunk('IEND') : r.bytes(1 + r.int(16))]), 'trailer']
}

/** One to three mutations of `png`, and what they were. */
export function mutatePng (png: Buffer, r: Rng): { buf: Buffer, steps: string[] } {
  return applyMutations(png, r, MUTATIONS)
}
