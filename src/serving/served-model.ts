// The served model a request names (and, when it names one, at that version), or the
// catalogue's 404: one lookup for the data plane and every protocol's metadata routes.
import { ModelNotFoundError, ModelVersionNotFoundError } from '../errors.js'
import type { LoadedModel } from '../registry/load-manifest.js'

/** Anything that serves models by name: a generation, or the engine (its current one). */
export interface ModelLookup {
  model: (name: string) => LoadedModel | undefined
}

export function servedModel (lookup: ModelLookup, name: string, version: string | undefined): LoadedModel {
  const model = lookup.model(name)
  if (model === undefined) throw new ModelNotFoundError(name)
  if (version !== undefined && version !== model.version) throw new ModelVersionNotFoundError(name, version, model.version)
  return model
}
