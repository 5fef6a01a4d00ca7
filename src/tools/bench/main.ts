// `npm run bench`: the service under HTTP load at several concurrency levels, against two
// in-process ceilings measured in the same run (docs/performance.md explains every number).
import os from 'node:os'
import path from 'node:path'
import { loadConfig, type Config } from '../../config.js'
import { engineOptions } from '../../inference/engine-options.js'
import type { EngineOptions } from '../../inference/engine.js'
import { repoRoot } from '../datasets/repo-root.js'
import { preprocessLimits } from '../../preprocess/limits.js'
import type { PreprocessLimits } from '../../preprocess/preprocess.js'
import { loadManifest } from '../../registry/load-manifest.js'
import { hwcToNormalizedChw } from '../../preprocess/to-tensor.js'
import { HelpRequest, UsageError } from '../cli/args.js'
import { parseBenchArgs, USAGE, type BenchArgs } from './args.js'
import { sessionKey } from '../../inference/model-specs.js'
import { barePipeline, comparePreprocessing, inferenceOnly, startPool, type PreprocessComparison, type Throughput } from './ceilings.js'
import { encode, fashionPixels, largePhoto } from './images.js'
import { compareModels, renderCosts } from './compare-models.js'
import { runLoad, type LoadResult, type Percentiles } from './load.js'
import { classifyTraffic, v2Traffic, type Traffic } from './traffic.js'
import { renderReport } from './report.js'
import { attachService, snapshot, startService, type Service, type ServerSnapshot } from './server.js'

export interface LevelReport extends LoadResult {
  label?: string
  rssBefore: number
  rssAfter: number
  heapBefore: number
  heapAfter: number
  /** Service CPU (all threads) per answered request, ms. */
  cpuMsPerRequest: number
  meanBatchSize: number
  meanQueueWaitMs: number
}

export interface SoakReport {
  concurrency: number
  warmupSeconds: number
  seconds: number
  requestsPerSecond: number
  latencyMs: Percentiles
  errors: number
  overloaded: number
  samples: Array<{ t: number, rss: number, heapUsed: number }>
  rss: { start: number, end: number, max: number, growthPercent: number, floorGrowthPercent: number }
  heap: { start: number, end: number, max: number, growthPercent: number, floorGrowthPercent: number }
}

export interface CeilingRun extends Throughput {
  pipeline: 'inference' | 'bare'
  phase: 'before' | 'after'
}

export interface BenchReport {
  command: string
  machine: { cpus: number, cpuModel: string, node: string, loadAverageStart: number[], loadAverageEnd: number[] }
  duration: number
  service: { url: string, started: boolean, model: string, workers: number, maxBatchSize: number, maxQueueDelayMs: number, format: string, protocol: 'classify' | 'v2', imageBytes: number, env: Record<string, string> }
  levels: LevelReport[]
  overload?: { maxQueueSize: number, readyAfter: number, classifyAfter: number, retriesAfter: number }
  soak?: SoakReport
  ceilings?: { workers: number, runs: CeilingRun[], bestInference: number, bestBare: number }
  ratios: Array<{ concurrency: number, serviceRps: number, ofBare: number, ofInference: number }>
  preprocessing?: PreprocessComparison[]
}

const CONTENT_TYPE = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' } as const

const progress = (msg: string): void => { process.stderr.write(`bench: ${msg}\n`) }

async function level (service: Service, traffic: Traffic, concurrency: number, seconds: number, label?: string): Promise<LevelReport> {
  const before = await snapshot(service.url)
  const load = await Promise.race([runLoad({ url: service.url, traffic, concurrency, seconds }), service.crashed])
  const after = await snapshot(service.url)
  const batches = after.batches - before.batches
  const waits = after.queueWaitCount - before.queueWaitCount
  return {
    ...load,
    ...(label !== undefined ? { label } : {}),
    rssBefore: before.rssBytes,
    rssAfter: after.rssBytes,
    heapBefore: before.heapUsedBytes,
    heapAfter: after.heapUsedBytes,
    cpuMsPerRequest: load.requests > 0 ? 1000 * (after.cpuSeconds - before.cpuSeconds) / load.requests : NaN,
    meanBatchSize: batches > 0 ? (after.batchedImages - before.batchedImages) / batches : NaN,
    meanQueueWaitMs: waits > 0 ? 1000 * (after.queueWaitSeconds - before.queueWaitSeconds) / waits : NaN
  }
}

async function soak (service: Service, traffic: Traffic, seconds: number): Promise<SoakReport> {
  const concurrency = 32
  const warmupSeconds = Math.min(20, Math.max(5, Math.round(seconds / 6)))
  progress(`soak: ${warmupSeconds} s warm-up at c=${concurrency}`)
  await Promise.race([runLoad({ url: service.url, traffic, concurrency, seconds: warmupSeconds }), service.crashed])
  progress(`soak: ${seconds} s at c=${concurrency}, sampling memory every 2 s`)
  const samples: SoakReport['samples'] = []
  const started = performance.now()
  const sample = async (): Promise<void> => {
    const s: ServerSnapshot = await snapshot(service.url)
    samples.push({ t: (performance.now() - started) / 1000, rss: s.rssBytes, heapUsed: s.heapUsedBytes })
  }
  await sample()
  const timer = setInterval(() => { void sample() }, 2000)
  let load: LoadResult
  try {
    load = await Promise.race([runLoad({ url: service.url, traffic, concurrency, seconds }), service.crashed])
  } finally {
    clearInterval(timer)
  }
  await sample()
  // Heap use is a saw-tooth between collections: compare the means of the first and the last
  // third of the samples, and their floors (the heap just after a collection: what a leak raises).
  const third = Math.max(1, Math.floor(samples.length / 3))
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  const summary = (key: 'rss' | 'heapUsed'): SoakReport['rss'] => {
    const first = samples.slice(0, third).map((s) => s[key])
    const last = samples.slice(-third).map((s) => s[key])
    const start = mean(first)
    const end = mean(last)
    return {
      start,
      end,
      max: Math.max(...samples.map((s) => s[key])),
      growthPercent: 100 * (end - start) / start,
      floorGrowthPercent: 100 * (Math.min(...last) - Math.min(...first)) / Math.min(...first)
    }
  }
  return {
    concurrency,
    warmupSeconds,
    seconds: load.seconds,
    requestsPerSecond: load.okPerSecond,
    latencyMs: load.latencyMs,
    errors: load.errors,
    overloaded: load.overloaded,
    samples,
    rss: summary('rss'),
    heap: summary('heapUsed')
  }
}

/** What the in-process measurements share with the service the bench starts. */
interface Setup {
  manifestFile: string
  manifest: Awaited<ReturnType<typeof loadManifest>>
  workers: number
  /** Seconds per in-process run (the ceilings, --compare-models). */
  ceilingSeconds: number
  /**
   * The service's settings (engineOptions, as server.ts maps them) from the environment the
   * service gets, so in-process runs use the same provider, threads and batching. A function:
   * parsed only when they run — with --http-only the service alone judges its environment
   * (and a bad one shows as the service exiting).
   */
  serviceConfig: () => Config
}

async function setup (args: BenchArgs): Promise<Setup> {
  // The bench's own defaults; --env goes to the service untouched (it validates it itself).
  const config = loadConfig(process.env)
  const manifestFile = path.resolve(repoRoot(), args.serverEnv.MODELS_MANIFEST ?? config.MODELS_MANIFEST)
  const workers = args.workers ?? config.INFERENCE_WORKERS
  return {
    manifestFile,
    manifest: await loadManifest(manifestFile),
    workers,
    ceilingSeconds: Math.max(0.5, args.duration / 4),
    serviceConfig: () => loadConfig({ EXECUTION_PROVIDER: 'cpu', ...process.env, ...args.serverEnv, INFERENCE_WORKERS: String(workers) })
  }
}

async function run (args: BenchArgs): Promise<BenchReport> {
  const loadAverageStart = os.loadavg()
  const { manifestFile, manifest, workers, ceilingSeconds, serviceConfig } = await setup(args)
  const model = manifest.models.get(manifest.defaultModel)!
  const spec = model.input

  progress('encoding Fashion-MNIST test images')
  const pixels = await fashionPixels(256)
  const bodies = await Promise.all(pixels.map(async (p) => await encode(p, args.format)))
  const contentType = CONTENT_TYPE[args.format]
  const traffic = args.protocol === 'v2' ? v2Traffic(bodies, model.name) : classifyTraffic(bodies, contentType)

  const tensors = pixels.slice(0, 64).map((p) => hwcToNormalizedChw(p, spec.width, spec.height, 1, spec.mean, spec.std))
  const serviceEngine = (): EngineOptions => engineOptions(serviceConfig())
  const limits = (): PreprocessLimits => preprocessLimits(serviceConfig())
  // The ceilings run twice, before and after the HTTP levels, and the better figure counts:
  // on a shared machine noise only ever slows a run down, so the best is the ceiling.
  const measureCeilings = async (sizes: number[], phase: CeilingRun['phase']): Promise<CeilingRun[]> => {
    const pool = await startPool(manifest, serviceEngine())
    const runs: CeilingRun[] = []
    try {
      const unique = [...new Set(sizes)].sort((a, b) => a - b)
      for (const b of unique) runs.push({ pipeline: 'inference', phase, ...await inferenceOnly(pool, sessionKey(model, serviceEngine()), tensors, b, ceilingSeconds, workers) })
      for (const b of unique.filter((b) => b > 1 || unique.length === 1)) runs.push({ pipeline: 'bare', phase, ...await barePipeline(pool, sessionKey(model, serviceEngine()), spec, limits(), bodies, b, ceilingSeconds, workers) })
    } finally {
      await pool.close()
    }
    return runs
  }
  let ceilingsBefore: CeilingRun[] | undefined
  if (!args.httpOnly) {
    progress(`ceilings (before the HTTP levels): ${workers} worker(s) in-process`)
    const m = serviceEngine().maxBatchSize ?? model.batching.maxBatchSize
    ceilingsBefore = await measureCeilings([1, Math.max(1, Math.round(m / 2)), m], 'before')
  }

  const env = { INFERENCE_WORKERS: String(workers), MODELS_MANIFEST: manifestFile, ...args.serverEnv }
  const service = args.url !== undefined ? await attachService(args.url) : await startService(env, args.cpuProf)
  progress(`service ready at ${service.url}`)
  const levels: LevelReport[] = []
  let overload: BenchReport['overload']
  let soakReport: SoakReport | undefined
  let batching = { maxBatchSize: model.batching.maxBatchSize, maxQueueDelayMs: model.batching.maxQueueDelayMs }
  try {
    const models = await (await fetch(`${service.url}/models`)).json() as { models: Array<{ name: string, batching: typeof batching }> }
    batching = models.models.find((m) => m.name === model.name)?.batching ?? batching
    progress('warm-up: 2 s at c=8')
    await level(service, traffic, 8, 2)
    for (const c of args.concurrency) {
      progress(`c=${c}: ${args.duration} s`)
      levels.push(await level(service, traffic, c, args.duration))
    }
    if (args.soak > 0) soakReport = await soak(service, traffic, args.soak)
  } finally {
    await service.stop()
  }

  if (args.url === undefined && args.overloadQueue > 0) {
    progress(`overload: c=128 against a service with MAX_QUEUE_SIZE=${args.overloadQueue}`)
    const small = await startService({ ...env, MAX_QUEUE_SIZE: String(args.overloadQueue) })
    try {
      await level(small, traffic, 8, 1)
      levels.push(await level(small, traffic, 128, args.duration, `MAX_QUEUE_SIZE=${args.overloadQueue}`))
      const readyAfter = (await fetch(`${small.url}/health/ready`)).status
      // Requests the load generator abandoned at the end may still fill the 2-place queue for a
      // moment: a client honours Retry-After, so "healthy after" allows a few short retries.
      let classifyAfter = 0
      let retriesAfter = 0
      for (; retriesAfter < 10; retriesAfter++) {
        classifyAfter = (await fetch(`${small.url}/classify`, { method: 'POST', headers: { 'content-type': contentType }, body: bodies[0] })).status
        if (classifyAfter !== 503) break
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      overload = { maxQueueSize: args.overloadQueue, readyAfter, classifyAfter, retriesAfter }
    } finally {
      await small.stop()
    }
  }

  let ceilings: BenchReport['ceilings']
  let preprocessing: PreprocessComparison[] | undefined
  if (!args.httpOnly) {
    // The batch sizes the batcher used: 1, the mean it formed at each level, and the cap.
    const observed = levels.filter((l) => Number.isFinite(l.meanBatchSize)).map((l) => Math.max(1, Math.min(batching.maxBatchSize, Math.round(l.meanBatchSize))))
    progress(`ceilings (after the HTTP levels): ${workers} worker(s) in-process`)
    const after = await measureCeilings([1, ...observed, batching.maxBatchSize], 'after')
    const runs = [...(ceilingsBefore ?? []), ...after]
    const best = (pipeline: CeilingRun['pipeline']): number => Math.max(...runs.filter((r) => r.pipeline === pipeline).map((r) => r.imagesPerSecond))
    ceilings = { workers, runs, bestInference: best('inference'), bestBare: best('bare') }
    progress('preprocessing: straightforward sharp vs preprocess(), per format')
    const sets: Array<[string, Buffer[]]> = [
      ['PNG 28×28 grey', await Promise.all(pixels.slice(0, 64).map(async (p) => await encode(p, 'png')))],
      ['PNG 28×28 RGB (sharp)', await Promise.all(pixels.slice(0, 64).map(async (p) => await encode(p, 'png-rgb')))],
      ['JPEG 28×28', await Promise.all(pixels.slice(0, 64).map(async (p) => await encode(p, 'jpeg')))],
      ['WebP 28×28', await Promise.all(pixels.slice(0, 64).map(async (p) => await encode(p, 'webp')))],
      ['JPEG 1024×768 photo', await Promise.all(pixels.slice(0, 8).map(async (p, i) => await largePhoto(p, i + 1)))]
    ]
    preprocessing = []
    for (const [name, set] of sets) preprocessing.push(await comparePreprocessing(name, set, spec, limits(), Math.max(0.2, args.duration / 2)))
  }

  const ratios = levels.filter((l) => l.label === undefined).map((l) => ({
    concurrency: l.concurrency,
    serviceRps: l.okPerSecond,
    ofBare: ceilings === undefined ? NaN : l.okPerSecond / ceilings.bestBare,
    ofInference: ceilings === undefined ? NaN : l.okPerSecond / ceilings.bestInference
  }))
  return {
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadAverageStart, loadAverageEnd: os.loadavg() },
    duration: args.duration,
    service: {
      url: service.url,
      started: args.url === undefined,
      model: model.name,
      workers,
      maxBatchSize: batching.maxBatchSize,
      maxQueueDelayMs: batching.maxQueueDelayMs,
      format: args.format,
      protocol: args.protocol,
      imageBytes: Math.round(bodies.reduce((s, b) => s + b.length, 0) / bodies.length),
      env: args.serverEnv
    },
    levels,
    ...(overload !== undefined ? { overload } : {}),
    ...(soakReport !== undefined ? { soak: soakReport } : {}),
    ...(ceilings !== undefined ? { ceilings } : {}),
    ratios,
    ...(preprocessing !== undefined ? { preprocessing } : {})
  }
}

async function main (): Promise<void> {
  let args: BenchArgs
  try {
    args = parseBenchArgs(process.argv.slice(2))
  } catch (err) {
    if (err instanceof HelpRequest) {
      process.stdout.write(err.usage)
      process.exit(0)
    }
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  try {
    if (args.compareModels !== undefined) {
      const { manifest, workers, ceilingSeconds: seconds, serviceConfig } = await setup(args)
      const costs = await compareModels(manifest, args.compareModels, engineOptions(serviceConfig()), seconds, args.rounds, progress)
      process.stdout.write(args.json ? `${JSON.stringify({ workers, seconds, costs }, null, 2)}\n` : `${renderCosts(costs, workers, seconds)}\n`)
      process.exit(0)
    }
    const report = await run(args)
    process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`)
    process.exit(0)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n`)
      process.exit(2)
    }
    process.stderr.write(`bench: failed: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  }
}

// Only as a program: the smoke test imports the pieces.
if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) await main()
