// Request bodies are bounded before they are read and while they arrive (issue 9, defect 6;
// issue 20, defect 1): one request at MAX_REQUEST_BYTES (413); all requests together at
// MAX_INFLIGHT_BYTES and each client at MAX_INFLIGHT_BYTES_PER_CLIENT, charged with the bytes
// that arrived (503 + Retry-After); and what was charged comes back when the response is done
// or the client goes away. A client that announces a large body and sends it slowly holds
// only what it sent.
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { buildOver } from '../helpers/build.js'
import { multipart } from '../helpers/multipart.js'
import { fixturePng } from '../helpers/images.js'
import { rawRequest } from '../helpers/raw-http.js'

const KiB = 1024
// Per client: the default, a quarter of the total but at least MAX_REQUEST_BYTES (512 KiB).
const { app } = await buildOver(t, {
  env: { MAX_UPLOAD_BYTES: String(256 * KiB), MAX_REQUEST_BYTES: String(512 * KiB), MAX_INFLIGHT_BYTES: String(1024 * KiB) }
})
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port
const head = (bytes: number, type = 'image/png'): string =>
  `POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: ${type}\r\nContent-Length: ${bytes}\r\n\r\n`

/** A request whose headers and `sent` bytes of its body are sent, the rest still to come. */
async function holdOpen (bytes: number, sent: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress })
  await once(socket, 'connect')
  socket.write(head(bytes))
  socket.write(Buffer.alloc(sent))
  return socket
}

/** Wait (at most 2 s) until the server has taken or given back what the test expects. */
async function budgetIs (want: number): Promise<void> {
  for (let i = 0; i < 400 && app.bodyBudget.inUse !== want; i++) await new Promise((resolve) => setTimeout(resolve, 5))
}

t.test('bodies that arrived past MAX_INFLIGHT_BYTES: 503 ISOMAX_OVERLOADED at once, with Retry-After', async (t) => {
  // Four clients, each within its share, hold 1000 KiB that really arrived.
  const held = await Promise.all([1, 2, 3, 4].map(async (i) => await holdOpen(256 * KiB, 250 * KiB, `127.0.0.${i}`)))
  await budgetIs(1000 * KiB)
  t.equal(app.bodyBudget.inUse, 1000 * KiB, 'four requests hold the 1000 KiB that arrived of the 1 MiB budget')
  const refused = await rawRequest(port, [head(100 * KiB), Buffer.alloc(100 * KiB)], { localAddress: '127.0.0.5' })
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '1')
  t.equal(JSON.parse(refused.body).error.code, 'ISOMAX_OVERLOADED')
  t.match(JSON.parse(refused.body).error.message, /MAX_INFLIGHT_BYTES\)/)
  t.notOk(refused.reset, 'the client read the 503 (the connection lingered, no reset)')
  const small = await rawRequest(port, [head(fixturePng(0).length), fixturePng(0)], { localAddress: '127.0.0.5' })
  t.equal(small.status, 200, 'a request that fits in what is left is served')

  held[0]!.destroy() // a client that goes away gives its bytes back
  await budgetIs(750 * KiB)
  t.equal(app.bodyBudget.inUse, 750 * KiB)
  for (const s of held.slice(1)) s.destroy()
  await budgetIs(0)
  t.equal(app.bodyBudget.inUse, 0, 'every byte given back')
  const again = await rawRequest(port, [head(fixturePng(1).length), fixturePng(1)])
  t.equal(again.status, 200)
})

t.test('slow uploads that announce the whole budget hold only what they sent: other uploads are served (issue 20, defect 1)', async (t) => {
  // The attack, scaled: 13 connections announce 1 MiB between them (12 × 80 KiB + 64 KiB) and
  // send one byte every 100 ms.
  const announced = [...Array.from({ length: 12 }, () => 80 * KiB), 64 * KiB]
  t.equal(announced.reduce((a, b) => a + b, 0), 1024 * KiB, 'together they announce MAX_INFLIGHT_BYTES')
  const slow = await Promise.all(announced.map(async (bytes) => await holdOpen(bytes, 1)))
  const drip = setInterval(() => { for (const s of slow) s.write(Buffer.alloc(1)) }, 100)
  t.teardown(() => { clearInterval(drip); for (const s of slow) s.destroy() })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.ok(app.bodyBudget.inUse < 1 * KiB, `the slow uploads hold ${app.bodyBudget.inUse} bytes, what arrived`)
  const png = fixturePng(2)
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push((await rawRequest(port, [head(png.length), png])).status)
  const form = multipart([{ field: 'image', filename: 'a.png', contentType: 'image/png', data: png }])
  const formBody = form.payload as Buffer
  statuses.push((await rawRequest(port, [`POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: ${form.headers['content-type']}\r\nContent-Length: ${formBody.length}\r\n\r\n`, formBody])).status)
  const v2 = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [png.toString('base64')] }] }))
  statuses.push((await rawRequest(port, [`POST /v2/models/fashion-mnist-isomaxplus-md/infer HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: ${v2.length}\r\n\r\n`, v2])).status)
  t.same(statuses, Array(12).fill(200), 'every legitimate upload (raw, form, /v2) answered 200')
  clearInterval(drip)
  for (const s of slow) s.destroy()
  await budgetIs(0)
  t.equal(app.bodyBudget.inUse, 0)
})

t.test('one client past its share (MAX_INFLIGHT_BYTES_PER_CLIENT): 503; other clients are served', async (t) => {
  const held = await Promise.all([0, 1].map(async () => await holdOpen(256 * KiB, 250 * KiB, '127.0.0.7')))
  await budgetIs(500 * KiB)
  t.equal(app.bodyBudget.inUseBy('127.0.0.7'), 500 * KiB)
  const mine = await rawRequest(port, [head(20 * KiB), Buffer.alloc(20 * KiB)], { localAddress: '127.0.0.7' })
  t.equal(mine.status, 503, 'the same client: over its 512 KiB share')
  t.match(JSON.parse(mine.body).error.message, /from this client exceed 524288 bytes \(MAX_INFLIGHT_BYTES_PER_CLIENT\)/)
  const other = await rawRequest(port, [head(fixturePng(0).length), fixturePng(0)], { localAddress: '127.0.0.8' })
  t.equal(other.status, 200, 'another client')
  for (const s of held) s.destroy()
  await budgetIs(0)
})

t.test('a body whose bytes stop fitting while they arrive: 503, read by the client, and nothing kept', async (t) => {
  // Let in at the door (nothing else held), then three other clients fill the budget.
  const late = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.9' })
  await once(late, 'connect')
  late.write(head(200 * KiB))
  const chunks: Buffer[] = []
  late.on('data', (d: Buffer) => chunks.push(d))
  late.on('error', () => {})
  await new Promise((resolve) => setTimeout(resolve, 50))
  const fill = await Promise.all([1, 2, 3, 4].map(async (i) => await holdOpen(256 * KiB, 240 * KiB, `127.0.0.${i}`)))
  await budgetIs(960 * KiB)
  late.write(Buffer.alloc(200 * KiB))
  await new Promise((resolve) => late.once('close', resolve))
  const text = Buffer.concat(chunks).toString()
  t.match(text, /^HTTP\/1\.1 503/, 'the late body is refused with a 503')
  t.match(text, /while this body was arriving/)
  for (const s of fill) s.destroy()
  await budgetIs(0)
  t.equal(app.bodyBudget.inUse, 0, 'its partial bytes were given back')
})

t.test('a declared body over MAX_REQUEST_BYTES: 413 before reading it, for a form too', async (t) => {
  const raw = await rawRequest(port, [head(600 * KiB), Buffer.alloc(600 * KiB)])
  t.equal(raw.status, 413)
  t.match(JSON.parse(raw.body).error.message, /614400 bytes, more than 524288 \(MAX_REQUEST_BYTES\)/)
  t.notOk(raw.reset)
  const form = multipart([0, 1, 2].map((i) => ({ field: 'image', filename: `${i}.png`, data: Buffer.alloc(220 * KiB, i) })))
  const res = await app.inject({ method: 'POST', url: '/classify', ...form })
  t.equal(res.statusCode, 413, 'three 220 KiB images: each under MAX_UPLOAD_BYTES, together over MAX_REQUEST_BYTES')
  t.equal(res.json().error.code, 'ISOMAX_PAYLOAD_TOO_LARGE')
  await budgetIs(0)
  t.equal(app.bodyBudget.inUse, 0)
})

t.test('a chunked form is counted while it is read: over MAX_REQUEST_BYTES is a 413', async (t) => {
  const form = multipart([0, 1, 2].map((i) => ({ field: 'image', filename: `${i}.png`, data: Buffer.alloc(220 * KiB, i) })))
  const body = form.payload as Buffer
  const chunks: string[] = [`POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: ${form.headers['content-type']}\r\nTransfer-Encoding: chunked\r\n\r\n`]
  for (let o = 0; o < body.length; o += 64 * KiB) {
    const piece = body.subarray(o, o + 64 * KiB)
    chunks.push(`${piece.length.toString(16)}\r\n${piece.toString('latin1')}\r\n`)
  }
  chunks.push('0\r\n\r\n')
  const res = await rawRequest(port, chunks)
  t.equal(res.status, 413)
  t.match(JSON.parse(res.body).error.message, /more than 524288 bytes \(MAX_REQUEST_BYTES\)/)
  await budgetIs(0)
  t.equal(app.bodyBudget.inUse, 0, 'the chunked form\'s bytes were given back')
})

t.test('a form within the limits is still served, image by image', async (t) => {
  const form = multipart([0, 1].map((i) => ({ field: 'image', filename: `${i}.png`, contentType: 'image/png', data: fixturePng(i) })))
  const res = await app.inject({ method: 'POST', url: '/classify', ...form })
  t.equal(res.statusCode, 200)
  t.equal(res.json().length, 2)
})
