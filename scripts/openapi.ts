// Writes openapi/openapi.json from the route schemas (npm run openapi). test/openapi.test.ts
// fails when the committed file differs from what the routes generate. The document does not
// depend on the models' weights, so the app runs over an in-memory engine here.
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { Engine } from '../src/inference/engine.js'
import { engineOptions } from '../src/inference/engine-options.js'
import { FunctionRunner } from '../src/inference/function-runner.js'
import { repoRoot } from '../src/tools/datasets/repo-root.js'
import { loadManifest } from '../src/registry/load-manifest.js'

export const OPENAPI_FILE = path.join(repoRoot(), 'openapi', 'openapi.json')

export async function generateOpenApi (): Promise<string> {
  // With a token, so the admin routes are in the document (they exist only when one is set).
  const config = loadConfig({ LOG_LEVEL: 'silent', ADMIN_TOKEN: 'openapi-generation-token' })
  const manifest = await loadManifest(path.join(repoRoot(), 'models', 'manifest.json'))
  const engine = await Engine.over(manifest, new FunctionRunner(() => []), engineOptions(config))
  const app = await buildApp({ config, engine, logger: false })
  try {
    return JSON.stringify(app.swagger(), null, 2) + '\n'
  } finally {
    await app.close()
  }
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  writeFileSync(OPENAPI_FILE, await generateOpenApi())
  process.stdout.write(`wrote ${OPENAPI_FILE}\n`)
}
