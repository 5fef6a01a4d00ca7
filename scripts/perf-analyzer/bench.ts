// The Open Inference Protocol over gRPC and over HTTP (Triton's perf_analyzer `-i grpc` and
// `-i http`, real images) against POST /classify (autocannon, the same images) on one server,
// in alternating rounds at each concurrency, with the service's CPU time per request for each;
// and v2 HTTP driven by autocannon too, so HTTP's two protocols are also compared under one
// client. Prints a table and the ratios to /classify (docs/performance.md).
//   npm run bench:perf-analyzer   (ROUND_S=6 CONCURRENCY=1,2,4,8,16,32 KINDS=grpc,v2,classify,v2-autocannon PERF_ANALYZER=...)
import autocannon from 'autocannon'
import { bytesElement, fashionPngs } from './input-data.js'
import { MODEL, imagesInputData, perfAnalyzer } from './run.js'
import { cpuSeconds, startService, successCount, type Service } from './service.js'

const ROUND_S = Number(process.env.ROUND_S ?? 6)
const CONCURRENCY = (process.env.CONCURRENCY ?? '1,2,4,8,16,32').split(',').map(Number)

interface Round { throughput: number, p99Ms: number, cpuMsPerRequest: number, errors: number }
type Kind = 'grpc perf_analyzer' | 'v2 perf_analyzer' | 'classify autocannon' | 'v2 autocannon'

const KIND_NAMES: Record<string, Kind> = { grpc: 'grpc perf_analyzer', v2: 'v2 perf_analyzer', classify: 'classify autocannon', 'v2-autocannon': 'v2 autocannon' }
const KINDS: Kind[] = (process.env.KINDS ?? 'grpc,v2,classify,v2-autocannon').split(',').map((k) => {
  const kind = KIND_NAMES[k.trim()]
  if (kind === undefined) throw new Error(`KINDS: unknown "${k}"; one or more of ${Object.keys(KIND_NAMES).join(', ')}`)
  return kind
})

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
  if (kind === 'v2 perf_analyzer' || kind === 'grpc perf_analyzer') {
    const grpc = kind === 'grpc perf_analyzer'
    const p = await perfAnalyzer(grpc ? svc.grpc : svc.url, { concurrency: c, inputData, windowMs: Math.round(ROUND_S * 1000 / 3), trials: 3, protocol: grpc ? 'grpc' : 'http' })
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
    // Warm every path (JIT, ONNX session, sharp) before anything is measured.
    await perfAnalyzer(svc.url, { concurrency: 4, inputData, requestCount: 100, trials: 3 })
    if (KINDS.includes('grpc perf_analyzer')) await perfAnalyzer(svc.grpc, { concurrency: 4, inputData, requestCount: 100, trials: 3, protocol: 'grpc' })
    await cannon(svc.url, 'classify autocannon', 4, pngs)
    const results = new Map<number, Map<Kind, Round>>()
    for (const [i, c] of CONCURRENCY.entries()) {
      // Rotate which protocol goes first, so none always meets the machine warmer.
      const kinds: Kind[] = KINDS.map((_, k) => KINDS[(k + i) % KINDS.length]!)
      const byKind = new Map<Kind, Round>()
      for (const kind of kinds) {
        byKind.set(kind, await round(svc, kind, c, pngs, inputData))
        const r = byKind.get(kind) as Round
        console.error(`c=${c} ${kind}: ${fmt(r.throughput)} req/s, p99 ${fmt(r.p99Ms)} ms, ${fmt(r.cpuMsPerRequest, 3)} ms CPU/req${r.errors > 0 ? `, ${r.errors} errors` : ''}`)
      }
      results.set(c, byKind)
    }
    const cols = KINDS.map((k) => `${k} req/s | p99 ms | CPU ms/req`).join(' | ')
    const vs = KINDS.filter((k) => k !== 'classify autocannon').map((k) => `${k.split(' ')[0]!} / classify req/s | p99 ratio`).join(' | ')
    console.log(`| c | ${cols} | ${vs} |`)
    console.log(`|--:|${KINDS.map(() => '--:|--:|--:|').join('')}${KINDS.filter((k) => k !== 'classify autocannon').map(() => '--:|--:|').join('')}`)
    for (const [c, k] of results) {
      const cl = k.get('classify autocannon')
      const cells = KINDS.map((kind) => { const r = k.get(kind)!; return `${fmt(r.throughput)} | ${fmt(r.p99Ms)} | ${fmt(r.cpuMsPerRequest, 3)}` })
      const ratios = KINDS.filter((kind) => kind !== 'classify autocannon').map((kind) => {
        const r = k.get(kind)!
        return cl === undefined ? '- | -' : `${fmt(r.throughput / cl.throughput, 2)} | ${fmt(r.p99Ms / cl.p99Ms, 2)}`
      })
      console.log(`| ${c} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`)
    }
  } finally {
    await svc.stop()
  }
}

await main()
