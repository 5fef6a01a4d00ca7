// v2 over HTTP (Triton's perf_analyzer, real images) against POST /classify (autocannon, the same
// images) on one server, in alternating rounds at each concurrency, with the service's CPU time
// per request for both; and v2 driven by autocannon too, so the two protocols are also compared
// under one client. Prints a table and the v2 / classify ratios (docs/performance.md).
//   npm run bench:perf-analyzer            (ROUND_S=6 CONCURRENCY=1,2,4,8,16,32 PERF_ANALYZER=...)
import autocannon from 'autocannon'
import { bytesElement, fashionPngs } from './input-data.js'
import { MODEL, imagesInputData, perfAnalyzer } from './run.js'
import { cpuSeconds, startService, successCount, type Service } from './service.js'

const ROUND_S = Number(process.env.ROUND_S ?? 6)
const CONCURRENCY = (process.env.CONCURRENCY ?? '1,2,4,8,16,32').split(',').map(Number)

interface Round { throughput: number, p99Ms: number, cpuMsPerRequest: number, errors: number }
type Kind = 'v2 perf_analyzer' | 'classify autocannon' | 'v2 autocannon'

function v2Body (png: Buffer): { body: Buffer, headerLength: number } {
  const element = bytesElement(png)
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1, 1], parameters: { binary_data_size: element.length } }] }))
  return { body: Buffer.concat([header, element]), headerLength: header.length }
}

async function cannon (url: string, kind: Kind, connections: number, pngs: Buffer[]): Promise<{ throughput: number, p99Ms: number, errors: number }> {
  const requests = pngs.map((png) => {
    if (kind === 'classify autocannon') return { method: 'POST' as const, path: '/classify', headers: { 'content-type': 'image/png' }, body: png }
    const { body, headerLength } = v2Body(png)
    return { method: 'POST' as const, path: `/v2/models/${MODEL}/infer`, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) }, body }
  })
  const r = await autocannon({ url, connections, duration: ROUND_S, requests })
  return { throughput: r.requests.average, p99Ms: r.latency.p99, errors: r.errors + r.non2xx + r.timeouts }
}

async function round (svc: Service, kind: Kind, c: number, pngs: Buffer[], inputData: string): Promise<Round> {
  const cpu0 = cpuSeconds(svc.pid)
  const n0 = await successCount(svc.url)
  let r: { throughput: number, p99Ms: number, errors: number }
  if (kind === 'v2 perf_analyzer') {
    const p = await perfAnalyzer(svc.url, { concurrency: c, inputData, windowMs: Math.round(ROUND_S * 1000 / 3), trials: 3 })
    r = { throughput: p.throughput, p99Ms: p.p99Ms, errors: 0 }
  } else {
    r = await cannon(svc.url, kind, c, pngs)
  }
  const n = (await successCount(svc.url)) - n0
  return { ...r, cpuMsPerRequest: n > 0 ? (cpuSeconds(svc.pid) - cpu0) * 1000 / n : NaN }
}

const fmt = (x: number, d = 1): string => Number.isFinite(x) ? x.toFixed(d) : '-'

async function main (): Promise<void> {
  const pngs = fashionPngs()
  const inputData = imagesInputData()
  const svc = await startService({ INFERENCE_WORKERS: process.env.INFERENCE_WORKERS ?? '1' })
  try {
    // Warm both paths (JIT, ONNX session, sharp) before anything is measured.
    await perfAnalyzer(svc.url, { concurrency: 4, inputData, requestCount: 100, trials: 3 })
    await cannon(svc.url, 'classify autocannon', 4, pngs)
    const results = new Map<number, Map<Kind, Round>>()
    for (const [i, c] of CONCURRENCY.entries()) {
      // Alternate which protocol goes first, so neither always meets the machine warmer.
      const kinds: Kind[] = i % 2 === 0 ? ['v2 perf_analyzer', 'classify autocannon', 'v2 autocannon'] : ['classify autocannon', 'v2 perf_analyzer', 'v2 autocannon']
      const byKind = new Map<Kind, Round>()
      for (const kind of kinds) {
        byKind.set(kind, await round(svc, kind, c, pngs, inputData))
        const r = byKind.get(kind) as Round
        console.error(`c=${c} ${kind}: ${fmt(r.throughput)} req/s, p99 ${fmt(r.p99Ms)} ms, ${fmt(r.cpuMsPerRequest, 3)} ms CPU/req${r.errors > 0 ? `, ${r.errors} errors` : ''}`)
      }
      results.set(c, byKind)
    }
    console.log('| c | v2 perf_analyzer req/s | p99 ms | CPU ms/req | /classify autocannon req/s | p99 ms | CPU ms/req | v2 / classify req/s | v2 / classify CPU | v2 autocannon req/s | p99 ms | CPU ms/req | v2 / classify req/s (one client) |')
    console.log('|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
    for (const [c, k] of results) {
      const v2 = k.get('v2 perf_analyzer') as Round
      const cl = k.get('classify autocannon') as Round
      const va = k.get('v2 autocannon') as Round
      console.log(`| ${c} | ${fmt(v2.throughput)} | ${fmt(v2.p99Ms)} | ${fmt(v2.cpuMsPerRequest, 3)} | ${fmt(cl.throughput)} | ${fmt(cl.p99Ms)} | ${fmt(cl.cpuMsPerRequest, 3)} | ${fmt(v2.throughput / cl.throughput, 2)} | ${fmt(v2.cpuMsPerRequest / cl.cpuMsPerRequest, 2)} | ${fmt(va.throughput)} | ${fmt(va.p99Ms)} | ${fmt(va.cpuMsPerRequest, 3)} | ${fmt(va.throughput / cl.throughput, 2)} |`)
    }
  } finally {
    await svc.stop()
  }
}

await main()
