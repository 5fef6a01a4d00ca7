// `--metadata FILE` of `npm run models -- add`: a JSON object a training run wrote beside its
// ONNX file, from which `add` takes what the graph cannot tell: "labels", "mean" and "std"
// (a number, or one per channel). Each is optional; a flag given as well wins, and add's
// report says where each value came from.
import { readFileSync } from 'node:fs'
import { UsageError } from './args.js'
import { checkLabels, labelsOfJson } from './labels.js'

export interface ModelMetadata {
  file: string
  labels?: string[]
  /** As a comma list, so the flags' parser (graph-spec.ts perChannel) checks both alike. */
  mean?: string
  std?: string
}

function numbers (value: unknown, field: string, file: string): string | undefined {
  if (value === undefined) return undefined
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0 || !list.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new UsageError(`--metadata ${file}: "${field}" must be a number or an array of numbers, one per channel`)
  }
  return list.join(',')
}

export function readMetadata (file: string): ModelMetadata {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    const e = err as Error & { code?: string }
    throw new UsageError(`--metadata ${file}: ${e.code === 'ENOENT' ? 'no such file' : e instanceof SyntaxError ? `not valid JSON (${e.message})` : `cannot read it (${e.message})`}`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`--metadata ${file}: expected a JSON object with "labels", "mean" and "std"`)
  }
  const o = parsed as Record<string, unknown>
  const where = `--metadata ${file}`
  const metadata: ModelMetadata = { file }
  if (o.labels !== undefined) metadata.labels = checkLabels(labelsOfJson(o, where), where)
  const mean = numbers(o.mean, 'mean', file)
  const std = numbers(o.std, 'std', file)
  if (mean !== undefined) metadata.mean = mean
  if (std !== undefined) metadata.std = std
  if (metadata.labels === undefined && mean === undefined && std === undefined) {
    throw new UsageError(`${where}: none of "labels", "mean" and "std" is there (its keys: ${Object.keys(o).join(', ') || 'none'})`)
  }
  return metadata
}
