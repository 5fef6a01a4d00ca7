// Writes test/fixtures/selective-risk/default-test.json: for each of the 10,000 Fashion-MNIST
// test images, the default model's confidence (temperature-scaled top probability), whether the
// OOD rule accepts it and whether its label is wrong, computed through the serving path with the
// manifest's calibration. test/tools/evaluation/selective-risk.test.ts draws calibration sets
// from these rows (the bootstrap world) to check the bound's failure rate on real outputs; it
// chooses nothing. Run after recalibrating the default model:
//   npm run selective-risk-fixture
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { loadConfig } from '../src/config.js'
import { loadManifest } from '../src/registry/load-manifest.js'
import { resolveDataset } from '../src/tools/datasets/resolve.js'
import { repoRoot } from '../src/tools/datasets/repo-root.js'
import { runDataset, scoresOf, startEngine } from '../src/tools/cli/run-dataset.js'
import { selectiveSamplesOf } from '../src/tools/evaluation/selective-risk.js'

const FILE = path.join(repoRoot(), 'test', 'fixtures', 'selective-risk', 'default-test.json')

const config = loadConfig(process.env)
const manifest = await loadManifest(path.join(repoRoot(), 'models', 'manifest.json'))
const model = manifest.models.get(manifest.defaultModel)!
if (model.selective === undefined) throw new Error(`${model.name} has no selective block: calibrate it with --risk-data first`)
const engine = await startEngine({ ...manifest, models: new Map([[model.name, model]]) }, config)
try {
  const run = await runDataset(engine, [model], await resolveDataset('fashion-mnist:test'), 'fashion-mnist:test', config)
  const out = run.outputs.get(model.name)!
  const samples = selectiveSamplesOf(out.logits, out.labels, scoresOf(out, model.ood.score), model.ood, model.probabilities?.temperature ?? 1)
  mkdirSync(path.dirname(FILE), { recursive: true })
  writeFileSync(FILE, JSON.stringify({
    what: `${model.name} ${model.version} on fashion-mnist:test: [confidence rounded to 9 digits, OOD accepted, wrong] per image; written by scripts/selective-risk-fixture.ts`,
    alpha: model.selective.targetRisk,
    delta: model.selective.delta,
    rows: samples.map((s) => [Number(s.confidence.toPrecision(9)), s.oodAccepted ? 1 : 0, s.error ? 1 : 0])
  }) + '\n')
  process.stdout.write(`wrote ${FILE} (${samples.length} rows)\n`)
} finally {
  await engine.close(new Error('done'))
}
