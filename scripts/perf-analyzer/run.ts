// One perf_analyzer run against the service, read from its CSV, and the --input-data file of
// real images it sends: what the perf_analyzer bench (bench.ts) and its test share.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fashionPngs, inputData } from './input-data.js'

export const MODEL = process.env.BENCH_MODEL ?? 'fashion-mnist-isomaxplus-md'

/** The --input-data file of real Fashion-MNIST PNGs, written once to a scratch folder. */
export function imagesInputData (): string {
  const file = join(mkdtempSync(join(tmpdir(), 'isomax-perf-')), 'images.json')
  writeFileSync(file, JSON.stringify(inputData(fashionPngs())))
  return file
}

export interface PerfResult { throughput: number, p99Ms: number, requests: number, stdout: string }

/**
 * One perf_analyzer run over OIP HTTP (`url` http://host:port) or gRPC (`protocol: 'grpc'`,
 * `url` host:port) at one concurrency: windows of `windowMs` in count or time
 * mode; the stability check is off (a shared machine never settles), so it measures `trials`
 * windows and reports the last three.
 */
export async function perfAnalyzer (url: string, opts: { concurrency: number, inputData: string, windowMs?: number, requestCount?: number, trials?: number, model?: string, protocol?: 'http' | 'grpc' }): Promise<PerfResult> {
  const csv = join(mkdtempSync(join(tmpdir(), 'isomax-perf-')), 'out.csv')
  const mode = opts.requestCount !== undefined
    ? ['--measurement-mode', 'count_windows', '--measurement-request-count', String(opts.requestCount)]
    : ['--measurement-mode', 'time_windows', '--measurement-interval', String(opts.windowMs ?? 2000)]
  const args = ['-m', opts.model ?? MODEL, '-u', url.replace(/^http:\/\//, ''), '-i', opts.protocol ?? 'http', '--input-data', opts.inputData,
    '--concurrency-range', String(opts.concurrency), ...mode, '--stability-percentage', '999', '--max-trials', String(opts.trials ?? 3), '-f', csv]
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.env.PERF_ANALYZER ?? '.ci/.venv-perf/bin/perf-analyzer', args, { maxBuffer: 1 << 24 }, (err, out, errOut) => {
      if (err !== null) reject(new Error(`perf_analyzer failed (${String(err.code)}): ${out}${errOut}`))
      else resolve(out)
    })
  })
  const [head, row] = readFileSync(csv, 'utf8').trim().split('\n').map((l) => l.split(','))
  const col = (name: string): number => Number(row?.[head?.indexOf(name) ?? -1])
  const requests = Number(/Request count: (\d+)/.exec(stdout)?.[1] ?? NaN)
  return { throughput: col('Inferences/Second'), p99Ms: col('p99 latency') / 1000, requests, stdout }
}
