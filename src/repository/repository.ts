// The model repository: the one owner of the served set and of the manifest file it comes from.
// Every change (reload the file, load one model, unload one) is a transaction run one at a time,
// computed from the set being served at the moment it runs — never from a set read before an
// earlier change finished — then validated, loaded and swapped in by the engine (all or
// nothing). Reloads coalesce: however many arrive (a burst of SIGHUPs), at most one runs and one
// waits, and every caller of the waiting one gets its outcome.
//
// It knows nothing of HTTP. What it did is told through events, which the metrics, the logs and
// readiness follow (plugins/repository.ts):
//   'changed'  a swap happened: { what, outcome, durationMs }
//   'refused'  the caller's mistake, nothing changed: { what, error } (unknown model, the default)
//   'failed'   the file or a model could not be loaded, nothing changed: { what, error, durationMs }
// A failed change rejects with ReloadFailedError (422) naming the reason; a refused one with its
// own catalogue error (ModelNotFoundError 404, ConflictError 409).
//
// Semantics, close to Triton's explicit model control (docs/api.md § Model repository):
// - reload serves every calibrated model of the file: an unload lasts until the next reload or
//   restart (the file is the repository); staged (uncalibrated) entries are skipped, not fatal;
// - load serves one model as the file has it now; unload is idempotent: a model in the file that
//   is not served unloads with success; only a name unknown to both is a 404;
// - a model known to the file but not served is "not ready", not "not found".
import { EventEmitter } from 'node:events'
import { ConflictError, ModelNotFoundError, ReloadFailedError, RepositoryError } from '../errors.js'
import type { Engine, SwapResult } from '../inference/engine.js'
import type { LoadedEntry, LoadedManifest } from '../registry/load-manifest.js'
import { readRepositoryFile } from './servable.js'

export interface ChangeOutcome extends SwapResult {
  manifestSha256: string
  models: string[]
  default: string
}

export type ModelState = 'READY' | 'UNAVAILABLE'

export interface RepositoryEntry {
  name: string
  version: string
  state: ModelState
  reason: string
}

export interface ChangedEvent { what: string, outcome: ChangeOutcome, durationMs: number }
export interface RefusedEvent { what: string, error: Error }
export interface FailedEvent { what: string, error: Error, durationMs: number }

export interface RepositoryEvents {
  changed: [ChangedEvent]
  refused: [RefusedEvent]
  failed: [FailedEvent]
}

/** A change the caller got wrong (unknown model, the default): refused, not failed. */
const isRefusal = (err: unknown): boolean => {
  const status = (err as { statusCode?: number }).statusCode
  return status === 404 || status === 409
}

/** What a transaction does with the set served when it runs: the set to serve next, or null (nothing to do). */
type Plan = (served: LoadedManifest) => Promise<LoadedManifest | null>

export class ModelRepository extends EventEmitter<RepositoryEvents> {
  private queue: Promise<unknown> = Promise.resolve()
  private waitingReload: Promise<ChangeOutcome> | undefined
  /** The file's entries as last read (start, reload, load, index): names known but maybe not served. */
  private known: ReadonlyMap<string, LoadedEntry>

  /** `defaultModel`: DEFAULT_MODEL, which replaces the manifest's `default` at every reload too. */
  constructor (private readonly engine: Engine, readonly file: string, known: ReadonlyMap<string, LoadedEntry> = engine.manifest.models, private readonly defaultModel?: string) {
    super()
    this.known = known
  }

  /** The set being served now. */
  get served (): LoadedManifest {
    return this.engine.manifest
  }

  /** Serve every calibrated model of the manifest file. Coalesces with a reload not started yet. */
  async reload (): Promise<ChangeOutcome> {
    if (this.waitingReload !== undefined) return await this.waitingReload
    const run = this.transact('reload', async () => {
      this.waitingReload = undefined // from here on a new call queues behind this one
      const file = await this.read()
      return file.servable
    })
    this.waitingReload = run
    return await run
  }

  /** Serve `name` as the manifest file has it now (add it, or replace what is served). */
  async load (name: string): Promise<ChangeOutcome> {
    return await this.transact(`load ${name}`, async (served) => {
      const file = await this.read()
      const entry = file.entries.get(name)
      if (entry === undefined) throw new ModelNotFoundError(name)
      const model = file.servable.models.get(name)
      if (model === undefined) throw new Error(`${file.servable.file}: model "${name}" is not calibrated yet (no OOD block); run npm run calibrate`)
      const models = new Map(served.models)
      models.set(name, model)
      return { ...served, sha256: file.servable.sha256, models }
    })
  }

  /** Stop serving `name`; success if it is already not served. Not the default model. */
  async unload (name: string): Promise<ChangeOutcome> {
    return await this.transact(`unload ${name}`, async (served) => {
      if (!served.models.has(name)) {
        if (this.known.has(name)) return null
        throw new ModelNotFoundError(name)
      }
      if (served.defaultModel === name) throw new ConflictError(`model "${name}" is the default model; make another one the default in the manifest and reload first`)
      const models = new Map(served.models)
      models.delete(name)
      return { ...served, models }
    })
  }

  /** Known to the manifest file (as last read) or served: its ready state is a fact, not a 404. */
  knows (name: string): boolean {
    return this.served.models.has(name) || this.known.has(name)
  }

  /** The models of the manifest file and of the served set, with their state. */
  async index (): Promise<RepositoryEntry[]> {
    let file
    try {
      file = await this.read()
    } catch (err) {
      throw new RepositoryError((err as Error).message)
    }
    const served = this.served
    const entries: RepositoryEntry[] = []
    for (const m of file.entries.values()) {
      const live = served.models.get(m.name)
      if (live !== undefined) entries.push({ name: m.name, version: live.version, state: 'READY', reason: live.sha256 === m.sha256 ? '' : 'serving an older file; load or reload to serve this one' })
      else entries.push({ name: m.name, version: m.version, state: 'UNAVAILABLE', reason: m.ood === undefined ? 'not calibrated' : 'not loaded' })
    }
    for (const m of served.models.values()) {
      if (!file.entries.has(m.name)) entries.push({ name: m.name, version: m.version, state: 'READY', reason: 'no longer in the manifest file' })
    }
    return entries
  }

  private async read (): Promise<Awaited<ReturnType<typeof readRepositoryFile>>> {
    const file = await readRepositoryFile(this.file, this.defaultModel)
    this.known = file.entries
    return file
  }

  /** Run `plan` after every change before it, on the set served then; swap in what it returns. */
  private async transact (what: string, plan: Plan): Promise<ChangeOutcome> {
    const run = this.queue.then(async () => {
      const started = performance.now()
      const durationMs = (): number => Math.round(performance.now() - started)
      let next: LoadedManifest | null
      let result: SwapResult
      try {
        next = await plan(this.served)
        result = next === null ? { generation: this.engine.generationId, loaded: [], kept: [...this.served.models.keys()], removed: [] } : await this.engine.swap(next)
      } catch (err) {
        if (isRefusal(err)) {
          this.emit('refused', { what, error: err as Error })
          throw err
        }
        this.emit('failed', { what, error: err as Error, durationMs: durationMs() })
        throw new ReloadFailedError((err as Error).message)
      }
      const now = next ?? this.served
      const outcome: ChangeOutcome = { ...result, manifestSha256: now.sha256, models: [...now.models.keys()], default: now.defaultModel }
      if (next !== null) this.emit('changed', { what, outcome, durationMs: durationMs() })
      return outcome
    })
    this.queue = run.catch(() => {})
    return await run
  }
}
