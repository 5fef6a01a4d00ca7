// build(t): the real app over the real manifest and ONNX models, closed when the test ends.
// buildOver(t, opts): the same app over an engine whose logits come from a function (no ONNX Runtime),
// for tests of HTTP behaviour that does not depend on the model.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { Engine } from '../../src/inference/engine.js'
import { engineOptions } from '../../src/inference/engine-options.js'
import { FunctionRunner, type FunctionRunnerOptions, type LogitsFunction } from '../../src/inference/function-runner.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { MANIFEST } from './data.js'

interface Teardown { teardown: (fn: () => unknown) => void }

export function testConfig (env: Record<string, string> = {}): Config {
  return loadConfig({ EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', LOG_LEVEL: 'silent', MODELS_MANIFEST: MANIFEST, ...env })
}

export async function build (t: Teardown, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = testConfig(env)
  const manifest = await loadManifest(config.MODELS_MANIFEST)
  const engine = await Engine.start(manifest, engineOptions(config), { warn: () => {}, error: () => {} })
  const app = await buildApp({ config, engine, logger: false })
  t.teardown(async () => await app.close())
  return app
}

/** Logits that make class `tensor[0] > 0 ? 0 : 1` win, at distance 0.1 (an in-distribution score). */
export const simpleLogits: LogitsFunction = (_model, tensor) => {
  const row = new Array<number>(10).fill(-1)
  row[(tensor[0] ?? 0) > 0 ? 0 : 1] = -0.1
  return row
}

export interface OverOptions {
  logits?: LogitsFunction
  env?: Record<string, string>
  runner?: FunctionRunnerOptions
  logger?: FastifyBaseLogger
}

export async function buildOver (t: Teardown, opts: OverOptions = {}): Promise<{ app: FastifyInstance, engine: Engine }> {
  const config = testConfig(opts.env)
  const manifest = await loadManifest(config.MODELS_MANIFEST)
  const engine = await Engine.over(manifest, new FunctionRunner(opts.logits ?? simpleLogits, opts.runner), engineOptions(config))
  const app = await buildApp({ config, engine, logger: opts.logger ?? false })
  t.teardown(async () => await app.close())
  return { app, engine }
}
