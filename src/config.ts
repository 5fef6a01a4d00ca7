// Configuration comes from the environment and is parsed exactly once, by a pure function,
// so tests build apps from plain objects and the server fails fast on a bad variable.
import os from 'node:os'
import { z } from 'zod'

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

const EnvSchema = z.object({
  PORT: intFrom(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  MODELS_MANIFEST: z.string().min(1).default('models/manifest.json'),
  EXECUTION_PROVIDER: z.enum(['cpu', 'cuda', 'auto']).default('auto'),
  INFERENCE_WORKERS: intFrom(1, 64).default(Math.max(1, Math.min(4, os.availableParallelism() - 1))),
  INTRA_OP_THREADS: intFrom(1, 64).default(1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MAX_UPLOAD_BYTES: intFrom(1, 1024 * 1024 * 1024).default(10 * 1024 * 1024),
  MAX_INPUT_PIXELS: intFrom(1, 1_000_000_000).default(40_000_000),
  MAX_FILES: intFrom(1, 1024).default(16),
  REQUEST_TIMEOUT_MS: intFrom(100, 600_000).default(30_000),
  DRAIN_DELAY_MS: intFrom(0, 600_000).default(0),
  SHUTDOWN_TIMEOUT_MS: intFrom(100, 600_000).default(25_000),
  MAX_BATCH_SIZE: intFrom(1, 4096).optional(),
  MAX_QUEUE_DELAY_MS: z.coerce.number().min(0).max(10_000).optional(),
  MAX_QUEUE_SIZE: intFrom(1, 1_000_000).default(256),
  // The preprocessing fast paths (src/preprocess/png-fast.ts): on by default, off = sharp for
  // every image (an escape hatch, and the "before" of docs/performance.md).
  PREPROCESS_FAST_PATH: z.enum(['true', 'false', '1', '0']).default('true').transform((v) => v === 'true' || v === '1')
})

export type Config = z.infer<typeof EnvSchema>

export class ConfigError extends Error {
  constructor (readonly issues: string[]) {
    super(`invalid configuration:\n  ${issues.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

function describe (issue: z.core.$ZodIssue): string {
  const variable = issue.path.join('.')
  return `${variable}: ${issue.message}`
}

/** Parse the environment; throws ConfigError naming every bad variable and what it expected. */
export function loadConfig (env: NodeJS.ProcessEnv | Record<string, string | undefined>): Config {
  // Empty strings mean "unset", as in most shells' `VAR= cmd`.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const parsed = EnvSchema.safeParse(cleaned)
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map(describe))
  return parsed.data
}
