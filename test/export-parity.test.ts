// Export parity: each shipped ONNX file, run by onnxruntime-node, reproduces torch's logits
// (written by training/export.py at export time) on real Fashion-MNIST test images; a model
// with a post-hoc detector in its graph (output.scores) reproduces that score too (written by
// training/posthoc.py).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import ort from 'onnxruntime-node'
import t from 'tap'
import { loadManifest } from '../src/registry/load-manifest.js'
import { scoreOutputsOf } from '../src/registry/manifest-schema.js'
import { MANIFEST, REPO } from './helpers/data.js'

const manifest = await loadManifest(MANIFEST)

for (const model of manifest.models.values()) {
  t.test(`${model.name}: ONNX logits match torch within 1e-4`, async (t) => {
    const fixture = JSON.parse(readFileSync(path.join(REPO, 'test', 'fixtures', 'parity', `${model.name}.json`), 'utf8')) as {
      shape: number[], input: number[], logits: number[][], [score: string]: unknown
    }
    const session = await ort.InferenceSession.create(model.onnxPath, { executionProviders: ['cpu'] })
    t.teardown(async () => await session.release())
    t.same(session.inputNames, [model.input.name])
    const scores = scoreOutputsOf(model.output)
    t.same(session.outputNames, [model.output.name, ...scores.map((s) => s.name)])
    const input = new ort.Tensor('float32', Float32Array.from(fixture.input), fixture.shape)
    const outputs = await session.run({ [model.input.name]: input })
    const out = outputs[model.output.name]!
    const logits = out.data as Float32Array
    t.same(out.dims, [fixture.shape[0], model.labels.length])
    let worst = 0
    fixture.logits.flat().forEach((v, i) => { worst = Math.max(worst, Math.abs(v - logits[i]!)) })
    t.comment(`max |Δ| = ${worst.toExponential(2)}`)
    t.ok(worst <= 1e-4, `max |Δ| ${worst} ≤ 1e-4`)
    if (model.output.holds === 'negative-distances') t.ok([...logits].every((v) => v <= 0), 'negative distances are ≤ 0')
    for (const { kind, name: output } of scores) {
      const expected = fixture[kind] as number[]
      const got = outputs[output]!.data as Float32Array
      t.same(outputs[output]!.dims, [fixture.shape[0]], `${output}: one score per image`)
      const rel = Math.max(...expected.map((v, i) => Math.abs(v - got[i]!) / Math.max(1, Math.abs(v))))
      t.comment(`${kind}: max relative |Δ| = ${rel.toExponential(2)}`)
      t.ok(rel <= 1e-4, `${kind}: max relative |Δ| ${rel} ≤ 1e-4`)
    }
  })
}
