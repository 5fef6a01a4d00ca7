// Every HTTP error the service can produce answers `{"error":{"code","message"}}` — including
// the ones Node's parser and Fastify's router produce before a route runs — and malformed
// multipart forms are the client's 400, logged at info without a stack (issue 9, defects 3–4).
// Over a real socket: app.inject() bypasses the HTTP parser.
import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { buildOver } from '../helpers/build.js'
import { rawRequest, type RawResponse } from '../helpers/raw-http.js'

const lines: Array<{ level: number, msg: string, err?: unknown, code?: string }> = []
const sink = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
const { app } = await buildOver(t, { env: { REQUEST_TIMEOUT_MS: '600' }, logger: pino({ level: 'info' }, sink) })
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port

const post = (path: string, headers: string, body: string): string[] =>
  [`POST ${path} HTTP/1.1\r\nHost: test\r\n${headers}Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n`, body]

function inCatalogue (t: Test, res: RawResponse, status: number, code: string, message?: RegExp): void {
  t.equal(res.status, status, `status ${status}`)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = JSON.parse(res.body) as { error: { code: string, message: string } }
  t.same(Object.keys(body), ['error'])
  t.same(Object.keys(body.error).sort(), ['code', 'message'])
  t.equal(body.error.code, code)
  if (message !== undefined) t.match(body.error.message, message)
}

const part = (boundary: string, nl = '\r\n'): string =>
  `--${boundary}${nl}Content-Disposition: form-data; name="image"; filename="a.png"${nl}Content-Type: image/png${nl}${nl}xxxxxxxx${nl}`
const form = (type: string): string => `Content-Type: ${type}\r\n`

const multipartCases: Array<[string, string, string]> = [
  ['no boundary', form('multipart/form-data'), part('abc') + '--abc--\r\n'],
  ['empty boundary', form('multipart/form-data; boundary='), part('abc') + '--abc--\r\n'],
  ['a boundary the body never uses', form('multipart/form-data; boundary=zzz'), part('abc') + '--abc--\r\n'],
  ['truncated inside a part', form('multipart/form-data; boundary=abc'), part('abc').slice(0, 60)],
  ['unterminated form', form('multipart/form-data; boundary=abc'), part('abc')],
  ['LF-only line endings', form('multipart/form-data; boundary=abc'), part('abc', '\n') + '--abc--\n'],
  ['not a form at all', form('multipart/form-data; boundary=abc'), 'garbage garbage']
]

for (const [name, headers, body] of multipartCases) {
  t.test(`malformed multipart: ${name} → 400 ISOMAX_BAD_REQUEST, logged at info`, async (t) => {
    const before = lines.length
    const res = await rawRequest(port, post('/classify', headers, body))
    inCatalogue(t, res, 400, 'ISOMAX_BAD_REQUEST', /^malformed multipart\/form-data body: /)
    const logged = lines.slice(before)
    t.notOk(logged.some((l) => l.level >= 50), 'nothing at error level')
    t.notOk(logged.some((l) => l.err !== undefined), 'no stack logged')
    t.ok(logged.some((l) => l.level === 30 && l.code === 'ISOMAX_BAD_REQUEST'), 'one info line with the code')
  })
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`
const parserCases: Array<[string, string, number, string, RegExp]> = [
  ['bad chunk size', 'POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400, 'ISOMAX_BAD_REQUEST', /^malformed HTTP request: .*chunk/],
  ['Content-Length with chunked', 'POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'ISOMAX_BAD_REQUEST', /^malformed HTTP request: /],
  ['NUL in a header', get('/health/live', 'X-A: a\0b\r\n'), 400, 'ISOMAX_BAD_REQUEST', /^malformed HTTP request: /],
  ['CR in a header', get('/health/live', 'X-A: a\rb\r\n'), 400, 'ISOMAX_BAD_REQUEST', /^malformed HTTP request: /],
  ['LF in a header name', get('/health/live', 'X\nA: b\r\n'), 400, 'ISOMAX_BAD_REQUEST', /^malformed HTTP request: /],
  ['headers over 16 kB', get('/health/live', `X-A: ${'a'.repeat(20_000)}\r\n`), 431, 'ISOMAX_HEADERS_TOO_LARGE', /headers are larger/],
  ['an unknown method', 'FOO /health/live HTTP/1.1\r\nHost: test\r\n\r\n', 400, 'ISOMAX_BAD_REQUEST', /method/i],
  ['bad %-encoding', get('/models/%E0%A4%A/classify'), 400, 'ISOMAX_BAD_REQUEST', /bad %-encoding/],
  ['a missing Host header', 'GET /health/live HTTP/1.1\r\n\r\n', 400, 'ISOMAX_BAD_REQUEST', /Host header/],
  ['Expect: bogus', 'POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nExpect: bogus\r\nContent-Length: 1\r\n\r\nx', 417, 'ISOMAX_EXPECTATION_FAILED', /bogus/],
  ['a model name over 200 characters', `POST /models/${'a'.repeat(201)}/classify HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n`, 414, 'ISOMAX_URI_TOO_LONG', /longer than 200/]
]

for (const [name, raw, status, code, message] of parserCases) {
  t.test(`${name} → ${status} ${code}`, async (t) => {
    inCatalogue(t, await rawRequest(port, [raw]), status, code, message)
  })
}

t.test('a model name of 101–200 characters is a model name like any other: 404 ISOMAX_MODEL_NOT_FOUND', async (t) => {
  for (const n of [101, 150, 200]) {
    const res = await rawRequest(port, post(`/models/${'a'.repeat(n)}/classify`, form('image/png'), 'x'))
    inCatalogue(t, res, 404, 'ISOMAX_MODEL_NOT_FOUND')
  }
})

t.test('a sender slower than REQUEST_TIMEOUT_MS gets 408 ISOMAX_REQUEST_TIMEOUT, not an empty close', async (t) => {
  const head = 'POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: 100\r\n\r\n'
  const res = await rawRequest(port, [head, 'abc'], { timeoutMs: 10_000 })
  inCatalogue(t, res, 408, 'ISOMAX_REQUEST_TIMEOUT', /600 ms/)
})

t.test('the service still answers after all of that', async (t) => {
  inCatalogue(t, await rawRequest(port, [get('/nope')]), 404, 'ISOMAX_NOT_FOUND')
  const live = await rawRequest(port, [get('/health/live')])
  t.equal(live.status, 200)
})
