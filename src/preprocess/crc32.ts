// CRC-32 as PNG uses it (ISO 3309). node:zlib has crc32 only from Node 20.15 and this service
// supports 20.9 on; the inputs it sees are bounded to a few kB (fast-path-limit.ts).

const CRC_TABLE = ((): Int32Array => {
  const table = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c
  }
  return table
})()

/** CRC-32 of buf[start, end). */
export function crc32 (buf: Uint8Array, start = 0, end = buf.length): number {
  let c = -1
  for (let i = start; i < end; i++) c = (CRC_TABLE[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ -1) >>> 0
}
