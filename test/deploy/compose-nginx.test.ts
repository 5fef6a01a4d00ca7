// docker-compose.yml and deploy/nginx.conf, checked without Docker: three replicas behind nginx
// on one port, drain timings that fit the stop grace period, read-only models, a gpu profile
// that reserves the NVIDIA device, and an nginx config that retries, passes X-Request-Id, limits
// bodies like the service and that Debian's nginx accepts once rendered for a local run.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import { parse } from 'yaml'
import { directive, directives, findNginx, nginxSize, nginxTest, readNginxConf, renderNginxConf, upstreamServers, writeNginxConf } from '../../scripts/nginx-conf.js'
import { REQUEST_ID } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { REPO } from '../helpers/data.js'

interface Service {
  image?: string
  build?: { context: string, target?: string }
  profiles?: string[]
  environment?: Record<string, string>
  ports?: string[]
  volumes?: string[]
  stop_grace_period?: string
  networks?: Record<string, { aliases?: string[] } | null>
  deploy?: {
    replicas?: number
    resources?: { reservations?: { devices?: Array<{ driver?: string, count?: number | string, capabilities?: string[] }> } }
  }
}

const compose = parse(readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> }
const { isomax, 'isomax-gpu': gpu, nginx } = compose.services
const conf = readNginxConf()
const defaults = loadConfig({})

/** Compose durations: 30s, 1m30s, 1500ms. */
function durationSeconds (d: string): number {
  let total = 0
  for (const [, n, unit] of d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as 'ms' | 's' | 'm' | 'h']
  return total
}

function volume (s: Service, target: string): { source: string, mode: string } | undefined {
  const v = s.volumes?.map((x) => x.split(':')).find((parts) => parts[1] === target)
  return v === undefined ? undefined : { source: v[0]!, mode: v[2] ?? 'rw' }
}

t.test('three CPU replicas, nothing published but nginx', async (t) => {
  t.ok(isomax && gpu && nginx, 'services isomax, isomax-gpu and nginx')
  t.equal(isomax!.deploy?.replicas, 3)
  t.equal(isomax!.build?.target, 'runtime-cpu')
  t.equal(isomax!.profiles, undefined, 'the CPU replicas start by default')
  for (const [name, s] of Object.entries(compose.services)) {
    if (name !== 'nginx' && !(s.profiles ?? []).includes('monitoring')) t.equal(s.ports, undefined, `${name} publishes no port; nginx is the one entry`)
  }
})

for (const [name, s] of [['isomax', isomax], ['isomax-gpu', gpu]] as const) {
  t.test(`${name}: environment, drain inside the stop grace period, read-only models`, async (t) => {
    const config = loadConfig(s!.environment ?? {})
    t.equal(config.HOST, '0.0.0.0')
    t.equal(config.PORT, defaults.PORT)
    const grace = durationSeconds(s!.stop_grace_period ?? '10s')
    t.ok(config.DRAIN_DELAY_MS > 0, 'a drain delay is set')
    t.ok(grace > config.DRAIN_DELAY_MS / 1000, `stop_grace_period ${grace} s > drain ${config.DRAIN_DELAY_MS / 1000} s`)
    t.ok(grace > config.SHUTDOWN_TIMEOUT_MS / 1000, `stop_grace_period ${grace} s > SHUTDOWN_TIMEOUT_MS ${config.SHUTDOWN_TIMEOUT_MS / 1000} s: Docker never SIGKILLs a draining replica`)
    const models = volume(s!, '/app/models')
    t.same(models, { source: './models', mode: 'ro' }, 'models mounted read-only over the image\'s')
    t.ok(config.MODELS_MANIFEST.startsWith('/app/models/'), 'the manifest is read from the mount')
    // Behind nginx every request comes from nginx's address, and nginx buffers bodies whole.
    t.equal(config.MAX_INFLIGHT_BYTES_PER_CLIENT, config.MAX_INFLIGHT_BYTES, 'nginx, the one client, may use the whole body budget')
    t.equal(config.ADMIN_TOKEN, undefined, 'no admin routes on replicas behind the public load balancer')
  })
}

t.test('gpu profile: CUDA image and provider, the NVIDIA device reserved, same name for nginx', async (t) => {
  t.same(gpu!.profiles, ['gpu'])
  t.equal(gpu!.build?.target, 'runtime-gpu')
  t.equal(loadConfig(gpu!.environment ?? {}).EXECUTION_PROVIDER, 'cuda')
  t.equal(loadConfig(isomax!.environment ?? {}).EXECUTION_PROVIDER, 'cpu')
  const devices = gpu!.deploy?.resources?.reservations?.devices ?? []
  t.ok(devices.some((d) => d.driver === 'nvidia' && (d.capabilities ?? []).includes('gpu')), 'reserves an nvidia device with the gpu capability')
  t.ok(gpu!.networks?.default?.aliases?.includes('isomax'), 'answers to the name nginx balances over')
})

t.test('nginx: deploy/nginx.conf mounted, one published port to its listen port', async (t) => {
  t.equal(volume(nginx!, '/etc/nginx/nginx.conf')?.source, './deploy/nginx.conf')
  t.equal(volume(nginx!, '/etc/nginx/nginx.conf')?.mode, 'ro')
  t.equal(nginx!.ports?.length, 1)
  const containerPort = Number(nginx!.ports![0]!.split(':').at(-1))
  t.equal(containerPort, Number(directive(conf, 'listen')[0]), 'published to the port nginx listens on')
  // `resolve` on upstream servers is in open-source nginx from 1.27.3.
  const tag = /:(\d+)\.(\d+)/.exec(nginx!.image ?? '')
  t.ok(tag !== null && (Number(tag[1]) > 1 || Number(tag[2]) >= 28), `image ${nginx!.image} is nginx >= 1.28`)
})

t.test('nginx.conf: upstreams are the replicas, retried on errors and 502/503, POST included', async (t) => {
  const servers = upstreamServers(conf)
  t.equal(servers.length, 1)
  const [host, port] = servers[0]!.address.split(':')
  t.ok(host === 'isomax' || Object.keys(compose.services).includes(host!), `upstream ${host} is the replicas' name`)
  t.equal(Number(port), loadConfig(isomax!.environment ?? {}).PORT, 'on the port the replicas listen on')
  t.ok(servers[0]!.params.includes('resolve'), 're-resolved as replicas come and go')
  t.ok(servers[0]!.params.some((p) => p.startsWith('max_fails=')) && servers[0]!.params.some((p) => p.startsWith('fail_timeout=')))

  const next = directive(conf, 'proxy_next_upstream')
  for (const c of ['error', 'timeout', 'http_502', 'http_503', 'non_idempotent']) t.ok(next.includes(c), `proxy_next_upstream ${c}`)
  const tries = Number(directive(conf, 'proxy_next_upstream_tries')[0])
  t.ok(tries === 0 || tries >= 2, 'more than one try')
  t.same(directives(conf, 'proxy_request_buffering').flat().filter((v) => v === 'off'), [], 'request bodies are buffered, so they can be resent')
})

t.test('nginx.conf: body limit equals the service\'s MAX_UPLOAD_BYTES default', async (t) => {
  t.equal(nginxSize(directive(conf, 'client_max_body_size')[0]!), defaults.MAX_UPLOAD_BYTES)
})

t.test('nginx.conf: X-Request-Id passed on (the caller\'s, else nginx\'s), keep-alive upstream', async (t) => {
  const headers = directives(conf, 'proxy_set_header')
  t.ok(headers.some(([h, v]) => h === 'X-Request-Id' && v === '$request_id_or_incoming'))
  // Only an id the service accepts too (src/app.ts), else nginx's own: one id in both logs
  // (test/deploy/lb-exposure.test.ts checks it through nginx).
  t.match(conf, /map \$http_x_request_id \$request_id_or_incoming \{\s*"~([^"]+)"\s+\$http_x_request_id;\s*default\s+\$request_id;\s*\}/)
  t.equal(/map \$http_x_request_id \$request_id_or_incoming \{\s*"~([^"]+)"/.exec(conf)?.[1], REQUEST_ID.source, 'the same pattern as the service')
  t.ok(headers.some(([h, v]) => h === 'Connection' && v === '""'), 'Connection "" for upstream keep-alive')
  t.same(directive(conf, 'proxy_http_version'), ['1.1'])
  t.ok(Number(directive(conf, 'keepalive')[0]) > 0)
  // nginx must drop an idle upstream connection before the service does, never the reverse.
  const nginxIdle = durationSeconds(directive(conf, 'keepalive_timeout')[0]!)
  const serviceIdle = Fastify().server.keepAliveTimeout / 1000
  t.ok(nginxIdle < serviceIdle, `upstream keepalive_timeout ${nginxIdle} s < Fastify keepAliveTimeout ${serviceIdle} s`)
  t.ok(durationSeconds(directive(conf, 'proxy_read_timeout')[0]!) > defaults.REQUEST_TIMEOUT_MS / 1000, 'nginx waits longer than the service\'s own request timeout')
})

t.test('the rendered config: one line per local replica, same parameters, nothing outside its folder', async (t) => {
  const dir = '/tmp/isomax-render-check'
  const out = renderNginxConf(conf, { upstreams: ['127.0.0.1:1001', '127.0.0.1:1002', '127.0.0.1:1003'], listen: '127.0.0.1:1000', dir })
  const servers = upstreamServers(out)
  const params = upstreamServers(conf)[0]!.params.filter((p) => p !== 'resolve')
  t.same(servers, [1001, 1002, 1003].map((p) => ({ address: `127.0.0.1:${p}`, params })))
  t.same(directive(out, 'listen'), ['127.0.0.1:1000'])
  t.same(directive(out, 'daemon'), ['off'])
  for (const name of ['pid', 'access_log', 'error_log', 'client_body_temp_path', 'proxy_temp_path']) {
    for (const args of directives(out, name)) t.ok(args[0]!.startsWith(dir), `${name} ${args[0]} is inside ${dir}`)
  }
  // Everything else is the file docker-compose mounts, unchanged.
  for (const name of ['client_max_body_size', 'proxy_next_upstream', 'proxy_next_upstream_tries', 'keepalive', 'proxy_read_timeout']) {
    t.same(directive(out, name), directive(conf, name), `${name} unchanged`)
  }
})

const nginxBin = findNginx()
t.test('Debian\'s nginx accepts the rendered deploy/nginx.conf (nginx -t)', {
  skip: nginxBin === null ? 'nginx is not installed (apt-get install nginx-light; .ci/run does)' : false
}, async (t) => {
  if (nginxBin === null) return
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-nginx-t-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = writeNginxConf({ upstreams: ['127.0.0.1:18081', '127.0.0.1:18082', '127.0.0.1:18083'], listen: '127.0.0.1:18080', dir })
  const result = nginxTest(nginxBin, file, dir)
  t.ok(result.ok, result.output)
  t.match(result.output, /test is successful/)
})
