// The real process: config and manifest errors stop it before it listens; over a real socket
// it serves; SIGTERM drains (readiness 503, requests still served), then it exits 0.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { MANIFEST } from './helpers/data.js'
import { fixturePng } from './helpers/images.js'
import { spawnServer, startServer, waitForLog } from './helpers/server-process.js'

t.test('invalid configuration: exit 78 naming the variable and what it expected', async (t) => {
  const proc = spawnServer({ EXECUTION_PROVIDER: 'tpu', PORT: 'http' })
  const { code } = await proc.exited
  t.equal(code, 78)
  t.match(proc.logs(), /EXECUTION_PROVIDER: .*"cpu".*"cuda".*"auto"/)
  t.match(proc.logs(), /PORT: .*number/)
})

t.test('a broken manifest: exit 1 naming the file, model and field; never listens', async (t) => {
  const m = JSON.parse(readFileSync(MANIFEST, 'utf8'))
  m.models[0].path = path.resolve(path.dirname(MANIFEST), m.models[0].path)
  m.models[0].sha256 = '0'.repeat(64)
  for (const x of m.models.slice(1)) x.path = path.resolve(path.dirname(MANIFEST), x.path)
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'isomax-server-')), 'manifest.json')
  writeFileSync(file, JSON.stringify(m))
  const proc = spawnServer({ MODELS_MANIFEST: file })
  const { code } = await proc.exited
  t.equal(code, 1)
  t.match(proc.logs(), new RegExp(`manifest\\.json: models\\[0\\] \\(model \\\\"${m.models[0].name}\\\\"\\)\\.sha256`))
  t.notMatch(proc.logs(), /Server listening/)
})

t.test('EXECUTION_PROVIDER=cuda without a usable CUDA provider fails at start with a clear error', async (t) => {
  const proc = spawnServer({ EXECUTION_PROVIDER: 'cuda' })
  const { code } = await proc.exited
  t.equal(code, 1)
  t.match(proc.logs(), /Execution provider \\?"cuda\\?" is not usable/)
  t.notMatch(proc.logs(), /Server listening/)
})

t.test('auto falls back to CPU and says so at info level: expected, not a warning', async (t) => {
  const server = await startServer({ EXECUTION_PROVIDER: 'auto' })
  t.teardown(() => server.child.kill('SIGKILL'))
  t.match(server.logs(), /"level":30.*no usable GPU, running on the CPU as EXECUTION_PROVIDER=auto allows/)
  t.notMatch(server.logs(), /"level":(40|50)/, 'nothing at warning level or above on a CPU-only machine')
  t.match(server.logs(), /"model":"fashion-mnist-isomaxplus-md","provider":"cpu".*model loaded and warmed up/)
  const ready = await (await fetch(`${server.url}/health/ready`)).json() as { models: Array<{ provider: string }> }
  t.ok(ready.models.every((m) => m.provider === 'cpu'))
})

t.test('over a real socket: classify, then SIGTERM drains and exits 0', async (t) => {
  const server = await startServer({ DRAIN_DELAY_MS: '1500', LOG_LEVEL: 'info' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const res = await fetch(`${server.url}/classify`, { method: 'POST', body: fixturePng(0), headers: { 'content-type': 'image/png', 'x-request-id': 'socket-1' } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-request-id'), 'socket-1')
  t.equal((await res.json() as { model: string }).model, 'fashion-mnist-isomaxplus-md')
  t.ok(await waitForLog(server, /"requestId":"socket-1".*"route":"\/classify".*"status":200/), 'one JSON log line per request, with the caller\'s request id')
  t.notMatch(server.logs(), /"route":"\/health/, 'health probes are not logged per request')

  server.child.kill('SIGTERM')
  t.ok(await waitForLog(server, /draining: readiness now 503/), 'the signal is handled')
  const ready = await fetch(`${server.url}/health/ready`)
  t.equal(ready.status, 503, 'readiness turns 503 at once')
  t.match((await ready.json() as { reason: string }).reason, /draining/)
  const during = await fetch(`${server.url}/classify`, { method: 'POST', body: fixturePng(1), headers: { 'content-type': 'image/png' } })
  t.equal(during.status, 200, 'requests are still served during the drain delay')
  const { code } = await server.exited
  t.equal(code, 0)
  t.match(server.logs(), /closed: in-flight requests finished and sessions released/)
})

t.test('SIGINT also closes cleanly', async (t) => {
  const server = await startServer()
  server.child.kill('SIGINT')
  const { code } = await server.exited
  t.equal(code, 0)
})
