// Structure-aware JPEG mutations for the differential fuzz test: Huffman counts and symbols
// (including full code spaces and out-of-range DC symbols), quantisation tables, frame and
// scan headers, segment order and lengths, the entropy-coded data, truncation and trailers.
// JPEG has no checksums, so many of these still decode, in sharp and in the fast path alike.
import { applyMutations, type Mutation, type Rng } from './fuzz-random.js'
import { joinJpeg, parseDht, splitJpeg, writeDht, type JpegParts, type Segment } from './jpeg-segments.js'

/** Mutate the parsed segments; when an earlier step broke the structure, flip a byte instead. */
const inParts = (fn: (parts: JpegParts, r: Rng) => string): Mutation => (jpeg, r) => {
  let parts: JpegParts
  try {
    parts = splitJpeg(jpeg)
  } catch {
    return MUTATIONS['flip a byte']!(jpeg, r)
  }
  const what = fn(parts, r)
  return [joinJpeg(parts), what]
}

const pickSegment = (parts: JpegParts, marker: number, r: Rng): Segment | undefined => {
  const found = parts.segments.filter((s) => s.marker === marker)
  return found.length === 0 ? undefined : r.pick(found)
}

const onTables = (fn: (tables: ReturnType<typeof parseDht>, r: Rng) => string): Mutation => inParts((parts, r) => {
  const seg = pickSegment(parts, 0xc4, r)
  if (seg === undefined) return 'no DHT'
  const tables = parseDht(seg.data)
  if (tables.length === 0) return 'empty DHT'
  const what = fn(tables, r)
  seg.data = writeDht(tables)
  return what
})

const INSERTS: Array<[number, (r: Rng) => Buffer]> = [
  [0xfe, (r) => r.bytes(r.int(20))], // COM
  [0xe0, () => Buffer.from('JFIF\0\x01\x01\0\0\x01\0\x01\0\0', 'latin1')],
  [0xe1, () => Buffer.from('Exif\0\0MM\0*\0\0\0\x08\0\0', 'latin1')],
  [0xe2, (r) => r.bytes(16)],
  [0xee, () => Buffer.from('Adobe\0\x64\0\0\0\0\x01', 'latin1')],
  [0xdd, (r) => Buffer.from([0, r.int(3)])], // DRI
  [0xdb, (r) => Buffer.from([r.int(4), ...r.bytes(64)])],
  [0xc4, (r) => Buffer.from([r.pick([0x00, 0x01, 0x10, 0x11]), ...new Array<number>(15).fill(0), 1, r.int(256)])],
  [0xef, (r) => r.bytes(4)],
  [0xc8, (r) => r.bytes(4)]
]

const MUTATIONS: Record<string, Mutation> = {
  'flip a byte': (jpeg, r) => {
    const b = Buffer.from(jpeg)
    const at = 2 + r.int(b.length - 2)
    b[at] = b[at]! ^ (1 + r.int(255))
    return [b, `byte ${at}`]
  },
  'flip a byte in the entropy data': inParts((parts, r) => {
    const scan = Buffer.from(parts.scan)
    const at = r.int(Math.max(1, scan.length - 2))
    scan[at] = scan[at]! ^ (1 << r.int(8))
    parts.scan = scan
    return `scan byte ${at}`
  }),
  'move a Huffman code to another length': onTables((tables, r) => {
    const t = r.pick(tables)
    const from = r.int(16)
    const to = r.int(16)
    if (t.counts[from]! > 0 && t.counts[to]! < 255) { t.counts[from]!--; t.counts[to]!++ }
    return `class ${t.tc}, length ${from + 1} → ${to + 1}`
  }),
  'add or remove a Huffman code': onTables((tables, r) => {
    const t = r.pick(tables)
    const len = r.int(16)
    if (r.int(2) === 0 && t.counts[len]! < 255) {
      t.counts[len]!++
      const before = t.counts.slice(0, len + 1).reduce((a, b) => a + b, 0) - 1
      t.symbols.splice(before, 0, r.int(t.tc === 0 ? 20 : 256))
      return `class ${t.tc}, +1 at length ${len + 1}`
    }
    if (t.counts[len]! > 0) {
      t.counts[len]!--
      t.symbols.splice(t.counts.slice(0, len + 1).reduce((a, b) => a + b, 0), 1)
    }
    return `class ${t.tc}, −1 at length ${len + 1}`
  }),
  'fill the code space (all-ones code)': onTables((tables, r) => {
    // Add codes at the longest used length until the canonical code reaches all ones there,
    // or one short of it, or one past it: the boundary libjpeg checks.
    const t = r.pick(tables)
    let last = 15
    while (last > 0 && t.counts[last] === 0) last--
    let used = 0
    for (let l = 0; l <= last; l++) used += t.counts[l]! * 2 ** (last - l)
    const room = 2 ** (last + 1) - used
    const add = Math.max(0, Math.min(255 - t.counts[last]!, room + r.pick([-1, 0, 0, 1])))
    t.counts[last]! += add
    for (let i = 0; i < add; i++) t.symbols.push(r.int(t.tc === 0 ? 12 : 256))
    return `class ${t.tc}, +${add} codes at length ${last + 1} (room ${room})`
  }),
  'change a Huffman symbol': onTables((tables, r) => {
    const t = r.pick(tables)
    if (t.symbols.length === 0) return 'no symbols'
    const i = r.int(t.symbols.length)
    t.symbols[i] = t.tc === 0 ? r.pick([11, 12, 15, 16, 17, 255, r.int(256)]) : r.int(256)
    return `class ${t.tc}, symbol ${i} = ${t.symbols[i]!}`
  }),
  'change a Huffman table class or slot': onTables((tables, r) => {
    const t = r.pick(tables)
    if (r.int(2) === 0) t.tc = r.int(3)
    else t.th = r.int(5)
    return `class ${t.tc}, slot ${t.th}`
  }),
  'change a quantisation table': inParts((parts, r) => {
    const seg = pickSegment(parts, 0xdb, r)
    if (seg === undefined) return 'no DQT'
    const d = Buffer.from(seg.data)
    const which = r.int(4)
    if (which === 0) d[0] = r.pick([0x10, 0x01, 0x02, 0x04, 0x13])
    else d[1 + r.int(Math.max(1, d.length - 1))] = r.pick([0, 1, 2, 255, r.int(256)])
    seg.data = d
    return `DQT ${which === 0 ? 'precision/slot' : 'value'}`
  }),
  'change the frame header': inParts((parts, r) => {
    const i = parts.segments.findIndex((s) => s.marker >= 0xc0 && s.marker <= 0xcf && s.marker !== 0xc4 && s.marker !== 0xc8 && s.marker !== 0xcc)
    if (i < 0) return 'no SOF'
    const seg = parts.segments[i]!
    const d = Buffer.from(seg.data)
    const field = r.int(7)
    if (field === 0) seg.marker = r.pick([0xc1, 0xc2, 0xc3, 0xc9, 0xcd])
    else if (field === 1) d[0] = r.pick([12, 16, 7])
    else if (field === 2) d.writeUInt16BE(r.pick([0, 27, 29, 56]), 1 + 2 * r.int(2))
    else if (field === 4 && d.length > 7) d[7 + 3 * r.int(Math.max(1, d[5]!))] = r.pick([0x11, 0x12, 0x21, 0x22, 0x41, 0x14, 0x00, 0x13])
    else if (field === 5 && d.length > 8) d[8 + 3 * r.int(Math.max(1, d[5]!))] = r.int(5)
    else if (field === 6 && d.length > 6) d[6 + 3 * r.int(Math.max(1, d[5]!))] = r.int(5)
    else d[5] = r.pick([0, 2, 3, 4])
    seg.data = field === 0 ? seg.data : d
    return `SOF field ${field}`
  }),
  'change the scan header': inParts((parts, r) => {
    const seg = parts.segments[parts.segments.length - 1]!
    const d = Buffer.from(seg.data)
    const at = r.int(d.length)
    d[at] = r.pick([0, 1, 2, 3, 0x10, 0x11, 0x22, 63, 0x44, r.int(256)])
    seg.data = d
    return `SOS byte ${at}`
  }),
  'insert a segment': inParts((parts, r) => {
    const [marker, make] = r.pick(INSERTS)
    const at = r.int(parts.segments.length)
    parts.segments.splice(at, 0, { marker, data: make(r) })
    return `0x${marker.toString(16)} at ${at}`
  }),
  'delete, duplicate or swap segments': inParts((parts, r) => {
    const n = parts.segments.length - 1 // keep SOS last
    if (n < 1) return 'nothing to move'
    const i = r.int(n)
    const op = r.int(3)
    if (op === 0) parts.segments.splice(i, 1)
    else if (op === 1) parts.segments.splice(i, 0, { ...parts.segments[i]! })
    else { const j = r.int(n); [parts.segments[i], parts.segments[j]] = [parts.segments[j]!, parts.segments[i]!] }
    return ['delete', 'duplicate', 'swap'][op]!
  }),
  'segment length field': (jpeg, r) => {
    const b = Buffer.from(jpeg)
    const markers: number[] = []
    for (let o = 2; o + 4 <= b.length && b[o] === 0xff;) {
      markers.push(o)
      if (b[o + 1] === 0xda) break
      o += 2 + b.readUInt16BE(o + 2)
    }
    if (markers.length === 0) return [b, 'no segments']
    const o = r.pick(markers)
    const length = b.readUInt16BE(o + 2)
    b.writeUInt16BE(r.pick([length + 1, length - 1, 0, 1, 2, 0xffff]) & 0xffff, o + 2)
    return [b, `segment at ${o}`]
  },
  'marker or fill bytes in the entropy data': inParts((parts, r) => {
    const at = r.int(Math.max(1, parts.scan.length - 2))
    const insert = r.pick([[0xff, 0xd0 + r.int(8)], [0xff], [0xff, 0xff], [0xff, 0xd9], [0xff, 0x00]])
    parts.scan = Buffer.concat([parts.scan.subarray(0, at), Buffer.from(insert), parts.scan.subarray(at)])
    return `${Buffer.from(insert).toString('hex')} at ${at}`
  }),
  'fill bytes before a marker': (jpeg, r) => {
    const starts: number[] = []
    for (let o = 2; o + 4 <= jpeg.length && jpeg[o] === 0xff;) {
      starts.push(o)
      if (jpeg[o + 1] === 0xda) break
      o += 2 + jpeg.readUInt16BE(o + 2)
    }
    const at = starts.length === 0 ? 2 : r.pick(starts)
    return [Buffer.concat([jpeg.subarray(0, at), Buffer.alloc(1 + r.int(2), 0xff), jpeg.subarray(at)]), `at ${at}`]
  },
  truncate: (jpeg, r) => {
    const at = 2 + r.int(jpeg.length - 2)
    return [jpeg.subarray(0, at), `at ${at}`]
  },
  'bytes after EOI or no EOI': (jpeg, r) => {
    const op = r.int(3)
    if (op === 0) return [jpeg.subarray(0, jpeg.length - 2), 'no EOI']
    if (op === 1) return [Buffer.concat([jpeg, Buffer.from([0xff, 0xd9])]), 'two EOIs']
    return [Buffer.concat([jpeg, r.bytes(1 + r.int(8))]), 'trailer']
  }
}

/** One to three mutations of `jpeg`, and what they were. */
export function mutateJpeg (jpeg: Buffer, r: Rng): { buf: Buffer, steps: string[] } {
  return applyMutations(jpeg, r, MUTATIONS)
}
