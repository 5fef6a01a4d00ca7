// The protocol boundary (issue 19, defect 6): on /v2 URLs every error answers in the Open
// Inference Protocol's shape, `{"error": "message"}`, with the content type KServe's client
// compares exactly ("application/json") — the HTTP parser's 400s, 431, 417, the 503 while
// draining, the 415, an unknown path — and never with /classify's image advice. REST URLs keep
// the catalogue's shape. Over a real socket: app.inject() bypasses the HTTP parser.
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { buildOver } from '../helpers/build.js'
import { rawRequest, type RawResponse } from '../helpers/raw-http.js'

const { app } = await buildOver(t, { env: { REQUEST_TIMEOUT_MS: '600' } })
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port
const INFER = '/v2/models/fashion-mnist-isomaxplus-md/infer'

function oipShape (t: Test, res: RawResponse, status: number, message?: RegExp): void {
  t.equal(res.status, status, `status ${status}`)
  t.equal(res.headers['content-type'], 'application/json', 'content type exactly application/json')
  const body = JSON.parse(res.body) as { error: unknown }
  t.same(Object.keys(body), ['error'])
  t.type(body.error, 'string', '{"error": "message"}')
  if (message !== undefined) t.match(body.error, message)
}

const cases: Array<[string, string[], number, RegExp]> = [
  ['bad chunk size', [`POST ${INFER} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`], 400, /^malformed HTTP request: /],
  ['Content-Length with chunked', [`POST ${INFER} HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`], 400, /^malformed HTTP request: /],
  ['headers over the limit', [`GET /v2/health/ready HTTP/1.1\r\nHost: test\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`], 431, /larger than the server accepts/],
  ['Expect: something else', [`POST ${INFER} HTTP/1.1\r\nHost: test\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}`], 417, /only "100-continue"/],
  ['no Host header', ['GET /v2/health/live HTTP/1.1\r\n\r\n'], 400, /needs a Host header/],
  ['an unknown /v2 path', ['GET /v2/nothing/here HTTP/1.1\r\nHost: test\r\n\r\n'], 404, /not found/],
  ['a method the path does not have', ['POST /v2/models/fashion-mnist-isomaxplus-md/ready HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n'], 404, /not found/]
]

for (const [name, parts, status, message] of cases) {
  t.test(`/v2, ${name}: ${status} in the protocol's shape`, async (t) => {
    oipShape(t, await rawRequest(port, parts), status, message)
  })
}

t.test('/v2 415: the protocol\'s shape and what the route takes, not /classify\'s image advice', async (t) => {
  const token = 'a-test-admin-token-of-some-length'
  const { app: admin } = await buildOver(t, { env: { ADMIN_TOKEN: token } })
  await admin.listen({ port: 0, host: '127.0.0.1' })
  const p = (admin.server.address() as AddressInfo).port
  const res = await rawRequest(p, [`POST /v2/repository/index HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${token}\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx`])
  oipShape(t, res, 415, /send no body, or application\/json/)
  t.notMatch(JSON.parse(res.body).error, /image/)
})

t.test('REST URLs keep the catalogue\'s shape for the same parser error', async (t) => {
  const res = await rawRequest(port, ['POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'])
  t.equal(res.status, 400)
  t.match(JSON.parse(res.body), { error: { code: 'ISOMAX_BAD_REQUEST' } })
})

t.test('/v2 success bodies carry application/json exactly too', async (t) => {
  const res = await rawRequest(port, ['GET /v2 HTTP/1.1\r\nHost: test\r\n\r\n'])
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'application/json')
})

t.test('draining: /v2 answers 503 in its shape with Retry-After; /classify in the catalogue\'s', async (t) => {
  const { app: draining } = await buildOver(t)
  await draining.listen({ port: 0, host: '127.0.0.1' })
  const p = (draining.server.address() as AddressInfo).port
  draining.lifecycle.closing = true
  const v2 = await rawRequest(p, ['GET /v2/health/ready HTTP/1.1\r\nHost: test\r\n\r\n'])
  oipShape(t, v2, 503, /shutting down/)
  t.equal(v2.headers['retry-after'], '1')
  const rest = await rawRequest(p, ['GET /health/ready HTTP/1.1\r\nHost: test\r\n\r\n'])
  t.equal(rest.status, 503)
  t.match(JSON.parse(rest.body), { error: { code: 'ISOMAX_SHUTTING_DOWN' } })
  draining.lifecycle.closing = false
})
