// What of a manifest file can be served: every calibrated entry. An entry that `npm run models
// -- add` wrote without calibrating it yet is "staged": listed by the repository index as
// UNAVAILABLE ("not calibrated") and skipped, so it blocks neither a reload nor the next start
// of the other models. The default model must be servable: the server needs one.
import { ManifestError } from '../errors.js'
import { loadManifest, type LoadedEntry, type LoadedManifest, type LoadedModel } from '../registry/load-manifest.js'

export interface RepositoryFile {
  /** The calibrated entries, ready to hand to the engine. */
  servable: LoadedManifest
  /** Every entry of the file, calibrated or not, by name. */
  entries: ReadonlyMap<string, LoadedEntry>
  /** Names of the entries without an OOD block. */
  staged: string[]
}

const calibrated = (m: LoadedEntry): m is LoadedModel => m.ood !== undefined

/** Read and verify the manifest file (schema, sha256 of every file); split servable from staged. */
/** `defaultModel` (DEFAULT_MODEL) replaces the manifest's `default`; it must name one of its models. */
export async function readRepositoryFile (file: string, defaultModel?: string): Promise<RepositoryFile> {
  let all = await loadManifest(file, { uncalibrated: true })
  if (defaultModel !== undefined) {
    if (!all.models.has(defaultModel)) throw new ManifestError(`DEFAULT_MODEL=${defaultModel}: no such model in ${all.file} (it has: ${[...all.models.keys()].join(', ')})`)
    all = { ...all, defaultModel }
  }
  const models = new Map<string, LoadedModel>()
  const staged: string[] = []
  for (const m of all.models.values()) {
    if (calibrated(m)) models.set(m.name, m)
    else staged.push(m.name)
  }
  const def = all.models.get(all.defaultModel)!
  if (!calibrated(def)) {
    throw new ManifestError(`${all.file}: models[${def.index}] (model "${def.name}").ood: missing: the default model is not calibrated yet; run \`npm run calibrate -- --model ${def.name} --score KIND --data PATH\` (docs/calibration.md)`)
  }
  return { servable: { ...all, models }, entries: all.models, staged }
}
