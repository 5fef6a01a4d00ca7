// Writes models/manifest.schema.json, the JSON Schema of the manifest, from the zod schema in
// src/registry/manifest-schema.ts (npm run manifest-schema). The Python side (training/publish.py
// and its tests) validates what it writes against it; test/registry/manifest-json-schema.test.ts
// fails when the committed file differs from what this generates.
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { ManifestSchema } from '../src/registry/manifest-schema.js'
import { repoRoot } from '../src/tools/datasets/repo-root.js'

export const MANIFEST_SCHEMA_FILE = path.join(repoRoot(), 'models', 'manifest.schema.json')
export const MANIFEST_SCHEMA_COMMAND = 'npm run manifest-schema'

export function generateManifestSchema (): string {
  // io 'input': the schema of the document a writer produces, before zod applies defaults, so a
  // field with a .default() (input.fit) is optional here, as it is to the service's parser.
  // unrepresentable 'throw' (the default, stated): a future transform or custom type fails
  // this script instead of silently becoming "accept anything".
  const generated = z.toJSONSchema(ManifestSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'throw' })
  const { $schema, ...rest } = generated
  return JSON.stringify({
    $schema,
    title: 'isomax-serve model manifest (models/manifest.json)',
    description: 'Generated from src/registry/manifest-schema.ts by scripts/manifest-schema.ts ' +
      `(${MANIFEST_SCHEMA_COMMAND}); do not edit. One owner per field: the training side writes an entry ` +
      'without "ood"; only `npm run calibrate` writes "ood"; the service refuses to serve an entry without it.',
    // zod refinements have no JSON Schema form and are left out by the generator: the service
    // alone checks them, so a document valid here can still be refused at load.
    $comment: 'Not expressed here, checked by the service at load (src/registry/load-manifest.ts): std > 0, ' +
      'one mean and one std value per channel, colour matching channels, unique model names, default ' +
      'naming one of the models, ood.calibration.scores sorted ascending, "mds" only on a distance head, ' +
      'the ONNX file existing with that sha256.',
    ...rest
  }, null, 2) + '\n'
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  writeFileSync(MANIFEST_SCHEMA_FILE, generateManifestSchema())
  process.stdout.write(`wrote ${MANIFEST_SCHEMA_FILE}\n`)
}
