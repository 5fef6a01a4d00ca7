// Every class of hostile input the adversarial review of issue 9 found, as requests a load
// generator can send: the decoder floods and verdict traps (test/preprocess/hostile-images.ts),
// decompression bombs within and over the decode limits, malformed multipart forms, HTTP
// framing the parser refuses, bodies over the limits, and a slow sender. Each class says what
// the service must answer.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import {
  allOnesCodeJpeg, bigAncillaryPng, dcSymbolOver15Jpeg, deepBlocksPng, dhtFloodJpeg, dqtFloodJpeg,
  emptyStoredBlocksPng, smallWindowPng
} from '../test/preprocess/hostile-images.js'
import { bombPng, fixturePng } from '../test/helpers/images.js'

export interface HostileRequest {
  /** The class, as the report names it. */
  name: string
  /** The bytes of a whole HTTP/1.1 request, sent as written (the Host header is filled in). */
  raw: Buffer[]
  /** Statuses a correct service answers (anything else, and every 5xx, is a failure). */
  expect: number[]
  /** ms between the parts of `raw` (a slow sender). */
  gapMs?: number
}

const MiB = 1024 * 1024

function post (path: string, type: string, body: Buffer, extra = ''): Buffer[] {
  return [Buffer.from(`POST ${path} HTTP/1.1\r\nHost: hostile\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n${extra}\r\n`, 'latin1'), body]
}

function form (parts: Array<{ data: Buffer, type?: string }>, boundary = 'hostile-boundary'): { type: string, body: Buffer } {
  const chunks: Buffer[] = []
  parts.forEach((p, i) => {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${i}.bin"\r\nContent-Type: ${p.type ?? 'application/octet-stream'}\r\n\r\n`), p.data, Buffer.from('\r\n'))
  })
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { type: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(chunks) }
}

/**
 * Large images, made once and kept in the system's temporary folder (encoding 40 MP takes
 * seconds): a flat image compresses to almost nothing, which is what makes a bomb.
 */
async function bomb (name: string, make: () => Promise<Buffer>): Promise<Buffer> {
  const dir = path.join(os.tmpdir(), 'isomax-hostile')
  const file = path.join(dir, name)
  if (existsSync(file)) return readFileSync(file)
  mkdirSync(dir, { recursive: true })
  const data = await make()
  writeFileSync(file, data)
  return data
}

const W = 8000
const H = 5000 // 40 MP: MAX_INPUT_PIXELS

async function flat (width: number, height: number): Promise<ReturnType<typeof sharp>> {
  return sharp({ create: { width, height, channels: 4, background: { r: 120, g: 80, b: 40, alpha: 0.5 } } })
}

/** The worst images the shipped limits allow, and the smallest ones they refuse. */
export async function bombs (): Promise<Record<string, Buffer>> {
  return {
    // 40 MP × 4 channels × 1 byte = 160 MB decoded: at MAX_DECODE_BYTES (160 MiB), allowed.
    png8Interlaced: await bomb('png8-rgba-40mp-interlaced.png', async () => await (await flat(W, H)).png({ progressive: true, compressionLevel: 9 }).toBuffer()),
    // 40 MP × 4 × 2 bytes = 320 MB: over MAX_DECODE_BYTES, refused from the header (413).
    png16Interlaced: await bomb('png16-rgba-40mp-interlaced.png', async () => await (await flat(W, H)).toColourspace('rgb16').png({ progressive: true, compressionLevel: 9 }).toBuffer()),
    // 20 MP × 4 × 2 = 160 MB: the largest 16-bit RGBA image allowed.
    png16Allowed: await bomb('png16-rgba-20mp-interlaced.png', async () => await (await flat(5000, 4000)).toColourspace('rgb16').png({ progressive: true, compressionLevel: 9 }).toBuffer()),
    webpLossy: await bomb('webp-40mp-lossy.webp', async () => await (await flat(W, H)).webp({ quality: 80 }).toBuffer()),
    jpegProgressive: await bomb('jpeg-40mp-progressive.jpg', async () => await (await flat(W, H)).removeAlpha().jpeg({ progressive: true }).toBuffer()),
    // 20,000 × 20,000 1-bit: 400 MP, over MAX_INPUT_PIXELS, refused from the header (413).
    overPixels: bombPng(20_000, 20_000)
  }
}

/** The served model the /v2 classes address (models/manifest.json's default). */
export const V2_MODEL = 'fashion-mnist-isomaxplus-md'
const SAMPLE = 28 * 28

function v2 (json: string, binary?: Buffer): Buffer[] {
  const header = Buffer.from(json)
  const body = binary === undefined ? header : Buffer.concat([header, binary])
  const extra = binary === undefined ? '' : `Inference-Header-Content-Length: ${header.length}\r\n`
  return post(`/v2/models/${V2_MODEL}/infer`, 'application/json', body, extra)
}

/** An FP32 [1, 1, 28, 28] request with its data in binary, `set` changing some values. */
function fp32Binary (set: (data: Float32Array) => void): Buffer[] {
  const data = new Float32Array(SAMPLE).fill(0.25)
  set(data)
  const bin = Buffer.from(data.buffer)
  return v2(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: bin.length } }] }), bin)
}

/**
 * The classes issue 20 added: JSON on /v2 shaped to stall the event loop (small but deeply
 * nested, or very wide), non-finite FP32 tensors, ragged data, a non-boolean binary_data.
 */
export function v2HostileRequests (): HostileRequest[] {
  const image = fixturePng(0).toString('base64')
  const depth = 520_000
  const deep = `{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":${'['.repeat(depth)}"${image}"${']'.repeat(depth)}}]}`
  const wide = `{"parameters":{${Array.from({ length: 90_000 }, (_, i) => `"k${i}":1`).join(',')}},"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["${image}"]}]}`
  const overflowing = Array.from({ length: SAMPLE }, () => 0.25) as Array<number | string>
  overflowing[17] = '1e39'
  const rows = Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => 0.25))
  rows[5] = rows[5]!.slice(1)
  rows[6] = [...rows[6]!, 0.25]
  return [
    { name: '/v2 JSON: 520,000 nested arrays (under the 1 MiB cap)', raw: v2(deep), expect: [400] },
    { name: '/v2 JSON: parameters with 90,000 keys', raw: v2(wide), expect: [400] },
    { name: '/v2 FP32: JSON 1e39 (finite double, Infinity in float32)', raw: v2(`{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":[${overflowing.join(',')}]}]}`), expect: [400] },
    { name: '/v2 FP32: binary NaN', raw: fp32Binary((d) => { d[100] = NaN }), expect: [400] },
    { name: '/v2 FP32: binary +Infinity', raw: fp32Binary((d) => { d[0] = Infinity }), expect: [400] },
    { name: '/v2 FP32: binary -Infinity', raw: fp32Binary((d) => { d[783] = -Infinity }), expect: [400] },
    // Finite float32 values that overflow inside the graph: the model's output is NaN (422).
    { name: '/v2 FP32: binary ±3e38 (NaN out of the model)', raw: fp32Binary((d) => { d.forEach((_, i) => { d[i] = i % 2 === 0 ? 3e38 : -3e38 }) }), expect: [200, 422] },
    { name: '/v2 FP32: ragged JSON data', raw: v2(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: [[rows]] }] })), expect: [400] },
    { name: '/v2: binary_data "yes"', raw: v2(JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [image] }], outputs: [{ name: 'label', parameters: { binary_data: 'yes' } }] })), expect: [400] }
  ]
}

/** One request of every class, in the order the load generator cycles through them. */
export async function hostileRequests (): Promise<HostileRequest[]> {
  const tenMiB = 10 * MiB - 64 * 1024 // just under MAX_UPLOAD_BYTES with the form's framing
  const dht = await dhtFloodJpeg(tenMiB)
  const b = await bombs()
  const malformed = [
    ['no boundary', 'multipart/form-data', form([{ data: dht.subarray(0, 1000) }]).body],
    ['a boundary the body never uses', 'multipart/form-data; boundary=elsewhere', form([{ data: dht.subarray(0, 1000) }]).body],
    ['LF-only form', 'multipart/form-data; boundary=lf', Buffer.from('--lf\nContent-Disposition: form-data; name="image"; filename="a"\n\nxx\n--lf--\n')],
    ['unterminated form', 'multipart/form-data; boundary=u', Buffer.from('--u\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\nxx')]
  ] as const
  return [
    { name: 'JPEG: 10 MiB of Huffman tables around a 28×28 frame', raw: post('/classify', 'image/jpeg', dht), expect: [200, 400] },
    { name: 'JPEG: 10 MiB of quantisation tables', raw: post('/classify', 'image/jpeg', await dqtFloodJpeg(tenMiB)), expect: [200, 400] },
    { name: 'multipart: 16 Huffman-flood JPEGs in one form', raw: post('/classify', form(Array.from({ length: 16 }, () => ({ data: dht, type: 'image/jpeg' }))).type, form(Array.from({ length: 16 }, () => ({ data: dht, type: 'image/jpeg' }))).body), expect: [413] },
    { name: 'PNG: a 10 MiB ancillary chunk', raw: post('/classify', 'image/png', bigAncillaryPng(tenMiB)), expect: [200, 400] },
    { name: 'PNG: 10 MiB of empty stored deflate blocks', raw: post('/classify', 'image/png', emptyStoredBlocksPng(Math.floor(tenMiB / 5))), expect: [200, 400] },
    { name: 'PNG: dynamic-Huffman deflate blocks within the fast path bound', raw: post('/classify', 'image/png', deepBlocksPng(100, 3)), expect: [200] },
    { name: 'JPEG: an all-ones Huffman code (sharp refuses)', raw: post('/classify', 'image/jpeg', await allOnesCodeJpeg()), expect: [400] },
    { name: 'JPEG: a DC symbol above 15 (sharp refuses)', raw: post('/classify', 'image/jpeg', await dcSymbolOver15Jpeg()), expect: [400] },
    { name: 'PNG: a 256-byte zlib window with longer distances (sharp refuses)', raw: post('/classify', 'image/png', smallWindowPng(0)), expect: [400] },
    ...malformed.map(([name, type, body]): HostileRequest => ({ name: `malformed multipart: ${name}`, raw: post('/classify', type, body), expect: [400] })),
    { name: 'HTTP: a bad chunk size', raw: [Buffer.from('POST /classify HTTP/1.1\r\nHost: hostile\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n')], expect: [400] },
    { name: 'HTTP: Content-Length with chunked', raw: [Buffer.from('POST /classify HTTP/1.1\r\nHost: hostile\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')], expect: [400] },
    { name: 'HTTP: NUL in a header', raw: [Buffer.from('GET /models HTTP/1.1\r\nHost: hostile\r\nX-A: a\0b\r\n\r\n', 'latin1')], expect: [400] },
    { name: 'HTTP: 20 kB of headers', raw: [Buffer.from(`GET /models HTTP/1.1\r\nHost: hostile\r\nX-A: ${'a'.repeat(20_000)}\r\n\r\n`)], expect: [431] },
    { name: 'HTTP: bad %-encoding', raw: [Buffer.from('GET /models/%E0%A4%A/classify HTTP/1.1\r\nHost: hostile\r\n\r\n')], expect: [400] },
    { name: 'HTTP: Expect: bogus', raw: post('/classify', 'image/png', Buffer.alloc(10), 'Expect: bogus\r\n'), expect: [417] },
    { name: 'HTTP: a 300-character model name', raw: post(`/models/${'m'.repeat(300)}/classify`, 'image/png', Buffer.alloc(10)), expect: [414] },
    { name: 'body: 16 MiB declared, over MAX_REQUEST_BYTES', raw: post('/classify', 'image/png', Buffer.alloc(16 * MiB)), expect: [413] },
    { name: 'bomb: 40 MP 8-bit RGBA interlaced PNG (160 MB decoded, allowed)', raw: post('/classify', 'image/png', b.png8Interlaced!), expect: [200] },
    { name: 'bomb: 40 MP 16-bit RGBA interlaced PNG (320 MB, over MAX_DECODE_BYTES)', raw: post('/classify', 'image/png', b.png16Interlaced!), expect: [413] },
    { name: 'bomb: 40 MP lossy WebP', raw: post('/classify', 'image/webp', b.webpLossy!), expect: [200] },
    { name: 'bomb: 40 MP progressive JPEG', raw: post('/classify', 'image/jpeg', b.jpegProgressive!), expect: [200] },
    { name: 'bomb: 20,000 × 20,000 PNG (over MAX_INPUT_PIXELS)', raw: post('/classify', 'image/png', b.overPixels!), expect: [413] },
    ...v2HostileRequests()
  ]
}
