// `--labels` of `npm run models -- add`: a file (one label per line; a JSON array of strings;
// or a JSON object with a "labels" array, as a training run's metadata file has it) or a
// comma-separated list on the command line.
import { readFileSync, statSync } from 'node:fs'
import { UsageError } from './args.js'

/** The labels of a parsed JSON file: an array of strings, or an object's "labels" array. */
export function labelsOfJson (parsed: unknown, where: string): string[] {
  const list = Array.isArray(parsed) ? parsed : (parsed as { labels?: unknown } | null)?.labels
  if (list === undefined && parsed !== null && typeof parsed === 'object') {
    throw new UsageError(`${where}: a JSON object without a "labels" array (its keys: ${Object.keys(parsed).join(', ') || 'none'})`)
  }
  if (!Array.isArray(list) || !list.every((l) => typeof l === 'string')) {
    throw new UsageError(`${where}: expected a JSON array of strings, or an object whose "labels" is one`)
  }
  return list.map((l: string) => l.trim())
}

function fromFile (file: string): string[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`--labels ${file}: cannot read it (${(err as Error).message})`)
  }
  const first = text.trimStart()[0]
  if (first === '[' || first === '{') {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new UsageError(`--labels ${file}: starts with "${first}" but is not valid JSON (${(err as Error).message})`)
    }
    return labelsOfJson(parsed, `--labels ${file}`)
  }
  // Blank lines (a trailing newline, CRLF endings) are not labels.
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0)
}

/** The checks every label list passes, wherever it came from. */
export function checkLabels (labels: string[], where: string): string[] {
  if (labels.some((l) => l.length === 0)) throw new UsageError(`${where}: a label is empty`)
  if (labels.length < 2) throw new UsageError(`${where}: ${labels.length} label; a classifier needs at least 2`)
  const seen = new Set<string>()
  for (const l of labels) {
    // A duplicate makes a class folder ambiguous for calibrate and evaluate.
    if (seen.has(l)) throw new UsageError(`${where}: "${l}" appears twice`)
    seen.add(l)
  }
  return labels
}

export function readLabels (spec: string): string[] {
  let isFile = false
  try {
    isFile = statSync(spec).isFile()
  } catch {}
  let labels: string[]
  if (isFile) {
    labels = fromFile(spec)
  } else if (spec.includes(',')) {
    labels = spec.split(',').map((l) => l.trim())
  } else {
    throw new UsageError(`--labels ${spec}: no such file; give a file (one label per line, a JSON array, or a JSON object with "labels") or a comma-separated list`)
  }
  return checkLabels(labels, `--labels ${spec}`)
}
