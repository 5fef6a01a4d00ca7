// What the perf_analyzer bench and its test share: the service as its own process on a free
// port, its CPU time (/proc/PID/stat, every thread, inference workers included), the count of
// inferences its statistics extension reports, and one perf_analyzer run read from its CSV.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fashionPngs, inputData } from './input-data.js'

export const PERF_ANALYZER = process.env.PERF_ANALYZER ?? '.ci/.venv-perf/bin/perf-analyzer'
export const MODEL = process.env.BENCH_MODEL ?? 'fashion-mnist-isomaxplus-md'
const TICK_S = 0.01 // USER_HZ: 100 on Linux

export interface Service { url: string, pid: number, proc: ChildProcess, stop: () => Promise<void> }

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0))
    })
  })
}

/** dist/src/server.js (npm run build first) on a free port; resolves once /v2/health/ready is 200. */
export async function startService (env: Record<string, string> = {}): Promise<Service> {
  const port = await freePort()
  const proc = spawn(process.execPath, ['dist/src/server.js'], {
    env: { ...process.env, EXECUTION_PROVIDER: 'cpu', LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const url = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGTERM')
    await exited
  }
  for (let i = 0; i < 240; i++) {
    if (proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode})`)
    const ok = await fetch(`${url}/v2/health/ready`).then((r) => r.ok, () => false)
    if (ok) return { url, pid: proc.pid as number, proc, stop }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  await stop()
  throw new Error('the server was not ready in 60 s')
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds (pid: number): number {
  // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * TICK_S
}

/** Successful inferences of the model so far (Triton's statistics extension). */
export async function successCount (url: string, model = MODEL): Promise<number> {
  const res = await fetch(`${url}/v2/models/${model}/stats`)
  const body = await res.json() as { model_stats: Array<{ inference_stats: { success: { count: number } } }> }
  return body.model_stats[0]?.inference_stats.success.count ?? 0
}

/** The --input-data file of real Fashion-MNIST PNGs, written once to a scratch folder. */
export function imagesInputData (): string {
  const file = join(mkdtempSync(join(tmpdir(), 'isomax-perf-')), 'images.json')
  writeFileSync(file, JSON.stringify(inputData(fashionPngs())))
  return file
}

export interface PerfResult { throughput: number, p99Ms: number, requests: number, stdout: string }

/**
 * One perf_analyzer run over OIP HTTP at one concurrency: windows of `windowMs` in count or time
 * mode; the stability check is off (a shared machine never settles), so it measures `trials`
 * windows and reports the last three.
 */
export async function perfAnalyzer (url: string, opts: { concurrency: number, inputData: string, windowMs?: number, requestCount?: number, trials?: number, model?: string }): Promise<PerfResult> {
  const csv = join(mkdtempSync(join(tmpdir(), 'isomax-perf-')), 'out.csv')
  const mode = opts.requestCount !== undefined
    ? ['--measurement-mode', 'count_windows', '--measurement-request-count', String(opts.requestCount)]
    : ['--measurement-mode', 'time_windows', '--measurement-interval', String(opts.windowMs ?? 2000)]
  const args = ['-m', opts.model ?? MODEL, '-u', url.replace(/^http:\/\//, ''), '-i', 'http', '--input-data', opts.inputData,
    '--concurrency-range', String(opts.concurrency), ...mode, '--stability-percentage', '999', '--max-trials', String(opts.trials ?? 3), '-f', csv]
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(PERF_ANALYZER, args, { maxBuffer: 1 << 24 }, (err, out, errOut) => {
      if (err !== null) reject(new Error(`perf_analyzer failed (${String(err.code)}): ${out}${errOut}`))
      else resolve(out)
    })
  })
  const [head, row] = readFileSync(csv, 'utf8').trim().split('\n').map((l) => l.split(','))
  const col = (name: string): number => Number(row?.[head?.indexOf(name) ?? -1])
  const requests = Number(/Request count: (\d+)/.exec(stdout)?.[1] ?? NaN)
  return { throughput: col('Inferences/Second'), p99Ms: col('p99 latency') / 1000, requests, stdout }
}
