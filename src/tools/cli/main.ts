// Shared entry logic for the command-line tools: one clear line per failure, exit codes that
// scripts can rely on (2 = bad usage or input, 1 = anything else).
import { ConfigError } from '../../config.js'
import { DatasetError } from '../datasets/types.js'
import { UsageError } from './args.js'

export async function runCli (tool: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn()
  } catch (err) {
    const e = err as Error & { code?: string }
    const usage = err instanceof UsageError || err instanceof DatasetError || err instanceof ConfigError ||
      e.code === 'ISOMAX_MANIFEST_INVALID' || e.name === 'IdxError'
    process.stderr.write(`${tool}: error: ${e.message}\n`)
    process.exitCode = usage ? 2 : 1
  }
}
