// Command line of `npm run bench`.
import { parseArgs } from 'node:util'
import { HelpRequest, UsageError, wantsHelp } from '../cli/args.js'

export interface BenchArgs {
  url: string | undefined
  /** Seconds per concurrency level (and per in-process ceiling). */
  duration: number
  concurrency: number[]
  json: boolean
  workers: number | undefined
  /** What the load generator sends: Fashion-MNIST test images as PNG, JPEG or WebP. */
  format: 'png' | 'jpeg' | 'webp'
  protocol: 'classify' | 'v2'
  /** c=128 against a second server with this MAX_QUEUE_SIZE (0 = skip). Own server only. */
  overloadQueue: number
  /** Seconds of c=32 soak after warm-up (0 = no soak). */
  soak: number
  /** Extra environment for the server the bench starts, e.g. MAX_QUEUE_DELAY_MS=0. */
  serverEnv: Record<string, string>
  /** Skip the in-process ceilings and the preprocessing comparison. */
  httpOnly: boolean
  /** Write a V8 CPU profile of the server to this folder. */
  cpuProf: string | undefined
  /** Only compare these models' inference-only ceilings (no HTTP). */
  compareModels: string[] | undefined
  /** Rounds of --compare-models. */
  rounds: number
}

export const USAGE = `Usage: npm run bench -- [options]

  --url URL              benchmark a running service instead of starting one
  --duration S           seconds per concurrency level (default 10)
  --concurrency LIST     comma-separated levels (default 1,8,32,128)
  --workers N            INFERENCE_WORKERS for the service it starts and for the ceilings
  --format png|jpeg|webp what the load generator sends (default png)
  --protocol classify|v2 POST /classify (default), or the Open Inference Protocol as Triton's
                         clients send it: POST /v2/models/<model>/infer, the image as one
                         BYTES element in binary, binary outputs
  --overload-queue N     then c=128 against a service with MAX_QUEUE_SIZE=N (default 8; 0 = skip)
  --soak S               then S seconds at c=32 after a warm-up, reporting RSS and heap growth
  --env KEY=VALUE        extra environment for the service it starts (repeatable)
  --http-only            skip the in-process ceilings and the preprocessing comparison
  --cpu-prof DIR         write a CPU profile of the service (own service only)
  --compare-models LIST  instead: the inference-only ceiling of these models (comma-separated
                         names; the first is the reference), taking turns in one run
  --rounds N             rounds of --compare-models (default 5); the median counts
  --json                 print one JSON document instead of tables
  -h, --help             print this help
`

function positive (name: string, value: string | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) throw new UsageError(`--${name}: expected a ${allowZero ? 'non-negative' : 'positive'} number, got "${value}"`)
  return n
}

const OPTIONS = {
  url: { type: 'string' },
  duration: { type: 'string' },
  concurrency: { type: 'string' },
  workers: { type: 'string' },
  format: { type: 'string' },
  protocol: { type: 'string' },
  'overload-queue': { type: 'string' },
  soak: { type: 'string' },
  env: { type: 'string', multiple: true },
  'http-only': { type: 'boolean' },
  'cpu-prof': { type: 'string' },
  'compare-models': { type: 'string' },
  rounds: { type: 'string' },
  json: { type: 'boolean' }
} as const

export function parseBenchArgs (argv: string[]): BenchArgs {
  // Before the strict parse: `--help` answers even next to a misspelt option.
  if (wantsHelp(argv, OPTIONS)) throw new HelpRequest(USAGE)
  const { values } = parseArgs({ args: argv, strict: true, options: OPTIONS })
  const concurrency = (values.concurrency ?? '1,8,32,128').split(',').map((s) => {
    const n = Number(s.trim())
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--concurrency: "${s}" is not a positive integer`)
    return n
  })
  const format = values.format ?? 'png'
  if (format !== 'png' && format !== 'jpeg' && format !== 'webp') throw new UsageError(`--format: expected png, jpeg or webp, got "${format}"`)
  const protocol = values.protocol ?? 'classify'
  if (protocol !== 'classify' && protocol !== 'v2') throw new UsageError(`--protocol: expected classify or v2, got "${protocol}"`)
  const serverEnv: Record<string, string> = {}
  for (const kv of values.env ?? []) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(kv)
    if (m === null) throw new UsageError(`--env: expected KEY=VALUE, got "${kv}"`)
    serverEnv[m[1] as string] = m[2] as string
  }
  const workers = values.workers === undefined ? undefined : positive('workers', values.workers, 1)
  if (workers !== undefined && !Number.isInteger(workers)) throw new UsageError('--workers: expected an integer')
  return {
    url: values.url?.replace(/\/+$/, ''),
    duration: positive('duration', values.duration, 10),
    concurrency,
    json: values.json === true,
    workers,
    format,
    protocol,
    overloadQueue: positive('overload-queue', values['overload-queue'], 8, true),
    soak: positive('soak', values.soak, 0, true),
    serverEnv,
    httpOnly: values['http-only'] === true,
    cpuProf: values['cpu-prof'],
    compareModels: values['compare-models']?.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    rounds: positive('rounds', values.rounds, 5)
  }
}
