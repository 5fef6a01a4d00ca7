// Request bodies are bounded before they are read (issue 9, defect 6): one request at
// MAX_REQUEST_BYTES (413), all requests together at MAX_INFLIGHT_BYTES (503 + Retry-After,
// before any of the body is buffered), and the reservation comes back when the response is
// done or the client goes away.
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { buildOver } from '../helpers/build.js'
import { multipart } from '../helpers/multipart.js'
import { fixturePng } from '../helpers/images.js'
import { rawRequest } from '../helpers/raw-http.js'

const KiB = 1024
const { app } = await buildOver(t, {
  env: { MAX_UPLOAD_BYTES: String(256 * KiB), MAX_REQUEST_BYTES: String(512 * KiB), MAX_INFLIGHT_BYTES: String(1024 * KiB) }
})
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port
const head = (bytes: number, type = 'image/png'): string =>
  `POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: ${type}\r\nContent-Length: ${bytes}\r\n\r\n`

/** A request whose headers are sent and whose body is still to come: it holds its bytes. */
async function holdOpen (bytes: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(head(bytes))
  socket.write(Buffer.alloc(16)) // some of the body, so the request is under way
  return socket
}

/** Wait (at most 2 s) until the server has taken or given back what the test expects. */
async function budgetIs (want: number): Promise<void> {
  for (let i = 0; i < 400 && app.bodyBudget.inUse !== want; i++) await new Promise((resolve) => setTimeout(resolve, 5))
}

t.test('bodies in flight past MAX_INFLIGHT_BYTES: 503 ISOMAX_OVERLOADED at once, with Retry-After', async (t) => {
  const held = await Promise.all([0, 1, 2, 3].map(async () => await holdOpen(250 * KiB)))
  await budgetIs(1000 * KiB)
  t.equal(app.bodyBudget.inUse, 1000 * KiB, 'four requests hold 1000 KiB of the 1 MiB budget')
  const refused = await rawRequest(port, [head(100 * KiB), Buffer.alloc(100 * KiB)])
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '1')
  t.equal(JSON.parse(refused.body).error.code, 'ISOMAX_OVERLOADED')
  t.match(JSON.parse(refused.body).error.message, /MAX_INFLIGHT_BYTES/)
  t.notOk(refused.reset, 'the client read the 503 (the connection lingered, no reset)')
  const small = await rawRequest(port, [head(fixturePng(0).length), fixturePng(0)])
  t.equal(small.status, 200, 'a request that fits in what is left is served')

  held[0]!.destroy() // a client that goes away gives its reservation back
  await budgetIs(750 * KiB)
  t.equal(app.bodyBudget.inUse, 750 * KiB)
  for (const s of held.slice(1)) s.destroy()
  await budgetIs(0)
  t.equal(app.bodyBudget.inUse, 0, 'every byte given back')
  const again = await rawRequest(port, [head(fixturePng(1).length), fixturePng(1)])
  t.equal(again.status, 200)
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
  t.equal(app.bodyBudget.inUse, 0, 'the chunked request had reserved MAX_REQUEST_BYTES and gave it back')
})

t.test('a form within the limits is still served, image by image', async (t) => {
  const form = multipart([0, 1].map((i) => ({ field: 'image', filename: `${i}.png`, contentType: 'image/png', data: fixturePng(i) })))
  const res = await app.inject({ method: 'POST', url: '/classify', ...form })
  t.equal(res.statusCode, 200)
  t.equal(res.json().length, 2)
})
