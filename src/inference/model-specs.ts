// What the workers load for a manifest: one session per distinct session key. The key is what
// a session depends on — the ONNX file's content and the shapes and names it is run with — and
// nothing else: a reload that changes only a threshold, labels' text, mean/std or the version
// keeps the session, and a model whose file changed gets a new one beside the old.
import type { LoadedEntry, LoadedManifest } from '../registry/load-manifest.js'
import { scoreOutputsOf } from '../registry/manifest-schema.js'
import type { WorkerModelSpec } from './protocol.js'

export interface SpecOptions {
  /** A ceiling on every model's manifest batching (MAX_BATCH_SIZE): warm-up runs the result. */
  maxBatchSize?: number | undefined
}

/**
 * The largest batch a model runs: its manifest's batching.maxBatchSize, lowered to
 * MAX_BATCH_SIZE where that is set and smaller. Never raised: the manifest's number is the
 * model's own limit (a graph with a fixed batch of 1 is added with --max-batch-size 1), so a
 * global setting must not make a model unservable.
 */
export function maxBatchSizeOf (m: LoadedEntry, options: SpecOptions): number {
  return Math.min(options.maxBatchSize ?? Infinity, m.batching.maxBatchSize)
}

/** Where maxBatchSizeOf's number came from, in the words of an error message. */
export function maxBatchSizeSource (m: LoadedEntry, options: SpecOptions): string {
  const own = m.batching.maxBatchSize
  return options.maxBatchSize !== undefined && options.maxBatchSize < own
    ? `MAX_BATCH_SIZE=${options.maxBatchSize} (the environment; the manifest's batching.maxBatchSize is ${own})`
    : `the manifest's batching.maxBatchSize${options.maxBatchSize !== undefined ? ` (MAX_BATCH_SIZE=${options.maxBatchSize} is not lower)` : ''}`
}

export function sessionKey (m: LoadedEntry, options: SpecOptions): string {
  const { input, output } = m
  const scores = scoreOutputsOf(output).map((s) => s.name).join('+')
  return [m.sha256.slice(0, 16), input.name, output.name, scores, `${input.channels}x${input.height}x${input.width}`, m.labels.length, maxBatchSizeOf(m, options)].join(':')
}

export function modelSpec (manifest: LoadedManifest<LoadedEntry>, m: LoadedEntry, options: SpecOptions): WorkerModelSpec {
  return {
    key: sessionKey(m, options),
    name: m.name,
    onnxPath: m.onnxPath,
    sha256: m.sha256,
    inputName: m.input.name,
    outputName: m.output.name,
    sampleShape: [m.input.channels, m.input.height, m.input.width],
    warmupBatchSizes: [...new Set([1, maxBatchSizeOf(m, options)])],
    maxBatchSizeFrom: maxBatchSizeSource(m, options),
    scoreOutputs: scoreOutputsOf(m.output).map((s) => s.name),
    labels: m.labels.length,
    where: `${manifest.file}: models[${m.index}] (model "${m.name}")`
  }
}

/** The sessions a manifest needs, one per key. */
export function modelSpecs (manifest: LoadedManifest<LoadedEntry>, options: SpecOptions): WorkerModelSpec[] {
  const byKey = new Map<string, WorkerModelSpec>()
  for (const m of manifest.models.values()) {
    const spec = modelSpec(manifest, m, options)
    if (!byKey.has(spec.key)) byKey.set(spec.key, spec)
  }
  return [...byKey.values()]
}
