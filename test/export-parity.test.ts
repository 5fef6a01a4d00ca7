// Export parity: each shipped ONNX file, run by onnxruntime-node, reproduces torch's logits
// (written by training/export.py at export time) on real Fashion-MNIST test images; a model
// with a post-hoc detector in its graph (output.scores) reproduces that score too (written by
// training/posthoc.py). An INT8 variant (`models quantize`) is not bit-exact with its float
// model: its fixture holds both models' outputs and the tolerances it is held to.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import ort from 'onnxruntime-node'
import t from 'tap'
import { loadManifest } from '../src/registry/load-manifest.js'
import { scoreOutputsOf } from '../src/registry/manifest-schema.js'
import { MANIFEST, REPO } from './helpers/data.js'

const manifest = await loadManifest(MANIFEST)

interface QuantizedFixture {
  shape: number[],
  input: number[],
  outputs: Record<string, number[]>,
  float: Record<string, number[]>,
  tolerance: { runtime: { maxAbs: number }, float: { logitsMaxAbs: number, scoresMaxRel: number, sameClass: boolean } }
}

// ONNX Runtime picks its int8 kernels by CPU; without VNNI the u8×s8 products go through
// 16-bit saturating adds (AVX2 vpmaddubsw), which can round differently from the VNNI kernels
// the fixture was made with. The float tolerances hold either way; the exact replay only here.
const vnni = /\b(avx512_vnni|avx_vnni)\b/.test((() => { try { return readFileSync('/proc/cpuinfo', 'utf8') } catch { return '' } })())

for (const model of manifest.models.values()) {
  const fixtureFile = path.join(REPO, 'test', 'fixtures', 'parity', `${model.name}.json`)
  const raw = JSON.parse(readFileSync(fixtureFile, 'utf8')) as Record<string, unknown>
  if (raw.tolerance !== undefined) {
    t.test(`${model.name}: INT8 outputs within the fixture's tolerances of the float model, same class`, async (t) => {
      const fixture = raw as unknown as QuantizedFixture
      const session = await ort.InferenceSession.create(model.onnxPath, { executionProviders: ['cpu'] })
      t.teardown(async () => await session.release())
      const input = new ort.Tensor('float32', Float32Array.from(fixture.input), fixture.shape)
      const outputs = await session.run({ [model.input.name]: input })
      const classes = model.labels.length
      for (const name of [model.output.name, ...scoreOutputsOf(model.output).map((s) => s.name)]) {
        const got = outputs[name]!.data as Float32Array
        const own = Math.max(...fixture.outputs[name]!.map((v, i) => Math.abs(v - got[i]!)))
        t.comment(`${name}: max |Δ| against its own recorded outputs ${own.toExponential(2)}${vnni ? '' : ' (no VNNI here: reported, not asserted)'}`)
        if (vnni) t.ok(own <= fixture.tolerance.runtime.maxAbs, `${name}: max |Δ| ${own} ≤ ${fixture.tolerance.runtime.maxAbs} against the recorded INT8 outputs`)
        const ref = fixture.float[name]!
        if (name === model.output.name) {
          const worst = Math.max(...ref.map((v, i) => Math.abs(v - got[i]!)))
          t.ok(worst <= fixture.tolerance.float.logitsMaxAbs, `logits: max |Δ| ${worst} ≤ ${fixture.tolerance.float.logitsMaxAbs} against the float model`)
          for (let i = 0; i < fixture.shape[0]!; i++) {
            const row = (a: ArrayLike<number>): number[] => Array.from({ length: classes }, (_, c) => a[i * classes + c]!)
            const top = (r: number[]): number => r.indexOf(Math.max(...r))
            t.equal(top(row(got)), top(row(ref)), `image ${i}: the same class as the float model`)
          }
        } else {
          const rel = Math.max(...ref.map((v, i) => Math.abs(v - got[i]!) / Math.max(1, Math.abs(v))))
          t.ok(rel <= fixture.tolerance.float.scoresMaxRel, `${name}: max relative |Δ| ${rel} ≤ ${fixture.tolerance.float.scoresMaxRel} against the float model`)
        }
      }
    })
    continue
  }
  t.test(`${model.name}: ONNX logits match torch within 1e-4`, async (t) => {
    const fixture = raw as {
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
