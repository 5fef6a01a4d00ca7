// The service under test: started as its own process (as in production, so the load generator
// and the service do not share an event loop), or a running one given by --url. Its memory and
// batching are read from its own /metrics, so both cases are measured the same way.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Service {
  url: string
  /** Rejects if the process dies while the bench runs; never settles otherwise. */
  crashed: Promise<never>
  stop: () => Promise<void>
  logs: () => string
}

const IS_TS = import.meta.url.endsWith('.ts')
const SERVER = fileURLToPath(new URL(IS_TS ? '../../server.ts' : '../../server.js', import.meta.url))

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0))
    })
  })
}

async function waitReady (url: string, child: ChildProcess | null, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (child !== null && child.exitCode !== null) throw new Error(`the service exited with code ${child.exitCode} while starting`)
    try {
      const res = await fetch(`${url}/health/ready`)
      if (res.status === 200) return
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the service at ${url} was not ready within ${timeoutMs} ms`)
}

export async function startService (env: Record<string, string>, cpuProfDir?: string): Promise<Service> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const args = [...(IS_TS ? process.execArgv : []), ...(cpuProfDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []), SERVER]
  // The service logs to a file, as under a container runtime: a pipe read by this process
  // (busy generating load) would back up, and the service would buffer its log lines in memory.
  const logFile = path.join(os.tmpdir(), `isomax-bench-${process.pid}-${port}.log`)
  const fd = openSync(logFile, 'w')
  const child = spawn(process.execPath, args, {
    // The service's own defaults (LOG_LEVEL info: one log line per request), so the bench
    // measures what ships; --env overrides. gRPC on a free port, not 8081: several benches and
    // tests may run at once.
    env: { EXECUTION_PROVIDER: 'cpu', GRPC_PORT: '0', ...process.env, ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', fd, fd]
  })
  closeSync(fd)
  const out = (): string => {
    try {
      const text = readFileSync(logFile, 'utf8')
      return text.slice(-20_000)
    } catch {
      return ''
    }
  }
  let stopping = false
  const crashed = new Promise<never>((_resolve, reject) => {
    child.on('exit', (code, signal) => {
      if (!stopping) reject(new Error(`the service exited unexpectedly (code ${code}, signal ${signal}); its log ${logFile} ends:\n${out()}`))
    })
  })
  crashed.catch(() => {})
  try {
    await Promise.race([waitReady(url, child, 180_000), crashed])
  } catch (err) {
    child.kill('SIGKILL')
    throw new Error(`${(err as Error).message}; its log ${logFile} ends:\n${out()}`)
  }
  return {
    url,
    crashed,
    logs: out,
    stop: async () => {
      stopping = true
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
        await exited
        clearTimeout(timer)
      }
      rmSync(logFile, { force: true })
    }
  }
}

export async function attachService (url: string): Promise<Service> {
  await waitReady(url, null, 10_000)
  return { url, crashed: new Promise<never>(() => {}), logs: () => '', stop: async () => {} }
}

/** Prometheus text → sums per metric name (labels summed over), enough for deltas. */
export type MetricSums = Map<string, number>

export async function scrape (url: string): Promise<MetricSums> {
  const res = await fetch(`${url}/metrics`)
  const text = await res.text()
  const sums: MetricSums = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const value = Number(m[3])
    if (!Number.isFinite(value)) continue
    // Histogram buckets are not summed (le labels); only _sum and _count matter here.
    if (m[1]!.endsWith('_bucket')) continue
    sums.set(m[1]!, (sums.get(m[1]!) ?? 0) + value)
  }
  return sums
}

export interface ServerSnapshot {
  rssBytes: number
  heapUsedBytes: number
  cpuSeconds: number
  batches: number
  batchedImages: number
  queueWaitSeconds: number
  queueWaitCount: number
}

export async function snapshot (url: string): Promise<ServerSnapshot> {
  const s = await scrape(url)
  return {
    rssBytes: s.get('process_resident_memory_bytes') ?? NaN,
    heapUsedBytes: s.get('nodejs_heap_size_used_bytes') ?? NaN,
    cpuSeconds: s.get('process_cpu_seconds_total') ?? NaN,
    batches: s.get('isomax_batch_size_count') ?? 0,
    batchedImages: s.get('isomax_batch_size_sum') ?? 0,
    queueWaitSeconds: s.get('isomax_queue_wait_seconds_sum') ?? 0,
    queueWaitCount: s.get('isomax_queue_wait_seconds_count') ?? 0
  }
}
