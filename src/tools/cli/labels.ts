// `--labels` of `npm run models -- add`: a file (one label per line, or a JSON array of
// strings) or a comma-separated list on the command line.
import { readFileSync, statSync } from 'node:fs'
import { UsageError } from './args.js'

function fromFile (file: string): string[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`--labels ${file}: cannot read it (${(err as Error).message})`)
  }
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new UsageError(`--labels ${file}: starts with "[" but is not a JSON array (${(err as Error).message})`)
    }
    if (!Array.isArray(parsed) || !parsed.every((l) => typeof l === 'string')) throw new UsageError(`--labels ${file}: expected a JSON array of strings`)
    return parsed.map((l: string) => l.trim())
  }
  // Blank lines (a trailing newline, CRLF endings) are not labels.
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0)
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
    throw new UsageError(`--labels ${spec}: no such file; give a file (one label per line, or a JSON array) or a comma-separated list`)
  }
  if (labels.some((l) => l.length === 0)) throw new UsageError(`--labels ${spec}: a label is empty`)
  if (labels.length < 2) throw new UsageError(`--labels ${spec}: ${labels.length} label; a classifier needs at least 2`)
  const seen = new Set<string>()
  for (const l of labels) {
    // A duplicate makes a class folder ambiguous for calibrate and evaluate.
    if (seen.has(l)) throw new UsageError(`--labels ${spec}: "${l}" appears twice`)
    seen.add(l)
  }
  return labels
}
