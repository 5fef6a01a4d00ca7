// Triton's model configuration and statistics extensions (issue 19) on the real models: the
// config states what a request may carry (max_batch_size = MAX_FILES, the two inputs, each
// optional since a request uses one), and the statistics count every prediction of a model
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

t.test('GET /v2/models/{name}/config: what the service really accepts', async (t) => {
  const res = await app.inject(`/v2/models/${name}/config`)
  t.equal(res.statusCode, 200)
  const config = res.json()
  t.equal(config.name, name)
  t.equal(config.max_batch_size, 12, 'MAX_FILES: the most samples one request may carry')
  t.same(config.input.map((i: { name: string, data_type: string, dims: number[], optional: boolean }) => [i.name, i.data_type, i.dims, i.optional]), [
    ['image', 'TYPE_STRING', [1], true],
    ['input', 'TYPE_FP32', [1, 28, 28], true]
  ])
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
