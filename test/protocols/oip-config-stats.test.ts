// Triton's model configuration and statistics extensions (issue 19) on the real models: the
// config states what a request may carry (max_batch_size = MAX_FILES, the one required input
// the metadata lists, "image"), and the statistics count every prediction of a model
// whatever protocol brought it — POST /classify and /v2 infer alike — and failures apart.
import t from 'tap'
import { build } from '../helpers/build.js'
import { fixturePng } from '../helpers/images.js'

const app = await build(t, { MAX_FILES: '12' })
const { default: name } = (await app.inject('/models')).json() as { default: string }

t.test('GET /v2 advertises the extensions', async (t) => {
  const meta = (await app.inject('/v2')).json() as { extensions: string[] }
  t.ok(meta.extensions.includes('model_configuration'))
  t.ok(meta.extensions.includes('statistics'))
})

t.test('metadata, config and the accepted request agree (what perf_analyzer relies on)', async (t) => {
  const meta = (await app.inject(`/v2/models/${name}`)).json()
  const config = (await app.inject(`/v2/models/${name}/config`)).json()
  // Triton's rule: the metadata shape is [-1] followed by the config's per-sample dims, and the
  // config lists no input the metadata lacks (perf_analyzer refuses the model otherwise).
  t.same(meta.inputs, config.input.map((i: { name: string, dims: number[] }) => ({ name: i.name, datatype: 'BYTES', shape: [-1, ...i.dims] })))
  const b64 = [fixturePng(0).toString('base64'), fixturePng(1).toString('base64')]
  for (const shape of [[2, 1], [2]]) {
    const res = await app.inject({ method: 'POST', url: `/v2/models/${name}/infer`, payload: { inputs: [{ name: 'image', datatype: 'BYTES', shape, data: b64 }] } })
    t.equal(res.statusCode, 200, `image shape [${shape.join(', ')}] accepted`)
  }
  const tooMany = await app.inject({ method: 'POST', url: `/v2/models/${name}/infer`, payload: { inputs: [{ name: 'image', datatype: 'BYTES', shape: [config.max_batch_size + 1, 1], data: new Array(config.max_batch_size + 1).fill(b64[0]) }] } })
  t.equal(tooMany.statusCode, 400, 'one sample more than max_batch_size is refused')
  t.match(tooMany.json(), { error: /between 1 and 12 images per request \(MAX_FILES\)/ })
  const wide = await app.inject({ method: 'POST', url: `/v2/models/${name}/infer`, payload: { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1, 2], data: b64 }] } })
  t.equal(wide.statusCode, 400)
  t.match(wide.json(), { error: /shape must be \[N\] or \[N, 1\]/ })
})

t.test('GET /v2/models/{name}/config: what the service really accepts', async (t) => {
  const res = await app.inject(`/v2/models/${name}/config`)
  t.equal(res.statusCode, 200)
  const config = res.json()
  t.equal(config.name, name)
  t.equal(config.max_batch_size, 12, 'MAX_FILES: the most samples one request may carry')
  t.same(config.input.map((i: { name: string, data_type: string, dims: number[], optional: boolean }) => [i.name, i.data_type, i.dims, i.optional]), [
    ['image', 'TYPE_STRING', [1], false]
  ])
  t.match(config.parameters.request_inputs.string_value, /exactly one of "image".*or "input" \(FP32 \[N, 1, 28, 28\]/)
  const out = Object.fromEntries(config.output.map((o: { name: string, data_type: string, dims: number[] }) => [o.name, [o.data_type, o.dims]]))
  t.same(out.logits, ['TYPE_FP32', [10]])
  t.same(out.ood_reject, ['TYPE_BOOL', [1]])
  t.same(out.label, ['TYPE_STRING', [1]])
  const batching = (await app.inject(`/models/${name}`)).json().batching as { maxBatchSize: number, maxQueueDelayMs: number }
  t.same(config.dynamic_batching.preferred_batch_size, [batching.maxBatchSize], 'the engine\'s batch, as GET /models/{name} says')
  t.equal(config.dynamic_batching.max_queue_delay_microseconds, batching.maxQueueDelayMs * 1000)
  t.equal(config.instance_group[0].count, 1)
  t.equal((await app.inject('/v2/models/nope/config')).statusCode, 404)
})

t.test('GET /v2/models/{name}/stats: every protocol\'s predictions, failures apart', async (t) => {
  const before = (await app.inject(`/v2/models/${name}/stats`)).json().model_stats[0]
  for (let i = 0; i < 3; i++) {
    t.equal((await app.inject({ method: 'POST', url: '/classify', payload: fixturePng(i), headers: { 'content-type': 'image/png' } })).statusCode, 200)
  }
  const b64 = [3, 4].map((i) => fixturePng(i).toString('base64'))
  const v2 = await app.inject({ method: 'POST', url: `/v2/models/${name}/infer`, payload: { inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], data: b64 }] } })
  t.equal(v2.statusCode, 200)
  const bad = await app.inject({ method: 'POST', url: '/classify', payload: Buffer.from('\x89PNG\r\n\x1a\nnot really'), headers: { 'content-type': 'image/png' } })
  t.equal(bad.statusCode, 400)
  const after = (await app.inject(`/v2/models/${name}/stats`)).json().model_stats[0]
  t.equal(after.name, name)
  t.equal(after.inference_count - before.inference_count, 5, '3 over /classify, 2 over /v2')
  const s = after.inference_stats
  // Triton counts success, fail and each stage per request, inference_count per sample.
  t.equal(s.success.count - before.inference_stats.success.count, 4, 'requests: 3 over /classify, 1 of 2 images over /v2')
  t.equal(s.fail.count - before.inference_stats.fail.count, 1, 'the undecodable image')
  for (const k of ['queue', 'compute_input', 'compute_infer', 'compute_output']) t.equal(s[k].count - before.inference_stats[k].count, 4, k)
  t.ok(s.compute_infer.ns > 0 && s.success.ns >= s.compute_infer.ns, 'nanoseconds, the whole at least the inference')
  t.ok(after.execution_count > before.execution_count && after.execution_count <= before.execution_count + 5, 'executions: batches')
  t.ok(after.last_inference > 0 && after.last_inference <= Date.now())
  const all = (await app.inject('/v2/models/stats')).json().model_stats as Array<{ name: string }>
  const served = ((await app.inject('/models')).json().models as Array<{ name: string }>).map((m) => m.name)
  t.same(all.map((m) => m.name).sort(), served.sort(), 'GET /v2/models/stats: every served model')
})
