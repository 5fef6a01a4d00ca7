// The in-process ceilings the service is compared with: no HTTP, the same worker count.
//   inference only  ORT on ready tensors, every worker kept busy, at a given batch size
//   bare pipeline   the service's own preprocess() + ORT, batches of the same size, pipelined
//                   (the main thread prepares the next batch while the workers run)
// and the preprocessing comparison of issue item 3: the straightforward sharp pipeline
// (greyscale → resize → raw, then normalise) against preprocess(), per input format.
import { once } from 'node:events'
import sharp from 'sharp'
import type { EngineOptions } from '../../inference/engine.js'
import { modelSpecs } from '../../inference/model-specs.js'
import { WorkerPool } from '../../inference/worker-pool.js'
import { preprocess, type PreprocessLimits } from '../../preprocess/preprocess.js'
import { hwcToNormalizedChw } from '../../preprocess/to-tensor.js'
import type { InputSpec } from '../../registry/manifest-schema.js'
import type { LoadedEntry, LoadedManifest } from '../../registry/load-manifest.js'

export interface Throughput {
  batchSize: number
  images: number
  seconds: number
  imagesPerSecond: number
  /** Images per second of this process's CPU time (every thread: the workers' ORT runs, the main thread's hand-offs). */
  imagesPerCpuSecond: number
}

const quiet = { warn: () => {}, error: (obj: object, msg: string) => process.stderr.write(`bench: ${msg} ${JSON.stringify(obj)}\n`) }

/** The service's inference workers, as the service would start them with these options. */
export async function startPool (manifest: LoadedManifest<LoadedEntry>, options: EngineOptions): Promise<WorkerPool> {
  const pool = new WorkerPool({ provider: options.provider, intraOpThreads: options.intraOpThreads, models: modelSpecs(manifest, options) }, options.workers, quiet)
  await pool.start()
  return pool
}

/** Run on the next idle worker. Check and claim happen in one synchronous step. */
async function runWhenIdle (pool: WorkerPool, key: string, batch: number, data: Float32Array): Promise<void> {
  while (pool.idleCount === 0) await once(pool, 'idle')
  await pool.run(key, batch, data)
}

export async function inferenceOnly (pool: WorkerPool, session: string, tensors: Float32Array[], batchSize: number, seconds: number, workers: number): Promise<Throughput> {
  const n = (tensors[0] as Float32Array).length
  const template = new Float32Array(batchSize * n)
  for (let i = 0; i < batchSize; i++) template.set(tensors[i % tensors.length] as Float32Array, i * n)
  const loop = async (until: number): Promise<number> => {
    let images = 0
    await Promise.all(Array.from({ length: workers }, async () => {
      while (performance.now() < until) {
        // A fresh copy per run: the pool transfers (moves) the buffer to the worker.
        await runWhenIdle(pool, session, batchSize, template.slice())
        images += batchSize
      }
    }))
    return images
  }
  return await timedLoop(loop, batchSize, seconds)
}

/** Warm up for 300 ms (ORT plans memory per input shape), then time `loop` for `seconds`. */
async function timedLoop (loop: (until: number) => Promise<number>, batchSize: number, seconds: number): Promise<Throughput> {
  await loop(performance.now() + 300)
  const started = performance.now()
  const cpu = process.cpuUsage()
  const images = await loop(started + seconds * 1000)
  const used = process.cpuUsage(cpu)
  const elapsed = (performance.now() - started) / 1000
  return { batchSize, images, seconds: elapsed, imagesPerSecond: images / elapsed, imagesPerCpuSecond: images / ((used.user + used.system) / 1e6) }
}

export async function barePipeline (pool: WorkerPool, session: string, spec: InputSpec, limits: PreprocessLimits, bodies: Buffer[], batchSize: number, seconds: number, workers: number): Promise<Throughput> {
  const n = spec.channels * spec.height * spec.width
  let next = 0
  const loop = async (until: number): Promise<number> => {
    let images = 0
    // One more batch in preparation than there are workers, so inference never waits for it.
    await Promise.all(Array.from({ length: workers + 1 }, async () => {
      while (performance.now() < until) {
        const data = new Float32Array(batchSize * n)
        for (let i = 0; i < batchSize; i++) {
          const { tensor } = await preprocess(bodies[next++ % bodies.length] as Buffer, spec, limits)
          data.set(tensor, i * n)
        }
        await runWhenIdle(pool, session, batchSize, data)
        images += batchSize
      }
    }))
    return images
  }
  return await timedLoop(loop, batchSize, seconds)
}

/**
 * The pipeline anyone would write first: one sharp call, then the same normalisation. The fit
 * is the model's (sharp's default, cover, would crop a 4:3 photo and compare different pixels).
 */
export async function straightforward (buf: Buffer, spec: InputSpec): Promise<Float32Array> {
  const { data, info } = await sharp(buf).greyscale().resize(spec.width, spec.height, { fit: spec.fit }).raw().toBuffer({ resolveWithObject: true })
  return hwcToNormalizedChw(data, info.width, info.height, info.channels, spec.mean, spec.std)
}

export interface PreprocessComparison {
  format: string
  bytes: number
  decoder: string
  /** Tensors equal bit for bit on every image of the set. */
  identical: boolean
  /** One image at a time: ms per image. */
  sequentialMs: { straightforward: number, service: number, speedup: number }
  /** `inFlight` images at a time: images per second. */
  concurrent: { inFlight: number, straightforward: number, service: number, speedup: number }
}

async function timed (fn: (buf: Buffer) => Promise<unknown>, bodies: Buffer[], inFlight: number, seconds: number): Promise<{ images: number, seconds: number }> {
  let next = 0
  let images = 0
  const started = performance.now()
  const end = started + seconds * 1000
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      await fn(bodies[next++ % bodies.length] as Buffer)
      images++
    }
  }))
  return { images, seconds: (performance.now() - started) / 1000 }
}

/** A against B in alternating halves, so drift in a noisy machine hits both alike. */
async function versus (a: (b: Buffer) => Promise<unknown>, b: (b: Buffer) => Promise<unknown>, bodies: Buffer[], inFlight: number, seconds: number): Promise<[number, number]> {
  const totals = [{ images: 0, seconds: 0 }, { images: 0, seconds: 0 }]
  for (let round = 0; round < 2; round++) {
    for (const [i, fn] of [a, b].entries()) {
      const r = await timed(fn, bodies, inFlight, seconds / 2)
      totals[i]!.images += r.images
      totals[i]!.seconds += r.seconds
    }
  }
  return [totals[0]!.images / totals[0]!.seconds, totals[1]!.images / totals[1]!.seconds]
}

export async function comparePreprocessing (format: string, bodies: Buffer[], spec: InputSpec, limits: PreprocessLimits, seconds: number, inFlight = 4): Promise<PreprocessComparison> {
  let identical = true
  let decoder = ''
  for (const body of bodies) {
    const [a, b] = await Promise.all([straightforward(body, spec), preprocess(body, spec, limits)])
    decoder = b.decoder
    if (a.length !== b.tensor.length || a.some((v, i) => !Object.is(v, b.tensor[i]))) identical = false
  }
  const plain = async (buf: Buffer): Promise<unknown> => await straightforward(buf, spec)
  const service = async (buf: Buffer): Promise<unknown> => await preprocess(buf, spec, limits)
  // Warm both (JIT, sharp's first-call set-up).
  await timed(plain, bodies, 1, 0.2)
  await timed(service, bodies, 1, 0.2)
  const [seqPlain, seqService] = await versus(plain, service, bodies, 1, seconds)
  const [conPlain, conService] = await versus(plain, service, bodies, inFlight, seconds)
  return {
    format,
    bytes: Math.round(bodies.reduce((s, b) => s + b.length, 0) / bodies.length),
    decoder,
    identical,
    sequentialMs: { straightforward: 1000 / seqPlain, service: 1000 / seqService, speedup: seqService / seqPlain },
    concurrent: { inFlight, straightforward: conPlain, service: conService, speedup: conService / conPlain }
  }
}
