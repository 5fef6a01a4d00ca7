// npm run bench -- --compare-models A,B[,...]: the inference-only ceiling of several models
// measured in one run, so their cost can be compared as a ratio on a noisy shared machine.
// One pool holds every model's sessions (as the service does); the models take turns, round
// after round, at batch 1 and at the first model's maximum batch; the median round counts.
import type { EngineOptions } from '../../inference/engine.js'
import { sessionKey } from '../../inference/model-specs.js'
import { hwcToNormalizedChw } from '../../preprocess/to-tensor.js'
import type { LoadedManifest, LoadedEntry } from '../../registry/load-manifest.js'
import { UsageError } from '../cli/args.js'
import { inferenceOnly, startPool } from './ceilings.js'
import { fashionPixels } from './images.js'

export interface ModelCost {
  model: string
  batchSize: number
  /** Images per second, one figure per round. */
  rounds: number[]
  median: number
  /** Time per image relative to the first model (median over median). */
  relativeTime: number
  /** Images per CPU-second of the process (every thread), one figure per round, and their median. */
  cpuRounds: number[]
  cpuMedian: number
  /** Images per CPU-second relative to the first model (median over median): the speed-up in CPU cost. */
  cpuSpeedup: number
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** `options`: the service's engine settings (bench's serviceConfig), so the runs are the service's. */
export async function compareModels (manifest: LoadedManifest<LoadedEntry>, names: string[], options: EngineOptions, seconds: number, rounds: number, progress: (msg: string) => void): Promise<ModelCost[]> {
  const workers = options.workers
  const models = names.map((n) => {
    const m = manifest.models.get(n)
    if (m === undefined) throw new UsageError(`--compare-models: no model "${n}" in ${manifest.file}`)
    return m
  })
  const first = models[0]!
  if (models.some((m) => m.input.channels !== first.input.channels || m.input.height !== first.input.height || m.input.width !== first.input.width)) {
    throw new UsageError('--compare-models: the models must take the same input size')
  }
  const pool = await startPool(manifest, options)
  const pixels = await fashionPixels(64)
  const tensors = new Map(models.map((m) => [m.name, pixels.map((p) => hwcToNormalizedChw(p, m.input.width, m.input.height, 1, m.input.mean, m.input.std))]))
  const sizes = [...new Set([1, options.maxBatchSize ?? first.batching.maxBatchSize])]
  const runs = new Map<string, number[]>()
  const cpuRuns = new Map<string, number[]>()
  try {
    for (let r = 0; r < rounds; r++) {
      for (const b of sizes) {
        // Alternate the order each round, so neither model always runs first.
        for (const m of r % 2 === 0 ? models : [...models].reverse()) {
          progress(`round ${r + 1}/${rounds}: ${m.name}, batch ${b}`)
          const t = await inferenceOnly(pool, sessionKey(m, options), tensors.get(m.name)!, b, seconds, workers)
          const key = `${m.name}\u0000${b}`
          runs.set(key, [...(runs.get(key) ?? []), t.imagesPerSecond])
          cpuRuns.set(key, [...(cpuRuns.get(key) ?? []), t.imagesPerCpuSecond])
        }
      }
    }
  } finally {
    await pool.close()
  }
  return sizes.flatMap((b) => {
    const base = median(runs.get(`${first.name}\u0000${b}`)!)
    const cpuBase = median(cpuRuns.get(`${first.name}\u0000${b}`)!)
    return models.map((m) => {
      const r = runs.get(`${m.name}\u0000${b}`)!
      const c = cpuRuns.get(`${m.name}\u0000${b}`)!
      return { model: m.name, batchSize: b, rounds: r, median: median(r), relativeTime: base / median(r), cpuRounds: c, cpuMedian: median(c), cpuSpeedup: median(c) / cpuBase }
    })
  })
}

export function renderCosts (costs: ModelCost[], workers: number, seconds: number): string {
  const width = Math.max(...costs.map((c) => c.model.length)) + 2
  return [
    `Inference-only ceiling (ORT on ready tensors, ${workers} worker(s), ${seconds} s per run, models alternating)`,
    `${'model'.padEnd(width)} batch  median img/s  time/image vs first  img/CPU-s  ×first (CPU)  rounds (img/s | img/CPU-s)`,
    ...costs.map((c) => `${c.model.padEnd(width)} ${String(c.batchSize).padStart(5)}  ${c.median.toFixed(0).padStart(12)}  ${c.relativeTime.toFixed(3).padStart(19)}  ${c.cpuMedian.toFixed(0).padStart(9)}  ${c.cpuSpeedup.toFixed(2).padStart(12)}  ${c.rounds.map((v) => v.toFixed(0)).join(' ')} | ${c.cpuRounds.map((v) => v.toFixed(0)).join(' ')}`)
  ].join('\n')
}
