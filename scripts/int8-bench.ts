// The INT8 variant against its float model, as issue 22 asks, every figure a ratio from one
// run with the two taking turns (this machine is shared: absolute figures move by ±20 %):
//
//   1. ONNX Runtime alone: both sessions in this process with the service's options (CPU, one
//      intra-op thread, graph optimisation 'all'), batch 1 and 32, alternating rounds; images
//      per CPU-second of this process (and per wall second).
//   2. End to end: two services (dist/src/server.js, one inference worker each), the same
//      manifest but for the default model (the float one, and the INT8 one); autocannon at
//      c=32 on POST /classify and on /v2 (binary BYTES, as Triton's clients send) in
//      alternating rounds; req/s, p99 and service CPU per request (the server process's
//      utime + stime from /proc over the round, every thread, divided by its 2xx answers).
//
//   npm run bench:int8 -- [--rounds 5] [--seconds 6] [--float NAME] [--int8 NAME]
//                         [--server-dir DIR] [--ort-only | --http-only] [--json FILE]
// --server-dir DIR adds two services run from DIR/dist/src/server.js (another build, e.g. the
// code before a main-thread change) with the same two manifests: "float before", "int8 before".
import autocannon from 'autocannon'
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import ort from 'onnxruntime-node'
import { loadManifest } from '../src/registry/load-manifest.js'
import { bytesElement, fashionPngs } from './perf-analyzer/input-data.js'
import { cpuSeconds, startService as startOn, type Service } from './perf-analyzer/service.js'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '6' },
    float: { type: 'string', default: 'fashion-mnist-isomaxplus-md' },
    int8: { type: 'string', default: 'fashion-mnist-isomaxplus-md-int8' },
    'server-dir': { type: 'string' },
    'ort-only': { type: 'boolean' },
    'http-only': { type: 'boolean' },
    concurrency: { type: 'string', default: '32' },
    json: { type: 'string' }
  }
})
const ROUNDS = Number(args.rounds)
const SECONDS = Number(args.seconds)
const C = Number(args.concurrency)
const MANIFEST = path.resolve('models/manifest.json')
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }
const cpuNow = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6 }

interface OrtRound { batch: number, model: string, imagesPerCpuSecond: number, imagesPerSecond: number }

async function ortAlone (): Promise<OrtRound[]> {
  const manifest = await loadManifest(MANIFEST)
  const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 }
  const models = [args.float, args.int8].map((n) => manifest.models.get(n)!)
  const sessions = await Promise.all(models.map(async (m) => await ort.InferenceSession.create(m.onnxPath, opts)))
  const fixture = JSON.parse(readFileSync(`test/fixtures/parity/${args.float}.json`, 'utf8')) as { input: number[] }
  const out: OrtRound[] = []
  for (const batch of [1, 32]) {
    const data = new Float32Array(batch * 784)
    for (let i = 0; i < data.length; i++) data[i] = fixture.input[i % fixture.input.length]!
    const feeds = (m: typeof models[number]): Record<string, ort.Tensor> => ({ [m.input.name]: new ort.Tensor('float32', data, [batch, 1, 28, 28]) })
    const runs = batch === 1 ? 1500 : 120
    for (const [k, s] of sessions.entries()) for (let i = 0; i < 20; i++) await s.run(feeds(models[k]!))
    for (let r = 0; r < ROUNDS; r++) {
      for (const k of r % 2 === 0 ? [0, 1] : [1, 0]) {
        const f = feeds(models[k]!)
        const c0 = cpuNow()
        const t0 = performance.now()
        for (let i = 0; i < runs; i++) await sessions[k]!.run(f)
        const cpu = cpuNow() - c0
        const wall = (performance.now() - t0) / 1000
        out.push({ batch, model: models[k]!.name, imagesPerCpuSecond: runs * batch / cpu, imagesPerSecond: runs * batch / wall })
      }
    }
  }
  await Promise.all(sessions.map(async (s) => { await s.release() }))
  return out
}

/**
 * The service from `serverDir`'s build serving `manifest`, on free ports (the shared starter:
 * its gRPC port too, so two services run side by side). LOG_LEVEL info, the service's default:
 * its per-request line is part of its cost; logs go nowhere, as to a collector.
 */
async function startService (serverDir: string, manifest: string): Promise<Service> {
  return await startOn({ INFERENCE_WORKERS: '1', LOG_LEVEL: 'info', MODELS_MANIFEST: manifest }, serverDir)
}

interface HttpRound { service: string, protocol: 'classify' | 'v2', reqPerSecond: number, p99Ms: number, cpuMsPerRequest: number, errors: number }

function requests (protocol: 'classify' | 'v2', model: string, pngs: Buffer[]): autocannon.Request[] {
  return pngs.map((png) => {
    if (protocol === 'classify') return { method: 'POST' as const, path: '/classify', headers: { 'content-type': 'image/png' }, body: png }
    const element = bytesElement(png)
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1, 1], parameters: { binary_data_size: element.length } }] }))
    return { method: 'POST' as const, path: `/v2/models/${model}/infer`, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, element]) }
  })
}

async function round (svc: Service, name: string, model: string, protocol: 'classify' | 'v2', pngs: Buffer[], seconds: number): Promise<HttpRound> {
  const cpu0 = cpuSeconds(svc.pid)
  const r = await autocannon({ url: svc.url, connections: C, duration: seconds, requests: requests(protocol, model, pngs) })
  const cpu = cpuSeconds(svc.pid) - cpu0
  const ok = r['2xx']
  return { service: name, protocol, reqPerSecond: r.requests.average, p99Ms: r.latency.p99, cpuMsPerRequest: ok > 0 ? cpu * 1000 / ok : NaN, errors: r.errors + r.non2xx + r.timeouts }
}

async function endToEnd (): Promise<HttpRound[]> {
  const raw = JSON.parse(readFileSync(MANIFEST, 'utf8')) as { default: string, models: Array<{ path: string }> }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'isomax-int8-bench-'))
  const dir = path.dirname(MANIFEST)
  const write = (file: string, def: string): string => {
    writeFileSync(file, JSON.stringify({ ...raw, default: def, models: raw.models.map((m) => ({ ...m, path: path.resolve(dir, m.path) })) }))
    return file
  }
  const floatManifest = write(path.join(tmp, 'float.json'), args.float)
  const int8Manifest = write(path.join(tmp, 'int8.json'), args.int8)
  const pngs = fashionPngs()
  const services: Array<{ name: string, model: string, svc: Service }> = []
  try {
    services.push({ name: 'float', model: args.float, svc: await startService(process.cwd(), floatManifest) })
    services.push({ name: 'int8', model: args.int8, svc: await startService(process.cwd(), int8Manifest) })
    if (args['server-dir'] !== undefined) {
      services.push({ name: 'float before', model: args.float, svc: await startService(args['server-dir'], floatManifest) })
      services.push({ name: 'int8 before', model: args.int8, svc: await startService(args['server-dir'], int8Manifest) })
    }
    // Warm each (JIT, sessions) before anything counts.
    for (const s of services) for (const p of ['classify', 'v2'] as const) await round(s.svc, s.name, s.model, p, pngs, 2)
    const out: HttpRound[] = []
    for (let r = 0; r < ROUNDS; r++) {
      for (const p of ['classify', 'v2'] as const) {
        for (const s of r % 2 === 0 ? services : [...services].reverse()) {
          const x = await round(s.svc, s.name, s.model, p, pngs, SECONDS)
          process.stderr.write(`round ${r + 1} ${s.name} ${p}: ${x.reqPerSecond.toFixed(0)} req/s, p99 ${x.p99Ms} ms, ${x.cpuMsPerRequest.toFixed(3)} ms CPU/req${x.errors > 0 ? `, ${x.errors} errors` : ''}\n`)
          out.push(x)
        }
      }
    }
    return out
  } finally {
    for (const s of services) await s.svc.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
}

const cpuInfo = readFileSync('/proc/cpuinfo', 'utf8')
const flags = (/^flags\s*:(.*)$/m.exec(cpuInfo)?.[1] ?? '').trim().split(/\s+/)
const model = /^model name\s*:(.*)$/m.exec(cpuInfo)?.[1]?.trim()
console.log(`int8 bench: ${model ?? 'unknown CPU'}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')} at start; int8 instruction sets: ${['avx2', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'amx_int8'].filter((f) => flags.includes(f)).join(' ')}`)
const report: { ort?: OrtRound[], http?: HttpRound[] } = {}
if (args['http-only'] !== true) {
  report.ort = await ortAlone()
  console.log(`\nONNX Runtime alone (one intra-op thread, ${ROUNDS} alternating rounds; median)`)
  // The headline is the median of the per-round ratios: the two runs of a round share the machine's state.
  console.log('| batch | float img/CPU-s | int8 img/CPU-s | ×CPU (median of rounds) | ×CPU (of medians) | float img/s | int8 img/s | ×wall | int8/float per round (CPU) |')
  console.log('|--:|--:|--:|--:|--:|--:|--:|--:|---|')
  for (const batch of [1, 32]) {
    const f = report.ort.filter((x) => x.batch === batch && x.model === args.float)
    const q = report.ort.filter((x) => x.batch === batch && x.model === args.int8)
    const fc = median(f.map((x) => x.imagesPerCpuSecond)); const qc = median(q.map((x) => x.imagesPerCpuSecond))
    const fw = median(f.map((x) => x.imagesPerSecond)); const qw = median(q.map((x) => x.imagesPerSecond))
    const paired = q.map((x, i) => x.imagesPerCpuSecond / f[i]!.imagesPerCpuSecond)
    console.log(`| ${batch} | ${fc.toFixed(0)} | ${qc.toFixed(0)} | **${median(paired).toFixed(2)}** | ${(qc / fc).toFixed(2)} | ${fw.toFixed(0)} | ${qw.toFixed(0)} | ${(qw / fw).toFixed(2)} | ${paired.map((v) => v.toFixed(2)).join(' ')} |`)
  }
}
if (args['ort-only'] !== true) {
  report.http = await endToEnd()
  console.log(`\nEnd to end, c=${C}, ${SECONDS} s rounds, ${ROUNDS} alternating rounds (median; service CPU = every thread of the server process)`)
  console.log('| protocol | service | req/s | p99 ms | CPU ms/req | req/s per round |')
  // Ratio rows: of the medians; the last column is the ratio round by round (its median in brackets).
  console.log('|---|---|--:|--:|--:|---|')
  const names = [...new Set(report.http.map((x) => x.service))]
  for (const p of ['classify', 'v2'] as const) {
    const rows = names.map((n) => report.http!.filter((x) => x.protocol === p && x.service === n))
    for (const [i, rs] of rows.entries()) console.log(`| ${p} | ${names[i]} | ${median(rs.map((x) => x.reqPerSecond)).toFixed(0)} | ${median(rs.map((x) => x.p99Ms)).toFixed(1)} | ${median(rs.map((x) => x.cpuMsPerRequest)).toFixed(3)} | ${rs.map((x) => x.reqPerSecond.toFixed(0)).join(' ')} |`)
    const ratio = (label: string, q: HttpRound[], f: HttpRound[]): void => {
      const paired = q.map((x, i) => x.reqPerSecond / f[i]!.reqPerSecond)
      console.log(`| ${p} | ${label} | **×${(median(q.map((x) => x.reqPerSecond)) / median(f.map((x) => x.reqPerSecond))).toFixed(2)}** | ${(median(q.map((x) => x.p99Ms)) / median(f.map((x) => x.p99Ms))).toFixed(2)} | ${(median(q.map((x) => x.cpuMsPerRequest)) / median(f.map((x) => x.cpuMsPerRequest))).toFixed(2)} | ${paired.map((v) => v.toFixed(2)).join(' ')} (${median(paired).toFixed(2)}) |`)
    }
    ratio('int8 / float', rows[1]!, rows[0]!)
    if (rows.length === 4) {
      ratio('int8 / float before', rows[1]!, rows[2]!)
      ratio('float / float before', rows[0]!, rows[2]!)
      ratio('int8 / int8 before', rows[1]!, rows[3]!)
    }
  }
  const errors = report.http.reduce((s, x) => s + x.errors, 0)
  console.log(`errors: ${errors}`)
}
if (args.json !== undefined) writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n')
