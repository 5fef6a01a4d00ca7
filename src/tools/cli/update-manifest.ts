// Rewrites one model's OOD block, atomically and under the manifest's lock: the file is read
// again once the lock is held (another tool may have changed it since calibrate started), the
// new manifest is validated, written to a temporary file in the same directory, flushed, then
// renamed over the old one, so readers see the old file or the new one and never half of either.
import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import path from 'node:path'
import { ManifestError } from '../../errors.js'
import type { OodSpec, ProbabilitiesSpec, SelectiveSpec } from '../../registry/manifest-schema.js'
import { parseManifest } from '../../registry/load-manifest.js'
import { withManifestLock } from './manifest-lock.js'

/** Temporary files carry the writer's pid, so a later run can tell a dead writer's leftovers (`.<file>.<pid>-<hex>.tmp`). */
export function tempName (file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`)
}

export async function writeFileAtomic (file: string, text: string): Promise<void> {
  const tmp = tempName(file)
  const handle = await open(tmp, 'w')
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
}

/**
 * Calibrate's blocks of one entry: `ood` always; `probabilities` when given (a run on
 * unlabelled data keeps the temperature it had); `selective` when given, removed with null (a
 * confidence threshold chosen for an OOD threshold and temperature that changed no longer
 * holds), untouched when undefined. Nothing else of the manifest changes. With
 * `expect.sha256` (the file that was calibrated), an entry whose file was replaced meanwhile
 * (`models add --force`) is refused: the calibration describes other weights.
 */
export async function updateCalibration (file: string, modelName: string, ood: OodSpec, probabilities?: ProbabilitiesSpec, expect: { sha256?: string } = {}, selective?: SelectiveSpec | null): Promise<void> {
  await withManifestLock(file, 'calibrate', async () => {
    const raw = JSON.parse(await readFile(file, 'utf8')) as { models: Array<{ name: string, sha256?: unknown, ood: unknown, probabilities?: unknown, selective?: unknown }> }
    const entry = raw.models.find((m) => m.name === modelName)
    if (entry === undefined) throw new ManifestError(`${file}: no model named "${modelName}" (removed while it was calibrated?); the manifest is unchanged`)
    if (expect.sha256 !== undefined && entry.sha256 !== expect.sha256) {
      throw new ManifestError(`${file}: "${modelName}" was replaced while it was calibrated (its sha256 is now ${String(entry.sha256)}, not ${expect.sha256}); the manifest is unchanged: calibrate it again`)
    }
    entry.ood = ood
    if (probabilities !== undefined) entry.probabilities = probabilities
    if (selective === null) delete entry.selective
    else if (selective !== undefined) entry.selective = selective
    parseManifest(file, raw) // never write a manifest the server would refuse
    await writeFileAtomic(file, JSON.stringify(raw, null, 2) + '\n')
  })
}
