import { readFileSync } from 'node:fs'
import SwaggerParser from '@apidevtools/swagger-parser'
import t from 'tap'
import path from 'node:path'
import { OPENAPI_FILE, generateOpenApi } from '../scripts/openapi.js'
import { API_TAGS } from '../src/openapi/document.js'
import { CLASSIFY_EXAMPLE, CLASSIFY_EXAMPLE_SAMPLE } from '../src/protocols/rest/classify-example.js'
import { PUBLIC_DIR } from '../src/ui/public-dir.js'
import { build, buildOver } from './helpers/build.js'
import { REPO } from './helpers/data.js'

const committed = readFileSync(OPENAPI_FILE, 'utf8')

t.test('openapi/openapi.json is what the routes generate (run `npm run openapi` if not)', async (t) => {
  const generated = await generateOpenApi()
  t.same(JSON.parse(committed), JSON.parse(generated))
})

t.test('it is a valid OpenAPI 3 document', async (t) => {
  const api = await SwaggerParser.validate(JSON.parse(committed)) as any
  t.equal(api.openapi.slice(0, 2), '3.')
  const paths = Object.keys(api.paths).sort()
  t.same(paths, ['/admin/reload', '/classify', '/health/live', '/health/ready', '/metrics', '/models', '/models/{name}', '/models/{name}/classify', '/v2', '/v2/health/live', '/v2/health/ready', '/v2/models/stats', '/v2/models/{name}', '/v2/models/{name}/config', '/v2/models/{name}/infer', '/v2/models/{name}/ready', '/v2/models/{name}/stats', '/v2/models/{name}/versions/{version}', '/v2/models/{name}/versions/{version}/config', '/v2/models/{name}/versions/{version}/infer', '/v2/models/{name}/versions/{version}/ready', '/v2/models/{name}/versions/{version}/stats', '/v2/repository/index', '/v2/repository/models/{name}/load', '/v2/repository/models/{name}/unload'])
})

t.test('the uploads are documented as binary bodies and a multipart form', async (t) => {
  const doc = JSON.parse(committed)
  for (const p of ['/classify', '/models/{name}/classify']) {
    const body = doc.paths[p].post.requestBody
    for (const type of ['image/png', 'image/jpeg', 'image/webp']) t.same(body.content[type].schema, { type: 'string', format: 'binary' }, `${p} ${type}`)
    const form = body.content['multipart/form-data'].schema
    t.same(form.required, ['image'])
    t.same(form.properties.image.items, { type: 'string', format: 'binary' })
    t.ok(doc.paths[p].post.parameters.some((q: { name: string, in: string }) => q.name === 'topK' && q.in === 'query'))
    for (const status of ['200', '400', '413', '415', '503']) t.ok(doc.paths[p].post.responses[status], `${p} documents ${status}`)
  }
})

t.test('the repository routes: the index body is optional; each route lists only the statuses it can answer', async (t) => {
  const doc = JSON.parse(committed)
  const post = (p: string): any => doc.paths[p].post
  t.equal(post('/v2/repository/index').requestBody.required, false, 'an empty body is accepted')
  t.same(Object.keys(post('/v2/repository/index').responses).sort(), ['200', '400', '401', '415', '422'])
  t.same(Object.keys(post('/v2/repository/models/{name}/load').responses).sort(), ['200', '400', '401', '404', '414', '415', '422'])
  t.same(Object.keys(post('/v2/repository/models/{name}/unload').responses).sort(), ['200', '400', '401', '404', '409', '414', '415', '422'])
  t.match(post('/v2/repository/models/{name}/unload').responses['409'].description, /default model/)
  t.same(Object.keys(post('/admin/reload').responses).sort(), ['200', '400', '401', '415', '422'])
})

t.test('the document\'s version is package.json\'s', async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }
  t.equal((JSON.parse(committed) as { info: { version: string } }).info.version, pkg.version)
})

t.test('the groups in the order a newcomer needs them: classify first, every tag listed', async (t) => {
  const doc = JSON.parse(committed) as { tags: Array<{ name: string }>, paths: Record<string, Record<string, { tags?: string[] }>> }
  const listed = doc.tags.map((tag) => tag.name)
  t.same(listed, API_TAGS.map((tag) => tag.name))
  t.equal(listed[0], 'classify', 'Swagger UI lists POST /classify first')
  const used = new Set(Object.values(doc.paths).flatMap((ops) => Object.values(ops).flatMap((op) => op.tags ?? [])))
  t.same([...used].filter((u) => !listed.includes(u)), [], 'no operation has a tag missing from the list (it would go last)')
  t.same(listed.filter((l) => !used.has(l)), [], 'and no listed tag is unused')
})

t.test('the classify example is what the default model answers for the bundled sample', async (t) => {
  const doc = JSON.parse(committed) as { components: { schemas: Record<string, { example?: unknown }> } }
  t.same(doc.components.schemas.ClassifyResult!.example, CLASSIFY_EXAMPLE, 'ClassifyResult carries the example')
  t.same(doc.components.schemas.OodResult!.example, CLASSIFY_EXAMPLE.ood)
  const app = await build(t)
  const res = await app.inject({ method: 'POST', url: '/classify', payload: readFileSync(path.join(PUBLIC_DIR, 'samples', CLASSIFY_EXAMPLE_SAMPLE)), headers: { 'content-type': 'image/png' } })
  const api = res.json()
  const { default: name } = (await app.inject('/models')).json() as { default: string }
  t.equal(CLASSIFY_EXAMPLE.model, name, 'of the default model')
  for (const k of ['model', 'version', 'label', 'classIndex', 'batchSize'] as const) t.equal(api[k], CLASSIFY_EXAMPLE[k], k)
  t.same(api.topK.map((e: { label: string, classIndex: number }) => [e.label, e.classIndex]), CLASSIFY_EXAMPLE.topK.map((e) => [e.label, e.classIndex]), 'topK classes')
  api.topK.forEach((e: { probability: number }, i: number) => t.ok(Math.abs(e.probability - CLASSIFY_EXAMPLE.topK[i]!.probability) <= 1e-6, `topK[${i}].probability ${e.probability}`))
  t.equal(api.ood.kind, CLASSIFY_EXAMPLE.ood.kind, `ood.kind ${api.ood.kind as string}`)
  t.equal(api.ood.reject, CLASSIFY_EXAMPLE.ood.reject)
  // 7 significant digits; the score and distance may move in the last digits between CPUs.
  for (const k of ['score', 'threshold', 'pValue', 'minDistance'] as const) {
    const [got, shown] = [api.ood[k] as number, CLASSIFY_EXAMPLE.ood[k]]
    t.ok(Math.abs(got - shown) <= Math.abs(shown) * 1e-5, `ood.${k}: ${got} ≈ ${shown}`)
  }
  t.equal(api.reject, CLASSIFY_EXAMPLE.reject)
  t.same(api.rejectReasons, CLASSIFY_EXAMPLE.rejectReasons)
  t.same(doc.components.schemas.Confidence!.example, CLASSIFY_EXAMPLE.confidence)
  for (const k of ['value', 'threshold'] as const) {
    const [got, shown] = [api.confidence[k] as number, CLASSIFY_EXAMPLE.confidence[k]]
    t.ok(Math.abs(got - shown) <= Math.abs(shown) * 1e-5, `confidence.${k}: ${got} ≈ ${shown}`)
  }
  t.same(Object.keys(api.timings).sort(), Object.keys(CLASSIFY_EXAMPLE.timings).sort(), 'the same timings')
})

t.test('the live /docs/json: openapi.json exactly with ADMIN_TOKEN set; without it, the same less the admin and repository paths (which do not exist then)', async (t) => {
  const doc = JSON.parse(committed)
  const withToken = await buildOver(t, { env: { ADMIN_TOKEN: 'a-test-admin-token-of-some-length' } })
  t.same((await withToken.app.inject('/docs/json')).json(), doc)
  const without = await buildOver(t)
  const live = (await without.app.inject('/docs/json')).json()
  const adminPaths = ['/admin/reload', '/v2/repository/index', '/v2/repository/models/{name}/load', '/v2/repository/models/{name}/unload']
  for (const p of adminPaths) Reflect.deleteProperty(doc.paths, p)
  // And the bearer scheme, so that Swagger UI shows no Authorize button with nothing to authorize.
  Reflect.deleteProperty(doc.components, 'securitySchemes')
  t.same(live, doc)
})
