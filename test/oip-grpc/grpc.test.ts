// The Open Inference Protocol over gRPC with the real models and a real gRPC client over a real
// port: every RPC, inference from encoded images and FP32 tensors (typed contents and
// raw_input_contents, typed and raw outputs) with every value equal to POST /classify's and to
// the /v2 HTTP route's, errors as status codes from the catalogue, hostile messages with an
// event-loop probe, the metrics' protocol label, and the health service.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { status as Status } from '@grpc/grpc-js'
import t, { type Test } from 'tap'
import { writeBytesElements } from '../../src/protocols/oip/bytes-elements.js'
import { preprocess } from '../../src/preprocess/preprocess.js'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { build } from '../helpers/build.js'
import { MANIFEST } from '../helpers/data.js'
import { grpcClients } from '../helpers/grpc-client.js'
import { bombPng, fixturePng } from '../helpers/images.js'

const MAX_REQUEST_BYTES = 2 * 1024 * 1024
const app = await build(t, { GRPC_PORT: '0', HOST: '127.0.0.1', MAX_UPLOAD_BYTES: String(MAX_REQUEST_BYTES) })
const port = await app.grpc.listen()
const httpUrl = await app.listen({ port: 0, host: '127.0.0.1' })
const client = grpcClients(`127.0.0.1:${port!}`)
t.teardown(() => client.close())
const manifest = await loadManifest(MANIFEST)
const NAME = manifest.defaultModel
const model = manifest.models.get(NAME)!
const images = Array.from({ length: 16 }, (_, i) => fixturePng(i % 8))

const classify = async (png: Buffer): Promise<any> => (await app.inject({ method: 'POST', url: '/classify', payload: png, headers: { 'content-type': 'image/png' } })).json()
const output = (res: any, name: string): any => res.outputs.find((o: any) => o.name === name)

/** An output's values, from typed contents or raw_output_contents. */
function values (res: any, name: string): unknown[] {
  const i = res.outputs.findIndex((o: any) => o.name === name)
  const o = res.outputs[i]
  if ((res.raw_output_contents ?? []).length === 0) return Object.values(o.contents)[0] as unknown[]
  const raw: Buffer = res.raw_output_contents[i]
  switch (o.datatype) {
    case 'FP32': return Array.from({ length: raw.length / 4 }, (_, k) => raw.readFloatLE(k * 4))
    case 'INT64': return Array.from({ length: raw.length / 8 }, (_, k) => Number(raw.readBigInt64LE(k * 8)))
    case 'BOOL': return [...raw].map((b) => b === 1)
    default: {
      const out: string[] = []
      for (let k = 0; k < raw.length;) { const n = raw.readUInt32LE(k); out.push(raw.subarray(k + 4, k + 4 + n).toString()); k += 4 + n }
      return out
    }
  }
}
const text = (v: unknown[]): string[] => v.map((x) => Buffer.isBuffer(x) ? x.toString() : String(x))

async function expectSameAsClassify (t: Test, res: any, pngs: Buffer[]): Promise<void> {
  const expected = await Promise.all(pngs.map(classify))
  t.same(text(values(res, 'label')), expected.map((e) => e.label), 'labels')
  t.same(values(res, 'class_index'), expected.map((e) => e.classIndex), 'class indices')
  t.same(values(res, 'ood_reject'), expected.map((e) => e.ood.reject), 'rejects')
  t.same(values(res, 'ood_threshold'), expected.map((e) => Math.fround(e.ood.threshold)), 'thresholds')
  t.same(values(res, 'reject'), expected.map((e) => e.reject), 'the one reject')
  t.same(text(values(res, 'reject_reasons')), expected.map((e) => e.rejectReasons.join(',')), 'its reasons')
  t.same(values(res, 'confidence_threshold'), expected.map((e) => Math.fround(e.confidence.threshold)), 'confidence thresholds')
  const close = (name: string, want: number[]): void => {
    const got = values(res, name) as number[]
    t.ok(got.length === want.length && got.every((v, i) => Math.abs(v - want[i]!) < 1e-6), `${name} equals /classify's`)
  }
  close('ood_score', expected.map((e) => e.ood.score))
  close('ood_p_value', expected.map((e) => e.ood.pValue))
  close('min_distance', expected.map((e) => e.ood.minDistance))
  close('confidence', expected.map((e) => e.confidence.value))
}

t.test('live, ready, metadata, config and statistics equal the /v2 routes', async (t) => {
  t.same((await client.call('ServerLive', {})).response, { live: true })
  t.same((await client.call('ServerReady', {})).response, { ready: true })
  t.same((await client.call('ServerMetadata', {})).response, (await app.inject('/v2')).json())
  t.same((await client.call('ModelReady', { name: NAME })).response, { ready: true })
  t.same((await client.call('ModelReady', { name: NAME, version: model.version })).response, { ready: true })
  t.same((await client.call('ModelMetadata', { name: NAME })).response, (await app.inject(`/v2/models/${NAME}`)).json())
  const config = (await client.call('ModelConfig', { name: NAME })).response.config
  const http = (await app.inject(`/v2/models/${NAME}/config`)).json()
  t.equal(config.max_batch_size, http.max_batch_size)
  t.same(config.input.map((i: any) => [i.name, i.data_type, i.dims]), http.input.map((i: any) => [i.name, i.data_type, i.dims]))
  t.same(config.output.map((o: any) => [o.name, o.data_type, o.dims]), http.output.map((o: any) => [o.name, o.data_type, o.dims]))
  t.same(config.parameters, http.parameters)
  t.same(config.dynamic_batching.preferred_batch_size, http.dynamic_batching.preferred_batch_size)
  const stats = (await client.call('ModelStatistics', { name: NAME })).response
  t.equal(stats.model_stats[0].name, NAME)
  t.type(stats.model_stats[0].inference_stats.success.count, 'number')
  t.equal((await client.call('ModelStatistics', {})).response.model_stats.length, manifest.models.size, 'no name: every served model')
})

t.test('encoded images in bytes_contents: typed outputs equal POST /classify', async (t) => {
  const pngs = images.slice(0, 4)
  const { response, error } = await client.call('ModelInfer', { model_name: NAME, id: 'req-1', inputs: [{ name: 'image', datatype: 'BYTES', shape: [4], contents: { bytes_contents: pngs } }] })
  t.equal(error, undefined)
  t.equal(response.id, 'req-1')
  t.equal((response.raw_output_contents ?? []).length, 0, 'typed in, typed out')
  t.same(response.outputs.map((o: any) => o.name), ['logits', 'label', 'class_index', 'ood_score', 'ood_threshold', 'ood_reject', 'ood_p_value', 'min_distance', 'confidence', 'confidence_threshold', 'reject', 'reject_reasons'])
  t.same(output(response, 'logits').shape, [4, 10])
  t.same(response.parameters.ood_score_kind, { string_param: model.ood.score, parameter_choice: 'string_param' })
  await expectSameAsClassify(t, response, pngs)
})

t.test('the one reject over gRPC: a digit fires both reasons, a boot none, as POST /classify says', async (t) => {
  const digit = readFileSync(path.join(path.dirname(MANIFEST), '..', 'test', 'fixtures', 'ood', 'mnist-digit-7.png'))
  const batch = [digit, images[0]!]
  const { response, error } = await client.call('ModelInfer', { model_name: NAME, inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], contents: { bytes_contents: batch } }] })
  t.equal(error, undefined)
  t.same(text(values(response, 'reject_reasons')), ['ood,uncertain', ''])
  t.same(values(response, 'reject'), [true, false])
  await expectSameAsClassify(t, response, batch)
})

for (const n of [1, 7, 16]) {
  t.test(`encoded images in raw_input_contents, batch ${n} ([N, 1] as tritonclient sends): raw outputs equal POST /classify`, async (t) => {
    const pngs = images.slice(0, n)
    const { response, error } = await client.call('ModelInfer', { model_name: NAME, inputs: [{ name: 'image', datatype: 'BYTES', shape: [n, 1] }], raw_input_contents: [writeBytesElements(pngs)] })
    t.equal(error, undefined)
    t.equal(response.raw_output_contents.length, response.outputs.length, 'raw in, raw out (every output)')
    await expectSameAsClassify(t, response, pngs)
  })
}

t.test('FP32 tensors, typed and raw, give the logits the images give; the classification extension', async (t) => {
  const pngs = images.slice(0, 3)
  const tensors = await Promise.all(pngs.map(async (png) => (await preprocess(png, model.input, { maxInputPixels: 40_000_000 })).tensor))
  const flat = Float32Array.from(tensors.flatMap((x) => Array.from(x)))
  const shape = [3, model.input.channels, model.input.height, model.input.width]
  const typed = await client.call('ModelInfer', { model_name: NAME, inputs: [{ name: model.input.name, datatype: 'FP32', shape, contents: { fp32_contents: Array.from(flat) } }] })
  const raw = await client.call('ModelInfer', { model_name: NAME, inputs: [{ name: model.input.name, datatype: 'FP32', shape }], raw_input_contents: [Buffer.from(flat.buffer)] })
  const fromImages = await client.call('ModelInfer', { model_name: NAME, inputs: [{ name: 'image', datatype: 'BYTES', shape: [3], contents: { bytes_contents: pngs } }] })
  t.same(values(typed.response, 'logits'), values(fromImages.response, 'logits'))
  t.same(values(raw.response, 'logits'), values(fromImages.response, 'logits'))
  await expectSameAsClassify(t, raw.response, pngs)
  const top = await client.call('ModelInfer', {
    model_name: NAME,
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [3], contents: { bytes_contents: pngs } }],
    outputs: [{ name: 'logits', parameters: { classification: { int64_param: 2 } } }, { name: 'label' }]
  })
  t.same(output(top.response, 'logits').shape, [3, 2])
  const expected = await Promise.all(pngs.map(classify))
  t.same(text(values(top.response, 'logits')).filter((_, i) => i % 2 === 0).map((s) => s.split(':').slice(1).join(':')), expected.map((e) => `${e.classIndex}:${e.label}`))
  const binary = await client.call('ModelInfer', { model_name: NAME, parameters: { binary_data_output: { bool_param: true } }, inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [pngs[0]] } }] })
  t.equal(binary.response.raw_output_contents.length, binary.response.outputs.length, 'binary_data_output: raw outputs for typed inputs')
  t.equal(binary.response.outputs.length, 12, 'every output')
})

/** Status code and message of a failed ModelInfer. */
async function refused (request: object): Promise<{ code: number, message: string, retryAfter?: string }> {
  const { error } = await client.call('ModelInfer', { model_name: NAME, ...request })
  if (error === undefined) throw new Error('the call succeeded')
  return { code: error.code, message: error.details, retryAfter: error.metadata.get('retry-after')[0] as string | undefined }
}

t.test('errors are the catalogue\'s, as gRPC status codes, with the HTTP route\'s messages', async (t) => {
  const nope = await client.call('ModelMetadata', { name: 'nope' })
  t.equal(nope.error?.code, Status.NOT_FOUND)
  t.match(nope.error?.details, /Model "nope" is not served here/)
  t.equal((await client.call('ModelInfer', { model_name: 'nope', inputs: [] })).error?.code, Status.NOT_FOUND)
  const version = await client.call('ModelReady', { name: NAME, version: '9.9' })
  t.equal(version.error?.code, Status.NOT_FOUND)
  t.match(version.error?.details, /has no version "9\.9"/)
  const noInput = await refused({ inputs: [] })
  t.same([noInput.code, noInput.message], [Status.INVALID_ARGUMENT, `the model takes one input, "image" (BYTES) or "${model.input.name}" (FP32); got 0`])
  const unknownOutput = await refused({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [images[0]] } }], outputs: [{ name: 'nope' }] })
  t.equal(unknownOutput.code, Status.INVALID_ARGUMENT)
  t.match(unknownOutput.message, /unknown output "nope"/)
  const notImage = await refused({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('not an image')] } }] })
  const http = await app.inject({ method: 'POST', url: '/classify', payload: Buffer.from('not an image'), headers: { 'content-type': 'image/png' } })
  t.equal(notImage.code, http.statusCode === 415 ? Status.INVALID_ARGUMENT : Status.INVALID_ARGUMENT)
  const bomb = await refused({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [bombPng()] } }] })
  t.equal(bomb.code, Status.RESOURCE_EXHAUSTED, 'an image over the decode limits: 413 → RESOURCE_EXHAUSTED')
  // Closing (past the drain delay): every new call is UNAVAILABLE with retry information.
  app.lifecycle.closing = true
  const closing = await client.call('ModelInfer', { model_name: NAME, inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [images[0]] } }] })
  app.lifecycle.closing = false
  t.equal(closing.error?.code, Status.UNAVAILABLE)
  t.match(closing.error?.details, /shutting down; retry on another replica/)
  t.equal(closing.error?.metadata.get('retry-after')[0], '1', 'retry-after, as HTTP\'s header')
  const details = closing.error?.metadata.get('grpc-status-details-bin')[0] as Buffer
  t.ok(details.includes(Buffer.from('type.googleapis.com/google.rpc.RetryInfo')), 'google.rpc.RetryInfo in grpc-status-details-bin')
  const repo = await client.call('RepositoryIndex', {})
  t.equal(repo.error?.code, Status.UNIMPLEMENTED, 'no ADMIN_TOKEN: the repository RPCs do not exist')
})

t.test('hostile messages: a status code each, the event loop never stalls', async (t) => {
  // The probe of scripts/hostile-load.ts: GET /health/live every 20 ms while the messages go in.
  let worst = 0
  const probing = { on: true }
  const probe = (async () => {
    while (probing.on) {
      const t0 = performance.now()
      await fetch(`${httpUrl}/health/live`)
      worst = Math.max(worst, performance.now() - t0)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  const shape = [1, model.input.channels, model.input.height, model.input.width]
  const size = shape.reduce((a, b) => a * b, 1)
  const cases: Array<[string, object, number, RegExp]> = [
    ['truncated raw BYTES', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [2] }], raw_input_contents: [writeBytesElements(images.slice(0, 2)).subarray(0, 300)] }, Status.INVALID_ARGUMENT, /element 0 declares \d+ bytes, but only \d+ are left/],
    ['truncated raw FP32', { inputs: [{ name: model.input.name, datatype: 'FP32', shape }], raw_input_contents: [Buffer.alloc(size * 4 - 3)] }, Status.INVALID_ARGUMENT, /the data is \d+ bytes; FP32/],
    ['FP32 values in int_contents', { inputs: [{ name: model.input.name, datatype: 'FP32', shape, contents: { int_contents: new Array(size).fill(0) } }] }, Status.INVALID_ARGUMENT, /its values go in contents\.fp32_contents .* not contents\.int_contents/],
    ['wrong datatype', { inputs: [{ name: model.input.name, datatype: 'INT32', shape, contents: { int_contents: new Array(size).fill(0) } }] }, Status.INVALID_ARGUMENT, /unknown input "input" \(INT32\)/],
    ['shape/content mismatch', { inputs: [{ name: model.input.name, datatype: 'FP32', shape, contents: { fp32_contents: new Array(size - 1).fill(0) } }] }, Status.INVALID_ARGUMENT, /data has \d+ values, the shape says \d+/],
    ['bytes count mismatch', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [3], contents: { bytes_contents: images.slice(0, 2) } }] }, Status.INVALID_ARGUMENT, /2 elements, the shape \[3\] says 3/],
    ['NaN in fp32_contents', { inputs: [{ name: model.input.name, datatype: 'FP32', shape, contents: { fp32_contents: [NaN, ...new Array(size - 1).fill(0)] } }] }, Status.INVALID_ARGUMENT, /value 0 is not a finite number/],
    ['Infinity in raw FP32', { inputs: [{ name: model.input.name, datatype: 'FP32', shape }], raw_input_contents: [Buffer.from(Float32Array.from({ length: size }, (_, i) => i === 5 ? Infinity : 0).buffer)] }, Status.INVALID_ARGUMENT, /value 5 is Infinity/],
    ['huge declared shape', { inputs: [{ name: model.input.name, datatype: 'FP32', shape: [2 ** 31, ...shape.slice(1)] }], raw_input_contents: [Buffer.alloc(16)] }, Status.INVALID_ARGUMENT, /between 1 and 16 samples/],
    ['2^50 in a shape', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [2 ** 50] }], raw_input_contents: [Buffer.alloc(16)] }, Status.INVALID_ARGUMENT, /not a whole number from 0 to 2\^31/],
    ['negative shape', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [-1] }], raw_input_contents: [Buffer.alloc(16)] }, Status.INVALID_ARGUMENT, /not a whole number from 0 to 2\^31/],
    ['rank 9', { inputs: [{ name: 'image', datatype: 'BYTES', shape: new Array(9).fill(1) }] }, Status.INVALID_ARGUMENT, /9 dimensions, at most 8/],
    ['no data', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }] }, Status.INVALID_ARGUMENT, /no data \(neither contents nor raw_input_contents\)/],
    ['two raw entries for one input', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [Buffer.alloc(4), Buffer.alloc(4)] }, Status.INVALID_ARGUMENT, /one per input/],
    ['oversized message', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }], raw_input_contents: [Buffer.alloc(MAX_REQUEST_BYTES + 1)] }, Status.RESOURCE_EXHAUSTED, /larger than max/]
  ]
  for (const [label, request, code, message] of cases) {
    const got = await refused(request)
    t.equal(got.code, code, `${label}: status ${Status[code]}`)
    t.match(got.message, message, `${label}: ${got.message}`)
  }
  // A message that is not protobuf at all: the client's fault, so INVALID_ARGUMENT, not INTERNAL.
  const garbage = await new Promise<any>((resolve) => {
    client.inference.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (x: Buffer) => x, (x: Buffer) => x, Buffer.from([0x3a, 0x0a, 0x01]), (err) => resolve(err))
  })
  t.equal(garbage?.code, Status.INVALID_ARGUMENT, 'a truncated protobuf message')
  t.match(garbage?.details, /not a valid message of \/inference\.GRPCInferenceService\/ModelInfer/)
  t.same((await client.call('ServerLive', {})).response, { live: true }, 'still serving')
  probing.on = false
  await probe
  t.ok(worst < 1000, `no /health/live probe over 1 s, the hostile-load script's bound (worst ${worst.toFixed(1)} ms; this process also runs the client)`)
})

t.test('the request metrics carry the protocol label', async (t) => {
  const text = (await app.inject('/metrics')).body
  t.match(text, /http_request_duration_seconds_count\{route="\/inference\.GRPCInferenceService\/ModelInfer",method="POST",status_code="200",protocol="oip-grpc"\} \d+/)
  t.match(text, /http_request_duration_seconds_count\{route="\/inference\.GRPCInferenceService\/ModelInfer",method="POST",status_code="400",protocol="oip-grpc"\} \d+/)
  t.match(text, /http_request_duration_seconds_count\{route="\/classify",method="POST",status_code="200",protocol="rest"\} \d+/)
  t.match(text, /route="\/v2",method="GET",status_code="200",protocol="oip-http"/)
  t.match(text, /isomax_predictions_total\{model="[^"]+",outcome="accepted"\} [1-9]/, 'gRPC predictions feed the same drift metrics')
})

t.test('grpc.health.v1.Health', async (t) => {
  t.same((await client.check('')).response, { status: 'SERVING' })
  t.same((await client.check('inference.GRPCInferenceService')).response, { status: 'SERVING' })
  t.equal((await client.check('other.Service')).error?.code, Status.NOT_FOUND)
  app.lifecycle.draining = true
  t.same((await client.check('')).response, { status: 'NOT_SERVING' }, 'draining: not serving, as readiness')
  t.same((await client.call('ServerReady', {})).response, { ready: false })
  app.lifecycle.draining = false
  const updates: string[] = []
  const watch = (client.health as any).Watch({ service: '' })
  watch.on('data', (m: any) => {
    updates.push(m.status)
    if (updates.length === 1) app.lifecycle.draining = true
    if (updates.length === 2) { app.lifecycle.draining = false; watch.cancel() }
  })
  await new Promise((resolve) => watch.on('error', resolve))
  t.same(updates, ['SERVING', 'NOT_SERVING'], 'Watch: the status at once, then its change')
})
