// npm run test:deploy — the load-balanced deployment without Docker: Debian's nginx with
// deploy/nginx.conf (upstreams rendered to 127.0.0.1 ports) in front of three service processes
// (dist/src/server.js, as in the image), and three checks with bounds:
//   a. 300 requests are spread over all 3 replicas (counts read from each replica's /metrics);
//   b. a rolling restart — SIGTERM each replica in turn, start it again — while a client loop
//      keeps sending: 0 failed client requests, every replica drains and exits 0, and rejoins;
//   c. a replica SIGKILLed mid-load: failed client requests <= the requests that were in flight
//      to it, and it rejoins after a restart.
// It prints the counts and exits 1 when a bound is missed. Every child (replicas, nginx) is
// stopped on the way out, on success, failure, timeout or Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { freePort } from '../src/tools/bench/server.js'
import { loadConfig } from '../src/config.js'
import { findNginx, nginxTest, REPO, writeNginxConf } from './nginx-conf.js'

const SERVER = path.join(REPO, 'dist', 'src', 'server.js')
const MANIFEST = path.join(REPO, 'models', 'manifest.json')
const FIXTURES = path.join(REPO, 'test', 'fixtures', 'fashion')

// Short drain for the test; the compose file and Kubernetes use seconds more.
const DRAIN_DELAY_MS = 1500
const SHUTDOWN_TIMEOUT_MS = 10_000
const DISTRIBUTION_REQUESTS = 300
const TOTAL_BUDGET_MS = 170_000

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const since = (t0: number): number => Date.now() - t0
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

// ---------------------------------------------------------------------------------------------
// Children: the replicas and nginx, all stopped by cleanup().

const children = new Set<ChildProcess>()

function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

function killAll (): void {
  for (const child of children) {
    // nginx: SIGTERM is its fast shutdown and lets the master stop its workers.
    child.kill(child.spawnfile.endsWith('nginx') ? 'SIGTERM' : 'SIGKILL')
  }
}

let workDir: string | null = null
// TEST_DEPLOY_KEEP=1 keeps the logs (replicas, nginx access and error logs) after a passing run too.
let keepWorkDir = process.env.TEST_DEPLOY_KEEP === '1'

async function cleanup (): Promise<void> {
  killAll()
  const until = Date.now() + 5000
  while (children.size > 0 && Date.now() < until) await sleep(50)
  for (const child of children) child.kill('SIGKILL')
  if (workDir !== null && !keepWorkDir) rmSync(workDir, { recursive: true, force: true })
}

process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\ntest:deploy: ${signal}, stopping every child\n`)
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  })
}

// ---------------------------------------------------------------------------------------------
// Replicas

class Replica {
  child: ChildProcess | null = null
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null })
  starts = 0

  constructor (readonly name: string, readonly port: number, readonly dir: string) {}

  get address (): string { return `127.0.0.1:${this.port}` }
  get url (): string { return `http://${this.address}` }
  get logFile (): string { return path.join(this.dir, `${this.name}.log`) }

  start (): void {
    this.starts++
    const fd = openSync(this.logFile, 'a')
    const child = track(spawn(process.execPath, [SERVER], {
      cwd: REPO,
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(this.port),
        // gRPC is not what nginx's HTTP upstream carries here; several replicas share one host.
        GRPC_PORT: 'off',
        EXECUTION_PROVIDER: 'cpu',
        INFERENCE_WORKERS: '1',
        MODELS_MANIFEST: MANIFEST,
        DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        LOG_LEVEL: 'info'
      },
      stdio: ['ignore', fd, fd]
    }))
    closeSync(fd)
    this.child = child
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  }

  logTail (lines = 15): string {
    if (!existsSync(this.logFile)) return ''
    return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `    ${l}`).join('\n')
  }

  /** Until /health/ready answers 200 on this process; throws when it exits or takes too long. */
  async waitReady (timeoutMs = 45_000): Promise<number> {
    const t0 = Date.now()
    let exited = false
    void this.exited.then(() => { exited = true })
    while (since(t0) < timeoutMs) {
      if (exited) throw new Error(`${this.name} exited before it was ready:\n${this.logTail()}`)
      try {
        const res = await fetch(`${this.url}/health/ready`, { signal: AbortSignal.timeout(2000) })
        await res.arrayBuffer()
        if (res.status === 200) return since(t0)
      } catch {}
      await sleep(100)
    }
    throw new Error(`${this.name} not ready after ${seconds(timeoutMs)}:\n${this.logTail()}`)
  }

  /** POST /classify answered 200 by this process since it started (from its own /metrics). */
  async classified (): Promise<number> {
    const res = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(5000) })
    return classifyCount(await res.text())
  }

  /** Until this process has served a classify request that came through nginx. */
  async waitRejoin (timeoutMs = 15_000): Promise<number | null> {
    const t0 = Date.now()
    while (since(t0) < timeoutMs) {
      try { if (await this.classified() > 0) return since(t0) } catch {}
      await sleep(100)
    }
    return null
  }
}

/** http_request_duration_seconds_count{route="/classify",method="POST",status_code="200"}. */
function classifyCount (metrics: string): number {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('http_request_duration_seconds_count{')) continue
    const labels = line.slice(line.indexOf('{') + 1, line.lastIndexOf('}'))
    if (labels.includes('route="/classify"') && labels.includes('method="POST"') && labels.includes('status_code="200"')) {
      return Number(line.slice(line.lastIndexOf(' ') + 1))
    }
  }
  return 0
}

// ---------------------------------------------------------------------------------------------
// Client

const images = readdirSync(FIXTURES).filter((f) => f.endsWith('.png')).sort().map((f) => readFileSync(path.join(FIXTURES, f)))

interface Outcome { ok: boolean, why?: string }

async function classify (base: string, requestId: string | null): Promise<Outcome> {
  const headers: Record<string, string> = { 'content-type': 'image/png' }
  if (requestId !== null) headers['x-request-id'] = requestId
  try {
    const res = await fetch(`${base}/classify`, {
      method: 'POST',
      body: images[Math.floor(Math.random() * images.length)]!,
      headers,
      signal: AbortSignal.timeout(30_000)
    })
    const body = await res.text()
    if (res.status !== 200) return { ok: false, why: `HTTP ${res.status} ${body.slice(0, 160)}` }
    const echoed = res.headers.get('x-request-id')
    if (requestId !== null && echoed !== requestId) return { ok: false, why: `X-Request-Id ${String(echoed)} for ${requestId}` }
    if (typeof (JSON.parse(body) as { label?: unknown }).label !== 'string') return { ok: false, why: `no label in ${body.slice(0, 160)}` }
    return { ok: true }
  } catch (err) {
    return { ok: false, why: `${(err as Error).name}: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}` }
  }
}

/**
 * POST a body and return the status. A server may answer 413 from the headers alone and close
 * the connection while the body is still being sent: the answer counts, the broken upload not.
 */
async function postBytes (url: string, body: Buffer): Promise<number> {
  return await new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'image/png', 'content-length': body.length, connection: 'close' } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.setTimeout(30_000, () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end(body)
  })
}

/** `concurrency` loops sending POST /classify through nginx until stop(). */
class Load {
  sent = 0
  ok = 0
  failed = 0
  inFlight = 0
  readonly failures: string[] = []
  private stopped = false
  private readonly loops: Array<Promise<void>>

  constructor (readonly base: string, readonly concurrency: number, readonly tag: string) {
    this.loops = Array.from({ length: concurrency }, async () => {
      while (!this.stopped) {
        const id = `${tag}-${++this.sent}`
        this.inFlight++
        const outcome = await classify(base, id)
        this.inFlight--
        if (outcome.ok) this.ok++
        else { this.failed++; if (this.failures.length < 10) this.failures.push(`${id}: ${outcome.why ?? ''}`) }
      }
    })
  }

  async stop (): Promise<void> {
    this.stopped = true
    await Promise.all(this.loops)
  }
}

// ---------------------------------------------------------------------------------------------
// nginx access log (deploy/nginx.conf's JSON log_format)

interface AccessEntry {
  msec: number
  requestId: string
  method: string
  uri: string
  status: number
  upstream: string
  upstreamStatus: string
  upstreamConnectTime: string
}

interface Try { address: string, status: string, connected: boolean }

function tries (e: AccessEntry): Try[] {
  // "a, b" lists the servers tried in one upstream group; " : " separates groups.
  const split = (s: string): string[] => s.split(/\s*[,:]\s+/).filter((x) => x !== '')
  const addresses = split(e.upstream)
  const statuses = split(e.upstreamStatus)
  const connects = split(e.upstreamConnectTime)
  return addresses.map((address, i) => ({ address, status: statuses[i] ?? '-', connected: (connects[i] ?? '-') !== '-' }))
}

class AccessLog {
  constructor (readonly file: string) {}
  offset (): number { return existsSync(this.file) ? statSync(this.file).size : 0 }
  since (offset: number): AccessEntry[] {
    const text = readFileSync(this.file).subarray(offset).toString('utf8')
    return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as AccessEntry)
  }
}

function retried (entries: AccessEntry[]): number {
  return entries.filter((e) => e.uri === '/classify' && tries(e).length > 1).length
}

/** Why nginx left a replica for the next one: refused connection, dropped connection, or a 503. */
function retryReasons (entries: AccessEntry[]): string {
  const reasons = { refused: 0, dropped: 0, 503: 0, other: 0 }
  for (const e of entries) {
    for (const t of tries(e).slice(0, -1)) {
      if (!t.connected) reasons.refused++
      else if (t.status === '503') reasons['503']++
      else if (t.status === '502' || t.status === '504') reasons.dropped++
      else reasons.other++
    }
  }
  return `${reasons.refused} refused connections, ${reasons.dropped} dropped connections, ${reasons['503']} answers 503${reasons.other > 0 ? `, ${reasons.other} other` : ''}`
}

// ---------------------------------------------------------------------------------------------
// The checks

interface Check { name: string, pass: boolean, lines: string[] }
const checks: Check[] = []

function report (check: Check): void {
  checks.push(check)
  process.stdout.write(`\n${check.pass ? 'PASS' : 'FAIL'}  ${check.name}\n${check.lines.map((l) => `      ${l}\n`).join('')}`)
}

async function waitNginx (base: string, nginx: ChildProcess, errorLog: string): Promise<void> {
  const t0 = Date.now()
  while (since(t0) < 10_000) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited with ${nginx.exitCode}:\n${existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : ''}`)
    try {
      const res = await fetch(`${base}/health/live`, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch {}
    await sleep(100)
  }
  throw new Error('nginx did not answer /health/live through to a replica in 10 s')
}

async function checkDistribution (base: string, replicas: Replica[]): Promise<void> {
  const before = await Promise.all(replicas.map(async (r) => await r.classified()))
  const queue = Array.from({ length: DISTRIBUTION_REQUESTS }, (_, i) => i)
  const failures: string[] = []
  let ok = 0
  await Promise.all(Array.from({ length: 6 }, async () => {
    for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
      const outcome = await classify(base, `spread-${i}`)
      if (outcome.ok) ok++
      else failures.push(`spread-${i}: ${outcome.why ?? ''}`)
    }
  }))
  const after = await Promise.all(replicas.map(async (r) => await r.classified()))
  const counts = replicas.map((_, i) => after[i]! - before[i]!)
  const sum = counts.reduce((a, b) => a + b, 0)
  const floor = Math.floor(DISTRIBUTION_REQUESTS / (2 * replicas.length))

  // X-Request-Id: the caller's passes through; without one, nginx's $request_id is used.
  const own = await fetch(`${base}/health/ready`, { headers: { 'x-request-id': 'deploy-test-id-1' } })
  await own.arrayBuffer()
  const none = await fetch(`${base}/health/ready`)
  await none.arrayBuffer()
  const idOk = own.headers.get('x-request-id') === 'deploy-test-id-1' && /^[0-9a-f]{32}$/.test(none.headers.get('x-request-id') ?? '')

  // Body limit: nginx refuses one byte over the service's MAX_UPLOAD_BYTES, passes the limit itself.
  const limit = loadConfig({}).MAX_UPLOAD_BYTES
  const post = async (url: string, bytes: number): Promise<number> => await postBytes(`${url}/classify`, Buffer.alloc(bytes, 1))
  const overNginx = await post(base, limit + 1)
  const atNginx = await post(base, limit)
  const overService = await post(replicas[0]!.url, limit + 1)
  const limitOk = overNginx === 413 && atNginx !== 413 && atNginx < 500 && overService === 413

  report({
    name: `a. distribution: ${DISTRIBUTION_REQUESTS} requests through nginx over ${replicas.length} replicas`,
    pass: ok === DISTRIBUTION_REQUESTS && sum === DISTRIBUTION_REQUESTS && counts.every((c) => c >= floor) && idOk && limitOk,
    lines: [
      `answered 200: ${ok}/${DISTRIBUTION_REQUESTS}${failures.length > 0 ? `; first failures: ${failures.slice(0, 3).join(' | ')}` : ''}`,
      `per replica (their /metrics, POST /classify 200): ${replicas.map((r, i) => `${r.name}=${counts[i]}`).join(' ')}; sum ${sum} (bound: sum ${DISTRIBUTION_REQUESTS}, each >= ${floor})`,
      `X-Request-Id: caller's passed through and echoed: ${own.headers.get('x-request-id') === 'deploy-test-id-1'}; nginx's when absent: ${String(none.headers.get('x-request-id'))}`,
      `body limit ${limit} bytes: nginx answers ${overNginx} one byte over, ${atNginx} at the limit (the service's own answer); the service alone answers ${overService} one byte over`
    ]
  })
}

async function checkRollingRestart (base: string, replicas: Replica[], log: AccessLog): Promise<void> {
  const offset = log.offset()
  const load = new Load(base, 4, 'roll')
  const t0 = Date.now()
  await sleep(700)
  const lines: string[] = []
  let pass = true
  for (const r of replicas) {
    const tSignal = Date.now()
    r.child!.kill('SIGTERM')
    // Readiness turns 503 at once, and the replica still answers during the drain delay.
    let readyAt: number | null = null
    while (since(tSignal) < DRAIN_DELAY_MS) {
      try {
        const res = await fetch(`${r.url}/health/ready`, { signal: AbortSignal.timeout(1000) })
        await res.arrayBuffer()
        if (res.status === 503) { readyAt = since(tSignal); break }
      } catch {}
      await sleep(25)
    }
    const during = await classify(r.url, `${r.name}-during-drain`)
    const exit = await Promise.race([r.exited, sleep(SHUTDOWN_TIMEOUT_MS + 5000).then(() => null)])
    const exitedAt = since(tSignal)
    if (exit === null) r.child!.kill('SIGKILL')
    r.start()
    const readyMs = await r.waitReady()
    const rejoinMs = await r.waitRejoin()
    const ok = readyAt !== null && during.ok && exit?.code === 0 && rejoinMs !== null
    pass &&= ok
    lines.push(`${r.name}: readiness 503 after ${readyAt ?? 'never'} ms; direct request during the drain: ${during.ok ? '200' : during.why ?? ''}; ` +
      `exited ${exit === null ? 'NOT within the grace period' : `code ${String(exit.code)}`} after ${seconds(exitedAt)}; ` +
      `restarted, ready in ${seconds(readyMs)}, served through nginx again ${rejoinMs === null ? 'NEVER (15 s)' : `${seconds(rejoinMs)} later`}`)
  }
  await sleep(500)
  await load.stop()
  const entries = log.since(offset).filter((e) => e.uri === '/classify')
  pass &&= load.failed === 0 && load.ok > 0
  report({
    name: 'b. rolling restart: SIGTERM and restart each replica in turn under load',
    pass,
    lines: [
      `client requests: ${load.sent} sent, ${load.ok} ok, ${load.failed} failed (bound: 0 failed) in ${seconds(since(t0))}`,
      `nginx sent ${retried(entries)} of them on to another replica after ${retryReasons(entries)}`,
      ...lines,
      ...load.failures.map((f) => `failure: ${f}`)
    ]
  })
}

async function checkKill (base: string, replicas: Replica[], log: AccessLog): Promise<void> {
  const victim = replicas[1]!
  const offset = log.offset()
  const load = new Load(base, 6, 'kill')
  const t0 = Date.now()
  await sleep(1500)
  const clientInFlight = load.inFlight
  const killedAt = Date.now()
  victim.child!.kill('SIGKILL')
  await victim.exited
  await sleep(2500)
  const downMs = since(killedAt)
  victim.start()
  const readyMs = await victim.waitReady()
  const rejoinMs = await victim.waitRejoin()
  await sleep(300)
  await load.stop()

  // Requests in flight to the victim when it died: tries that had reached it (a connection was
  // open) and got no response. Tries refused after its death were never in flight.
  const entries = log.since(offset).filter((e) => e.uri === '/classify')
  const inFlightToVictim = entries.filter((e) => tries(e).some((t) => t.address === victim.address && t.connected && (t.status === '502' || t.status === '504'))).length
  const refused = entries.filter((e) => tries(e).some((t) => t.address === victim.address && !t.connected)).length
  const failedAtNginx = entries.filter((e) => e.status !== 200).length
  report({
    name: `c. SIGKILL ${victim.name} mid-load, restart it`,
    pass: load.failed <= inFlightToVictim && load.ok > 0 && rejoinMs !== null,
    lines: [
      `client requests: ${load.sent} sent, ${load.ok} ok, ${load.failed} failed (nginx logged ${failedAtNginx} non-200) in ${seconds(since(t0))}`,
      `in flight to ${victim.name} when killed: ${inFlightToVictim} (connections it dropped; ${clientInFlight} client requests were in flight overall); bound: failed ${load.failed} <= ${inFlightToVictim}`,
      `nginx sent ${retried(entries)} requests on to another replica after ${retryReasons(entries)}; ${refused} tries were refused by ${victim.name} while it was down (${seconds(downMs)})`,
      `restarted: ready in ${seconds(readyMs)}, served through nginx again ${rejoinMs === null ? 'NEVER (15 s)' : `${seconds(rejoinMs)} later`}`,
      ...load.failures.map((f) => `failure: ${f}`)
    ]
  })
}

// ---------------------------------------------------------------------------------------------

async function main (): Promise<void> {
  const t0 = Date.now()
  if (!existsSync(SERVER)) throw new Error(`${path.relative(REPO, SERVER)} is missing: run \`npm run build\` first (npm run test:deploy does)`)
  const nginxBin = findNginx()
  if (nginxBin === null) throw new Error('nginx not found: apt-get install nginx-light (or set NGINX_BIN)')
  const version = spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr.trim()

  workDir = mkdtempSync(path.join(os.tmpdir(), 'isomax-deploy-'))
  const dir = workDir
  const [nginxPort, ...ports] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
  const replicas = ports.map((p, i) => new Replica(`replica-${i + 1}`, p, dir))
  process.stdout.write(`test:deploy: ${version} in front of ${replicas.length} replicas of dist/src/server.js ` +
    `(EXECUTION_PROVIDER=cpu, INFERENCE_WORKERS=1, DRAIN_DELAY_MS=${DRAIN_DELAY_MS}); logs in ${dir}\n`)

  for (const r of replicas) r.start()
  const startMs = Math.max(...await Promise.all(replicas.map(async (r) => await r.waitReady())))

  const confFile = writeNginxConf({ upstreams: replicas.map((r) => r.address), listen: `127.0.0.1:${nginxPort!}`, dir })
  const syntax = nginxTest(nginxBin, confFile, dir)
  if (!syntax.ok) throw new Error(`nginx -t rejected the rendered deploy/nginx.conf:\n${syntax.output}`)
  const errorLog = path.join(dir, 'error.log')
  const nginxOut = openSync(path.join(dir, 'nginx.out'), 'a')
  const nginx = track(spawn(nginxBin, ['-p', `${dir}/`, '-c', confFile, '-e', errorLog], { stdio: ['ignore', nginxOut, nginxOut] }))
  closeSync(nginxOut)
  const base = `http://127.0.0.1:${nginxPort!}`
  await waitNginx(base, nginx, errorLog)
  process.stdout.write(`replicas ready in ${seconds(startMs)}; nginx listening on ${base}\n`)

  const log = new AccessLog(path.join(dir, 'access.log'))
  await checkDistribution(base, replicas)
  await checkRollingRestart(base, replicas, log)
  await checkKill(base, replicas, log)

  const failed = checks.filter((c) => !c.pass)
  process.stdout.write(`\ntest:deploy: ${checks.length - failed.length} of ${checks.length} checks passed in ${seconds(since(t0))}` +
    `${failed.length > 0 ? ` — FAILED: ${failed.map((c) => c.name.split(':')[0]).join(', ')}` : ''}\n`)
  if (failed.length > 0) {
    keepWorkDir = true
    for (const r of replicas) process.stdout.write(`\n${r.name} log (${r.logFile}):\n${r.logTail()}\n`)
    process.stdout.write(`\nnginx error log: ${errorLog}\n`)
    process.exitCode = 1
  }
}

const watchdog = setTimeout(() => {
  process.stderr.write(`test:deploy: gave up after ${seconds(TOTAL_BUDGET_MS)}\n`)
  keepWorkDir = true
  void cleanup().finally(() => process.exit(1))
}, TOTAL_BUDGET_MS)

try {
  await main()
} catch (err) {
  keepWorkDir = true
  process.stderr.write(`\ntest:deploy: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
} finally {
  clearTimeout(watchdog)
  await cleanup()
  if (keepWorkDir && workDir !== null) process.stdout.write(`logs kept in ${workDir}\n`)
}
