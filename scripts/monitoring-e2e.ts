// npm run test:monitoring [-- --figure docs/img/drift-alert.svg] [--protocol grpc]
// npm run test:monitoring:grpc   (the same run with every request over gRPC: ModelInfer)
//
// The drift alert end to end, with a real Prometheus (Debian's) scraping three service
// processes (dist/src/server.js) every second, and the alerting rules of
// deploy/prometheus/rules.yml on a clock 30 times faster (scripts/monitoring/shorten-rules.ts:
// the same expressions, only the durations shortened). Phases:
//   1. in-distribution: Fashion-MNIST test images — no drift alert may be pending or firing;
//   2. drift: MNIST digits — IsomaxRejectRateHigh must go pending, then firing;
//   3. in-distribution again — it must resolve.
// Then every PromQL expression of the Grafana dashboard is run against this Prometheus: each
// must evaluate, and the core panels must return data. Prints the times to fire and to resolve
// and the traffic; with --figure, draws the reject rate over the run (vega-lite SVG).
// --protocol grpc sends the traffic as the Open Inference Protocol's gRPC ModelInfer instead of
// POST /classify: the drift alerts must fire and resolve the same, whichever protocol carried
// the images, and the request metrics must show the traffic under protocol="oip-grpc".
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { freePort } from '../src/tools/bench/server.js'
import { repoRoot } from '../src/tools/datasets/repo-root.js'
import { fashionTest, mnistDigits } from '../test/helpers/data.js'
import { grpcClients, type GrpcClients } from '../test/helpers/grpc-client.js'
import { driftFigure, type Timeline } from './monitoring/plot.js'
import { shortenRules, withoutDurations } from './monitoring/shorten-rules.js'

const { values: args } = parseArgs({ options: { figure: { type: 'string' }, replicas: { type: 'string', default: '3' }, protocol: { type: 'string', default: 'http' } } })
if (args.protocol !== 'http' && args.protocol !== 'grpc') throw new Error(`--protocol: http or grpc, not ${args.protocol}`)
const GRPC = args.protocol === 'grpc'
const REPO = repoRoot()
const FACTOR = 30
const DRIFT_ALERTS = ['IsomaxRejectRateHigh', 'IsomaxPValueShift']
const say = (line: string): void => { process.stdout.write(`test:monitoring: ${line}\n`) }
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const work = mkdtempSync(path.join(os.tmpdir(), 'isomax-monitoring-'))
const children: ChildProcess[] = []
const failures: string[] = []

function start (cmd: string, argv: string[], env: Record<string, string> = {}): { child: ChildProcess, logs: () => string } {
  const child = spawn(cmd, argv, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  child.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  children.push(child)
  return { child, logs: () => out }
}

async function waitFor (url: string, what: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    try { if ((await fetch(url)).status === 200) return } catch {}
    await sleep(250)
  }
  throw new Error(`${what} not ready in ${timeoutMs / 1000} s (${url})`)
}

interface Alert { labels: { alertname: string, model?: string }, state: 'pending' | 'firing' }

async function alerts (prom: string): Promise<Alert[]> {
  const res = await fetch(`${prom}/api/v1/alerts`)
  return ((await res.json()) as { data: { alerts: Alert[] } }).data.alerts
}

async function query (prom: string, expr: string): Promise<{ status: string, error?: string, data?: { result: Array<{ metric: Record<string, string>, value: [number, string] }> } }> {
  const res = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(expr)}`)
  return await res.json() as { status: string, error?: string }
}

/** A closed-loop load of `concurrency` clients over the replicas, images round-robin, until stopped. */
function traffic (urls: string[], concurrency: number, grpc: GrpcClients[] = []): { use: (images: Buffer[]) => void, stop: () => Promise<void>, sent: () => number, failed: () => number } {
  let images: Buffer[] = []
  const state = { running: true }
  let sent = 0
  let failed = 0
  let next = 0
  const loops = Array.from({ length: concurrency }, async () => {
    while (state.running) {
      if (images.length === 0) { await sleep(50); continue }
      const i = next++
      const url = urls[i % urls.length]!
      try {
        if (grpc.length > 0) {
          const { error } = await grpc[i % grpc.length]!.call('ModelInfer', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1, 1] }], raw_input_contents: [bytesElement(images[i % images.length]!)] })
          if (error !== undefined) failed++
          sent++
          continue
        }
        const res = await fetch(`${url}/classify`, { method: 'POST', body: images[i % images.length], headers: { 'content-type': 'image/png' } })
        await res.arrayBuffer()
        if (res.status !== 200) failed++
      } catch { failed++ }
      sent++
    }
  })
  return { use: (next) => { images = next }, stop: async () => { state.running = false; await Promise.all(loops) }, sent: () => sent, failed: () => failed }
}

/** One BYTES element in binary form (4-byte little-endian length, then the bytes). */
function bytesElement (data: Buffer): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32LE(data.length)
  return Buffer.concat([length, data])
}

async function main (): Promise<void> {
  // Rules on the short clock, checked to be the same rules.
  const rulesText = readFileSync(path.join(REPO, 'deploy', 'prometheus', 'rules.yml'), 'utf8')
  const short = shortenRules(rulesText, FACTOR)
  if (withoutDurations(short) !== withoutDurations(rulesText)) throw new Error('the shortened rules differ from the rules in more than their durations')
  writeFileSync(path.join(work, 'rules.yml'), short)

  const replicas = Number(args.replicas)
  const ports = await Promise.all(Array.from({ length: replicas }, async () => await freePort()))
  const urls = ports.map((p) => `http://127.0.0.1:${p}`)
  const grpcPorts = GRPC ? await Promise.all(ports.map(async () => await freePort())) : []
  for (const [i, port] of ports.entries()) {
    start(process.execPath, [path.join(REPO, 'dist', 'src', 'server.js')], { PORT: String(port), GRPC_PORT: GRPC ? String(grpcPorts[i]) : 'off', HOST: '127.0.0.1', LOG_LEVEL: 'warn', EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1' })
  }
  const promPort = await freePort()
  const prom = `http://127.0.0.1:${promPort}`
  writeFileSync(path.join(work, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    `  - ${path.join(work, 'rules.yml')}`,
    'scrape_configs:',
    '  - job_name: isomax-serve',
    '    static_configs:',
    `      - targets: [${ports.map((p) => `'127.0.0.1:${p}'`).join(', ')}]`,
    ''
  ].join('\n'))
  const prometheus = start('prometheus', [`--config.file=${path.join(work, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(work, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`])
  await Promise.all(urls.map(async (u) => await waitFor(`${u}/health/ready`, 'a replica')))
  await waitFor(`${prom}/-/ready`, 'prometheus').catch((err) => { throw new Error(`${(err as Error).message}\n${prometheus.logs()}`) })

  say('encoding Fashion-MNIST test images and MNIST digits')
  const encode = async (pixels: Uint8Array): Promise<Buffer> => await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer()
  const fashion = await Promise.all((await fashionTest(2000)).map(async (s) => await encode(s.pixels)))
  const mnist = await Promise.all(mnistDigits(2000).map(encode))

  const started = Date.now()
  const at = (): number => (Date.now() - started) / 1000
  const clients = grpcPorts.map((p) => grpcClients(`127.0.0.1:${p}`))
  const load = traffic(urls, 4, clients)
  const marks: Timeline['marks'] = []
  const states: Array<{ t: number, state: string }> = []
  const driftAlertState = async (): Promise<string> => {
    const mine = (await alerts(prom)).filter((a) => DRIFT_ALERTS.includes(a.labels.alertname))
    return mine.some((a) => a.state === 'firing') ? 'firing' : mine.some((a) => a.state === 'pending') ? 'pending' : 'inactive'
  }

  // 1. In distribution: the windows fill (20 s at 1/30 scale) and must stay quiet for a while.
  load.use(fashion)
  marks.push({ t: 0, label: 'Fashion-MNIST' })
  const idSeconds = 50
  let falseAlerts = 0
  while (at() < idSeconds) {
    const s = await driftAlertState()
    states.push({ t: at(), state: s })
    if (s !== 'inactive') falseAlerts++
    await sleep(1000)
  }
  const idSent = load.sent()
  if (falseAlerts > 0) failures.push(`a drift alert was pending or firing during in-distribution traffic (${falseAlerts} checks)`)
  say(`phase 1, in-distribution: ${idSent} requests in ${idSeconds} s, drift alerts pending or firing at ${falseAlerts} of ${states.length} checks`)

  // 2. Drift: digits.
  load.use(mnist)
  const driftAt = at()
  marks.push({ t: driftAt, label: 'MNIST digits' })
  let pendingAt = NaN
  let firingAt = NaN
  while (at() < driftAt + 120 && Number.isNaN(firingAt)) {
    const s = await driftAlertState()
    states.push({ t: at(), state: s })
    if (s !== 'inactive' && Number.isNaN(pendingAt)) pendingAt = at()
    if (s === 'firing') firingAt = at()
    await sleep(500)
  }
  if (Number.isNaN(firingAt)) failures.push('the drift alert did not fire within 120 s of drifted traffic')
  else marks.push({ t: firingAt, label: 'alert firing' })
  // Keep drifting a little while, so the firing state is seen to hold.
  for (const until = at() + 8; at() < until;) {
    const s = await driftAlertState()
    if (s !== 'firing' && !Number.isNaN(firingAt)) failures.push(`the drift alert left the firing state while traffic still drifted (${s})`)
    await sleep(1000)
  }
  const driftSent = load.sent() - idSent
  say(`phase 2, MNIST: pending ${(pendingAt - driftAt).toFixed(1)} s and firing ${(firingAt - driftAt).toFixed(1)} s after the switch (${driftSent} requests)`)

  // 3. Back to in-distribution: it must resolve.
  load.use(fashion)
  const backAt = at()
  marks.push({ t: backAt, label: 'Fashion-MNIST' })
  let resolvedAt = NaN
  while (at() < backAt + 120 && Number.isNaN(resolvedAt)) {
    const s = await driftAlertState()
    states.push({ t: at(), state: s })
    if (s === 'inactive') resolvedAt = at()
    await sleep(500)
  }
  if (Number.isNaN(resolvedAt)) failures.push('the drift alert did not resolve within 120 s of in-distribution traffic')
  else marks.push({ t: resolvedAt, label: 'resolved' })
  say(`phase 3, in-distribution again: resolved ${(resolvedAt - backAt).toFixed(1)} s after the switch back`)
  await load.stop()
  for (const c of clients) c.close()
  say(`traffic: ${load.sent()} ${GRPC ? 'gRPC ModelInfer calls' : 'requests'} over ${at().toFixed(0)} s to ${replicas} replicas, ${load.failed()} failed`)
  if (load.failed() > 0) failures.push(`${load.failed()} requests failed`)
  if (GRPC) {
    const calls = Number((await query(prom, 'sum(http_request_duration_seconds_count{protocol="oip-grpc",route="/inference.GRPCInferenceService/ModelInfer",status_code="200"})')).data?.result[0]?.value[1] ?? 0)
    say(`request metrics: ${calls} gRPC ModelInfer calls under protocol="oip-grpc"`)
    if (!(calls > 0)) failures.push('no gRPC calls in the request metrics (protocol="oip-grpc")')
  }

  // The dashboard's queries against this Prometheus.
  const dashboardFile = path.join(REPO, 'deploy', 'grafana', 'dashboards', 'isomax-serve.json')
  if (!existsSync(dashboardFile)) {
    failures.push(`${path.relative(REPO, dashboardFile)} is missing`)
  } else {
    const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { description?: string, panels: Panel[] }
    const core = coreTitles(dashboard)
    let queries = 0
    for (const panel of flattenPanels(dashboard.panels)) {
      for (const target of panel.targets ?? []) {
        if (target.expr === undefined) continue
        const expr = target.expr.replaceAll('$__rate_interval', '20s').replaceAll('$__interval', '5s').replaceAll('$__range', '5m').replaceAll('$model', '.*')
        const r = await query(prom, expr)
        queries++
        if (r.status !== 'success') failures.push(`dashboard panel "${panel.title}": ${r.error ?? r.status}: ${expr}`)
        else if (core.has(panel.title) && (r.data?.result.length ?? 0) === 0) failures.push(`core panel "${panel.title}" returned no data: ${expr}`)
      }
    }
    say(`dashboard: ${queries} queries of ${flattenPanels(dashboard.panels).length} panels evaluated against the real Prometheus; core panels: ${[...core].join(', ')}`)
  }

  if (args.figure !== undefined) {
    const end = Math.floor(Date.now() / 1000)
    const range = async (expr: string, series: string): Promise<Timeline['points']> => {
      const res = await fetch(`${prom}/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${Math.floor(started / 1000)}&end=${end}&step=1`)
      const body = await res.json() as { data: { result: Array<{ values: Array<[number, string]> }> } }
      return (body.data.result[0]?.values ?? []).map(([t, v]) => ({ t: t - started / 1000, series, value: Number(v) }))
    }
    const points = [
      ...await range('isomax:reject_rate:ratio_rate5m{model="fashion-mnist-isomaxplus-md"}', 'reject rate (rule window)'),
      ...await range('isomax:low_p_value:ratio_rate5m{model="fashion-mnist-isomaxplus-md"}', 'share of p-values ≤ 0.05')
    ]
    const calibrated = Number((await query(prom, 'isomax:calibrated_reject_rate{model="fashion-mnist-isomaxplus-md"}')).data?.result[0]?.value[1] ?? NaN)
    const svg = await driftFigure({ points, marks, calibratedRate: calibrated }, 'Drift alert, end to end (rules at 1/30 of their windows)')
    mkdirSync(path.dirname(path.resolve(args.figure)), { recursive: true })
    writeFileSync(path.resolve(args.figure), svg)
    say(`figure written to ${args.figure}`)
  }
}

interface Panel { title: string, targets?: Array<{ expr?: string }>, panels?: Panel[] }

function flattenPanels (panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...flattenPanels(p.panels ?? [])])
}

/** Core panels are listed in the dashboard's description, "core panels: A; B; C". */
function coreTitles (dashboard: { description?: string }): Set<string> {
  const m = /core panels:\s*([^.\n]+)/i.exec(dashboard.description ?? '')
  return new Set((m?.[1] ?? '').split(';').map((s) => s.trim()).filter((s) => s !== ''))
}

try {
  await main()
} catch (err) {
  failures.push((err as Error).message)
} finally {
  for (const c of children) c.kill('SIGTERM')
}
for (const f of failures) say(`FAILED: ${f}`)
say(failures.length === 0 ? 'passed' : 'FAILED')
process.exitCode = failures.length === 0 ? 0 : 1
