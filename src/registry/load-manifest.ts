// Loads and validates the manifest, resolves each model's ONNX path and checks its sha256.
// All-or-nothing: any problem throws a ManifestError naming the file, the model and the field,
// so the server never starts half-loaded.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import type { z } from 'zod'
import { ManifestError } from '../errors.js'
import { isGraphScore, ManifestSchema, type CalibratedEntry, type Manifest, type ModelEntry } from './manifest-schema.js'

/** A model as the service serves it: calibrated, its ONNX file found and verified. */
export interface LoadedModel extends CalibratedEntry {
  /** Absolute path of the ONNX file. */
  onnxPath: string
  index: number
}

/** A model as calibrate sees it: possibly without an OOD block yet. */
export interface LoadedEntry extends ModelEntry {
  onnxPath: string
  /** Its position in the manifest's models array, for messages that name a field. */
  index: number
}

export interface LoadedManifest<M extends LoadedEntry = LoadedModel> {
  file: string
  /** sha256 of the manifest file's text: which version of the file is served. */
  sha256: string
  defaultModel: string
  models: Map<string, M>
}

export async function sha256File (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** "models[0] (fashion-mnist-isomaxplus).ood.threshold" — where in the file a problem is. */
function locate (raw: unknown, issuePath: ReadonlyArray<PropertyKey>): string {
  const parts: string[] = []
  for (let i = 0; i < issuePath.length; i++) {
    const key = issuePath[i]
    if (typeof key === 'number') {
      parts[parts.length - 1] += `[${key}]`
      if (i === 1 && issuePath[0] === 'models') {
        const name = (raw as { models?: Array<{ name?: unknown }> }).models?.[key]?.name
        if (typeof name === 'string') parts[parts.length - 1] += ` (model "${name}")`
      }
    } else {
      parts.push(String(key))
    }
  }
  return parts.join('.') || '(root)'
}

export function formatManifestIssues (file: string, raw: unknown, error: z.ZodError): string {
  const lines = error.issues.map((issue) => `${locate(raw, issue.path)}: ${issue.message}`)
  return `${file}: invalid manifest\n  ${lines.join('\n  ')}`
}

const ascending = (values: readonly number[]): boolean => values.every((v, j) => j === 0 || v >= (values[j - 1] as number))

/** Validate a parsed manifest object (pure apart from nothing: no file access). */
export function parseManifest (file: string, raw: unknown): Manifest {
  const parsed = ManifestSchema.safeParse(raw)
  if (!parsed.success) throw new ManifestError(formatManifestIssues(file, raw, parsed.error))
  const manifest = parsed.data
  const names = new Set<string>()
  manifest.models.forEach((m, i) => {
    const where = `${file}: models[${i}] (model "${m.name}")`
    if (names.has(m.name)) throw new ManifestError(`${where}.name: duplicate model name`)
    names.add(m.name)
    if (m.input.channels === 1 && m.input.colour !== 'grey') throw new ManifestError(`${where}.input.colour: a 1-channel input must be "grey"`)
    if (m.input.channels === 3 && m.input.colour !== 'rgb') throw new ManifestError(`${where}.input.colour: a 3-channel input must be "rgb"`)
    const scores = m.ood?.calibration.scores
    if (scores !== undefined && !ascending(scores)) {
      throw new ManifestError(`${where}.ood.calibration.scores: must be sorted ascending`)
    }
    const perClass = m.ood?.classThresholds
    if (perClass !== undefined && perClass.length !== m.labels.length) {
      throw new ManifestError(`${where}.ood.classThresholds: ${perClass.length} thresholds for ${m.labels.length} labels`)
    }
    const classScores = m.ood?.calibration.classScores
    if (classScores !== undefined && (classScores.length !== m.labels.length || !classScores.every(ascending))) {
      throw new ManifestError(`${where}.ood.calibration.classScores: one ascending list per label (${m.labels.length})`)
    }
    const kind = m.ood?.score
    if (kind !== undefined && isGraphScore(kind) && m.output.scores?.[kind] === undefined) {
      throw new ManifestError(`${where}.ood.score: "${kind}" is computed by the model's graph, but output.scores names no "${kind}" output`)
    }
    if (m.head === 'softmax' && m.ood?.score === 'mds') {
      throw new ManifestError(`${where}.ood.score: "mds" needs a distance head (isomaxplus or isomax), not softmax`)
    }
  })
  if (!names.has(manifest.default)) {
    throw new ManifestError(`${file}: default: "${manifest.default}" is not one of the models (${[...names].join(', ')})`)
  }
  return manifest
}

export interface LoadOptions {
  /** Accept models without an OOD block (calibrate, which writes it); the service never does. */
  uncalibrated?: boolean
}

/** Read, validate and verify a manifest; every model must be calibrated unless `uncalibrated`. */
export async function loadManifest (file: string): Promise<LoadedManifest>
export async function loadManifest (file: string, options: { uncalibrated: true }): Promise<LoadedManifest<LoadedEntry>>
export async function loadManifest (file: string, options: LoadOptions = {}): Promise<LoadedManifest<LoadedEntry>> {
  const absolute = path.resolve(file)
  let text: string
  try {
    text = await readFile(absolute, 'utf8')
  } catch (err) {
    throw new ManifestError(`${absolute}: cannot read the manifest (${(err as Error).message})`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new ManifestError(`${absolute}: not valid JSON (${(err as Error).message})`)
  }
  const manifest = parseManifest(absolute, raw)
  const dir = path.dirname(absolute)
  const models = new Map<string, LoadedEntry>()
  for (const [i, entry] of manifest.models.entries()) {
    const where = `${absolute}: models[${i}] (model "${entry.name}")`
    if (entry.ood === undefined && options.uncalibrated !== true) {
      throw new ManifestError(`${where}.ood: missing: the model is not calibrated yet; run \`npm run calibrate -- --model ${entry.name} --score KIND --data PATH\` (docs/calibration.md)`)
    }
    const onnxPath = path.resolve(dir, entry.path)
    try {
      const info = await stat(onnxPath)
      if (!info.isFile()) throw new Error('not a regular file')
    } catch (err) {
      throw new ManifestError(`${where}.path: ${onnxPath}: ${(err as Error).message}`)
    }
    const actual = await sha256File(onnxPath)
    if (actual !== entry.sha256) {
      throw new ManifestError(`${where}.sha256: ${onnxPath} has sha256 ${actual}, the manifest says ${entry.sha256}`)
    }
    models.set(entry.name, { ...entry, onnxPath, index: i })
  }
  return { file: absolute, sha256: createHash('sha256').update(text).digest('hex'), defaultModel: manifest.default, models }
}
