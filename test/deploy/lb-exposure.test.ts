// What the load balancer exposes (issue 20, defect 5), through Debian's nginx running the
// rendered deploy/nginx.conf in front of one service: inference, health, the page and /docs
// pass; /metrics, /admin/* and /v2/repository/* are 404s in the service's JSON shape however
// the path is spelled (encoded, doubled slashes, dot segments), while the replica itself still
// serves them on the internal network; nginx's own 400, 414, 431 and 501 speak the service's
// JSON error format; and X-Request-Id follows the request: the caller's when the service would
// accept it, else nginx's own, the same in nginx's answer and the service's log line.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { findNginx } from '../../scripts/nginx-conf.js'
import { buildOver } from '../helpers/build.js'
import { fixturePng } from '../helpers/images.js'
import { startNginx } from '../helpers/nginx-process.js'
import { rawRequest } from '../helpers/raw-http.js'

const TOKEN = 'lb-exposure-test-token-0123456789'
const MODEL = 'fashion-mnist-isomaxplus-md'
const nginxBin = findNginx()

if (nginxBin === null) {
  t.fail('nginx is not installed: apt-get install nginx-light (.ci/run does), or point NGINX_BIN at one')
} else {
  const logged: Array<{ requestId?: string, url?: string, msg?: string }> = []
  const sink = new Writable({ write (chunk: Buffer, _enc, done) { logged.push(JSON.parse(chunk.toString())); done() } })
  const { app } = await buildOver(t, { env: { ADMIN_TOKEN: TOKEN }, logger: pino({ level: 'info' }, sink) })
  const upstream = new URL(await app.listen({ host: '127.0.0.1', port: 0 }))
  const { base, dir } = await startNginx(t, nginxBin, upstream.host, 'exposure')
  const port = Number(new URL(base).port)
  const auth = { authorization: `Bearer ${TOKEN}` }
  const get = (p: string): string[] => [`GET ${p} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n`]
  const postAdmin = (p: string): string[] => [`POST ${p} HTTP/1.1\r\nHost: lb\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`]

  t.test('public: inference, health, the page and /docs', async (t) => {
    const png = fixturePng(0)
    const classify = await fetch(`${base}/classify`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } })
    t.equal(classify.status, 200, 'POST /classify')
    await classify.arrayBuffer()
    const v2 = await fetch(`${base}/v2/models/${MODEL}/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [png.toString('base64')] }] }) })
    t.equal(v2.status, 200, 'POST /v2/models/{name}/infer')
    await v2.arrayBuffer()
    for (const p of ['/health/live', '/health/ready', '/v2/health/live', '/v2/health/ready', '/v2', `/v2/models/${MODEL}`, '/models', '/', '/docs/json']) {
      const res = await fetch(base + p)
      t.equal(res.status, 200, `GET ${p}`)
      await res.arrayBuffer()
    }
  })

  t.test('internal: /metrics, /admin/* and /v2/repository/* are 404s through nginx, however spelled', async (t) => {
    // The replica serves them (the token opens the admin routes): they exist, nginx hides them.
    t.equal((await fetch(`${upstream.origin}/metrics`)).status, 200, 'the replica serves /metrics to Prometheus')
    t.equal((await fetch(`${upstream.origin}/v2/repository/index`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' })).status, 200, 'and the repository extension to operators')
    const spellings: Array<[string, string[], 'catalogue' | 'oip']> = [
      ['/metrics', get('/metrics'), 'catalogue'],
      ['/metrics/', get('/metrics/'), 'catalogue'],
      ['/%6detrics', get('/%6detrics'), 'catalogue'],
      ['//metrics', get('//metrics'), 'catalogue'],
      ['/./metrics', get('/./metrics'), 'catalogue'],
      ['/health/../metrics', get('/health/../metrics'), 'catalogue'],
      ['/health/%2e%2e/metrics', get('/health/%2e%2e/metrics'), 'catalogue'],
      ['/metrics?x=1', get('/metrics?x=1'), 'catalogue'],
      ['POST /admin/reload', postAdmin('/admin/reload'), 'catalogue'],
      ['POST /%61dmin/reload', postAdmin('/%61dmin/reload'), 'catalogue'],
      ['POST /admin%2Freload', postAdmin('/admin%2Freload'), 'catalogue'],
      ['POST //admin//reload', postAdmin('//admin//reload'), 'catalogue'],
      ['POST /v2/repository/index', postAdmin('/v2/repository/index'), 'oip'],
      ['POST /v2//repository/index', postAdmin('/v2//repository/index'), 'oip'],
      ['POST /v2/models/../repository/index', postAdmin('/v2/models/../repository/index'), 'oip'],
      ['POST /v2/%72epository/models/x/load', postAdmin('/v2/%72epository/models/x/load'), 'oip']
    ]
    for (const [name, raw, shape] of spellings) {
      const res = await rawRequest(port, raw)
      t.equal(res.status, 404, name)
      t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
      const body = JSON.parse(res.body)
      if (shape === 'oip') t.same(body, { error: 'route not found' }, `${name}: the protocol's error shape`)
      else t.same(body, { error: { code: 'ISOMAX_NOT_FOUND', message: 'route not found' } }, `${name}: the catalogue's shape`)
      t.match(res.headers['x-request-id'], /^[0-9a-f]{32}$/, `${name}: nginx's request id`)
    }
    // Encodings nginx does not decode reach the service as they are, which does not route them.
    for (const p of ['/metric%73%3F', '/metrics%3Bx', '/Metrics']) {
      const res = await rawRequest(port, get(p))
      t.not(res.status, 200, `${p}: not served`)
      t.notMatch(res.body, /isomax_predictions_total|# HELP/, `${p}: no metrics`)
    }
  })

  t.test('nginx\'s own 400, 404, 413, 414, 431, 501 and 505 speak the service\'s JSON error format', async (t) => {
    const cases: Array<[string, string[], number, string]> = [
      ['a malformed request line', ['GET /health/live HTTP/1.1 extra\r\nHost: lb\r\n\r\n'], 400, 'ISOMAX_BAD_REQUEST'],
      ['two Host headers', ['GET /health/live HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'], 400, 'ISOMAX_BAD_REQUEST'],
      ['a URI over nginx\'s buffers', [`GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: lb\r\n\r\n`], 414, 'ISOMAX_URI_TOO_LONG'],
      ['a header over nginx\'s buffers', [`GET /health/live HTTP/1.1\r\nHost: lb\r\nX-Big: ${'b'.repeat(9000)}\r\n\r\n`], 431, 'ISOMAX_HEADERS_TOO_LARGE'],
      ['an unknown Transfer-Encoding', ['POST /classify HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: gzip\r\n\r\n'], 501, 'ISOMAX_NOT_IMPLEMENTED'],
      ['a bad method', ['G@T /health/live HTTP/1.1\r\nHost: lb\r\n\r\n'], 400, 'ISOMAX_BAD_REQUEST'],
      ['HTTP/9.9', ['GET /health/live HTTP/9.9\r\nHost: lb\r\n\r\n'], 505, 'ISOMAX_BAD_REQUEST'],
      ['a body over client_max_body_size', [`POST /classify HTTP/1.1\r\nHost: lb\r\nContent-Type: image/png\r\nContent-Length: ${11 * 1024 * 1024}\r\n\r\n`], 413, 'ISOMAX_PAYLOAD_TOO_LARGE'],
      ['the error pages themselves', ['GET /_isomax-errors/400.json HTTP/1.1\r\nHost: lb\r\n\r\n'], 404, 'ISOMAX_NOT_FOUND']
    ]
    for (const [name, raw, status, code] of cases) {
      const res = await rawRequest(port, raw)
      t.equal(res.status, status, name)
      t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON, not HTML`)
      const body = JSON.parse(res.body)
      t.equal(body.error.code, code, name)
      t.type(body.error.message, 'string')
      t.match(res.headers['x-request-id'], /^[0-9a-f]{32}$/, `${name}: nginx's request id`)
    }
  })

  t.test('X-Request-Id follows the request: the caller\'s when the service accepts it, else nginx\'s', async (t) => {
    for (const [given, passed] of [['req-42.a:b_C', true], ['has a space', false], ['x'.repeat(129), false], ['<script>', false]] as const) {
      const before = logged.length
      const res = await fetch(`${base}/classify`, { method: 'POST', body: fixturePng(1), headers: { 'content-type': 'image/png', 'x-request-id': given } })
      await res.arrayBuffer()
      t.equal(res.status, 200)
      const id = res.headers.get('x-request-id')!
      if (passed) t.equal(id, given, `${given}: passed on as sent`)
      else t.match(id, /^[0-9a-f]{32}$/, `${given.slice(0, 20)}: replaced by nginx's own id`)
      const line = logged.slice(before).find((l) => l.msg === 'request completed' && l.url === '/classify')
      t.equal(line?.requestId, id, 'the service logged the id nginx answered with')
      const access = readFileSync(path.join(dir, 'access.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).at(-1)
      t.equal(access.requestId, id, 'and nginx logged it too')
    }
  })
}
