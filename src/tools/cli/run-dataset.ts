// Runs a data set through exactly what the server runs: preprocess() (sharp, the model's input
// spec) and the engine's batchers and inference workers. No train/serve skew by construction.
import { createHash } from 'node:crypto'
import { Engine } from '../../inference/engine.js'
import { engineOptions } from '../../inference/engine-options.js'
import { preprocessLimits } from '../../preprocess/limits.js'
import { preprocess } from '../../preprocess/preprocess.js'
import type { LoadedEntry, LoadedManifest } from '../../registry/load-manifest.js'
import type { Dataset, Sample } from '../datasets/types.js'
import { graphScoresOf, score, type GraphScores } from '../../ood/scores.js'
import type { ScoreKind } from '../../registry/manifest-schema.js'
import { progress } from './progress.js'
import type { Config } from '../../config.js'

export interface ModelOutputs {
  model: LoadedEntry
  /** n × classes logits, in data set order, unreadable images left out. */
  logits: Float32Array[]
  /** The graph's own scores per image (output.scores), parallel to `logits`. */
  graph: Array<GraphScores | undefined>
  /** Class index per image, −1 when the source has no label the model knows. */
  labels: number[]
  /** Class folders whose name matches none of the model's labels → their readable images (counted as unlabelled). */
  unmatched: Record<string, number>
  /** Over HTTP (evaluate --url): the verdict the server gave each image, parallel to `logits`. */
  served?: Array<{ reasons: string[], confidence: number, oodReject: boolean }>
}

/** Each image's `kind` score: from its logits, or the graph's own output. */
export function scoresOf (out: ModelOutputs, kind: ScoreKind): number[] {
  return out.logits.map((l, i) => score(kind, l, out.graph[i]))
}

export interface DatasetRun {
  dataset: Dataset
  outputs: Map<string, ModelOutputs>
  skipped: { count: number, names: string[], reasons: string[] }
  sha256: string
  seconds: number
}

/**
 * A class folder's name matches a label exactly, else by slug (case and punctuation ignored:
 * `bag/` is "Bag", `t-shirt-top/` is "T-shirt/top"), else as a class number. Anything else
 * (`Bags/`) matches nothing, and its images count as unlabelled: warnUnmatched says so.
 */
const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')

export function labelIndex (sample: Sample, model: LoadedEntry): number {
  if (sample.labelIndex !== undefined) return sample.labelIndex < model.labels.length ? sample.labelIndex : -1
  if (sample.labelName === undefined) return -1
  const exact = model.labels.indexOf(sample.labelName)
  if (exact >= 0) return exact
  // Folder names cannot hold "/" ("T-shirt/top"): match on a slug, or on a class number.
  const bySlug = model.labels.findIndex((l) => slug(l) === slug(sample.labelName!))
  if (bySlug >= 0) return bySlug
  const n = Number(sample.labelName)
  return Number.isInteger(n) && n >= 0 && n < model.labels.length ? n : -1
}

export async function startEngine<M extends LoadedEntry> (manifest: LoadedManifest<M>, config: Config): Promise<Engine<M>> {
  return await Engine.start(manifest, engineOptions(config), {
    warn: (_obj, msg) => process.stderr.write(`warning: ${msg}\n`),
    error: (obj, msg) => process.stderr.write(`error: ${msg} ${JSON.stringify(obj)}\n`)
  })
}

export async function runDataset<M extends LoadedEntry> (engine: Engine<M>, models: M[], dataset: Dataset, label: string, config: Config): Promise<DatasetRun> {
  const started = performance.now()
  const hash = createHash('sha256')
  const outputs = new Map<string, ModelOutputs>(models.map((m) => [m.name, { model: m, logits: [], graph: [], labels: [], unmatched: {} }]))
  const skipped = { count: 0, names: [] as string[], reasons: [] as string[] }
  const bar = progress(label, dataset.size)
  // Keep the batchers fed without overrunning their bounded queues.
  const limits = preprocessLimits(config)
  const window = Math.max(1, Math.min(config.MAX_QUEUE_SIZE, 128))
  const inFlight = new Set<Promise<void>>()
  const results: Array<Array<{ logits: Float32Array, graph: GraphScores | undefined }> | null> = []
  const labelsOf: number[][] = []
  const folderOf: Array<string | undefined> = []
  let index = 0

  async function one (sample: Sample, i: number): Promise<void> {
    try {
      const tensors = new Map<string, Float32Array>()
      const row: Array<{ logits: Float32Array, graph: GraphScores | undefined }> = []
      for (const m of models) {
        // Models with the same input spec share one preprocessed tensor.
        const key = JSON.stringify(m.input)
        let tensor = tensors.get(key)
        if (tensor === undefined) {
          tensor = (await preprocess(sample.image, m.input, limits, sample.name)).tensor
          tensors.set(key, tensor)
        }
        const run = await engine.classifyTensor(m.name, tensor, 600_000)
        row.push({ logits: Float32Array.from(run.logits), graph: graphScoresOf(m.output, run.scores) })
      }
      results[i] = row
      labelsOf[i] = models.map((m) => labelIndex(sample, m))
      folderOf[i] = sample.labelName
    } catch (err) {
      results[i] = null
      skipped.count++
      if (skipped.names.length < 5) { skipped.names.push(sample.name); skipped.reasons.push((err as Error).message) }
    } finally {
      bar.tick()
    }
  }

  for await (const sample of dataset.samples()) {
    const img = sample.image
    hash.update(img instanceof Uint8Array ? img : img.pixels)
    const p = one(sample, index++)
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p))
    if (inFlight.size >= window) await Promise.race(inFlight)
  }
  await Promise.all(inFlight)
  bar.done()
  for (let i = 0; i < results.length; i++) {
    const row = results[i]
    if (row === null || row === undefined) continue
    models.forEach((m, j) => {
      const out = outputs.get(m.name)!
      out.logits.push(row[j]!.logits)
      out.graph.push(row[j]!.graph)
      out.labels.push(labelsOf[i]![j]!)
      const folder = folderOf[i]
      if (folder !== undefined && labelsOf[i]![j] === -1) out.unmatched[folder] = (out.unmatched[folder] ?? 0) + 1
    })
  }
  return { dataset, outputs, skipped, sha256: hash.digest('hex'), seconds: (performance.now() - started) / 1000 }
}

/** One line per model whose labels some class folders do not match: which folders, how many images. */
export function warnUnmatched (run: DatasetRun, label: string): void {
  for (const out of run.outputs.values()) {
    const folders = Object.entries(out.unmatched)
    if (folders.length === 0) continue
    const images = folders.reduce((sum, [, n]) => sum + n, 0)
    process.stderr.write(`warning: ${label}: ${folders.length} class folder${folders.length === 1 ? '' : 's'} match${folders.length === 1 ? 'es' : ''} no label of "${out.model.name}", so ${images} of ${out.labels.length} images count as unlabelled (left out of accuracy and every per-class figure): ` +
      `${folders.map(([f, n]) => `${f}/ (${n})`).join(', ')}. A folder matches a label by name, ignoring case and punctuation, or by class number; the labels are ${out.model.labels.join(', ')}\n`)
  }
}

export function warnSkipped (run: DatasetRun, label: string): void {
  if (run.skipped.count === 0) return
  const examples = run.skipped.names.map((n, i) => `${n} (${run.skipped.reasons[i]})`).join('; ')
  process.stderr.write(`warning: ${label}: skipped ${run.skipped.count} unreadable image(s) of ${run.dataset.size}; first: ${examples}\n`)
}
