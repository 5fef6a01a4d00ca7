// Issue 20, defect 3: non-finite FP32 numbers. In an input (JSON NaN is not JSON, but 1e39
// parses as a finite double and overflows in a Float32Array; binary NaN, ±Infinity) they are
// a 400 naming the element, for every served model; in a model's output (a bring-your-own
// model that computes NaN) they are a 422 ISOMAX_NON_FINITE_OUTPUT, never a 500, never
// counted as a prediction, and prom-client never sees them.
import t from 'tap'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { build, buildOver, simpleLogits } from '../helpers/build.js'
import { MANIFEST } from '../helpers/data.js'
import { fixturePng } from '../helpers/images.js'

const manifest = await loadManifest(MANIFEST)

async function infer (app: Awaited<ReturnType<typeof build>>, model: string, json: object, binary?: Buffer): Promise<{ status: number, json: any }> {
  const header = Buffer.from(JSON.stringify(json))
  const res = await app.inject({
    method: 'POST',
    url: `/v2/models/${model}/infer`,
    payload: binary === undefined ? header : Buffer.concat([header, binary]),
    headers: binary === undefined ? { 'content-type': 'application/json' } : { 'inference-header-content-length': String(header.length) }
  })
  return { status: res.statusCode, json: res.json() }
}

t.test('non-finite FP32 inputs: 400 naming the element, on every model', async (t) => {
  const app = await build(t)
  for (const [name, model] of manifest.models) {
    const { channels, height, width } = model.input
    const size = channels * height * width
    const shape = [1, channels, height, width]
    const tensor = { name: model.input.name, shape, datatype: 'FP32' }
    const json = Array.from({ length: size }, () => 0.5)
    json[17] = 1e39
    const big = await infer(app, name, { inputs: [{ ...tensor, data: json }] })
    t.equal(big.status, 400, `${name}: JSON 1e39`)
    t.match(big.json.error, new RegExp(`input "${model.input.name}": value 17 is 1e\\+39, beyond the FP32 range ±3\\.4028235e38 \\(element \\[0, 0, 0, 17\\]\\)`), name)
    for (const [value, where] of [[NaN, size - 1], [Infinity, 0], [-Infinity, 300]] as const) {
      const bin = new Float32Array(size).fill(0.5)
      bin[where] = value
      const data = Buffer.from(bin.buffer)
      const res = await infer(app, name, { inputs: [{ ...tensor, parameters: { binary_data_size: data.length } }] }, data)
      t.equal(res.status, 400, `${name}: binary ${value} at ${where}`)
      t.match(res.json.error, new RegExp(`value ${where} is ${String(value)} \\(element \\[[0-9, ]+\\]\\); FP32 inputs must be finite`), name)
    }
    // ±3e38 is a finite float32; what the model makes of it is its business, but never a 500.
    const huge = Buffer.from(Float32Array.from({ length: size }, (_, i) => (i % 2 === 0 ? 3e38 : -3e38)).buffer)
    const res = await infer(app, name, { inputs: [{ ...tensor, parameters: { binary_data_size: huge.length } }] }, huge)
    t.ok([200, 422].includes(res.status), `${name}: binary ±3e38 → ${res.status} (${JSON.stringify(res.json).slice(0, 160)})`)
  }
})

t.test('a model whose output is NaN: 422 ISOMAX_NON_FINITE_OUTPUT, not counted, no NaN in /metrics', async (t) => {
  // NaN logits for an all-black input (as a model that normalises its features by their norm
  // does), an infinite one for a bright pixel in the corner, ordinary logits otherwise.
  const { app } = await buildOver(t, {
    logits: (model, tensor) => {
      if (tensor.every((v) => v === tensor[0]) && tensor[0]! < 0) return new Array(10).fill(NaN)
      if (tensor[0]! > 2.5) return [Infinity, ...new Array(9).fill(-1)]
      return simpleLogits(model, tensor)
    }
  })
  const black = await import('sharp').then(async ({ default: sharp }) => await sharp({ create: { width: 28, height: 28, channels: 3, background: '#000' } }).png().toBuffer())
  const before = await app.inject('/metrics')
  const res = await app.inject({ method: 'POST', url: '/classify', payload: black, headers: { 'content-type': 'image/png' } })
  t.equal(res.statusCode, 422)
  t.equal(res.json().error.code, 'ISOMAX_NON_FINITE_OUTPUT')
  t.match(res.json().error.message, /the model's output for image is not finite \(logit 0 is NaN\)/)

  const NAME = manifest.defaultModel
  const v2 = await infer(app, NAME, { inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: [fixturePng(0).toString('base64'), black.toString('base64')] }] })
  t.equal(v2.status, 422)
  t.match(v2.json.error, /output for image 2 is not finite \(logit 0 is NaN\)/, 'the protocol shape, naming the image')
  const model = manifest.models.get(NAME)!
  const bright = new Float32Array(model.input.channels * model.input.height * model.input.width).fill(0.1)
  bright[0] = 3
  const inf = await infer(app, NAME, { inputs: [{ name: model.input.name, shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(bright) }] })
  t.equal(inf.status, 422)
  t.match(inf.json.error, /output for sample 0 is not finite \(logit 0 is Infinity\)/)

  const after = (await app.inject('/metrics')).body
  t.notMatch(after, /NaN/, 'no NaN reaches prom-client')
  const count = (text: string): number => [...text.matchAll(/^isomax_predictions_total\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0)
  t.equal(count(after), count(before.body) + 1, 'only the finite image of the three requests was counted')
  t.equal((await app.inject({ method: 'POST', url: '/classify', payload: fixturePng(0), headers: { 'content-type': 'image/png' } })).statusCode, 200, 'ordinary images still served')
})
