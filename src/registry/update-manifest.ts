// Rewrites one model's OOD block, atomically: the new manifest is validated, written to a
// temporary file in the same directory, flushed, then renamed over the old one, so readers
// see the old file or the new one and never half of either.
import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import path from 'node:path'
import { ManifestError } from '../errors.js'
import type { OodSpec, ProbabilitiesSpec } from './manifest-schema.js'
import { parseManifest } from './load-manifest.js'

export async function writeFileAtomic (file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
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
 * Calibrate's two blocks of one entry: `ood` always; `probabilities` when given (a run on
 * unlabelled data keeps the temperature it had). Nothing else of the manifest changes.
 */
export async function updateCalibration (file: string, modelName: string, ood: OodSpec, probabilities?: ProbabilitiesSpec): Promise<void> {
  const raw = JSON.parse(await readFile(file, 'utf8')) as { models: Array<{ name: string, ood: unknown, probabilities?: unknown }> }
  const entry = raw.models.find((m) => m.name === modelName)
  if (entry === undefined) throw new ManifestError(`${file}: no model named "${modelName}"`)
  entry.ood = ood
  if (probabilities !== undefined) entry.probabilities = probabilities
  parseManifest(file, raw) // never write a manifest the server would refuse
  await writeFileAtomic(file, JSON.stringify(raw, null, 2) + '\n')
}
