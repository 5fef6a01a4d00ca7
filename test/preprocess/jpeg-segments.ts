// Take a JPEG apart into marker segments and put it back together, so tests can change one
// table, count or symbol and keep every length field right (JPEG has no checksums).

export interface Segment {
  marker: number
  /** The payload, without the two length bytes. */
  data: Buffer
}

export interface JpegParts {
  /** SOI excluded; up to and including SOS. */
  segments: Segment[]
  /** Everything after the SOS segment: entropy-coded data, EOI, and whatever follows. */
  scan: Buffer
}

export function splitJpeg (jpeg: Uint8Array): JpegParts {
  const buf = Buffer.from(jpeg)
  if (buf[0] !== 0xff || buf[1] !== 0xd8) throw new Error('not a JPEG')
  const segments: Segment[] = []
  let o = 2
  for (;;) {
    if (buf[o] !== 0xff) throw new Error(`no marker at ${o}`)
    const marker = buf[o + 1]!
    const length = buf.readUInt16BE(o + 2)
    segments.push({ marker, data: buf.subarray(o + 4, o + 2 + length) })
    o += 2 + length
    if (marker === 0xda) return { segments, scan: buf.subarray(o) }
  }
}

export function segment (marker: number, data: Uint8Array): Buffer {
  if (data.length + 2 > 0xffff) throw new Error('segment too long')
  const head = Buffer.from([0xff, marker, 0, 0])
  head.writeUInt16BE(data.length + 2, 2)
  return Buffer.concat([head, data])
}

export function joinJpeg (parts: JpegParts): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xd8]), ...parts.segments.map((s) => segment(s.marker, s.data)), parts.scan])
}

export interface HuffmanTable {
  /** 0 = DC, 1 = AC. */
  tc: number
  th: number
  /** Number of codes of each length 1..16. */
  counts: number[]
  symbols: number[]
}

export function parseDht (data: Uint8Array): HuffmanTable[] {
  const tables: HuffmanTable[] = []
  for (let p = 0; p < data.length;) {
    const counts = Array.from(data.subarray(p + 1, p + 17))
    const total = counts.reduce((a, b) => a + b, 0)
    tables.push({ tc: data[p]! >> 4, th: data[p]! & 15, counts, symbols: Array.from(data.subarray(p + 17, p + 17 + total)) })
    p += 17 + total
  }
  return tables
}

export function writeDht (tables: HuffmanTable[]): Buffer {
  return Buffer.concat(tables.map((t) => Buffer.from([(t.tc << 4) | t.th, ...t.counts, ...t.symbols])))
}

/** The first DC table (tc 0) in any DHT segment, with the segment it came from. */
export function findTable (parts: JpegParts, tc: number): { seg: Segment, tables: HuffmanTable[], table: HuffmanTable } {
  for (const seg of parts.segments) {
    if (seg.marker !== 0xc4) continue
    const tables = parseDht(seg.data)
    const table = tables.find((t) => t.tc === tc)
    if (table !== undefined) return { seg, tables, table }
  }
  throw new Error(`no Huffman table of class ${tc}`)
}
