// Hot reload with the real models, over HTTP, in a real server process (issue 10): reloads
// under load lose no request and every response belongs to one generation; a manifest that
// disagrees with its ONNX graph is refused and changes nothing; SIGHUP reloads; 50 reload
// cycles that each load and release a session do not leak.
import { copyFileSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { fixturePng } from '../helpers/images.js'
import { copyModels, editManifest } from '../helpers/manifest-copy.js'
import { startServer, waitForLog } from '../helpers/server-process.js'

const TOKEN = 'live-reload-test-admin-token'
const file = copyModels()
const dir = path.dirname(file)
const original = readFileSync(file, 'utf8')
const server = await startServer({ MODELS_MANIFEST: file, ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'info', INFERENCE_WORKERS: '1' }, 120_000)
t.teardown(() => server.child.kill('SIGKILL'))
const auth = { authorization: `Bearer ${TOKEN}` }
const body = fixturePng(0)
const m0 = JSON.parse(original)
// The model these tests change, and the one whose file replaces its own: both graphs output
// logits only, so either file passes the other's graph check (the default model's graph has a
// score output as well, which no other shipped file has).
const def = 'fashion-mnist-isomaxplus'
const defEntry = m0.models.find((e: any) => e.name === def)
const other = m0.models.find((e: any) => e.name === 'fashion-mnist-isomax')
copyFileSync(path.join(dir, other.path), path.join(dir, 'other.onnx'))

async function reload (): Promise<{ status: number, body: any }> {
  const res = await fetch(`${server.url}/admin/reload`, { method: 'POST', headers: auth })
  return { status: res.status, body: await res.json() }
}

async function classify (): Promise<{ status: number, threshold?: number, version?: string }> {
  const res = await fetch(`${server.url}/models/${def}/classify`, { method: 'POST', body, headers: { 'content-type': 'image/png' } })
  const json = await res.json() as { ood?: { threshold: number }, version?: string }
  return { status: res.status, threshold: json.ood?.threshold, version: json.version }
}

/** The model's entry as generation `k` of the test serves it: a threshold and a file. */
function setGeneration (k: number, replaceFile: boolean): { threshold: number, version: string } {
  const threshold = -2 - k / 100
  const version = `gen-${k}`
  editManifest(file, (m) => {
    const e = m.models.find((x: any) => x.name === def)
    e.ood.threshold = threshold
    e.version = version
    if (replaceFile) {
      const useOther = e.path !== 'other.onnx'
      e.path = useOther ? 'other.onnx' : defEntry.path
      e.sha256 = useOther ? other.sha256 : defEntry.sha256
    }
  })
  return { threshold, version }
}

t.test('a manifest that disagrees with its graph (3 labels for 10 classes): 422 naming the field, nothing changed', async (t) => {
  const before = await classify()
  editManifest(file, (m) => { m.models.find((x: any) => x.name === def).labels.splice(3) })
  const res = await reload()
  t.equal(res.status, 422)
  t.match(res.body.error.message, new RegExp(`models\\[\\d\\] \\(model "${def}"\\)\\.labels: the manifest lists 3 labels; the graph's output "logits" has 10 classes`))
  t.same(await classify(), before, 'still serving the same model and threshold')
  t.ok(await waitForLog(server, /"level":40.*model change failed, nothing changed/), 'logged at warn')
})

t.test('SIGHUP reloads; a bad manifest on SIGHUP changes nothing and the server serves on', async (t) => {
  (await import('node:fs')).writeFileSync(file, original)
  editManifest(file, (m) => {
    const e = m.models.find((x: any) => x.name === def)
    e.ood.threshold = -2.5
  })
  server.child.kill('SIGHUP')
  t.ok(await waitForLog(server, /"durationMs":\d+,"msg":"reload: generation \d+ serving after \d+ ms"/, 60_000), 'the reload is logged with its duration')
  t.equal((await classify()).threshold, -2.5)
  editManifest(file, (m) => { m.models[0].sha256 = '0'.repeat(64) })
  const count = (server.logs().match(/model change failed/g) ?? []).length
  server.child.kill('SIGHUP')
  t.ok(await waitForLog(server, new RegExp(`(model change failed[\\s\\S]*){${count + 1}}`), 60_000), 'the failure is logged')
  t.equal(server.child.exitCode, null, 'still running')
  t.equal((await classify()).threshold, -2.5, 'still the last good generation')
})

t.test('reloads under load: c=32 for 10 s, 5 threshold reloads and 2 model-file replacements, 0 failed requests', async (t) => {
  (await import('node:fs')).writeFileSync(file, original)
  const first = setGeneration(0, false)
  t.equal((await reload()).status, 200)
  // generations[k] is what generation k serves; swappedAt[k] when its reload returned.
  const generations = [first]
  const swappedAt = [performance.now()]
  const responses: Array<{ start: number, end: number, status: number, threshold?: number, version?: string }> = []
  const until = performance.now() + 10_000
  const load = Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() < until) {
      const start = performance.now()
      const r = await classify()
      responses.push({ start, end: performance.now(), ...r })
    }
  }))
  const plan = [false, false, true, false, false, true, false] // 5 threshold-only, 2 new files
  for (const [i, replaceFile] of plan.entries()) {
    await new Promise((resolve) => setTimeout(resolve, 1200))
    const next = setGeneration(i + 1, replaceFile)
    const res = await reload()
    t.equal(res.status, 200, `reload ${i + 1} (${replaceFile ? 'new file' : 'threshold only'})`)
    t.same(res.body.loaded, replaceFile ? [def] : [], 'a session is loaded only for a new file')
    generations.push(next)
    swappedAt.push(performance.now())
  }
  await load
  const failed = responses.filter((r) => r.status !== 200)
  t.equal(failed.length, 0, `${responses.length} requests, ${failed.length} failed`)
  const genOf = (r: { threshold?: number, version?: string }): number => generations.findIndex((g) => g.threshold === r.threshold && g.version === r.version)
  const mixed = responses.filter((r) => genOf(r) < 0)
  t.equal(mixed.length, 0, 'every response carries the threshold and version of one generation')
  // A request that starts after reload k returned is served by generation k or a later one;
  // none is served by a generation that did not exist yet when it ended.
  const stale = responses.filter((r) => {
    const g = genOf(r)
    const lastBeforeStart = swappedAt.filter((at) => at <= r.start).length - 1
    return g < lastBeforeStart
  })
  t.equal(stale.length, 0, 'requests after a swap carry the new values')
  t.comment(`reload under load: ${responses.length} requests at c=32 in 10 s, 7 reloads (2 new ONNX files), 0 failed`)
})

t.test('50 reload cycles, each loading a session and releasing one: RSS grows < 10 %', async (t) => {
  const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))?.[1]) / 1024
  for (let i = 0; i < 5; i++) { setGeneration(100 + i, true); t.equal((await reload()).status, 200) } // warm-up
  const before = rss()
  for (let i = 0; i < 50; i++) {
    setGeneration(200 + i, true)
    const res = await reload()
    if (res.status !== 200) t.fail(`cycle ${i}: ${JSON.stringify(res.body)}`)
  }
  await classify()
  const after = rss()
  const growth = (after - before) / before * 100
  t.ok(growth < 10, `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB over 50 cycles: ${growth.toFixed(1)} %`)
  t.comment(`50 reload cycles: RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} %)`)
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  t.match(metrics, /isomax_model_reloads_total\{outcome="success"\} \d+/)
})
