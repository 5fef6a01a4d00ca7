// npm run models -- list: what the manifest holds, one line per model. Reads the manifest as
// the service validates it, without hashing the ONNX files (listing stays instant for big ones).
import path from 'node:path'
import { loadConfig } from '../../config.js'
import type { ModelEntry } from '../../registry/manifest-schema.js'
import { parse } from './args.js'
import { requireManifestFile } from './manifest-file.js'

export const LIST_USAGE = `usage: npm run models -- list [--manifest FILE]

Lists the manifest's models: name, version, head, input, number of labels, calibration
(decision score and threshold, or "no"), and which is the default.

  --manifest FILE   default: $MODELS_MANIFEST, else models/manifest.json
  -h, --help        print this help`

export interface ListedModel {
  name: string
  version: string
  head: string
  input: string
  labels: number
  calibrated: string
  isDefault: boolean
}

function row (m: ModelEntry, defaultName: string): ListedModel {
  const i = m.input
  return {
    name: m.name,
    version: m.version,
    head: m.head,
    input: `"${i.name}" ${i.channels}×${i.height}×${i.width} ${i.colour}`,
    labels: m.labels.length,
    calibrated: m.ood === undefined ? 'no' : `${m.ood.score}, threshold ${Number(m.ood.threshold.toPrecision(6))}`,
    isDefault: m.name === defaultName
  }
}

export async function listModels (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<ListedModel[]> {
  const args = parse(argv, { manifest: { type: 'string' } }, LIST_USAGE)
  const file = path.resolve(args.manifest ?? loadConfig(env).MODELS_MANIFEST)
  const raw = await requireManifestFile(file)
  const rows = (raw.models as unknown as ModelEntry[]).map((m) => row(m, raw.default))
  const table = [
    ['name', 'version', 'head', 'input', 'labels', 'calibrated', 'default'],
    ...rows.map((r) => [r.name, r.version, r.head, r.input, String(r.labels), r.calibrated, r.isDefault ? 'yes' : ''])
  ]
  const widths = table[0]!.map((_, c) => Math.max(...table.map((cells) => cells[c]!.length)))
  const lines = table.map((cells) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd())
  process.stdout.write(`${file}: ${rows.length} model${rows.length === 1 ? '' : 's'}\n${lines.join('\n')}\n`)
  return rows
}
