// ONNX Runtime's view of a post-hoc detector model (called by training/posthoc.py; Python's
// onnxruntime is not installable here, onnxruntime-node is the service's own runtime):
//   1. parity: every output of MODEL on the fixture's input against the values the training
//      side computed for it (max |Δ| and max relative |Δ| per output);
//   2. cost: median run time of BASE and MODEL, alternated, at batch 1 and 32, with the service's
//      session options (CPU, one intra-op thread, graph optimisation 'all').
// Usage: node training/ort_check.mjs BASE.onnx MODEL.onnx FIXTURE.json → one JSON object on stdout.
import { readFileSync } from 'node:fs'
import ort from 'onnxruntime-node'

const [base, model, fixturePath] = process.argv.slice(2)
const fixture = JSON.parse(readFileSync(fixturePath, 'utf8'))
const options = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 }
const sessions = { base: await ort.InferenceSession.create(base, options), model: await ort.InferenceSession.create(model, options) }
const inputName = sessions.model.inputNames[0]

const parity = {}
const out = await sessions.model.run({ [inputName]: new ort.Tensor('float32', Float32Array.from(fixture.input), fixture.shape) })
for (const name of sessions.model.outputNames) {
  const want = fixture[name].flat()
  const got = out[name].data
  let abs = 0; let rel = 0
  want.forEach((v, i) => { const d = Math.abs(v - got[i]); abs = Math.max(abs, d); rel = Math.max(rel, d / Math.max(Math.abs(v), 1e-12)) })
  parity[name] = { dims: out[name].dims, maxAbs: abs, maxRel: rel }
}

const timing = {}
for (const batch of [1, 32]) {
  const data = new Float32Array(batch * 784)
  for (let i = 0; i < data.length; i++) data[i] = fixture.input[i % fixture.input.length]
  const feeds = { [inputName]: new ort.Tensor('float32', data, [batch, 1, 28, 28]) }
  const times = { base: [], model: [] }
  const rounds = batch === 1 ? 2000 : 300
  for (let r = 0; r < rounds + 50; r++) {
    for (const which of r % 2 === 0 ? ['base', 'model'] : ['model', 'base']) {
      const t0 = process.hrtime.bigint()
      await sessions[which].run(feeds)
      if (r >= 50) times[which].push(Number(process.hrtime.bigint() - t0) / 1e6)
    }
  }
  const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)] }
  timing[batch] = { baseMs: median(times.base), modelMs: median(times.model), ratio: median(times.model) / median(times.base), rounds }
}
process.stdout.write(JSON.stringify({ outputs: sessions.model.outputNames, parity, timing }) + '\n')
