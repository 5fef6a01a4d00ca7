import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

t.test('defaults for an empty environment', async (t) => {
  const c = loadConfig({})
  t.equal(c.PORT, 8080)
  t.equal(c.HOST, '0.0.0.0')
  t.equal(c.MODELS_MANIFEST, 'models/manifest.json')
  t.equal(c.EXECUTION_PROVIDER, 'auto')
  t.ok(c.INFERENCE_WORKERS >= 1)
  t.equal(c.MAX_UPLOAD_BYTES, 10 * 1024 * 1024)
})

t.test('values are coerced from strings; empty means unset', async (t) => {
  const c = loadConfig({ PORT: '9000', EXECUTION_PROVIDER: 'cuda', INFERENCE_WORKERS: '3', LOG_LEVEL: '' })
  t.equal(c.PORT, 9000)
  t.equal(c.EXECUTION_PROVIDER, 'cuda')
  t.equal(c.INFERENCE_WORKERS, 3)
  t.equal(c.LOG_LEVEL, 'info')
})

t.test('every bad variable is named with what it expected', async (t) => {
  const err = t.throws(() => loadConfig({ PORT: 'eighty', EXECUTION_PROVIDER: 'tpu', INFERENCE_WORKERS: '0' })) as ConfigError
  t.type(err, ConfigError)
  t.equal(err.issues.length, 3)
  t.match(err.message, /PORT: .*number/)
  t.match(err.message, /EXECUTION_PROVIDER: .*"cpu".*"cuda".*"auto"/)
  t.match(err.message, /INFERENCE_WORKERS: .*>=1/)
})

t.test('memory limits nest: MAX_REQUEST_BYTES follows MAX_UPLOAD_BYTES unless set, and may not be below it', async (t) => {
  t.equal(loadConfig({ MAX_UPLOAD_BYTES: '2048' }).MAX_REQUEST_BYTES, 2048)
  t.throws(() => loadConfig({ MAX_UPLOAD_BYTES: '4096', MAX_REQUEST_BYTES: '2048' }), { message: /MAX_REQUEST_BYTES: must be at least MAX_UPLOAD_BYTES/ })
  t.throws(() => loadConfig({ MAX_REQUEST_BYTES: String(512 * 1024 * 1024), MAX_UPLOAD_BYTES: '1024', MAX_INFLIGHT_BYTES: '4096' }), { message: /MAX_INFLIGHT_BYTES: must be at least MAX_REQUEST_BYTES/ })
  t.throws(() => loadConfig({ MAX_DECODE_BYTES: String(200 * 1024 * 1024) }), { message: /DECODE_MEMORY_BYTES: must be at least 1\.3 × MAX_DECODE_BYTES \+ 8 MiB/ })
})

t.test('UI_ENABLED and API_DOCS_ENABLED: on by default, off with false or 0, anything else named', async (t) => {
  const on = loadConfig({})
  t.equal(on.UI_ENABLED, true)
  t.equal(on.API_DOCS_ENABLED, true)
  t.equal(loadConfig({ UI_ENABLED: 'false', API_DOCS_ENABLED: '0' }).UI_ENABLED, false)
  t.equal(loadConfig({ UI_ENABLED: 'false', API_DOCS_ENABLED: '0' }).API_DOCS_ENABLED, false)
  t.equal(loadConfig({ UI_ENABLED: '1', API_DOCS_ENABLED: 'true' }).UI_ENABLED, true)
  const err = t.throws(() => loadConfig({ UI_ENABLED: 'no', API_DOCS_ENABLED: 'off' })) as ConfigError
  t.equal(err.issues.length, 2)
  t.match(err.message, /UI_ENABLED: .*"true".*"false"/)
  t.match(err.message, /API_DOCS_ENABLED: .*"true".*"false"/)
})

// Issue 20, defect 4: a token with whitespace started the service and then answered every
// admin call 401, since "Authorization: Bearer <token>" cannot carry it.
t.test('ADMIN_TOKEN: the line break a Secret file adds is removed; other whitespace is refused at start', async (t) => {
  const token = 'correct-horse-battery-staple'
  t.equal(loadConfig({ ADMIN_TOKEN: token }).ADMIN_TOKEN, token)
  t.equal(loadConfig({ ADMIN_TOKEN: `${token}\n` }).ADMIN_TOKEN, token, 'a trailing newline (kubectl create secret --from-file, echo)')
  t.equal(loadConfig({ ADMIN_TOKEN: `${token}\r\n` }).ADMIN_TOKEN, token, 'a trailing CRLF')
  for (const [what, value] of [
    ['a trailing space', `${token} `],
    ['a leading space', ` ${token}`],
    ['a passphrase with spaces', 'correct horse battery staple'],
    ['a tab inside', 'correct-horse\tbattery-staple'],
    ['a line break inside', 'correct-horse\nbattery-staple'],
    ['a non-ASCII character', 'correct-hörse-battery-staple']
  ] as const) {
    const err = t.throws(() => loadConfig({ ADMIN_TOKEN: value }), what) as ConfigError
    t.type(err, ConfigError, what)
    t.match(err.message, /ADMIN_TOKEN: must be printable ASCII with no spaces/, what)
  }
  t.throws(() => loadConfig({ ADMIN_TOKEN: 'short\n' }), { message: /ADMIN_TOKEN: must be at least 16 characters/ })
})

t.test('MAX_INFLIGHT_BYTES_PER_CLIENT: a quarter of MAX_INFLIGHT_BYTES unless set, at least MAX_REQUEST_BYTES, at most the whole', async (t) => {
  t.equal(loadConfig({}).MAX_INFLIGHT_BYTES_PER_CLIENT, 32 * 1024 * 1024)
  t.equal(loadConfig({ MAX_INFLIGHT_BYTES: String(16 * 1024 * 1024) }).MAX_INFLIGHT_BYTES_PER_CLIENT, 10 * 1024 * 1024, 'never below one whole request')
  t.equal(loadConfig({ MAX_INFLIGHT_BYTES_PER_CLIENT: String(128 * 1024 * 1024) }).MAX_INFLIGHT_BYTES_PER_CLIENT, 128 * 1024 * 1024, 'the whole budget (behind a proxy)')
  t.throws(() => loadConfig({ MAX_INFLIGHT_BYTES_PER_CLIENT: String(1024 * 1024) }), { message: /MAX_INFLIGHT_BYTES_PER_CLIENT: must be between MAX_REQUEST_BYTES and MAX_INFLIGHT_BYTES/ })
  t.throws(() => loadConfig({ MAX_INFLIGHT_BYTES_PER_CLIENT: String(256 * 1024 * 1024) }), { message: /MAX_INFLIGHT_BYTES_PER_CLIENT: must be between/ })
})

t.test('GRPC_PORT: 8081 by default (KServe\'s), a port, or "off"; anything else named', async (t) => {
  t.equal(loadConfig({}).GRPC_PORT, 8081)
  t.equal(loadConfig({ GRPC_PORT: '9001' }).GRPC_PORT, 9001)
  t.equal(loadConfig({ GRPC_PORT: '0' }).GRPC_PORT, 0)
  t.equal(loadConfig({ GRPC_PORT: 'off' }).GRPC_PORT, null)
  t.throws(() => loadConfig({ GRPC_PORT: 'grpc' }), { message: /GRPC_PORT/ })
  t.throws(() => loadConfig({ GRPC_PORT: '70000' }), { message: /GRPC_PORT/ })
})
