// DEFAULT_MODEL replaces the manifest's `default` (the CPU image serves the INT8 variant that
// way, the GPU image the manifest's float model): POST /classify, GET /models and the repository
// follow it, a reload keeps it, and a name the manifest lacks stops the service at start, naming
// the variable.
import t from 'tap'
import { readRepositoryFile } from '../src/repository/servable.js'
import { MANIFEST } from './helpers/data.js'
import { fixturePng } from './helpers/images.js'
import { spawnServer, startServer } from './helpers/server-process.js'

const INT8 = 'fashion-mnist-isomaxplus-md-int8'
const TOKEN = 'default-model-test-token'

t.test('readRepositoryFile: the override replaces the default; a name the manifest lacks is refused', async (t) => {
  t.equal((await readRepositoryFile(MANIFEST)).servable.defaultModel, 'fashion-mnist-isomaxplus-md', 'the manifest\'s default without it')
  t.equal((await readRepositoryFile(MANIFEST, INT8)).servable.defaultModel, INT8)
  await t.rejects(readRepositoryFile(MANIFEST, 'nope'), { code: 'ISOMAX_MANIFEST_INVALID', message: /^DEFAULT_MODEL=nope: no such model in / })
})

t.test('DEFAULT_MODEL: /classify, /models and a reload use it', async (t) => {
  const server = await startServer({ DEFAULT_MODEL: INT8, ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'info' })
  t.teardown(async () => {
    server.child.kill('SIGTERM')
    await server.exited
  })
  const classify = async (): Promise<{ model: string }> => {
    const res = await fetch(`${server.url}/classify`, { method: 'POST', body: fixturePng(0), headers: { 'content-type': 'image/png' } })
    t.equal(res.status, 200)
    return await res.json() as { model: string }
  }
  t.equal((await classify()).model, INT8, 'POST /classify answers with DEFAULT_MODEL')
  const models = await (await fetch(`${server.url}/models`)).json() as { default: string }
  t.equal(models.default, INT8)
  const reload = await fetch(`${server.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(reload.status, 200)
  t.equal((await reload.json() as { default: string }).default, INT8, 'the reload keeps it')
  t.equal((await classify()).model, INT8)
  const unload = await fetch(`${server.url}/v2/repository/models/${INT8}/unload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(unload.status, 409, 'it is the default: not unloaded')
})

t.test('DEFAULT_MODEL naming no model: the service does not start, and says why', async (t) => {
  const proc = spawnServer({ DEFAULT_MODEL: 'no-such-model' })
  const { code } = await proc.exited
  t.not(code, 0)
  t.match(proc.logs(), /DEFAULT_MODEL=no-such-model: no such model in .*manifest\.json \(it has: fashion-mnist-isomax, /)
})
