// npm run models -- remove: one entry out of the manifest (atomically, validated first), then
// the files the tools wrote for it off the disk unless --keep-file: its ONNX file and, in the
// folder of its own that `models add` made, the model card and parity fixture the training
// side writes there. Anything else in that folder is the user's and stays (and so does the
// folder); the report says what was kept. The manifest must still name a default and hold a
// model afterwards, so removing the default needs a new one named, and the last model cannot
// be removed. Under the manifest's lock, decided on the manifest as it is then, and the files
// deleted only once the manifest no longer names them (manifest-change.ts).
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { loadConfig } from '../../config.js'
import { parse, requireOption, UsageError } from './args.js'
import { changeManifest, type ManifestChange } from './manifest-change.js'
import { MODEL_FILE, requireManifestFile, type RawManifest } from './manifest-file.js'

export const REMOVE_USAGE = `usage: npm run models -- remove --name NAME [--default OTHER] [--keep-file] [--manifest FILE]

Removes a model's entry from the manifest, then, unless --keep-file, deletes its ONNX file
and what the tools write beside it in <manifest folder>/NAME/ (the model card README.md and
parity.json); other files there are kept, and the folder goes only if it is then empty.

  --name NAME       the model to remove
  --default OTHER   the new default model; needed when NAME is the default
  --keep-file       leave the ONNX file and its folder as they are
  --manifest FILE   default: $MODELS_MANIFEST, else models/manifest.json
  -h, --help        print this help`

export interface RemoveResult {
  manifestFile: string
  defaultModel: string
  /** Every file or folder deleted from disk (a folder ends in the path separator). */
  deleted: string[]
  /** Files left in the model's folder because no tool of this project wrote them. */
  kept: string[]
}

/**
 * What `models add` (model.onnx, model-<sha256 prefix>.onnx for a replacement, staging copies
 * of earlier versions) and training/publish.py (the card, the parity fixture, its staging copy)
 * write into a model folder.
 */
const TOOL_FILES = [MODEL_FILE, /^README\.md$/, /^parity\.json$/, /^quantization\.json$/, /^\.model\.onnx\..*(\.tmp|staged)$/]

export async function removeModel (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<RemoveResult> {
  const args = parse(argv, {
    name: { type: 'string' },
    default: { type: 'string' },
    'keep-file': { type: 'boolean' },
    manifest: { type: 'string' }
  }, REMOVE_USAGE)
  const name = requireOption(args.name, 'name', REMOVE_USAGE)
  const file = path.resolve(args.manifest ?? loadConfig(env).MODELS_MANIFEST)
  await requireManifestFile(file) // no manifest, no lock file left beside where it should be
  let raw: RawManifest | undefined
  let defaultModel = ''
  const kept: string[] = []
  // Decided under the lock, on the manifest as it is then: another run may have changed it.
  const { deleted } = await changeManifest(file, 'models remove', env, async (current) => {
    raw = current ?? await requireManifestFile(file)
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
    defaultModel = args.default ?? raw.default
    const next = { ...raw, default: defaultModel, models: raw.models.filter((m) => m !== entry) }
    const change: ManifestChange = { command: 'models remove', next, after: { name, path: null }, obsolete: [] }
    if (args['keep-file'] === true) return change
    const dir = path.dirname(file)
    const onnx = path.resolve(dir, entry.path)
    const folder = path.dirname(onnx)
    const inside = (p: string, parent: string): boolean => p === parent || p.startsWith(parent + path.sep)
    const stillUsed = next.models.map((m) => path.resolve(dir, m.path))
    if (path.dirname(folder) === dir && !stillUsed.some((p) => inside(p, folder))) {
      // The layout `models add` makes: <manifest folder>/NAME/model.onnx, a folder of its own.
      for (const f of (await readdir(folder, { withFileTypes: true })).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) {
        const full = path.join(folder, f.name)
        if (f.isFile() && (full === onnx || TOOL_FILES.some((re) => re.test(f.name)))) change.obsolete.push(full)
        else kept.push(full + (f.isDirectory() ? path.sep : ''))
      }
      if (kept.length === 0) change.folder = folder
    } else if (!stillUsed.includes(onnx)) {
      change.obsolete.push(onnx)
    }
    return change
  })
  const before = raw!
  process.stdout.write([
    `removed          ${name} from ${file}`,
    `default          ${defaultModel}${defaultModel !== before.default ? ` (was ${before.default})` : ''}`,
    `deleted          ${deleted.length > 0 ? deleted.join(', ') : args['keep-file'] === true ? 'nothing (--keep-file)' : 'nothing (another model uses the file)'}`,
    ...(kept.length > 0 ? [`kept             ${kept.join(', ')} (not written by models add or training; the folder stays)`] : []),
    ''
  ].join('\n'))
  return { manifestFile: file, defaultModel, deleted, kept }
}
