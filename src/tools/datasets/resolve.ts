// A data set from what the user typed: a built-in name, an IDX file, or an image folder.
import { stat } from 'node:fs/promises'
import { builtinDataset, BUILTIN_SETS } from './builtin.js'
import { imageFolder } from './image-folder.js'
import { idxDataset, loadIndices } from './idx-dataset.js'
import { DatasetError, type Dataset } from './types.js'

export interface ResolveOptions {
  labels?: string | undefined
  indices?: string | undefined
}

export async function resolveDataset (spec: string, opts: ResolveOptions = {}): Promise<Dataset> {
  const builtin = await builtinDataset(spec)
  if (builtin !== undefined) return builtin
  let info
  try {
    info = await stat(spec)
  } catch {
    throw new DatasetError(`${spec}: no such file or directory, and not a built-in set (${BUILTIN_SETS.join(', ')})`)
  }
  if (info.isDirectory()) return await imageFolder(spec)
  return await idxDataset(spec, {
    labels: opts.labels,
    indices: opts.indices !== undefined ? await loadIndices(opts.indices) : undefined
  })
}
