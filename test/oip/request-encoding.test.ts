// Compressed inference requests over real HTTP, as Triton takes them: Content-Encoding gzip and
// deflate are inflated (answers equal to the uncompressed request's), another encoding is a 415
// naming it, a body that is not what it says a 400, and a gzip bomb — far under the wire limit,
// inflating far past MAX_REQUEST_BYTES — a 413 in the protocol's shape while the server keeps
// answering.
import { gzipSync, deflateSync, createGzip } from 'node:zlib'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { writeBytesElements } from '../../src/protocols/oip/bytes-elements.js'
import { buildOver, testConfig } from '../helpers/build.js'
import { fixturePng } from '../helpers/images.js'

const { app, engine } = await buildOver(t)
const NAME = engine.manifest.defaultModel
const base = await (app as FastifyInstance).listen({ port: 0, host: '127.0.0.1' })
const url = `${base}/v2/models/${NAME}/infer`
const images = [0, 1, 2].map((i) => fixturePng(i))

const jsonRequest = Buffer.from(JSON.stringify({
  id: 'z-1',
  inputs: [{ name: 'image', shape: [images.length], datatype: 'BYTES', data: images.map((b) => b.toString('base64')) }]
}))

async function post (body: Buffer, headers: Record<string, string>): Promise<{ status: number, type: string | null, json: any }> {
  const res = await fetch(url, { method: 'POST', body, headers })
  const text = await res.text()
  return { status: res.status, type: res.headers.get('content-type'), json: JSON.parse(text) }
}

const plain = await post(jsonRequest, { 'content-type': 'application/json' })

t.test('gzip and deflate bodies are inflated: the same answer as uncompressed', async (t) => {
  t.equal(plain.status, 200)
  for (const [encoding, body] of [['gzip', gzipSync(jsonRequest)], ['deflate', deflateSync(jsonRequest)], ['GZip', gzipSync(jsonRequest)]] as const) {
    const res = await post(body, { 'content-type': 'application/json', 'content-encoding': encoding })
    t.equal(res.status, 200, encoding)
    t.same(res.json, plain.json, `${encoding}: the same outputs`)
  }
})

t.test('binary tensor data compressed: Inference-Header-Content-Length counts the inflated JSON', async (t) => {
  const data = writeBytesElements(images)
  const header = Buffer.from(JSON.stringify({ id: 'z-1', inputs: [{ name: 'image', shape: [images.length], datatype: 'BYTES', parameters: { binary_data_size: data.length } }] }))
  const res = await post(gzipSync(Buffer.concat([header, data])), { 'content-encoding': 'gzip', 'inference-header-content-length': String(header.length) })
  t.equal(res.status, 200)
  t.same(res.json, plain.json)
})

t.test('an encoding that is not gzip or deflate: 415 naming it, in the protocol\'s shape', async (t) => {
  const res = await post(jsonRequest, { 'content-type': 'application/json', 'content-encoding': 'br' })
  t.equal(res.status, 415)
  t.equal(res.type, 'application/json')
  t.same(Object.keys(res.json), ['error'])
  t.match(res.json.error, /Content-Encoding "br" is not accepted.*gzip or deflate/)
})

t.test('a body that is not the encoding it names: 400', async (t) => {
  const res = await post(jsonRequest, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
  t.equal(res.status, 400)
  t.match(res.json, { error: /not valid gzip/ })
  const truncated = gzipSync(jsonRequest).subarray(0, 100)
  t.equal((await post(truncated, { 'content-type': 'application/json', 'content-encoding': 'gzip' })).status, 400)
})

/** 1 GiB of zeros, gzipped (about 1 MiB), made in chunks so the test holds no gigabyte. */
async function gzipBomb (bytes: number): Promise<Buffer> {
  const gz = createGzip({ level: 9 })
  const out: Buffer[] = []
  gz.on('data', (c: Buffer) => out.push(c))
  const done = new Promise((resolve) => gz.on('end', resolve))
  const zeros = Buffer.alloc(1024 * 1024)
  for (let sent = 0; sent < bytes; sent += zeros.length) {
    if (!gz.write(zeros)) await new Promise((resolve) => gz.once('drain', resolve))
  }
  gz.end()
  await done
  return Buffer.concat(out)
}

t.test('a gzip bomb: 413 past MAX_REQUEST_BYTES, never inflated whole; the server stays responsive', async (t) => {
  const bomb = await gzipBomb(1024 * 1024 * 1024)
  const maxRequestBytes = testConfig().MAX_REQUEST_BYTES
  t.ok(bomb.length < maxRequestBytes / 4, `the bomb is ${bomb.length} bytes on the wire, well under ${maxRequestBytes}`)
  // The event loop's worst stall while the bomb is handled: live answers meanwhile.
  let worstMs = 0
  let last = performance.now()
  const ticker = setInterval(() => { const now = performance.now(); worstMs = Math.max(worstMs, now - last - 5); last = now }, 5)
  const started = performance.now()
  const [res, live] = await Promise.all([
    post(bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' }),
    fetch(`${base}/v2/health/live`).then((r) => r.status)
  ])
  const tookMs = performance.now() - started
  clearInterval(ticker)
  t.equal(res.status, 413)
  t.equal(res.type, 'application/json')
  t.match(res.json, { error: new RegExp(`inflates \\(Content-Encoding gzip\\) to more than ${maxRequestBytes} bytes \\(MAX_REQUEST_BYTES\\)`) })
  t.equal(live, 200, 'live answers while the bomb is handled')
  t.ok(worstMs < 250, `the event loop stalled at most ${worstMs.toFixed(0)} ms`)
  t.ok(tookMs < 5000, `refused in ${tookMs.toFixed(0)} ms (inflating the whole gigabyte is not needed)`)
  const after = await post(gzipSync(jsonRequest), { 'content-type': 'application/json', 'content-encoding': 'gzip' })
  t.equal(after.status, 200, 'and inference works afterwards')
  t.equal(app.bodyBudget.inUse, 0, 'every byte charged to the body budget is given back')
})
