// Command-line parsing for the tools: node's parseArgs, with errors turned into one clear line.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { isGraphScore } from '../../registry/manifest-schema.js'
import type { LoadedEntry, LoadedManifest } from '../../registry/load-manifest.js'
import { SCORE_KINDS, type ScoreKind } from '../../registry/manifest-schema.js'

export class UsageError extends Error {
  override name = 'UsageError'
}

/**
 * `--help` or `-h` was given: not a failure. runCli prints `usage` on stdout and exits 0; a
 * caller of the tool's function (a test) gets it as an exception like any other early stop.
 */
export class HelpRequest extends Error {
  override name = 'HelpRequest'
  constructor (readonly usage: string) {
    super('help requested')
  }
}

/**
 * Whether argv asks for help. Looked for before the strict parse, so `--help` still answers
 * next to a misspelt option; a value that merely looks like it (`--data -h`) does not count.
 */
export function wantsHelp (argv: string[], options: NonNullable<ParseArgsConfig['options']> = {}): boolean {
  const { tokens } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: false, allowPositionals: true, tokens: true })
  return tokens.some((t) => t.kind === 'option' && t.name === 'help')
}

/** The usage's first paragraph (the synopsis), for error messages; --help prints it all. */
export function synopsis (usage: string): string {
  const [first = usage, ...rest] = usage.split('\n\n')
  return rest.length > 0 ? `${first}\n(--help lists every option)` : first
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>> (argv: string[], options: T, usage: string): ReturnType<typeof parseArgs<{ options: T, args: string[], allowPositionals: false, strict: true }>>['values'] {
  if (wantsHelp(argv, options)) throw new HelpRequest(usage)
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${synopsis(usage)}`)
  }
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?,?$/i

/**
 * `--mean 0.1 0.5 0.9` (the Python tools' form) as `--mean=0.1,0.5,0.9` (the form parseArgs
 * takes): the numbers after one of `flags` are joined. Written with "=", so a negative first
 * value (`--mean -0.5`) is not mistaken for an option.
 */
export function joinNumberLists (argv: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!
    if (token === '--') { out.push(...argv.slice(i)); break }
    const flag = flags.find((f) => token === `--${f}`)
    if (flag === undefined) { out.push(token); continue }
    const values: string[] = []
    while (i + 1 < argv.length && NUMBER.test(argv[i + 1]!.trim())) values.push(argv[++i]!.trim().replace(/,$/, ''))
    out.push(values.length > 0 ? `--${flag}=${values.join(',')}` : token)
  }
  return out
}

export function requireOption<T> (value: T | undefined, name: string, usage: string): T {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) throw new UsageError(`missing --${name}\n${synopsis(usage)}`)
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
  if (isGraphScore(kind) && model.output.scores?.[kind] === undefined) {
    throw new UsageError(`${where}: ${kind} is computed by the model's graph, and "${model.name}" has no such output (output.scores)`)
  }
}
