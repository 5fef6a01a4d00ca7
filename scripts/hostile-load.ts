// npm run test:hostile -- [--seconds 30] [--concurrency 8] [--slow-uploads 13] [--max-live-p99-ms 50]
//                          [--min-legit-ok 0.95] [--max-rss-mib 1024] [--skip-memory] [--skip-liveness]
//                          [--server-dir CHECKOUT]
//
// The service (dist/src/server.js, shipped defaults) under hostile input, in two phases:
// 1. memory: the worst inputs the limits allow, all at once (decode bombs just inside
//    MAX_DECODE_BYTES, 10 MiB bodies past MAX_INFLIGHT_BYTES from 40 clients, deep and wide
//    JSON on /v2); the process's peak RSS (VmHWM) must stay under the shipped container limit
//    (1 GiB in compose and k8s);
// 2. liveness: every class of hostile input (scripts/hostile-inputs.ts, the /v2 JSON shapes
//    and non-finite tensors included) sent at c=8 for 30 s, one client address per worker,
//    plus 13 slow uploads that announce the whole body budget (12 × 10 MiB + 8 MiB) and send
//    one byte a second, reconnecting when cut off (issue 20), plus a legitimate client that
//    uploads real images to /classify and /v2 — while a separate process probes GET
//    /health/live and /health/ready every 20 ms. Bounds: each probe's p99 ≤ 50 ms, no probe
//    over 1 s, ≥ 95 % of the legitimate uploads answered 200, no 5xx, every hostile answer the
//    one its class expects.
// Prints one line per figure and exits non-zero when a bound is not met.
// The clients use addresses 127.0.x.y (Linux routes all of 127/8 to the loopback interface), so
// the per-client share of the body budget sees them as the different clients they stand for.
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { freePort } from '../src/tools/bench/server.js'
import { repoRoot } from '../src/tools/datasets/repo-root.js'
import { rawRequest } from '../test/helpers/raw-http.js'
import { fixturePng } from '../test/helpers/images.js'
import { bombs, hostileRequests, V2_MODEL, v2HostileRequests, type HostileRequest } from './hostile-inputs.js'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '8' },
    'slow-uploads': { type: 'string', default: '13' },
    'max-live-p99-ms': { type: 'string', default: '50' },
    'min-legit-ok': { type: 'string', default: '0.95' },
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
    env: { ...process.env, PORT: String(port), GRPC_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', EXECUTION_PROVIDER: 'cpu' },
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

async function send (port: number, req: HostileRequest, localAddress?: string): Promise<string> {
  try {
    const res = await rawRequest(port, req.raw, { timeoutMs: 120_000, ...(req.gapMs !== undefined ? { gapMs: req.gapMs } : {}), ...(localAddress !== undefined ? { localAddress } : {}) })
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
  const v2Classes = v2HostileRequests()
  const deep = v2Classes.find((r) => r.name.includes('nested arrays'))!
  const wide = v2Classes.find((r) => r.name.includes('90,000 keys'))!
  const batch: Array<{ name: string, raw: Buffer[], ok: number[] }> = [
    ...Array.from({ length: 8 }, () => ({ name: '40 MP 8-bit RGBA interlaced PNG', raw: post('image/png', b.png8Interlaced!), ok: [200] })),
    ...Array.from({ length: 8 }, () => ({ name: '20 MP 16-bit RGBA interlaced PNG', raw: post('image/png', b.png16Allowed!), ok: [200] })),
    ...Array.from({ length: 8 }, () => ({ name: '40 MP lossy WebP', raw: post('image/webp', b.webpLossy!), ok: [200] })),
    ...Array.from({ length: 8 }, () => ({ name: '40 MP progressive JPEG', raw: post('image/jpeg', b.jpegProgressive!), ok: [200] })),
    // 40 × 10 MiB = 400 MiB of bodies, from 40 clients, against MAX_INFLIGHT_BYTES = 128 MiB:
    // the bytes that arrive are charged, and past the budget a body is refused (503) at the
    // door or while it arrives.
    ...Array.from({ length: 40 }, () => ({ name: '10 MiB body', raw: tenMiBBody.raw, ok: [200, 503] })),
    // Under the 1 MiB JSON cap, refused by the shape scan before JSON.parse — or at the door
    // (503) while the 10 MiB bodies fill the budget.
    ...Array.from({ length: 16 }, () => ({ name: deep.name, raw: deep.raw, ok: [...deep.expect, 503] })),
    ...Array.from({ length: 16 }, () => ({ name: wide.name, raw: wide.raw, ok: [...wide.expect, 503] }))
  ]
  const before = memoryOf(pid)
  const started = Date.now()
  // Each request from its own client address: the worst case is many clients, not one.
  const statuses = await Promise.all(batch.map(async (r, i) => await send(port, { name: r.name, raw: r.raw, expect: r.ok }, `127.0.1.${1 + i % 250}`)))
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

interface ProbeFigures { n: number, p50: number, p99: number, max: number, over1s: number, failed: number }

/**
 * A separate process that GETs /health/live and /health/ready, one every 20 ms in turn, and
 * reports latency percentiles and slow or failed probes per path.
 */
function startProber (url: string, seconds: number): Promise<Record<'live' | 'ready', ProbeFigures>> {
  const code = `
    const base = process.argv[1], until = Date.now() + Number(process.argv[2]) * 1000
    const paths = { live: '/health/live', ready: '/health/ready' }, lat = { live: [], ready: [] }, failed = { live: 0, ready: 0 }
    ;(async () => {
      for (let i = 0; Date.now() < until; i++) {
        const which = i % 2 === 0 ? 'live' : 'ready'
        const t0 = performance.now()
        try { const r = await fetch(base + paths[which]); await r.text(); if (r.status !== 200) failed[which]++ } catch { failed[which]++ }
        lat[which].push(performance.now() - t0)
        await new Promise((r) => setTimeout(r, Math.max(0, 20 - (performance.now() - t0))))
      }
      const out = {}
      for (const k of ['live', 'ready']) {
        const l = lat[k].sort((a, b) => a - b)
        const q = (p) => l[Math.min(l.length - 1, Math.floor(p * l.length))]
        out[k] = { n: l.length, p50: q(0.5), p99: q(0.99), max: l[l.length - 1], over1s: l.filter((x) => x > 1000).length, failed: failed[k] }
      }
      console.log(JSON.stringify(out))
    })()`
  const child = spawn(process.execPath, ['-e', code, url, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  return new Promise((resolve, reject) => {
    child.on('exit', (c) => { c === 0 ? resolve(JSON.parse(out)) : reject(new Error(`prober exited ${c}`)) })
  })
}

const MiB = 1024 * 1024

/**
 * Slow uploads at the byte budget (issue 20, defect 1): `count` connections announce
 * 12 × 10 MiB + 8 MiB between them (the whole MAX_INFLIGHT_BYTES) and send one byte a second;
 * cut off (408 at REQUEST_TIMEOUT_MS, or anything else), each reconnects at once. Every
 * connection comes from one attacker's address.
 */
async function slowUploads (port: number, count: number, until: number): Promise<Map<string, number>> {
  const answers = new Map<string, number>()
  const declared = Array.from({ length: count }, (_, i) => (i < count - 1 ? 10 * MiB : 8 * MiB))
  await Promise.all(declared.map(async (bytes, i) => {
    const path = i % 2 === 0 ? '/classify' : `/v2/models/${V2_MODEL}/infer`
    const type = i % 2 === 0 ? 'image/png' : 'application/json'
    while (Date.now() < until) {
      const status = await new Promise<string>((resolve) => {
        const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.3.1' })
        let head = ''
        const drip = setInterval(() => { if (Date.now() >= until) socket.destroy(); else socket.write(Buffer.from('x')) }, 1000)
        socket.on('connect', () => socket.write(`POST ${path} HTTP/1.1\r\nHost: hostile\r\nContent-Type: ${type}\r\nContent-Length: ${bytes}\r\n\r\nx`))
        socket.on('data', (d: Buffer) => { head += d.toString('latin1') })
        socket.on('error', () => {})
        socket.on('close', () => {
          clearInterval(drip)
          resolve(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? (Date.now() >= until ? 'still sending at the end' : 'closed without an answer'))
        })
      })
      answers.set(status, (answers.get(status) ?? 0) + 1)
    }
  }))
  return answers
}

/** A legitimate client: real images to /classify (raw and form) and /v2, one after another. */
async function legitimateUploads (port: number, until: number): Promise<{ sent: number, ok: number, answers: Map<string, number> }> {
  const png = fixturePng(1)
  const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [png.toString('base64')] }] }))
  const requests: Buffer[][] = [
    [Buffer.from(`POST /classify HTTP/1.1\r\nHost: legit\r\nContent-Type: image/png\r\nContent-Length: ${png.length}\r\n\r\n`), png],
    [Buffer.from(`POST /v2/models/${V2_MODEL}/infer HTTP/1.1\r\nHost: legit\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n`), json]
  ]
  const answers = new Map<string, number>()
  let sent = 0
  let ok = 0
  while (Date.now() < until) {
    const status = await send(port, { name: 'legitimate', raw: requests[sent % requests.length]!, expect: [200] }, '127.0.4.1')
    sent++
    if (status === '200') ok++
    answers.set(status, (answers.get(status) ?? 0) + 1)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { sent, ok, answers }
}

/** Phase 2: every hostile class at c=CONCURRENCY, slow uploads and a legitimate client, while both health routes are probed. */
async function livenessPhase (url: string, port: number): Promise<boolean> {
  const requests = await hostileRequests()
  const prober = startProber(url, SECONDS)
  const until = Date.now() + SECONDS * 1000
  const slow = slowUploads(port, Number(args['slow-uploads']), until)
  const legit = legitimateUploads(port, until)
  const seen = new Map<string, Map<string, number>>()
  let sent = 0
  let fiveXX = 0
  let unexpected = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
    for (let i = w; Date.now() < until; i++) {
      const req = requests[i % requests.length]!
      const status = await send(port, req, `127.0.2.${w + 1}`)
      sent++
      const counts = seen.get(req.name) ?? new Map<string, number>()
      counts.set(status, (counts.get(status) ?? 0) + 1)
      seen.set(req.name, counts)
      if (/^5/.test(status)) fiveXX++
      if (!req.expect.includes(Number(status))) unexpected++
    }
  }))
  const [probes, slowAnswers, legitimate] = await Promise.all([prober, slow, legit])
  for (const [name, counts] of seen) say(`  ${name}: ${[...counts].map(([s, n]) => `${n}× ${s}`).join(', ')}`)
  const legitFiveXX = [...legitimate.answers].filter(([s]) => /^5/.test(s)).reduce((a, [, n]) => a + n, 0)
  const bound = Number(args['max-live-p99-ms'])
  const share = legitimate.sent > 0 ? legitimate.ok / legitimate.sent : 0
  const minShare = Number(args['min-legit-ok'])
  const probesOk = (['live', 'ready'] as const).every((k) => probes[k].p99 <= bound && probes[k].over1s === 0 && probes[k].failed === 0)
  const ok = probesOk && fiveXX === 0 && legitFiveXX === 0 && unexpected === 0 && share >= minShare
  say(`liveness: ${sent} hostile requests of ${requests.length} classes at c=${CONCURRENCY} for ${SECONDS} s; 5xx ${fiveXX}, unexpected answers ${unexpected}`)
  say(`liveness: ${args['slow-uploads']} slow uploads announcing 12 × 10 MiB + 8 MiB at 1 byte/s: ${[...slowAnswers].map(([s, n]) => `${n}× ${s}`).join(', ')}`)
  say(`liveness: legitimate uploads (/classify and /v2, real images): ${legitimate.ok} of ${legitimate.sent} answered 200 (${(100 * share).toFixed(1)} %; bound ≥ ${100 * minShare} %): ${[...legitimate.answers].map(([s, n]) => `${n}× ${s}`).join(', ')}`)
  for (const k of ['live', 'ready'] as const) {
    const p = probes[k]
    say(`liveness: GET /health/${k} ×${p.n}: p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms, max ${p.max.toFixed(1)} ms, over 1 s ${p.over1s}, failed ${p.failed}; bound p99 ≤ ${bound} ms, none over 1 s`)
  }
  say(`liveness: ${ok ? 'ok' : 'FAILED'}`)
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
  } else {
    const limit = Number(args['max-rss-mib'])
    const whole = memoryOf(server.child.pid!)
    ok = whole.peak < limit && ok
    say(`peak RSS over the whole run ${whole.peak.toFixed(0)} MiB (now ${whole.now.toFixed(0)} MiB); bound ${limit} MiB → ${whole.peak < limit ? 'ok' : 'FAILED'}`)
  }
} finally {
  server.child.kill('SIGTERM')
}
say(ok ? 'passed' : 'FAILED')
process.exitCode = ok ? 0 : 1
if (!ok) process.stdout.write(server.logs().slice(-5000) + '\n')
