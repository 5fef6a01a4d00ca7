// npm run test:hostile -- [--seconds 30] [--concurrency 8] [--max-live-p99-ms 50] [--max-rss-mib 1024]
//                          [--skip-memory] [--skip-liveness] [--server-dir CHECKOUT]
//
// The service (dist/src/server.js, shipped defaults) under hostile input, in two phases:
// 1. memory: the worst inputs the limits allow, all at once (decode bombs just inside
//    MAX_DECODE_BYTES, 10 MiB bodies past MAX_INFLIGHT_BYTES, full forms); the process's peak
//    RSS (VmHWM) must stay under the shipped container limit (1 GiB in compose and k8s);
// 2. liveness: every class of hostile input (scripts/hostile-inputs.ts) sent at c=8 for 30 s
//    while a separate process probes GET /health/live every 20 ms; p99 must stay ≤ 50 ms, no
//    5xx, every answer the one its class expects.
// Prints one line per figure and exits non-zero when a bound is not met.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { freePort } from '../src/tools/bench/server.js'
import { repoRoot } from '../src/tools/datasets/repo-root.js'
import { rawRequest } from '../test/helpers/raw-http.js'
import { bombs, hostileRequests, type HostileRequest } from './hostile-inputs.js'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '8' },
    'max-live-p99-ms': { type: 'string', default: '50' },
    'max-rss-mib': { type: 'string', default: '1024' },
    'skip-memory': { type: 'boolean', default: false },
    'skip-liveness': { type: 'boolean', default: false },
    // Another checkout's build, for before/after figures on the same machine.
    'server-dir': { type: 'string' }
  }
})
const SECONDS = Number(args.seconds)
const CONCURRENCY = Number(args.concurrency)
const say = (line: string): void => { process.stdout.write(`test:hostile: ${line}\n`) }

/** Peak and current resident memory of a process, MiB (Linux /proc). */
function memoryOf (pid: number): { peak: number, now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN)
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 }
}

async function startServer (port: number): Promise<{ child: ChildProcess, url: string, logs: () => string }> {
  const child = spawn(process.execPath, [path.join(args['server-dir'] ?? repoRoot(), 'dist', 'src', 'server.js')], {
    cwd: args['server-dir'] ?? repoRoot(),
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', EXECUTION_PROVIDER: 'cpu' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  child.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  const url = `http://127.0.0.1:${port}`
  const until = Date.now() + 120_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}:\n${out}`)
    try {
      if ((await fetch(`${url}/health/ready`)).status === 200) break
    } catch {}
    if (Date.now() > until) throw new Error(`the server was not ready in 120 s:\n${out}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return { child, url, logs: () => out }
}

async function send (port: number, req: HostileRequest): Promise<string> {
  try {
    const res = await rawRequest(port, req.raw, { timeoutMs: 120_000, ...(req.gapMs !== undefined ? { gapMs: req.gapMs } : {}) })
    return res.status === 0 ? 'no answer' : String(res.status)
  } catch (err) {
    return `error: ${(err as Error).message.slice(0, 80)}`
  }
}

/** Phase 1: the worst allowed inputs at once; the server's peak RSS. */
async function memoryPhase (port: number, pid: number): Promise<boolean> {
  const b = await bombs()
  const requests = (await hostileRequests())
  const tenMiBBody = requests.find((r) => r.name.startsWith('JPEG: 10 MiB of Huffman'))!
  const post = (type: string, body: Buffer): Buffer[] => [Buffer.from(`POST /classify HTTP/1.1\r\nHost: hostile\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n\r\n`), body]
  const batch: Array<{ name: string, raw: Buffer[], ok: number[] }> = [
    ...Array.from({ length: 8 }, () => ({ name: '40 MP 8-bit RGBA interlaced PNG', raw: post('image/png', b.png8Interlaced!), ok: [200] })),
    ...Array.from({ length: 8 }, () => ({ name: '20 MP 16-bit RGBA interlaced PNG', raw: post('image/png', b.png16Allowed!), ok: [200] })),
    ...Array.from({ length: 8 }, () => ({ name: '40 MP lossy WebP', raw: post('image/webp', b.webpLossy!), ok: [200] })),
    ...Array.from({ length: 8 }, () => ({ name: '40 MP progressive JPEG', raw: post('image/jpeg', b.jpegProgressive!), ok: [200] })),
    // 40 × 10 MiB = 400 MiB of bodies against MAX_INFLIGHT_BYTES = 128 MiB: most are refused
    // at the door (503) before a byte is buffered.
    ...Array.from({ length: 40 }, () => ({ name: '10 MiB body', raw: tenMiBBody.raw, ok: [200, 503] }))
  ]
  const before = memoryOf(pid)
  const started = Date.now()
  const statuses = await Promise.all(batch.map(async (r) => await send(port, { name: r.name, raw: r.raw, expect: r.ok })))
  const after = memoryOf(pid)
  const byClass = new Map<string, Map<string, number>>()
  let wrong = 0
  batch.forEach((r, i) => {
    const s = statuses[i]!
    const counts = byClass.get(r.name) ?? new Map<string, number>()
    counts.set(s, (counts.get(s) ?? 0) + 1)
    byClass.set(r.name, counts)
    if (!r.ok.includes(Number(s))) wrong++
  })
  say(`memory: ${batch.length} requests at once in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  for (const [name, counts] of byClass) say(`  ${name}: ${[...counts].map(([s, n]) => `${n}× ${s}`).join(', ')}`)
  const limit = Number(args['max-rss-mib'])
  const ok = after.peak < limit && wrong === 0
  say(`memory: peak RSS ${after.peak.toFixed(0)} MiB (before the burst: peak ${before.peak.toFixed(0)}, now ${before.now.toFixed(0)} MiB; after: ${after.now.toFixed(0)} MiB); bound ${limit} MiB; unexpected answers ${wrong} → ${ok ? 'ok' : 'FAILED'}`)
  return ok
}

/** A separate process that GETs /health/live every 20 ms and reports latency percentiles. */
function startProber (url: string, seconds: number): Promise<{ n: number, p50: number, p99: number, max: number, failed: number }> {
  const code = `
    const url = process.argv[1], until = Date.now() + Number(process.argv[2]) * 1000, lat = []; let failed = 0
    ;(async () => {
      while (Date.now() < until) {
        const t0 = performance.now()
        try { const r = await fetch(url); await r.text(); if (r.status !== 200) failed++ } catch { failed++ }
        lat.push(performance.now() - t0)
        await new Promise((r) => setTimeout(r, Math.max(0, 20 - (performance.now() - t0))))
      }
      lat.sort((a, b) => a - b)
      const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]
      console.log(JSON.stringify({ n: lat.length, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1], failed }))
    })()`
  const child = spawn(process.execPath, ['-e', code, `${url}/health/live`, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  return new Promise((resolve, reject) => {
    child.on('exit', (c) => { c === 0 ? resolve(JSON.parse(out)) : reject(new Error(`prober exited ${c}`)) })
  })
}

/** Phase 2: every hostile class at c=CONCURRENCY while /health/live is probed. */
async function livenessPhase (url: string, port: number): Promise<boolean> {
  const requests = await hostileRequests()
  const prober = startProber(url, SECONDS)
  const until = Date.now() + SECONDS * 1000
  const seen = new Map<string, Map<string, number>>()
  let sent = 0
  let fiveXX = 0
  let unexpected = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
    for (let i = w; Date.now() < until; i++) {
      const req = requests[i % requests.length]!
      const status = await send(port, req)
      sent++
      const counts = seen.get(req.name) ?? new Map<string, number>()
      counts.set(status, (counts.get(status) ?? 0) + 1)
      seen.set(req.name, counts)
      if (/^5/.test(status)) fiveXX++
      if (!req.expect.includes(Number(status))) unexpected++
    }
  }))
  const live = await prober
  for (const [name, counts] of seen) say(`  ${name}: ${[...counts].map(([s, n]) => `${n}× ${s}`).join(', ')}`)
  const bound = Number(args['max-live-p99-ms'])
  const ok = live.p99 <= bound && fiveXX === 0 && unexpected === 0 && live.failed === 0
  say(`liveness: ${sent} hostile requests of ${requests.length} classes at c=${CONCURRENCY} for ${SECONDS} s; 5xx ${fiveXX}, unexpected answers ${unexpected}`)
  say(`liveness: GET /health/live ×${live.n}: p50 ${live.p50.toFixed(1)} ms, p99 ${live.p99.toFixed(1)} ms, max ${live.max.toFixed(1)} ms, failed ${live.failed}; bound p99 ≤ ${bound} ms → ${ok ? 'ok' : 'FAILED'}`)
  return ok
}

const port = await freePort()
say('building the inputs (40 MP images are cached in the temporary folder after the first run)')
await hostileRequests()
const server = await startServer(port)
let ok = true
try {
  if (args['skip-memory'] !== true) ok = await memoryPhase(port, server.child.pid!) && ok
  if (args['skip-liveness'] !== true) ok = await livenessPhase(server.url, port) && ok
  if (server.child.exitCode !== null) {
    ok = false
    say(`the server died (exit ${server.child.exitCode}):\n${server.logs()}`)
  }
} finally {
  server.child.kill('SIGTERM')
}
say(ok ? 'passed' : 'FAILED')
process.exitCode = ok ? 0 : 1
if (!ok) process.stdout.write(server.logs().slice(-5000) + '\n')
