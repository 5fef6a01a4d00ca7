// Plain-text tables of a bench run (the JSON document holds the same numbers).
import type { BenchReport } from './main.js'

const f = (n: number | undefined, digits = 1): string => n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits)
const mib = (bytes: number): string => f(bytes / 1048576, 1)

function table (head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

export function renderReport (r: BenchReport): string {
  const out: string[] = []
  out.push(`isomax-serve bench — ${r.machine.cpus} CPUs (${r.machine.cpuModel}), node ${r.machine.node}, load average ${r.machine.loadAverageStart.map((x) => x.toFixed(2)).join(' ')} at start`)
  out.push(`service: ${r.service.url} (${r.service.started ? 'started by the bench' : 'given by --url'}), model ${r.service.model}, ${r.service.workers} inference worker(s), ` +
    `maxBatchSize ${r.service.maxBatchSize}, maxQueueDelayMs ${r.service.maxQueueDelayMs}, ${r.service.format} images (${r.service.imageBytes} B mean) over ${r.service.protocol === 'v2' ? 'the Open Inference Protocol (binary)' : 'POST /classify'}, ${r.duration} s per level`)
  if (Object.keys(r.service.env).length > 0) out.push(`service environment: ${Object.entries(r.service.env).map(([k, v]) => `${k}=${v}`).join(' ')}`)
  out.push('')
  out.push(table(
    ['concurrency', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', '503s', 'errors', 'batch', 'decode', 'queue', 'infer', 'server', 'RSS before→after MiB'],
    r.levels.map((l) => [
      String(l.concurrency) + (l.label !== undefined ? ` (${l.label})` : ''),
      f(l.okPerSecond, 0), f(l.latencyMs.p50, 2), f(l.latencyMs.p95, 2), f(l.latencyMs.p99, 2), f(l.latencyMs.max, 1),
      String(l.overloaded) + (l.overloadedLatencyMs !== null ? ` (p99 ${f(l.overloadedLatencyMs.p99, 1)} ms)` : ''),
      String(l.errors),
      f(l.meanBatchSize, 1), f(l.server?.decode, 3), f(l.server?.queue, 2), f(l.server?.inference, 2), f(l.server?.total, 2),
      `${mib(l.rssBefore)}→${mib(l.rssAfter)}`
    ])
  ))
  out.push('  batch = mean images per inference batch (/metrics); decode/queue/infer/server = mean ms the service reports in its responses')
  if (r.overload !== undefined) {
    out.push(`  overload row: a second service with MAX_QUEUE_SIZE=${r.overload.maxQueueSize}; afterwards /health/ready ${r.overload.readyAfter} and a classify ${r.overload.classifyAfter} (after ${r.overload.retriesAfter} retries 200 ms apart)`)
  }
  if (r.ceilings !== undefined) {
    const c = r.ceilings
    out.push('')
    out.push(`in-process ceilings, no HTTP, ${c.workers} worker(s), ${r.service.format} images:`)
    const names = { inference: 'inference only (ORT, ready tensors)', bare: 'bare pipeline (preprocess + ORT)' }
    const keys = [...new Set(c.runs.map((x) => `${x.pipeline} ${x.batchSize}`))]
    out.push(table(['pipeline', 'batch', 'before img/s', 'after img/s'], keys.map((k) => {
      const [pipeline, batch] = k.split(' ') as ['inference' | 'bare', string]
      const at = (phase: string): string => f(c.runs.find((x) => x.pipeline === pipeline && String(x.batchSize) === batch && x.phase === phase)?.imagesPerSecond, 0)
      return [names[pipeline], batch, at('before'), at('after')]
    })))
    out.push('  before / after = measured before and after the HTTP levels; the best figure is the ceiling')
    out.push('')
    out.push(table(['concurrency', 'service req/s', 'service/bare', 'service/inference'], r.ratios.map((x) => [
      String(x.concurrency), f(x.serviceRps, 0), `${f(100 * x.ofBare, 1)} %`, `${f(100 * x.ofInference, 1)} %`
    ])))
    out.push(`  against the best of each ceiling: bare ${f(c.bestBare, 0)} images/s, inference ${f(c.bestInference, 0)} images/s`)
  }
  if (r.preprocessing !== undefined) {
    out.push('')
    out.push('preprocessing: straightforward sharp (greyscale → resize → raw, then normalise) vs the service\'s preprocess():')
    out.push(table(['input', 'bytes', 'decoder', 'same tensors', 'sharp ms', 'service ms', 'speed-up', 'sharp img/s', 'service img/s', 'speed-up'], r.preprocessing.map((p) => [
      p.format, String(p.bytes), p.decoder, p.identical ? 'yes' : 'NO',
      f(p.sequentialMs.straightforward, 3), f(p.sequentialMs.service, 3), `${f(p.sequentialMs.speedup, 2)}×`,
      f(p.concurrent.straightforward, 0), f(p.concurrent.service, 0), `${f(p.concurrent.speedup, 2)}×`
    ])))
    out.push(`  ms = one image at a time; img/s = ${r.preprocessing[0]?.concurrent.inFlight ?? 4} in flight`)
  }
  if (r.soak !== undefined) {
    const s = r.soak
    out.push('')
    out.push(`soak: c=${s.concurrency} for ${s.seconds} s after ${s.warmupSeconds} s warm-up: ${f(s.requestsPerSecond, 0)} req/s, p99 ${f(s.latencyMs.p99, 2)} ms, ${s.errors} errors, ${s.overloaded} 503s`)
    const pct = (x: number): string => `${x >= 0 ? '+' : ''}${f(x, 1)} %`
    out.push(`  mean of the first vs the last third of ${s.samples.length} samples (floor = lowest sample, the heap after a collection):`)
    out.push(`  RSS ${mib(s.rss.start)} → ${mib(s.rss.end)} MiB (${pct(s.rss.growthPercent)}; floor ${pct(s.rss.floorGrowthPercent)}; max ${mib(s.rss.max)})`)
    out.push(`  heap used ${mib(s.heap.start)} → ${mib(s.heap.end)} MiB (${pct(s.heap.growthPercent)}; floor ${pct(s.heap.floorGrowthPercent)}; max ${mib(s.heap.max)})`)
  }
  out.push('')
  out.push(`load average at end ${r.machine.loadAverageEnd.map((x) => x.toFixed(2)).join(' ')}; command: ${r.command}`)
  return out.join('\n')
}
