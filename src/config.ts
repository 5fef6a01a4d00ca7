// Configuration comes from the environment and is parsed exactly once, by a pure function,
// so tests build apps from plain objects and the server fails fast on a bad variable.
import os from 'node:os'
import { z } from 'zod'
import { decodeMemory } from './preprocess/decode-budget.js'

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max)
const flag = (fallback: 'true' | 'false') => z.enum(['true', 'false', '1', '0']).default(fallback).transform((v) => v === 'true' || v === '1')
const MiB = 1024 * 1024

const EnvSchema = z.object({
  PORT: intFrom(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  // The Open Inference Protocol over gRPC (h2c, same HOST), 8081 as KServe's model servers;
  // "off" serves HTTP only.
  GRPC_PORT: z.union([z.literal('off').transform(() => null), intFrom(0, 65535)]).default(8081),
  MODELS_MANIFEST: z.string().min(1).default('models/manifest.json'),
  // The model POST /classify uses, instead of the manifest's `default` (which must then still
  // name a model): the CPU image sets the INT8 variant, the GPU image keeps the manifest's.
  DEFAULT_MODEL: z.string().min(1).optional(),
  EXECUTION_PROVIDER: z.enum(['cpu', 'cuda', 'auto']).default('auto'),
  INFERENCE_WORKERS: intFrom(1, 64).default(Math.max(1, Math.min(4, os.availableParallelism() - 1))),
  INTRA_OP_THREADS: intFrom(1, 64).default(1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MAX_UPLOAD_BYTES: intFrom(1, 1024 * 1024 * 1024).default(10 * MiB),
  // A whole request body (a multipart form of several images). Unset: MAX_UPLOAD_BYTES.
  MAX_REQUEST_BYTES: intFrom(1, 1024 * 1024 * 1024).optional(),
  // Request bodies being received or held at once, over all requests; past it new requests
  // get 503 before their body is read. With DECODE_MEMORY_BYTES it bounds memory
  // (docs/configuration.md § Memory).
  MAX_INFLIGHT_BYTES: intFrom(1024, 64 * 1024 * 1024 * 1024).default(128 * MiB),
  // One client's (one remote address's) share of MAX_INFLIGHT_BYTES. Unset: a quarter of it,
  // and at least MAX_REQUEST_BYTES. Behind a proxy every request comes from the proxy's
  // address: set it to MAX_INFLIGHT_BYTES there (docker-compose.yml does).
  MAX_INFLIGHT_BYTES_PER_CLIENT: intFrom(1024, 64 * 1024 * 1024 * 1024).optional(),
  MAX_INPUT_PIXELS: intFrom(1, 1_000_000_000).default(40_000_000),
  // One image's decoded size, width × height × channels × bytes per sample (413 above).
  MAX_DECODE_BYTES: intFrom(1024, 64 * 1024 * 1024 * 1024).default(160 * MiB),
  // All sharp decodes in progress at once, by that same size; decodes past it wait their turn.
  DECODE_MEMORY_BYTES: intFrom(1024, 64 * 1024 * 1024 * 1024).default(256 * MiB),
  DECODE_CONCURRENCY: intFrom(1, 256).default(4),
  MAX_FILES: intFrom(1, 1024).default(16),
  REQUEST_TIMEOUT_MS: intFrom(100, 600_000).default(30_000),
  DRAIN_DELAY_MS: intFrom(0, 600_000).default(0),
  SHUTDOWN_TIMEOUT_MS: intFrom(100, 600_000).default(25_000),
  MAX_BATCH_SIZE: intFrom(1, 4096).optional(),
  MAX_QUEUE_DELAY_MS: z.coerce.number().min(0).max(10_000).optional(),
  MAX_QUEUE_SIZE: intFrom(1, 1_000_000).default(256),
  // The preprocessing fast paths (src/preprocess/png-fast.ts): on by default, off = sharp for
  // every image (an escape hatch, and the "before" of docs/performance.md).
  // Bearer token for the admin routes (POST /admin/reload, /v2/repository/...): unset, the
  // routes do not exist (404). At least 16 characters: it guards model changes. The line
  // break that a file adds (a Kubernetes Secret made --from-file, `echo`) is removed; any other
  // whitespace or non-ASCII character is refused at start, since "Authorization: Bearer
  // <token>" cannot carry it and every admin call would be a 401.
  ADMIN_TOKEN: z.string()
    .transform((v) => v.replace(/(\r?\n)+$/, ''))
    .pipe(z.string()
      .min(16, 'must be at least 16 characters')
      .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII with no spaces, tabs or line breaks inside it or around it (a trailing line break is removed): a client sends it as "Authorization: Bearer <token>", which cannot carry them'))
    .optional(),
  PREPROCESS_FAST_PATH: flag('true'),
  // The pages for people: the try-it page at / (src/ui/public) and the interactive API docs at
  // /docs. Off, those paths are 404s like any unknown route — for deployments that expose the
  // API only.
  UI_ENABLED: flag('true'),
  API_DOCS_ENABLED: flag('true')
})

// Limits that must nest: a request can hold one full-size image, and one image must be
// decodable within the decode budget.
const ConfigSchema = EnvSchema.transform((c) => {
  const MAX_REQUEST_BYTES = c.MAX_REQUEST_BYTES ?? c.MAX_UPLOAD_BYTES
  const share = Math.min(c.MAX_INFLIGHT_BYTES, Math.max(MAX_REQUEST_BYTES, Math.floor(c.MAX_INFLIGHT_BYTES / 4)))
  return { ...c, MAX_REQUEST_BYTES, MAX_INFLIGHT_BYTES_PER_CLIENT: c.MAX_INFLIGHT_BYTES_PER_CLIENT ?? share }
})
  .refine((c) => c.MAX_REQUEST_BYTES >= c.MAX_UPLOAD_BYTES, { path: ['MAX_REQUEST_BYTES'], message: 'must be at least MAX_UPLOAD_BYTES' })
  .refine((c) => c.MAX_INFLIGHT_BYTES >= c.MAX_REQUEST_BYTES, { path: ['MAX_INFLIGHT_BYTES'], message: 'must be at least MAX_REQUEST_BYTES' })
  .refine((c) => c.MAX_INFLIGHT_BYTES_PER_CLIENT >= c.MAX_REQUEST_BYTES && c.MAX_INFLIGHT_BYTES_PER_CLIENT <= c.MAX_INFLIGHT_BYTES, { path: ['MAX_INFLIGHT_BYTES_PER_CLIENT'], message: 'must be between MAX_REQUEST_BYTES and MAX_INFLIGHT_BYTES' })
  .refine((c) => c.DECODE_MEMORY_BYTES >= decodeMemory(c.MAX_DECODE_BYTES), { path: ['DECODE_MEMORY_BYTES'], message: 'must be at least 1.3 × MAX_DECODE_BYTES + 8 MiB, the memory one image of that size takes to decode' })

export type Config = z.infer<typeof ConfigSchema>

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
  const parsed = ConfigSchema.safeParse(cleaned)
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map(describe))
  return parsed.data
}
