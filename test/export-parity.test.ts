// Export parity: each shipped ONNX file, run by onnxruntime-node, reproduces torch's logits
// (written by training/export.py at export time) on real Fashion-MNIST test images.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import ort from 'onnxruntime-node'
import t from 'tap'
import { loadManifest } from '../src/registry/load-manifest.js'
import { MANIFEST, REPO } from './helpers/data.js'

const manifest = await loadManifest(MANIFEST)

for (const model of manifest.models.values()) {
  t.test(`${model.name}: ONNX logits match torch within 1e-4`, async (t) => {
    const fixture = JSON.parse(readFileSync(path.join(REPO, 'test', 'fixtures', 'parity', `${model.name}.json`), 'utf8')) as {
      shape: number[], input: number[], logits: number[][]
    }
    const session = await ort.InferenceSession.create(model.onnxPath, { executionProviders: ['cpu'] })
    t.teardown(async () => await session.release())
    t.same(session.inputNames, [model.input.name])
    t.same(session.outputNames, [model.output.name])
    const input = new ort.Tensor('float32', Float32Array.from(fixture.input), fixture.shape)
    const out = (await session.run({ [model.input.name]: input }))[model.output.name]!
    const logits = out.data as Float32Array
    t.same(out.dims, [fixture.shape[0], model.labels.length])
    let worst = 0
    fixture.logits.flat().forEach((v, i) => { worst = Math.max(worst, Math.abs(v - logits[i]!)) })
    t.comment(`max |Δ| = ${worst.toExponential(2)}`)
    t.ok(worst <= 1e-4, `max |Δ| ${worst} ≤ 1e-4`)
    if (model.output.holds === 'negative-distances') t.ok([...logits].every((v) => v <= 0), 'negative distances are ≤ 0')
  })
}
