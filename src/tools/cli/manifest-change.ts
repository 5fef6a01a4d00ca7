// One change to the manifest by `npm run models`, safe to run beside another and to kill at
// any moment:
//
// - under the manifest's lock, the change is computed from the file as it is then (so two
//   concurrent adds of different names both land, and of one name only one does);
// - a new ONNX file goes in under a name no entry uses, then the manifest is replaced
//   atomically, and only then are files the manifest no longer names deleted. A kill leaves
//   the old entry on its old file, or the new entry on its new file: a manifest the service
//   starts on either way;
// - what a killed run leaves (the new file it never named, or the old files it never deleted)
//   is written down first in a journal beside the manifest; the next run that takes the lock
//   reads it, sees from the manifest which of the two happened, deletes the rest and says so.
//   Temporary copies whose writer is no longer running go too.
import { mkdir, readdir, readFile, rename, rmdir, unlink } from 'node:fs/promises'
import path from 'node:path'
import { parseManifest } from '../../registry/load-manifest.js'
import { pidAlive, withManifestLock } from './manifest-lock.js'
import { writeFileAtomic } from './update-manifest.js'
import { readManifestFile, writeManifestFile, type RawManifest } from './manifest-file.js'
import { pauseAfter } from './test-pause.js'

export interface ManifestChange {
  /** What makes it, for the journal and the messages: "models add --force". */
  command: string
  next: RawManifest
  /** The entry it is about, once written: its path, or null when it is removed. */
  after: { name: string, path: string | null }
  /** A checked copy to move to its final name (absolute paths) before the manifest is written. */
  install?: { from: string, to: string }
  /** Files to delete once the manifest is written; one the new manifest still names is kept. */
  obsolete: string[]
  /** A folder to remove afterwards if it is then empty. */
  folder?: string
}

interface Journal {
  pid: number
  command: string
  started: string
  after: ManifestChange['after']
  created: string[]
  obsolete: string[]
  folder?: string
}

const journalOf = (file: string): string => path.join(path.dirname(file), `.${path.basename(file)}.journal`)
/** writeFileAtomic's and models add's temporary names: `.<name>.<pid>-<hex>.tmp`. */
const TEMP = /^\..+\.(\d+)-[0-9a-f]+\.tmp$/

const note = (line: string): void => { process.stderr.write(`note: ${line}\n`) }

/** Delete those of `files` that `manifest` does not name, then `folder` if it is empty; what went. */
async function deleteUnnamed (file: string, manifest: RawManifest | undefined, files: string[], folder: string | undefined): Promise<string[]> {
  const dir = path.dirname(file)
  const named = new Set((manifest?.models ?? []).map((m) => path.resolve(dir, m.path)))
  const deleted: string[] = []
  for (const f of files) {
    if (named.has(f)) continue
    try {
      await unlink(f)
      deleted.push(f)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  if (folder !== undefined && ![...named].some((p) => p.startsWith(folder + path.sep))) {
    try {
      await rmdir(folder)
      deleted.push(folder + path.sep)
    } catch {} // not empty (the user's files, or a model's), or gone already
  }
  return deleted
}

/** Finish or undo what a killed run left, as its journal says; the lock is held. */
async function recover (file: string): Promise<void> {
  const journalFile = journalOf(file)
  let journal: Journal
  try {
    journal = JSON.parse(await readFile(journalFile, 'utf8')) as Journal
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    // Cut short while it was written (writeFileAtomic makes that unlikely): it names nothing usable.
    await unlink(journalFile)
    return
  }
  const current = await readManifestFile(file)
  const entry = current?.models.find((m) => m.name === journal.after.name)
  const written = journal.after.path === null ? entry === undefined : entry?.path === journal.after.path
  const deleted = await deleteUnnamed(file, current, written ? journal.obsolete : journal.created, journal.folder)
  note(`${written ? 'finished' : 'undid'} an interrupted \`${journal.command}\` (pid ${journal.pid}, ${journal.started}): ` +
    `${written ? 'its manifest was written' : 'its manifest was never written'}; ${deleted.length > 0 ? `deleted ${deleted.join(', ')}` : 'nothing left to delete'}`)
  await unlink(journalFile)
}

/** Temporary copies beside the manifest whose writer is no longer running. */
async function sweep (file: string): Promise<void> {
  const dir = path.dirname(file)
  for (const name of await readdir(dir)) {
    const pid = TEMP.exec(name)?.[1]
    if (pid === undefined || Number(pid) === process.pid || pidAlive(Number(pid))) continue
    await unlink(path.join(dir, name)).catch(() => {})
    note(`deleted ${path.join(dir, name)}, a temporary copy left by pid ${pid} (no longer running)`)
  }
}

/**
 * Apply the change `plan` computes from the manifest as it is under the lock (undefined: no
 * manifest yet); `plan` refuses by throwing. Answers the change and the files it deleted.
 */
export async function changeManifest (file: string, command: string, env: NodeJS.ProcessEnv,
  plan: (current: RawManifest | undefined) => Promise<ManifestChange> | ManifestChange): Promise<{ change: ManifestChange, deleted: string[] }> {
  return await withManifestLock(file, command, async () => {
    await recover(file)
    await sweep(file)
    const change = await plan(await readManifestFile(file))
    parseManifest(file, change.next) // refused here, nothing has changed
    await pauseAfter('locked', env)
    const journalFile = journalOf(file)
    const journal: Journal = {
      pid: process.pid,
      command: change.command,
      started: new Date().toISOString(),
      after: change.after,
      created: change.install !== undefined ? [change.install.to] : [],
      obsolete: change.obsolete,
      ...(change.folder !== undefined ? { folder: change.folder } : {})
    }
    await writeFileAtomic(journalFile, JSON.stringify(journal, null, 2) + '\n')
    let written = false
    try {
      if (change.install !== undefined) {
        await mkdir(path.dirname(change.install.to), { recursive: true })
        await rename(change.install.from, change.install.to)
      }
      await pauseAfter('renamed', env)
      await writeManifestFile(file, change.next)
      written = true
      await pauseAfter('manifest', env)
      const deleted = await deleteUnnamed(file, change.next, change.obsolete, change.folder)
      await unlink(journalFile)
      return { change, deleted }
    } catch (err) {
      // Failed, not killed. Before the manifest was written: undo now what the journal would
      // have the next run undo. After: the journal stays, and the next run finishes the deletes.
      if (!written) {
        await deleteUnnamed(file, await readManifestFile(file).catch(() => undefined), journal.created, undefined).catch(() => [])
        await unlink(journalFile).catch(() => {})
      }
      throw err
    }
  })
}
