// Command-line parsing for the tools: node's parseArgs, with errors turned into one clear line.
import { parseArgs, type ParseArgsConfig } from 'node:util'

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
