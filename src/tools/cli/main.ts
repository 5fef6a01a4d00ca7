// Shared entry logic for the command-line tools: one clear line per failure, exit codes that
// scripts can rely on (2 = bad usage or input, 1 = anything else). `--help` is an answer, not
// a failure: the usage goes to stdout, exit 0.
import { ConfigError } from '../../config.js'
import { DatasetError } from '../datasets/types.js'
import { HelpRequest, UsageError } from './args.js'

export async function runCli (tool: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn()
  } catch (err) {
    if (err instanceof HelpRequest) {
      process.stdout.write(err.usage.endsWith('\n') ? err.usage : `${err.usage}\n`)
      return
    }
    const e = err as Error & { code?: string }
    const usage = err instanceof UsageError || err instanceof DatasetError || err instanceof ConfigError ||
      e.code === 'ISOMAX_MANIFEST_INVALID' || e.name === 'IdxError'
    process.stderr.write(`${tool}: error: ${e.message}\n`)
    process.exitCode = usage ? 2 : 1
  }
}
