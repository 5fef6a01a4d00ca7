// The manifest against its ONNX graph (issue 9, defect 7): unit cases on the pure check, then
// the real thing — a manifest that lists 3 labels for the 10-class default model used to load,
// report ready and answer every request with 500; now the engine refuses it at start, naming
// the field, the file, what the manifest says and what the graph has; so do the server and
// the CLI tools.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Engine } from '../../src/inference/engine.js'
import { engineOptions } from '../../src/inference/engine-options.js'
import { graphMismatches, type GraphInfo } from '../../src/registry/graph-check.js'
import { loadManifest, sha256File } from '../../src/registry/load-manifest.js'
import { testConfig } from '../helpers/build.js'
import { REPO } from '../helpers/data.js'
import { copyModels } from '../helpers/manifest-copy.js'
import { spawnServer } from '../helpers/server-process.js'

const graph: GraphInfo = {
  inputs: [{ name: 'input', isTensor: true, type: 'float32', shape: ['batch', 1, 28, 28] }],
  outputs: [{ name: 'logits', isTensor: true, type: 'float32', shape: ['batch', 10] }]
}
const want = { inputName: 'input', outputName: 'logits', sampleShape: [1, 28, 28] as const, labels: 10, maxBatchSize: 32 }

t.test('a graph that matches its entry: no problems', async (t) => {
  t.same(graphMismatches(graph, want), [])
  t.same(graphMismatches({ ...graph, inputs: [{ ...graph.inputs[0]!, shape: ['n', 1, 'h', 'w'] }] }, want), [], 'symbolic spatial dims are fine')
})

t.test('each mismatch names the field, what the manifest says and what the graph has', async (t) => {
  t.match(graphMismatches(graph, { ...want, labels: 3 }), [/^labels: the manifest lists 3 labels; the graph's output "logits" has 10 classes/])
  t.match(graphMismatches(graph, { ...want, inputName: 'x' }), [/^input\.name: the manifest says "x"; the graph's inputs are "input"/])
  t.match(graphMismatches(graph, { ...want, outputName: 'probs' }), [/^output\.name: the manifest says "probs"; the graph's outputs are "logits"/])
  t.match(graphMismatches(graph, { ...want, sampleShape: [1, 32, 32] }), [/^input\.height: the manifest says 32; the graph's input is \["batch", 1, 28, 28\]/, /^input\.width: the manifest says 32/])
  t.match(graphMismatches(graph, { ...want, sampleShape: [3, 28, 28] }), [/^input\.channels: the manifest says 3/])
  const fixedBatch = { ...graph, inputs: [{ ...graph.inputs[0]!, shape: [1, 1, 28, 28] }] }
  t.match(graphMismatches(fixedBatch, want), [/^batching\.maxBatchSize: batches of up to 32, from the manifest's batching\.maxBatchSize; the graph's batch axis is fixed at 1 \(export with a dynamic batch axis, or set batching\.maxBatchSize to 1: models add --max-batch-size 1\)$/])
  t.match(graphMismatches(fixedBatch, { ...want, maxBatchSize: 8, maxBatchSizeFrom: 'MAX_BATCH_SIZE=8 (the environment)' }), [/^batching\.maxBatchSize: batches of up to 8, from MAX_BATCH_SIZE=8 \(the environment\); the graph's/], 'the number\'s source is named')
  t.same(graphMismatches(fixedBatch, { ...want, maxBatchSize: 1 }), [], 'a fixed batch of 1 is fine when batches never grow')
  t.match(graphMismatches({ ...graph, inputs: [{ ...graph.inputs[0]!, shape: ['batch', 784] }] }, want), [/^input\.layout: the manifest says NCHW \(rank 4\); the graph's input has rank 2/])
  t.match(graphMismatches({ ...graph, inputs: [...graph.inputs, { name: 'mask', isTensor: true, type: 'float32', shape: [1] }] }, want), [/^input\.name: the graph has other inputs too \("mask"\)/])
  t.match(graphMismatches({ ...graph, inputs: [{ ...graph.inputs[0]!, type: 'uint8' }] }, want), [/must be a float32 tensor; the graph has uint8/])
})

/** A private copy of models/ whose default model's entry is changed by `mutate`. */
function mismatched (mutate: (entry: any) => void): { file: string, name: string, index: number } {
  const file = copyModels()
  const m = JSON.parse(readFileSync(file, 'utf8'))
  const index = m.models.findIndex((e: { name: string }) => e.name === m.default)
  mutate(m.models[index])
  writeFileSync(file, JSON.stringify(m, null, 2))
  return { file, name: m.default, index }
}

t.test('the engine refuses a 3-label manifest for a 10-class model, naming models[i].labels and the file', async (t) => {
  const { file, name, index } = mismatched((e) => {
    e.labels = e.labels.slice(0, 3)
    // Per-class thresholds for 3 classes, so that the schema passes and only the graph disagrees.
    if (e.ood.classThresholds !== undefined) {
      e.ood.classThresholds = e.ood.classThresholds.slice(0, 3)
      e.ood.calibration.classScores = e.ood.calibration.classScores.slice(0, 3)
      e.ood.calibration.classN = e.ood.calibration.classN.slice(0, 3)
    }
  })
  const manifest = await loadManifest(file)
  const quiet = { warn: () => {}, error: () => {} }
  const err = await Engine.start(manifest, { provider: 'cpu', workers: 1, intraOpThreads: 1, maxQueueSize: 8 }, quiet).then(() => null, (e: Error & { code?: string }) => e)
  t.ok(err !== null, 'start fails')
  t.equal(err?.code, 'ISOMAX_MANIFEST_INVALID')
  t.match(err?.message, `${file}: models[${index}] (model "${name}").labels: the manifest lists 3 labels; the graph's output "logits" has 10 classes`)
  t.match(err?.message, /model\.onnx\)$/, 'and the ONNX file')
})

t.test('the server refuses to start on a wrong input name: exit 1, the field named, never listening', async (t) => {
  const { file, index } = mismatched((e) => { e.input.name = 'pixels' })
  const proc = spawnServer({ MODELS_MANIFEST: file })
  const { code } = await proc.exited
  t.equal(code, 1)
  t.match(proc.logs(), new RegExp(`models\\[${index}\\] \\(model \\\\"[a-z-]+\\\\"\\)\\.input\\.name: the manifest says \\\\"pixels\\\\"; the graph's inputs are \\\\"input\\\\"`))
  t.notMatch(proc.logs(), /Server listening|model loaded and warmed up/)
})

t.test('calibrate refuses it too (exit 2, one line naming the field)', async (t) => {
  const { file, name } = mismatched((e) => { e.input.height = 32 })
  const r = spawnSync(process.execPath, [...process.execArgv, path.join(REPO, 'src', 'tools', 'cli', 'calibrate.ts'), '--model', name, '--data', 'fashion-mnist:val', '--manifest', file, '--dry-run'], {
    cwd: REPO, encoding: 'utf8', env: { ...process.env, EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1' }, timeout: 120_000
  })
  t.equal(r.status, 2)
  t.match(r.stderr, /^calibrate: error: .*\.input\.height: the manifest says 32; the graph's input is \["batch", 1, 28, 28\]/m)
})

t.test('graph score outputs (output.scores): present, float32, one score per image', async (t) => {
  const withScore: GraphInfo = { ...graph, outputs: [...graph.outputs, { name: 'mahalanobis', isTensor: true, type: 'float32', shape: ['batch'] }] }
  t.same(graphMismatches(withScore, { ...want, scoreOutputs: ['mahalanobis'] }), [])
  t.same(graphMismatches({ ...graph, outputs: [...graph.outputs, { name: 'mahalanobis', isTensor: true, type: 'float32', shape: ['batch', 1] }] }, { ...want, scoreOutputs: ['mahalanobis'] }), [], '[batch, 1] is one per image too')
  t.match(graphMismatches(graph, { ...want, scoreOutputs: ['mahalanobis'] }), [/^output\.scores: the manifest names an output "mahalanobis"; the graph's outputs are "logits"/])
  t.match(graphMismatches({ ...graph, outputs: [...graph.outputs, { name: 'mahalanobis', isTensor: true, type: 'float32', shape: ['batch', 10] }] }, { ...want, scoreOutputs: ['mahalanobis'] }), [/one score per image, \[batch\] or \[batch, 1\]; the graph's is \["batch", 10\]/])
})

t.test('MAX_BATCH_SIZE is a ceiling: a fixed-batch model added with --max-batch-size 1 still loads beside MAX_BATCH_SIZE=8; an error names where each number came from', async (t) => {
  const file = copyModels()
  const dir = path.dirname(file)
  const m = JSON.parse(readFileSync(file, 'utf8'))
  const entry = m.models.find((e: { name: string, output: { scores?: unknown } }) => e.name !== m.default && e.output.scores === undefined)
  const made = spawnSync('/usr/bin/python3', [path.join(REPO, 'test', 'registry', 'fixed-batch-onnx.py'), path.join(dir, entry.path), path.join(dir, 'fixed.onnx')], { encoding: 'utf8' })
  t.equal(made.status, 0, made.stderr)
  entry.path = 'fixed.onnx'
  entry.sha256 = await sha256File(path.join(dir, 'fixed.onnx'))
  entry.batching.maxBatchSize = 1
  writeFileSync(file, JSON.stringify(m, null, 2))
  const quiet = { warn: () => {}, error: () => {} }

  const engine = await Engine.start(await loadManifest(file), engineOptions(testConfig({ MODELS_MANIFEST: file, MAX_BATCH_SIZE: '8' })), quiet)
  try {
    t.equal(engine.batching(entry.name)?.maxBatchSize, 1, 'the fixed-batch model keeps its own limit')
    t.equal(engine.batching(m.default)?.maxBatchSize, 8, 'the others are capped at MAX_BATCH_SIZE')
  } finally {
    await engine.close(new Error('test done'))
  }

  // A hand-written entry that allows 4 for that graph: the error says which number is whose.
  entry.batching.maxBatchSize = 4
  writeFileSync(file, JSON.stringify(m, null, 2))
  const index = m.models.indexOf(entry)
  const fail = async (env: Record<string, string>): Promise<string> => await Engine.start(await loadManifest(file), engineOptions(testConfig({ MODELS_MANIFEST: file, ...env })), quiet)
    .then(async (e) => { await e.close(new Error('unexpected')); return 'started' }, (e: Error) => e.message)
  t.match(await fail({ MAX_BATCH_SIZE: '2' }), `models[${index}] (model "${entry.name}").batching.maxBatchSize: batches of up to 2, from MAX_BATCH_SIZE=2 (the environment; the manifest's batching.maxBatchSize is 4); the graph's batch axis is fixed at 1`)
  t.match(await fail({ MAX_BATCH_SIZE: '8' }), 'batching.maxBatchSize: batches of up to 4, from the manifest\'s batching.maxBatchSize (MAX_BATCH_SIZE=8 is not lower); the graph\'s batch axis is fixed at 1')
  t.match(await fail({}), 'batching.maxBatchSize: batches of up to 4, from the manifest\'s batching.maxBatchSize; the graph\'s batch axis is fixed at 1')
})
