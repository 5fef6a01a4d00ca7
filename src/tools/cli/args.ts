// Command-line parsing for the tools: node's parseArgs, with errors turned into one clear line.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { LoadedEntry, LoadedManifest } from '../../registry/load-manifest.js'
import { SCORE_KINDS, type ScoreKind } from '../../registry/manifest-schema.js'

export class UsageError extends Error {
  override name = 'UsageError'
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>> (argv: string[], options: T, usage: string): ReturnType<typeof parseArgs<{ options: T, args: string[], allowPositionals: false, strict: true }>>['values'] {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${usage}`)
  }
}

export function requireOption<T> (value: T | undefined, name: string, usage: string): T {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) throw new UsageError(`missing --${name}\n${usage}`)
  return value
}

export function parseTpr (text: string | undefined): number {
  if (text === undefined) return 0.95
  const v = Number(text)
  if (!(v > 0 && v < 1)) throw new UsageError(`--tpr must be a number between 0 and 1 (exclusive), got "${text}"`)
  return v
}

export function parseScore (text: string): ScoreKind {
  if (!(SCORE_KINDS as readonly string[]).includes(text)) throw new UsageError(`unknown score "${text}": expected one of ${SCORE_KINDS.join(', ')}`)
  return text as ScoreKind
}

export function requireModel<M extends LoadedEntry> (manifest: LoadedManifest<M>, name: string): M {
  const model = manifest.models.get(name)
  if (model === undefined) throw new UsageError(`model "${name}" is not in ${manifest.file} (it has: ${[...manifest.models.keys()].join(', ')})`)
  return model
}

/** mds is −(minimum distance): meaningless for a head that outputs plain logits. */
export function requireScoreFits (kind: ScoreKind, model: LoadedEntry, where: string): void {
  if (kind === 'mds' && model.output.holds !== 'negative-distances') {
    throw new UsageError(`${where}: mds needs a distance head; "${model.name}" outputs plain logits`)
  }
}
