// npm run models -- remove: one entry out of the manifest (atomically, validated first), then
// its model folder off the disk unless --keep-file. The manifest must still name a default
// and hold a model afterwards, so removing the default needs a new one named, and the last
// model cannot be removed.
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { loadConfig } from '../../config.js'
import { parse, requireOption, UsageError } from './args.js'
import { requireManifestFile, writeManifestFile } from './manifest-file.js'

export const REMOVE_USAGE = `usage: npm run models -- remove --name NAME [--default OTHER] [--keep-file] [--manifest FILE]

Removes a model's entry from the manifest, then deletes its model folder (<manifest
folder>/NAME/, where "models add" put it) unless --keep-file.

  --name NAME       the model to remove
  --default OTHER   the new default model; needed when NAME is the default
  --keep-file       leave the ONNX file and its folder on disk
  --manifest FILE   default: $MODELS_MANIFEST, else models/manifest.json
  -h, --help        print this help`

export interface RemoveResult {
  manifestFile: string
  defaultModel: string
  /** What was deleted from disk: the model folder, the ONNX file alone, or nothing. */
  deleted: string | undefined
}

export async function removeModel (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<RemoveResult> {
  const args = parse(argv, {
    name: { type: 'string' },
    default: { type: 'string' },
    'keep-file': { type: 'boolean' },
    manifest: { type: 'string' }
  }, REMOVE_USAGE)
  const name = requireOption(args.name, 'name', REMOVE_USAGE)
  const file = path.resolve(args.manifest ?? loadConfig(env).MODELS_MANIFEST)
  const raw = await requireManifestFile(file)
  const names = raw.models.map((m) => m.name)
  const entry = raw.models.find((m) => m.name === name)
  if (entry === undefined) throw new UsageError(`model "${name}" is not in ${file} (it has: ${names.join(', ')})`)
  if (raw.models.length === 1) {
    throw new UsageError(`"${name}" is the only model in ${file}, and a manifest needs at least one: add another first (npm run models -- add ... --default), or delete the manifest file`)
  }
  const others = names.filter((n) => n !== name)
  if (args.default !== undefined && !others.includes(args.default)) {
    throw new UsageError(`--default ${args.default}: not another model of ${file} (choose one of: ${others.join(', ')})`)
  }
  if (raw.default === name && args.default === undefined) {
    throw new UsageError(`"${name}" is the default model of ${file}: name the new default with --default (one of: ${others.join(', ')})`)
  }
  const defaultModel = args.default ?? raw.default
  await writeManifestFile(file, { ...raw, default: defaultModel, models: raw.models.filter((m) => m !== entry) })

  let deleted: string | undefined
  if (args['keep-file'] !== true) {
    const dir = path.dirname(file)
    const onnx = path.resolve(dir, entry.path)
    const folder = path.dirname(onnx)
    const inside = (p: string, parent: string): boolean => p === parent || p.startsWith(parent + path.sep)
    const stillUsed = raw.models.filter((m) => m !== entry).map((m) => path.resolve(dir, m.path))
    if (path.dirname(folder) === dir && !stillUsed.some((p) => inside(p, folder))) {
      // The layout `models add` makes: <manifest folder>/NAME/model.onnx, a folder of its own.
      await rm(folder, { recursive: true, force: true })
      deleted = folder + path.sep
    } else if (!stillUsed.includes(onnx)) {
      await rm(onnx, { force: true })
      deleted = onnx
    }
  }
  process.stdout.write([
    `removed          ${name} from ${file}`,
    `default          ${defaultModel}${defaultModel !== raw.default ? ` (was ${raw.default})` : ''}`,
    `deleted          ${deleted ?? (args['keep-file'] === true ? 'nothing (--keep-file)' : 'nothing (another model uses the file)')}`,
    ''
  ].join('\n'))
  return { manifestFile: file, defaultModel, deleted }
}
