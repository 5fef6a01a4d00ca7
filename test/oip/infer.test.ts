// The Open Inference Protocol routes with the real models (app.inject): metadata and health,
// inference from encoded images (JSON base64, binary, raw) and from tensors (JSON, binary),
// requested outputs, the classification extension — every value equal to what POST /classify
// answers for the same image — and the errors, in the protocol's shape.
import t from 'tap'
import { writeBytesElements } from '../../src/protocols/oip/bytes-elements.js'
import { preprocess } from '../../src/preprocess/preprocess.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { build } from '../helpers/build.js'
import { MANIFEST } from '../helpers/data.js'
import { fixturePng } from '../helpers/images.js'

const app = await build(t)
const manifest = await loadManifest(MANIFEST)
const NAME = manifest.defaultModel
const model = manifest.models.get(NAME)!
const images = [0, 1, 2, 3].map((i) => fixturePng(i))
const url = `/v2/models/${NAME}/infer`

async function infer (json: object, binary?: Buffer): Promise<{ status: number, json: any, binary: Buffer }> {
  const header = Buffer.from(JSON.stringify(json))
  const res = await app.inject({
    method: 'POST',
    url,
    payload: binary === undefined ? header : Buffer.concat([header, binary]),
    headers: binary === undefined ? { 'content-type': 'application/json' } : { 'inference-header-content-length': String(header.length) }
  })
  const n = res.headers['inference-header-content-length']
  const raw = res.rawPayload
  return n === undefined
    ? { status: res.statusCode, json: res.json(), binary: Buffer.alloc(0) }
    : { status: res.statusCode, json: JSON.parse(raw.subarray(0, Number(n)).toString()), binary: raw.subarray(Number(n)) }
}

const outputOf = (json: any, name: string): any => json.outputs.find((o: any) => o.name === name)
const classify = async (png: Buffer): Promise<any> => (await app.inject({ method: 'POST', url: '/classify', payload: png, headers: { 'content-type': 'image/png' } })).json()

t.test('server and model metadata, health, readiness', async (t) => {
  t.same((await app.inject('/v2')).json(), { name: 'isomax-serve', version: '0.1.0', extensions: ['binary_tensor_data', 'classification', 'model_configuration', 'statistics'] })
  t.equal((await app.inject('/v2/health/live')).statusCode, 200)
  t.equal((await app.inject('/v2/health/ready')).statusCode, 200)
  const meta = (await app.inject(`/v2/models/${NAME}`)).json()
  t.match(meta, { name: NAME, versions: [model.version], platform: 'onnx_onnxv1' })
  t.same(meta.inputs, [{ name: 'image', datatype: 'BYTES', shape: [-1, 1] }], 'the one input a request requires (the FP32 alternative is named in the config)')
  t.same(meta.outputs.map((o: any) => o.name), ['logits', 'label', 'class_index', 'ood_score', 'ood_threshold', 'ood_reject', 'ood_p_value', 'min_distance', 'confidence', 'confidence_threshold', 'reject', 'reject_reasons'])
  t.equal((await app.inject(`/v2/models/${NAME}/versions/${model.version}/ready`)).statusCode, 200)
  const wrongVersion = await app.inject(`/v2/models/${NAME}/versions/9.9/ready`)
  t.equal(wrongVersion.statusCode, 404)
  t.match(wrongVersion.json(), { error: /has no version "9\.9"; it serves version "1\.0\.0"/ })
  t.same(Object.keys((await app.inject('/v2/models/nope')).json()), ['error'])
})

t.test('encoded images in binary: every output equals what POST /classify answers', async (t) => {
  const data = writeBytesElements(images)
  const res = await infer({ id: 'req-7', inputs: [{ name: 'image', shape: [images.length], datatype: 'BYTES', parameters: { binary_data_size: data.length } }] }, data)
  t.equal(res.status, 200)
  t.equal(res.json.id, 'req-7', 'the id is echoed')
  t.same(res.json.parameters, { ood_score_kind: model.ood.score, ood_calibration: model.ood.classThresholds !== undefined ? 'per-class' : 'global' })
  for (const v of Object.values(res.json.parameters)) t.ok(['string', 'number', 'boolean'].includes(typeof v), 'parameters are scalars, as the protocol requires')
  const expected = await Promise.all(images.map(classify))
  t.same(outputOf(res.json, 'label').data, expected.map((e) => e.label))
  t.same(outputOf(res.json, 'class_index').data, expected.map((e) => e.classIndex))
  t.same(outputOf(res.json, 'ood_reject').data, expected.map((e) => e.ood.reject))
  t.same(outputOf(res.json, 'ood_threshold').data, expected.map((e) => Math.fround(e.ood.threshold)), 'each image\'s threshold, as /classify applied it')
  outputOf(res.json, 'ood_score').data.forEach((s: number, i: number) => t.ok(Math.abs(s - expected[i].ood.score) < 1e-6, `score ${i}`))
  outputOf(res.json, 'ood_p_value').data.forEach((p: number, i: number) => t.ok(Math.abs(p - expected[i].ood.pValue) < 1e-6, `p-value ${i}`))
  outputOf(res.json, 'min_distance').data.forEach((d: number, i: number) => t.ok(Math.abs(d - expected[i].ood.minDistance) < 1e-6, `distance ${i}`))
  t.same(outputOf(res.json, 'logits').shape, [4, 10])
  // The verdict over both reasons, as /classify gives it.
  t.same(outputOf(res.json, 'reject').data, expected.map((e) => e.reject))
  t.same(outputOf(res.json, 'reject_reasons').data, expected.map((e) => e.rejectReasons.join(',')))
  t.same(outputOf(res.json, 'confidence').data, expected.map((e) => Math.fround(e.confidence.value)))
  t.same(outputOf(res.json, 'confidence_threshold').data, expected.map((e) => Math.fround(e.confidence.threshold)))
  t.same(outputOf(res.json, 'reject_reasons').datatype, 'BYTES')
})

t.test('the same images as base64 JSON, and one as a raw binary body', async (t) => {
  const res = await infer({ inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: images.slice(0, 2).map((b) => b.toString('base64')) }] })
  t.equal(res.status, 200)
  const raw = await app.inject({ method: 'POST', url, payload: images[0], headers: { 'inference-header-content-length': '0' } })
  t.equal(raw.statusCode, 200)
  t.same(outputOf(raw.json(), 'label').data, [outputOf(res.json, 'label').data[0]])
})

t.test('preprocessed tensors as JSON (flat and nested) and binary give the images\' results', async (t) => {
  const tensors = await Promise.all(images.slice(0, 2).map(async (png) => (await preprocess(png, model.input, { maxInputPixels: 40_000_000 })).tensor))
  const flat = [...tensors[0]!, ...tensors[1]!]
  const nested = tensors.map((x) => [Array.from({ length: 28 }, (_, r) => Array.from(x.subarray(r * 28, (r + 1) * 28)))])
  const bin = Buffer.from(Float32Array.from(flat).buffer)
  const fromImages = await infer({ inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: images.slice(0, 2).map((b) => b.toString('base64')) }], outputs: [{ name: 'logits' }] })
  for (const [label, res] of [
    ['flat JSON', await infer({ inputs: [{ name: 'input', shape: [2, 1, 28, 28], datatype: 'FP32', data: flat }], outputs: [{ name: 'logits' }] })],
    ['nested JSON', await infer({ inputs: [{ name: 'input', shape: [2, 1, 28, 28], datatype: 'FP32', data: nested }], outputs: [{ name: 'logits' }] })],
    ['binary', await infer({ inputs: [{ name: 'input', shape: [2, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: bin.length } }], outputs: [{ name: 'logits' }] }, bin)]
  ] as const) {
    t.equal(res.status, 200, label)
    t.same(res.json.outputs.map((o: any) => o.name), ['logits'], `${label}: only the requested output`)
    t.same(outputOf(res.json, 'logits').data, outputOf(fromImages.json, 'logits').data, label)
  }
})

t.test('binary outputs and the classification extension', async (t) => {
  const data = writeBytesElements(images.slice(0, 2))
  const res = await infer({
    inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: data.length } }],
    outputs: [{ name: 'ood_score', parameters: { binary_data: true } }, { name: 'class_index', parameters: { binary_data: true } }, { name: 'logits', parameters: { classification: 3 } }]
  }, data)
  t.equal(res.status, 200)
  const [score, index] = [outputOf(res.json, 'ood_score'), outputOf(res.json, 'class_index')]
  t.same([score.parameters.binary_data_size, index.parameters.binary_data_size], [8, 16])
  t.equal(res.binary.length, 24)
  const scores = new Float32Array(res.binary.buffer.slice(res.binary.byteOffset, res.binary.byteOffset + 8))
  const indices = new BigInt64Array(res.binary.buffer.slice(res.binary.byteOffset + 8, res.binary.byteOffset + 24))
  const expected = await Promise.all(images.slice(0, 2).map(classify))
  t.same([...indices].map(Number), expected.map((e) => e.classIndex))
  scores.forEach((s, i) => t.ok(Math.abs(s - expected[i].ood.score) < 1e-6))
  const top = outputOf(res.json, 'logits')
  t.same(top.shape, [2, 3])
  t.match(top.data[0], new RegExp(`^-?[0-9.]+(e-?\\d+)?:${expected[0].classIndex}:${expected[0].label.replace('/', '\\/')}$`))
  const all = await infer({ parameters: { binary_data_output: true }, inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [images[0]!.toString('base64')] }] })
  t.ok(all.json.outputs.every((o: any) => o.parameters?.binary_data_size > 0), 'binary_data_output: every output in binary')
})

const bad: Array<[string, () => Promise<{ status: number, json: any }>, number, RegExp]> = [
  ['an unknown model', async () => { const r = await app.inject({ method: 'POST', url: '/v2/models/nope/infer', payload: '{}', headers: { 'content-type': 'application/json' } }); return { status: r.statusCode, json: r.json() } }, 404, /"nope"/],
  ['not JSON', async () => { const r = await app.inject({ method: 'POST', url, payload: '{"inputs":', headers: { 'content-type': 'application/json' } }); return { status: r.statusCode, json: r.json() } }, 400, /not valid JSON/],
  ['no inputs', async () => await infer({ inputs: [] }), 400, /inputs/],
  ['an unknown input', async () => await infer({ inputs: [{ name: 'pixels', shape: [1], datatype: 'BYTES', data: ['aGk='] }] }), 400, /unknown input "pixels"/],
  ['a wrong tensor shape', async () => await infer({ inputs: [{ name: 'input', shape: [1, 1, 32, 32], datatype: 'FP32', data: [] }] }), 400, /shape must be \[N, 1, 28, 28\]/],
  ['too few values', async () => await infer({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: [1, 2, 3] }] }), 400, /data has 3 values, the shape says 784/],
  ['a string among floats', async () => await infer({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: [...Array(783).fill(0), 'x'] }] }), 400, /value 783 is not a finite number/],
  ['non-base64 image', async () => await infer({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: ['%%%'] }] }), 400, /not base64/],
  ['an image that is not one', async () => await infer({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [Buffer.from('hello').toString('base64')] }] }), 400, /not a PNG, JPEG or WebP/],
  ['a GIF', async () => await infer({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [Buffer.from('GIF89a....').toString('base64')] }] }), 415, /GIF/],
  ['too many images', async () => await infer({ inputs: [{ name: 'image', shape: [17], datatype: 'BYTES', data: [] }] }), 400, /between 1 and 16 images/],
  ['an unknown output', async () => await infer({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [images[0]!.toString('base64')] }], outputs: [{ name: 'probs' }] }), 400, /unknown output "probs"/],
  ['classification out of range', async () => await infer({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [images[0]!.toString('base64')] }], outputs: [{ name: 'logits', parameters: { classification: 11 } }] }), 400, /from 1 to 10/],
  ['binary sizes that do not add up', async () => await infer({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 100 } }] }, Buffer.alloc(10)), 400, /only 10 bytes/]
]

for (const [name, send, status, message] of bad) {
  t.test(`${name} → ${status} in the protocol's error shape`, async (t) => {
    const res = await send()
    t.equal(res.status, status)
    t.same(Object.keys(res.json), ['error'])
    t.match(res.json.error, message)
  })
}

t.test('the verdict over both reasons, on images that fire them: as POST /classify, in JSON and binary', async (t) => {
  const { readFileSync } = await import('node:fs')
  const path = await import('node:path')
  const { REPO } = await import('../helpers/data.js')
  const digit = readFileSync(path.join(REPO, 'test', 'fixtures', 'ood', 'mnist-digit-7.png'))
  const batch = [digit, images[0]!]
  const expected = await Promise.all(batch.map(classify))
  t.same(expected.map((e) => e.rejectReasons), [['ood', 'uncertain'], []], 'a digit fires both reasons; a boot none')
  const res = await infer({ inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: batch.map((b) => b.toString('base64')) }], outputs: [{ name: 'reject' }, { name: 'reject_reasons' }, { name: 'confidence', parameters: { binary_data: true } }] })
  t.equal(res.status, 200)
  t.same(outputOf(res.json, 'reject').data, [true, false])
  t.same(outputOf(res.json, 'reject_reasons').data, ['ood,uncertain', ''])
  const conf = outputOf(res.json, 'confidence')
  t.same(conf.parameters, { binary_data_size: 8 })
  t.same(Array.from(new Float32Array(res.binary.buffer.slice(res.binary.byteOffset, res.binary.byteOffset + 8))), expected.map((e) => Math.fround(e.confidence.value)))
})
