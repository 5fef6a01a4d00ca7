// build(t): the real app over the real manifest and ONNX models, closed when the test ends.
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { MANIFEST } from './data.js'

interface Teardown { teardown: (fn: () => unknown) => void }

export async function build (t: Teardown, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = loadConfig({ EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', LOG_LEVEL: 'silent', MODELS_MANIFEST: MANIFEST, ...env })
  const manifest = await loadManifest(config.MODELS_MANIFEST)
  const app = await buildApp({ config, manifest, logger: false })
  t.teardown(async () => await app.close())
  return app
}
