// The pages for people over HTTP (no browser): what / and /docs serve, their headers, what they
// leave alone, and the two off switches. test/ui/browser.test.ts drives them in Chromium.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { PUBLIC_DIR } from '../../src/ui/public-dir.js'
import { API_DOCS_CSP } from '../../src/ui/api-docs.js'
import { TRY_IT_CSP } from '../../src/ui/try-it.js'
import { buildOver } from '../helpers/build.js'

const notFound = (method: string, url: string): unknown => ({ error: { code: 'ISOMAX_NOT_FOUND', message: `route ${method} ${url} not found` } })

t.test('on by default: the try-it page, its files and uPlot, with their CSP', async (t) => {
  const { app } = await buildOver(t)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.body, readFileSync(path.join(PUBLIC_DIR, 'index.html'), 'utf8'))
  t.equal(page.headers['content-security-policy'], TRY_IT_CSP)
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['cache-control'], 'no-cache')
  t.notMatch(TRY_IT_CSP, /unsafe-inline|unsafe-eval|https?:/, 'nothing inline, nothing from elsewhere')

  // Every file the page refers to is served, with a type a browser will run or show.
  const refs = [...page.body.matchAll(/(?:src|href)="([^"#:]+)"/g)].map((m) => m[1]!).filter((r) => r !== 'docs' && r !== 'models')
  t.ok(refs.length >= 10, `${refs.length} files referred to`)
  for (const ref of refs) {
    const res = await app.inject(`/${ref}`)
    t.equal(res.statusCode, 200, ref)
    t.equal(res.headers['content-security-policy'], TRY_IT_CSP, `${ref}: CSP`)
  }
  for (const file of readdirSync(path.join(PUBLIC_DIR, 'js'))) {
    t.match((await app.inject(`/js/${file}`)).headers['content-type'], /^(text|application)\/javascript/, `js/${file} is JavaScript`)
  }
  t.match((await app.inject('/vendor/uplot/uPlot.iife.min.js')).body, /uPlot/, 'uPlot from node_modules')
})

t.test('only the files that were there at start: anything else is the API\'s JSON 404', async (t) => {
  const { app } = await buildOver(t)
  for (const url of ['/samples/README.md', '/../package.json', '/%2e%2e/package.json', '/vendor/uplot/uPlot.esm.js', '/js/', '/nope.html']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 404, url)
    t.match(res.headers['content-type'], /^application\/json/, `${url}: JSON`)
    t.match(res.json(), { error: { code: 'ISOMAX_NOT_FOUND' } }, `${url}: the catalogue's 404`)
  }
})

t.test('the API keeps its own headers: no page CSP on JSON routes', async (t) => {
  const { app } = await buildOver(t)
  for (const url of ['/models', '/health/live', '/v2']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['content-security-policy'], undefined, `${url}: no CSP`)
  }
})

t.test('/docs: Swagger UI over the live OpenAPI document, v2 included, pages hidden', async (t) => {
  const { app } = await buildOver(t)
  const ui = await app.inject('/docs')
  // The plugin redirects /docs to /docs/ or serves it; either way the UI's HTML is reachable.
  const html = ui.statusCode === 302 ? await app.inject(ui.headers.location as string) : ui
  t.equal(html.statusCode, 200)
  t.match(html.body, /swagger-ui/)
  t.equal(html.headers['content-security-policy'], API_DOCS_CSP)
  const doc = (await app.inject('/docs/json')).json() as { paths: Record<string, Record<string, { operationId?: string }>> }
  for (const p of ['/classify', '/models/{name}/classify', '/models/{name}', '/v2/models/{name}/infer']) t.ok(doc.paths[p], `documents ${p}`)
  t.same(doc, app.swagger(), 'the same document as openapi/openapi.json is generated from')
  for (const p of Object.keys(doc.paths)) t.notMatch(p, /^\/(docs|vendor|js|samples)?(\/|$)|\.(html|css|png|jpg)$/, `${p} is an API route`)
})

t.test('/docs/json: a security scheme only when there is something to authorize (ADMIN_TOKEN)', async (t) => {
  type Doc = { components?: { securitySchemes?: Record<string, unknown> }, paths: Record<string, Record<string, { security?: unknown[] }>> }
  const secured = (doc: Doc): string[] => Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).filter(([, op]) => op.security !== undefined).map(([m]) => `${m} ${p}`))
  // Swagger UI shows its Authorize button whenever the document has a security scheme.
  const { app: open } = await buildOver(t)
  const plain = (await open.inject('/docs/json')).json() as Doc
  t.equal(plain.components?.securitySchemes, undefined, 'no ADMIN_TOKEN: no security scheme, so no Authorize button')
  t.same(secured(plain), [], 'and no operation that asks for one')
  const { app: admin } = await buildOver(t, { env: { ADMIN_TOKEN: 'a-token-of-16-chars-or-more' } })
  const doc = (await admin.inject('/docs/json')).json() as Doc
  t.same(Object.keys(doc.components?.securitySchemes ?? {}), ['bearer'], 'ADMIN_TOKEN set: the bearer scheme')
  t.same(secured(doc).sort(), ['post /admin/reload', 'post /v2/repository/index', 'post /v2/repository/models/{name}/load', 'post /v2/repository/models/{name}/unload'], 'on the admin operations')
})

t.test('UI_ENABLED=false: / and the page\'s files are 404s; /docs stays', async (t) => {
  const { app } = await buildOver(t, { env: { UI_ENABLED: 'false' } })
  for (const url of ['/', '/index.html', '/app.css', '/js/app.js', '/samples/mnist-7.png', '/vendor/uplot/uPlot.iife.min.js']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 404, url)
    t.same(res.json(), notFound('GET', url), `${url}: the catalogue's 404`)
  }
  t.equal((await app.inject('/docs/json')).statusCode, 200)
  t.equal((await app.inject('/models')).statusCode, 200)
})

t.test('API_DOCS_ENABLED=false: /docs and its files are 404s; / stays', async (t) => {
  const { app } = await buildOver(t, { env: { API_DOCS_ENABLED: 'false' } })
  for (const url of ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/static/index.html']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 404, url)
    t.same(res.json(), notFound('GET', url), `${url}: the catalogue's 404`)
  }
  t.equal((await app.inject('/')).statusCode, 200)
})

t.test('both off: the API only, its OpenAPI document unchanged', async (t) => {
  const { app: on } = await buildOver(t)
  const { app } = await buildOver(t, { env: { UI_ENABLED: 'false', API_DOCS_ENABLED: 'false' } })
  t.equal((await app.inject('/')).statusCode, 404)
  t.equal((await app.inject('/docs')).statusCode, 404)
  t.same(app.swagger(), on.swagger(), 'the pages add nothing to the document')
})

t.test('a missing page folder stops the start, naming the switch', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: tryItPage } = await import('../../src/ui/try-it.js')
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => {
    await app.register(tryItPage, { root: path.join(PUBLIC_DIR, 'no-such-folder') })
    await app.ready()
  }, /index\.html is missing \(set UI_ENABLED=false/)
})
