// One load level: autocannon at a fixed concurrency for a fixed time, sending Fashion-MNIST
// images round-robin. Latencies are kept per response (exact percentiles, by status), and one
// response body in SAMPLE_EVERY is read for the server's own per-stage timings.
import autocannon from 'autocannon'
import type { Traffic } from './traffic.js'

export interface Percentiles { p50: number, p95: number, p99: number, max: number }

export interface StageTimings {
  /** Means over sampled 200 responses, ms, as the service reports them. */
  decode: number
  queue: number
  inference: number
  total: number
  batchSize: number
  samples: number
}

export interface LoadResult {
  concurrency: number
  seconds: number
  requests: number
  ok: number
  requestsPerSecond: number
  okPerSecond: number
  latencyMs: Percentiles
  /** 503 answers (overload, deadline) and how quickly they came. */
  overloaded: number
  overloadedLatencyMs: Percentiles | null
  /** Everything that is neither 200 nor 503, plus connection errors and timeouts. */
  errors: number
  statusCounts: Record<string, number>
  server: StageTimings | null
}

const SAMPLE_EVERY = 8

export function percentiles (values: number[]): Percentiles {
  if (values.length === 0) return { p50: NaN, p95: NaN, p99: NaN, max: NaN }
  const sorted = Float64Array.from(values).sort()
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1] as number }
}

export interface LoadOptions {
  url: string
  traffic: Traffic
  concurrency: number
  seconds: number
}

export async function runLoad (opts: LoadOptions): Promise<LoadResult> {
  const okLatency: number[] = []
  const overloadedLatency: number[] = []
  const statusCounts: Record<string, number> = {}
  const timings = { decode: 0, queue: 0, inference: 0, total: 0, batchSize: 0, samples: 0 }
  let next = 0
  let responses = 0
  let finish!: (err: Error | null, result: autocannon.Result) => void
  const result = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (err, r) => { if (err !== null) reject(err); else resolve(r) }
  })
  const instance = autocannon({
    url: opts.url,
    connections: opts.concurrency,
    duration: opts.seconds,
    // Each response's latency is recorded as measured; no coordinated-omission correction,
    // since the load is closed-loop (each connection waits for its answer).
    requests: [{
      method: 'POST',
      path: opts.traffic.path,
      setupRequest: (req) => {
        const r = opts.traffic.requests[next++ % opts.traffic.requests.length]!
        req.body = r.body
        req.headers = { ...req.headers, ...r.headers }
        return req
      },
      onResponse: (status, body) => {
        // The v2 responses are binary and carry no stage timings.
        if (status !== 200 || opts.traffic.protocol !== 'classify' || responses++ % SAMPLE_EVERY !== 0) return
        try {
          const r = JSON.parse(body) as { batchSize: number, timings: { decode: number, queue: number, inference: number, total: number } }
          timings.decode += r.timings.decode
          timings.queue += r.timings.queue
          timings.inference += r.timings.inference
          timings.total += r.timings.total
          timings.batchSize += r.batchSize
          timings.samples++
        } catch {}
      }
    }]
  }, (err, r) => finish(err, r))
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1
    if (statusCode === 200) okLatency.push(responseTime)
    else if (statusCode === 503) overloadedLatency.push(responseTime)
  })
  const done = await result
  const ok = statusCounts['200'] ?? 0
  const overloaded = statusCounts['503'] ?? 0
  const answered = Object.values(statusCounts).reduce((a, b) => a + b, 0)
  const seconds = done.duration
  const n = timings.samples
  return {
    concurrency: opts.concurrency,
    seconds,
    requests: answered,
    ok,
    requestsPerSecond: answered / seconds,
    okPerSecond: ok / seconds,
    latencyMs: percentiles(okLatency),
    overloaded,
    overloadedLatencyMs: overloaded > 0 ? percentiles(overloadedLatency) : null,
    // autocannon counts timeouts among its connection errors.
    errors: answered - ok - overloaded + done.errors,
    statusCounts,
    server: n === 0
      ? null
      : { decode: timings.decode / n, queue: timings.queue / n, inference: timings.inference / n, total: timings.total / n, batchSize: timings.batchSize / n, samples: n }
  }
}
