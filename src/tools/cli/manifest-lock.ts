// One writer of a manifest file at a time, across processes: every tool that rewrites the
// manifest (models add and remove, calibrate) holds `<manifest>.lock` while it reads the file,
// changes it and writes it back. Without it, two writers each rewrite the file they read and
// the later one drops the earlier one's change (8 concurrent `models add`: 6 of 8 entries lost).
//
// The lock file is created with O_EXCL and says who holds it (pid, host, command, since when).
// A holder on this host whose pid is gone (killed, crashed), or belongs to a process started
// after the lock was taken (the pid reused), left it stale: the next writer takes it over and
// says so. A live holder is waited for, up to a bound, then named in the error.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { open, readFile, stat, unlink } from 'node:fs/promises'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { ManifestLockedError } from '../../errors.js'

export interface LockHolder {
  pid: number
  hostname: string
  /** When it took the lock (ISO 8601). */
  started: string
  /** What holds it, for the messages: "models add", "calibrate". */
  command: string
  /** Tells this holding apart from any other, so a release or a takeover removes only its own. */
  token: string
}

export interface LockOptions {
  /** How long to wait for a live holder (default 30 s: writers hold the lock for milliseconds). */
  timeoutMs?: number
  /** Where notices go (a stale lock taken over); default stderr. */
  notice?: (line: string) => void
}

export const LOCK_TIMEOUT_MS = 30_000
/** A lock file that stays unreadable this long was left by a writer killed while creating it. */
const UNREADABLE_STALE_MS = 5_000

const lockFileOf = (manifestFile: string): string => `${manifestFile}.lock`

/** Whether a process of this host is running (EPERM: it is, as another user). */
export function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * When a process started (ms since the epoch), from Linux's /proc; undefined elsewhere. A pid
 * is reused once its process is gone — in a container the tool often gets the same small pid
 * every run — so a holder's pid alive does not mean the holder is.
 */
function processStart (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 22, counted after the command name, which may hold spaces and parentheses.
    const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1])
    // USER_HZ is 100 on every Linux build that matters here.
    return Number.isFinite(startTicks) && Number.isFinite(boot) ? boot * 1000 + startTicks * 10 : undefined
  } catch {
    return undefined
  }
}

/** Tokens of the locks this process holds now: its own pid on a lock proves nothing more. */
const held = new Set<string>()

/** Whether the holder of a lock on this host is gone: its pid dead, or now another process's. */
function holderGone (h: LockHolder): boolean {
  if (h.pid === process.pid) return !held.has(h.token)
  if (!pidAlive(h.pid)) return true
  const start = processStart(h.pid)
  const taken = Date.parse(h.started)
  // A second of slack: the clock that stamped `started` and the boot time's are not the same.
  return start !== undefined && Number.isFinite(taken) && start > taken + 1000
}

async function readHolder (file: string): Promise<{ text: string, holder?: LockHolder, ageMs: number } | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file)])
    let holder: LockHolder | undefined
    try {
      const parsed = JSON.parse(text) as Partial<LockHolder>
      if (typeof parsed.pid === 'number' && typeof parsed.hostname === 'string') holder = parsed as LockHolder
    } catch {}
    return { text, holder, ageMs: Date.now() - info.mtimeMs }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Create `file` holding `text`, or answer false when it exists. */
async function createExclusive (file: string, text: string): Promise<boolean> {
  let handle
  try {
    handle = await open(file, 'wx')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
  try {
    await handle.writeFile(text)
  } finally {
    await handle.close()
  }
  return true
}

/**
 * Remove a stale lock, but only the one that was judged stale: two writers may find it stale at
 * once, and the slower must not remove the lock the faster has just taken. A short-lived second
 * lock (`.break`) makes "read it again, still the stale one, unlink" one step.
 */
async function breakStale (lockFile: string, staleText: string): Promise<boolean> {
  const breaker = `${lockFile}.break`
  if (!(await createExclusive(breaker, String(process.pid)))) {
    const other = await readHolder(breaker)
    const pid = Number(other?.text)
    // Its writer died within the few microseconds it holds it: clear it for the next try.
    if (other !== undefined && ((Number.isInteger(pid) && pid > 0 && !pidAlive(pid)) || other.ageMs > UNREADABLE_STALE_MS)) await unlink(breaker).catch(() => {})
    return false
  }
  try {
    const now = await readHolder(lockFile)
    if (now?.text !== staleText) return false
    try {
      await unlink(lockFile)
    } catch (err) {
      // Gone meanwhile (its holder released it after all): nothing was taken over; try again.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
    return true
  } finally {
    await unlink(breaker).catch(() => {})
  }
}

function describe (h: LockHolder): string {
  return `pid ${h.pid} (${h.command} since ${h.started}${h.hostname !== os.hostname() ? ` on ${h.hostname}` : ''})`
}

/**
 * Run `fn` holding the manifest's lock; the lock goes when `fn` settles, whatever it does.
 * Throws ManifestLockedError when a live holder keeps it past the wait.
 */
export async function withManifestLock<T> (manifestFile: string, command: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lockFile = lockFileOf(manifestFile)
  const timeoutMs = options.timeoutMs ?? LOCK_TIMEOUT_MS
  const notice = options.notice ?? ((line: string) => { process.stderr.write(`note: ${line}\n`) })
  const me: LockHolder = { pid: process.pid, hostname: os.hostname(), started: new Date().toISOString(), command, token: randomBytes(8).toString('hex') }
  const text = JSON.stringify(me) + '\n'
  const deadline = Date.now() + timeoutMs
  let delay = 5
  for (;;) {
    // Held from before the file exists: another call in this process that reads the lock while
    // this one is still writing it must not judge it stale (this pid, a token it does not know)
    // and remove it under this writer.
    held.add(me.token)
    if (await createExclusive(lockFile, text)) break
    held.delete(me.token)
    const found = await readHolder(lockFile)
    if (found === undefined) continue // released between the two calls
    const h = found.holder
    const stale = h !== undefined
      ? h.hostname === os.hostname() && holderGone(h)
      : found.ageMs > UNREADABLE_STALE_MS
    if (stale) {
      if (await breakStale(lockFile, found.text)) {
        notice(h !== undefined
          ? `took over the lock ${lockFile} of pid ${h.pid} (no longer running${pidAlive(h.pid) ? ': the pid is another process\'s now' : ''}; ${h.command} since ${h.started})`
          : `took over the lock ${lockFile} (unreadable for ${Math.round(found.ageMs / 1000)} s: its writer died while creating it)`)
      } else {
        await sleep(1) // another writer is taking it over: see who wins
      }
      continue
    }
    const left = deadline - Date.now()
    if (left <= 0) {
      throw new ManifestLockedError(`${lockFile}: another run holds the manifest: ${h !== undefined ? describe(h) : 'unreadable lock file'}; ` +
        `waited ${(timeoutMs / 1000).toFixed(1)} s. If no such process is running, delete the lock file`)
    }
    // Writers hold it for milliseconds; back off a little, with jitter so waiters do not march in step.
    await sleep(Math.min(left, delay + Math.random() * delay))
    delay = Math.min(delay * 2, 100)
  }
  try {
    return await fn()
  } finally {
    held.delete(me.token)
    const now = await readHolder(lockFile).catch(() => undefined)
    if (now?.text === text) await unlink(lockFile).catch(() => {})
  }
}
