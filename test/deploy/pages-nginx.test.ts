// The pages for people through deploy/nginx.conf: Debian's nginx, the config rendered as
// npm run test:deploy renders it, in front of one service on a free port. The try-it page, its
// files and the API docs arrive whole with the service's own headers (CSP included); scripts
// and styles come gzipped, the API's JSON as the service sent it. Without nginx this test
// fails, saying how to install it (.ci/run does).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { findNginx } from '../../scripts/nginx-conf.js'
import { API_DOCS_CSP } from '../../src/ui/api-docs.js'
import { PUBLIC_DIR } from '../../src/ui/public-dir.js'
import { TRY_IT_CSP, UPLOT_DIR } from '../../src/ui/try-it.js'
import { buildOver } from '../helpers/build.js'
import { startNginx } from '../helpers/nginx-process.js'

const nginxBin = findNginx()
if (nginxBin === null) {
  t.fail('nginx is not installed: apt-get install nginx-light (.ci/run does), or point NGINX_BIN at one')
} else {
  t.test('/, its files and /docs through nginx', async (t) => {
    const { app } = await buildOver(t)
    const upstream = new URL(await app.listen({ host: '127.0.0.1', port: 0 }))
    const { base } = await startNginx(t, nginxBin, upstream.host, 'pages')

    const page = await fetch(`${base}/`)
    t.equal(page.status, 200)
    t.equal(await page.text(), readFileSync(path.join(PUBLIC_DIR, 'index.html'), 'utf8'), 'the page, whole')
    t.equal(page.headers.get('content-security-policy'), TRY_IT_CSP, 'the service\'s CSP passes through')
    t.match(page.headers.get('x-request-id'), /^[0-9a-f]{32}$/, 'nginx\'s request id, as on every route')

    for (const [url, file] of [['/js/app.js', path.join(PUBLIC_DIR, 'js', 'app.js')], ['/app.css', path.join(PUBLIC_DIR, 'app.css')], ['/vendor/uplot/uPlot.iife.min.js', path.join(UPLOT_DIR, 'uPlot.iife.min.js')]] as const) {
      const res = await fetch(`${base}${url}`, { headers: { 'accept-encoding': 'gzip' } })
      t.equal(res.status, 200, url)
      t.equal(res.headers.get('content-encoding'), 'gzip', `${url} gzipped`)
      t.equal(await res.text(), readFileSync(file, 'utf8'), `${url} whole once decompressed`)
    }
    const sample = await fetch(`${base}/samples/mnist-7.png`)
    t.same(Buffer.from(await sample.arrayBuffer()), readFileSync(path.join(PUBLIC_DIR, 'samples', 'mnist-7.png')), 'a sample image, byte for byte')

    const docs = await fetch(`${base}/docs/static/index.html`)
    t.equal(docs.status, 200, '/docs')
    t.match(await docs.text(), /swagger-ui/)
    t.equal(docs.headers.get('content-security-policy'), API_DOCS_CSP)
    const bundle = await fetch(`${base}/docs/static/swagger-ui-bundle.js`, { headers: { 'accept-encoding': 'gzip' } })
    t.equal(bundle.headers.get('content-encoding'), 'gzip', 'Swagger UI\'s bundle gzipped')
    await bundle.arrayBuffer()
    const doc = await (await fetch(`${base}/docs/json`)).json() as { paths: Record<string, unknown> }
    t.ok(doc.paths['/classify'] !== undefined && doc.paths['/v2/models/{name}/infer'] !== undefined, 'the OpenAPI document, v2 included')

    const models = await fetch(`${base}/models/fashion-mnist-isomaxplus-md`, { headers: { 'accept-encoding': 'gzip' } })
    t.equal(models.status, 200)
    t.equal(models.headers.get('content-encoding'), null, 'the API\'s JSON is not re-encoded')
    t.equal(models.headers.get('content-security-policy'), null, 'and carries no page CSP')
    await models.arrayBuffer()
  })
}
