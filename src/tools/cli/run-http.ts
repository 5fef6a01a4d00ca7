// evaluate --url: the same data set run through a live server over HTTP instead of the engine in
// process, so the figures are what a client of that server gets. Images go as multipart batches
// to POST /models/:name/classify?include=logits (MAX_FILES images a request, a few requests in
// flight); each answer gives the logits, the score (read as the graph's score for a graph-score
// model) and the served verdict (reject reasons, confidence).
import { createHash } from 'node:crypto'
import sharp from 'sharp'
import type { LoadedEntry } from '../../registry/load-manifest.js'
import { isGraphScore } from '../../registry/manifest-schema.js'
import type { Dataset, Sample } from '../datasets/types.js'
import { progress } from './progress.js'
import { labelIndex, type DatasetRun, type ModelOutputs } from './run-dataset.js'
import { UsageError } from './args.js'

export interface HttpOptions {
  url: string
  /** Images per request (the server's MAX_FILES, 16 by default). */
  batch?: number
  /** Requests in flight. */
  concurrency?: number
}

interface Answer {
  label: string
  logits: number[]
  rejectReasons?: string[]
  ood: { score: number, kind: string, reject: boolean }
  confidence?: { value: number }
}

async function encode (sample: Sample): Promise<Buffer> {
  const img = sample.image
  if (img instanceof Uint8Array) return Buffer.from(img)
  return await sharp(img.pixels, { raw: { width: img.width, height: img.height, channels: img.channels } }).png().toBuffer()
}

async function classify (url: string, model: string, images: Buffer[]): Promise<Answer[]> {
  const form = new FormData()
  images.forEach((b, i) => form.append('image', new Blob([b], { type: 'image/png' }), `${i}.png`))
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${url.replace(/\/$/, '')}/models/${encodeURIComponent(model)}/classify?include=logits&topK=1`, { method: 'POST', body: form })
    // 503 is the server shedding load: wait and send again, a few times.
    if (res.status === 503 && attempt < 20) { await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1))); continue }
    if (!res.ok) throw new UsageError(`${url}: POST /models/${model}/classify answered ${res.status}: ${(await res.text()).slice(0, 300)}`)
    return await res.json() as Answer[]
  }
}

export async function runDatasetHttp (options: HttpOptions, models: LoadedEntry[], dataset: Dataset, label: string): Promise<DatasetRun> {
  const started = performance.now()
  const hash = createHash('sha256')
  const batchSize = options.batch ?? 16
  const window = options.concurrency ?? 4
  const outputs = new Map<string, ModelOutputs>(models.map((m) => [m.name, { model: m, logits: [], graph: [], labels: [], unmatched: {}, served: [] }]))
  const bar = progress(label, dataset.size)
  const batches: Array<{ samples: Sample[], answers: Map<string, Answer[]> }> = []
  const inFlight = new Set<Promise<void>>()
  const send = (samples: Sample[]): void => {
    const entry = { samples, answers: new Map<string, Answer[]>() }
    batches.push(entry)
    const p = (async () => {
      const images = await Promise.all(samples.map(encode))
      for (const m of models) entry.answers.set(m.name, await classify(options.url, m.name, images))
      bar.tick(samples.length)
    })()
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p)).catch(() => {})
  }
  let pending: Sample[] = []
  for await (const sample of dataset.samples()) {
    const img = sample.image
    hash.update(img instanceof Uint8Array ? img : img.pixels)
    pending.push(sample)
    if (pending.length === batchSize) { send(pending); pending = [] }
    if (inFlight.size >= window) await Promise.race(inFlight)
  }
  if (pending.length > 0) send(pending)
  await Promise.all([...inFlight])
  bar.done()
  for (const { samples, answers } of batches) {
    for (const m of models) {
      const out = outputs.get(m.name)!
      const kind = m.ood?.score
      answers.get(m.name)!.forEach((a, i) => {
        out.logits.push(Float32Array.from(a.logits))
        out.graph.push(kind !== undefined && isGraphScore(kind) ? { [kind]: a.ood.score } : undefined)
        const y = labelIndex(samples[i]!, m)
        out.labels.push(y)
        if (y === -1 && samples[i]!.labelName !== undefined) out.unmatched[samples[i]!.labelName!] = (out.unmatched[samples[i]!.labelName!] ?? 0) + 1
        out.served!.push({ reasons: a.rejectReasons ?? (a.ood.reject ? ['ood'] : []), confidence: a.confidence?.value ?? NaN, oodReject: a.ood.reject })
      })
    }
  }
  return { dataset, outputs, skipped: { count: 0, names: [], reasons: [] }, sha256: hash.digest('hex'), seconds: (performance.now() - started) / 1000 }
}
