// Issue 20, defects 2 and 6, on the real model over HTTP: JSON that is small but deeply nested
// or very wide is refused in about a millisecond, before JSON.parse, while health probes stay
// fast; ragged `data` and a non-boolean `binary_data` are 400s in the protocol's error shape.
import t from 'tap'
import { jsonShapeProblem } from '../../src/protocols/oip-http/json-shape.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { MANIFEST } from '../helpers/data.js'
import { fixturePng } from '../helpers/images.js'
import { rawRequest } from '../helpers/raw-http.js'
import { startServer } from '../helpers/server-process.js'

// The real server in its own process, so probe latency is the server's, not this process's.
const server = await startServer({}, 120_000)
t.teardown(() => server.child.kill('SIGKILL'))
const base = server.url
const port = Number(new URL(base).port)
const manifest = await loadManifest(MANIFEST)
const NAME = manifest.defaultModel
const url = `${base}/v2/models/${NAME}/infer`
const image = fixturePng(0).toString('base64')

async function post (body: string | object): Promise<{ status: number, json: any, ms: number }> {
  const t0 = performance.now()
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  const json = await res.json()
  return { status: res.status, json, ms: performance.now() - t0 }
}

// The two shapes the attack used, each under the 1 MiB JSON cap.
const DEPTH = 520_000
const deep = `{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":${'['.repeat(DEPTH)}"${image}"${']'.repeat(DEPTH)}}]}`
const wide = `{"parameters":{${Array.from({ length: 90_000 }, (_, i) => `"k${i}":1`).join(',')}},"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["${image}"]}]}`

t.test('the shape scan: depth, keys and elements, strings and escapes skipped', async (t) => {
  const limits = { maxDepth: 4, maxKeys: 3, maxElements: 5 }
  const scan = (s: string): string | null => jsonShapeProblem(Buffer.from(s), limits)
  t.equal(scan('{"a":[[1,2],[3]],"b":{"c":[]}}'), null)
  t.equal(scan('[[[[[1]]]]]'), 'nested more than 4 deep')
  t.equal(scan('{"a":1,"b":2,"c":3,"d":4}'), 'more than 3 object keys')
  t.equal(scan('[1,2,3,4,5,6]'), 'more than 5 array elements')
  t.equal(scan('[[1],[2],[3]]'), 'more than 5 array elements', 'nested elements count too (3 rows + 3 values)')
  t.equal(scan('["[[[[[", "a:b:c:d:e", "\\"[[[[[[", ",,,,,,,"]'), null, 'brackets, colons and commas inside strings are not structure')
  t.equal(scan('[ ]'), null, 'an empty array has no elements')
  t.ok(deep.length < 1024 * 1024 && wide.length < 1024 * 1024, 'both attack bodies fit under the 1 MiB JSON cap')
})

t.test(`${DEPTH} nested arrays and 90,000 parameter keys: 400 in the protocol's shape, fast`, async (t) => {
  for (const [name, body, message] of [['deep', deep, /nested more than 16 deep/], ['wide', wide, /more than 1024 object keys/]] as const) {
    const res = await post(body)
    t.equal(res.status, 400, name)
    t.same(Object.keys(res.json), ['error'], `${name}: {"error": "..."}`)
    t.match(res.json.error, message, name)
    t.ok(res.ms < 1000, `${name}: answered in ${res.ms.toFixed(1)} ms (a 1 MiB round trip)`)
  }
})

t.test('16 clients sending them: /health/live and /health/ready stay fast', async (t) => {
  const until = Date.now() + 3000
  const statuses = new Map<number, number>()
  const raw = [deep, wide].map((body) => [
    `POST /v2/models/${NAME}/infer HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    Buffer.from(body)
  ])
  const attack = Promise.all(Array.from({ length: 16 }, async (_, i) => {
    while (Date.now() < until) {
      const s = (await rawRequest(port, raw[i % 2]!, { timeoutMs: 10_000 })).status
      statuses.set(s, (statuses.get(s) ?? 0) + 1)
    }
  }))
  const probes: number[] = []
  let failed = 0
  while (Date.now() < until) {
    for (const path of ['/health/live', '/health/ready']) {
      const t0 = performance.now()
      const res = await fetch(base + path)
      await res.text()
      probes.push(performance.now() - t0)
      if (res.status !== 200) failed++
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await attack
  probes.sort((a, b) => a - b)
  const p99 = probes[Math.floor(probes.length * 0.99)]!
  t.same([...statuses.keys()], [400], `every attack request is a 400 (${[...statuses.values()][0]} sent)`)
  t.equal(failed, 0, 'every probe answered 200')
  t.ok(probes.at(-1)! < 1000, `no probe over 1 s (max ${probes.at(-1)!.toFixed(1)} ms)`)
  // The p99 target (50 ms) is npm run test:hostile's, a benchmark on a quiet machine; this test
  // shares its cores with the rest of the suite and asserts what a readiness probe needs.
  t.comment(`probe p99 ${p99.toFixed(1)} ms over ${probes.length} probes`)
})

t.test('ragged data: 400 naming where it departs from the shape (defect 6)', async (t) => {
  const row = Array.from({ length: 28 }, () => 0)
  const rows = Array.from({ length: 28 }, () => row)
  const cases: Array<[string, unknown, RegExp]> = [
    ['a short row', [[[...Array.from({ length: 27 }, () => row), row.slice(1)]]], /data\[0\]\[0\]\[27\] has 27 elements, the shape \[1, 1, 28, 28\] says 28/],
    ['rows of different lengths that add up', [[[...Array.from({ length: 26 }, () => row), [...row, 0], row.slice(1)]]], /data\[0\]\[0\]\[26\] has 29 elements/],
    ['a sample too many', [[rows], [rows]], /data has 2 elements, the shape \[1, 1, 28, 28\] says 1/],
    ['half flat, half nested', [[...row.slice(0, 27), row]], /data\[0\] has 28 elements, the shape \[1, 1, 28, 28\] says 1/]
  ]
  for (const [name, data, message] of cases) {
    const res = await post({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data }] })
    t.equal(res.status, 400, name)
    t.match(res.json.error, message, name)
  }
  const images = await post({ inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: [[image], [image]] }] })
  t.equal(images.status, 400, 'BYTES [2] nested as [[a], [b]]')
  t.match(images.json.error, /data\[0\] is a list; the shape \[2\] has 1 dimensions/)
  const ok = await post({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: [[rows]] }] })
  t.equal(ok.status, 200, 'nested exactly as the shape is served')
})

t.test('binary_data and binary_data_output must be booleans (defect 6)', async (t) => {
  const inputs = [{ name: 'image', shape: [1], datatype: 'BYTES', data: [image] }]
  const yes = await post({ inputs, outputs: [{ name: 'label', parameters: { binary_data: 'yes' } }] })
  t.equal(yes.status, 400)
  t.match(yes.json.error, /outputs\[0\] \("label"\): parameters.binary_data must be true or false, got "yes"/)
  const one = await post({ inputs, parameters: { binary_data_output: 1 } })
  t.equal(one.status, 400)
  t.match(one.json.error, /parameters.binary_data_output must be true or false, got 1/)
  const no = await post({ inputs, outputs: [{ name: 'label', parameters: { binary_data: false } }] })
  t.equal(no.status, 200, 'false is a boolean: JSON output')
})
