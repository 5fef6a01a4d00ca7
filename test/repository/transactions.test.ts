// The model repository's transactions (issue 19): each change is computed from the set served
// when it runs, so concurrent changes lose nothing; reloads coalesce; a caller's mistake is
// "refused", not a failed reload; unload is idempotent; a known but unloaded model is not
// ready rather than unknown; a staged (uncalibrated) entry blocks nobody.
// Over HTTP (app.inject) on an engine with a FunctionRunner; test/reload/reload-live.test.ts
// does the same with real models and processes.
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { buildOver } from '../helpers/build.js'
import { copyModels, editManifest } from '../helpers/manifest-copy.js'

const TOKEN = 'a-test-admin-token-of-some-length'
const auth = { authorization: `Bearer ${TOKEN}` }

type App = Awaited<ReturnType<typeof buildOver>>['app']

/** loadDelayMs: each load takes that long, as creating ONNX sessions does (the window races need). */
async function setup (t: Test, loadDelayMs = 0): Promise<{ app: App, file: string, def: string, others: string[], logs: () => string }> {
  const file = copyModels()
  let out = ''
  const { app } = await buildOver(t, { env: { MODELS_MANIFEST: file, ADMIN_TOKEN: TOKEN }, runner: { loadDelayMs }, logger: pino({ level: 'info' }, { write: (s: string) => { out += s } }) })
  const listed = (await app.inject('/models')).json() as { default: string, models: Array<{ name: string }> }
  return { app, file, def: listed.default, others: listed.models.map((m) => m.name).filter((n) => n !== listed.default), logs: () => out }
}

const post = async (app: App, url: string): Promise<{ statusCode: number, body: string }> => await app.inject({ method: 'POST', url, headers: auth })
const served = async (app: App): Promise<string[]> => ((await app.inject('/models')).json() as { models: Array<{ name: string }> }).models.map((m) => m.name).sort()
const metric = async (app: App, outcome: string): Promise<number> =>
  Number(new RegExp(`isomax_model_reloads_total\\{outcome="${outcome}"\\} (\\d+)`).exec((await app.inject('/metrics')).body)?.[1] ?? NaN)

t.test('two loads of different models at once: both are served', async (t) => {
  const { app, others: [a, b] } = await setup(t, 150)
  for (const m of [a!, b!]) t.equal((await post(app, `/v2/repository/models/${m}/unload`)).statusCode, 200)
  const res = await Promise.all([post(app, `/v2/repository/models/${a!}/load`), post(app, `/v2/repository/models/${b!}/load`)])
  t.same(res.map((r) => r.statusCode), [200, 200])
  const now = await served(app)
  t.ok(now.includes(a!) && now.includes(b!), `both served: ${now.join(', ')}`)
})

t.test('a load, then an unload arriving while the load creates its session: each takes effect', async (t) => {
  const { app, others: [a, b] } = await setup(t, 150)
  t.equal((await post(app, `/v2/repository/models/${a!}/unload`)).statusCode, 200)
  const load = post(app, `/v2/repository/models/${a!}/load`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const res = await Promise.all([load, post(app, `/v2/repository/models/${b!}/unload`)])
  t.same(res.map((r) => r.statusCode), [200, 200])
  const now = await served(app)
  t.ok(now.includes(a!), `${a!} loaded`)
  t.notOk(now.includes(b!), `${b!} unloaded`)
})

t.test('a burst of 40 reloads: all answer 200, at most two run', async (t) => {
  const { app } = await setup(t)
  const res = await Promise.all(Array.from({ length: 40 }, async () => await post(app, '/admin/reload')))
  t.ok(res.every((r) => r.statusCode === 200))
  const generations = new Set(res.map((r) => (JSON.parse(r.body) as { generation: number }).generation))
  t.ok(generations.size <= 2, `generations ${[...generations].join(', ')}`)
  t.ok(await metric(app, 'success') <= 2, 'at most two swaps counted')
})

t.test('refused changes (unknown model 404, the default 409) are counted as refused and logged; no failure', async (t) => {
  const { app, def, logs } = await setup(t)
  t.equal((await post(app, '/v2/repository/models/nope/load')).statusCode, 404)
  t.equal((await post(app, '/v2/repository/models/nope/unload')).statusCode, 404)
  t.equal((await post(app, `/v2/repository/models/${def}/unload`)).statusCode, 409)
  t.equal(await metric(app, 'refused'), 3)
  t.equal(await metric(app, 'failure'), 0, 'IsomaxReloadFailed does not fire on a caller\'s mistake')
  t.equal((logs().match(/model change refused, nothing changed/g) ?? []).length, 3, 'one line each')
})

t.test('unload is idempotent; a known model that is not loaded is not ready (503), not unknown (404)', async (t) => {
  const { app, others: [a] } = await setup(t)
  t.equal((await app.inject(`/v2/models/${a!}/ready`)).statusCode, 200)
  t.equal((await post(app, `/v2/repository/models/${a!}/unload`)).statusCode, 200)
  t.equal((await post(app, `/v2/repository/models/${a!}/unload`)).statusCode, 200, 'a second unload succeeds, as in Triton')
  const ready = await app.inject(`/v2/models/${a!}/ready`)
  t.equal(ready.statusCode, 503)
  t.match(ready.json().error, new RegExp(`"${a!}" is in the repository but not loaded`))
  t.equal((await app.inject('/v2/models/nope/ready')).statusCode, 404, 'an unknown name is still 404')
  t.equal(await metric(app, 'success'), 1, 'the no-op unload swapped nothing')
})

t.test('an unload lasts until the next reload, which serves the whole file again', async (t) => {
  const { app, others: [a] } = await setup(t)
  t.equal((await post(app, `/v2/repository/models/${a!}/unload`)).statusCode, 200)
  t.notOk((await served(app)).includes(a!))
  t.equal((await post(app, '/admin/reload')).statusCode, 200)
  t.ok((await served(app)).includes(a!))
})

t.test('a staged (uncalibrated) entry blocks no reload; the index says why it is not served; an uncalibrated default does', async (t) => {
  const { app, file, def, others: [a] } = await setup(t)
  editManifest(file, (m) => { delete m.models.find((e: { name: string }) => e.name === a).ood })
  const res = await post(app, '/admin/reload')
  t.equal(res.statusCode, 200, res.body)
  t.notOk((await served(app)).includes(a!), 'not served')
  const index = (await post(app, '/v2/repository/index')).body
  t.match(JSON.parse(index), [{}], 'a list')
  t.match((JSON.parse(index) as Array<{ name: string }>).find((e) => e.name === a), { state: 'UNAVAILABLE', reason: 'not calibrated' })
  t.equal((await app.inject(`/v2/models/${a!}/ready`)).statusCode, 503)
  editManifest(file, (m) => { delete m.models.find((e: { name: string }) => e.name === def).ood })
  const refused = await post(app, '/admin/reload')
  t.equal(refused.statusCode, 422)
  t.match(JSON.parse(refused.body).error.message, /the default model is not calibrated yet/)
})
