import { spawnSync } from 'node:child_process'
import t from 'tap'
import { build, buildOver } from '../helpers/build.js'
import { fixturePng } from '../helpers/images.js'

const app = await build(t)

t.test('liveness and readiness', async (t) => {
  const live = await app.inject('/health/live')
  t.equal(live.statusCode, 200)
  t.same(live.json(), { status: 'live' })
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200)
  t.equal(ready.json().status, 'ready')
  t.same(ready.json().models.map((m: { name: string }) => m.name).sort(), ['fashion-mnist-isomax', 'fashion-mnist-isomaxplus', 'fashion-mnist-isomaxplus-md', 'fashion-mnist-isomaxplus-md-int8', 'fashion-mnist-isomaxplus-msd', 'fashion-mnist-softmax'])
  t.ok(ready.json().models.every((m: { provider: string }) => m.provider === 'cpu'))
})

t.test('readiness is 503 with a reason while draining', async (t) => {
  app.lifecycle.draining = true
  t.teardown(() => { app.lifecycle.draining = false })
  const res = await app.inject('/health/ready')
  t.equal(res.statusCode, 503)
  t.equal(res.json().status, 'not-ready')
  t.match(res.json().reason, /draining/)
})

t.test('once closing, requests get a JSON 503 with Connection: close', async (t) => {
  app.lifecycle.closing = true
  t.teardown(() => { app.lifecycle.closing = false })
  const res = await app.inject({ method: 'POST', url: '/classify', payload: fixturePng(0), headers: { 'content-type': 'image/png' } })
  t.equal(res.statusCode, 503)
  t.equal(res.headers.connection, 'close')
  t.equal(res.headers['retry-after'], '1')
  t.equal(res.json().error.code, 'ISOMAX_SHUTTING_DOWN')
})

t.test('GET /models lists every model with its input spec, score, threshold and provider', async (t) => {
  const res = await app.inject('/models')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.default, 'fashion-mnist-isomaxplus-md')
  t.equal(body.models.length, 6)
  for (const m of body.models) {
    t.equal(m.labels.length, 10)
    t.same([m.input.channels, m.input.height, m.input.width], [1, 28, 28])
    t.type(m.ood.threshold, 'number')
    t.ok(['mds', 'entropic', 'msp', 'maxlogit', 'mahalanobis'].includes(m.ood.score))
    t.equal(m.provider, 'cpu')
  }
})

t.test('GET /metrics is valid Prometheus text and counts what happened', async (t) => {
  for (let i = 0; i < 3; i++) {
    await app.inject({ method: 'POST', url: '/classify', payload: fixturePng(i), headers: { 'content-type': 'image/png' } })
  }
  await app.inject({ method: 'POST', url: '/classify', payload: 'x', headers: { 'content-type': 'text/plain' } })
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = res.body
  for (const name of ['http_request_duration_seconds', 'isomax_inference_duration_seconds', 'isomax_queue_wait_seconds',
    'isomax_batch_size', 'isomax_queue_depth', 'isomax_predictions_total', 'isomax_ood_score', 'isomax_ood_p_value',
    'isomax_models_loaded', 'isomax_model_provider', 'isomax_inference_workers', 'process_cpu_seconds_total']) {
    t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name)
  }
  t.match(text, /http_request_duration_seconds_count\{route="\/classify",method="POST",status_code="200",protocol="rest"\} 3/)
  t.match(text, /http_request_duration_seconds_count\{route="\/classify",method="POST",status_code="415",protocol="rest"\} 1/)
  const accepted = Number(/isomax_predictions_total\{model="fashion-mnist-isomaxplus-md",outcome="accepted"\} (\d+)/.exec(text)?.[1])
  const rejected = Number(/isomax_predictions_total\{model="fashion-mnist-isomaxplus-md",outcome="rejected"\} (\d+)/.exec(text)?.[1])
  t.equal(accepted + rejected, 3)
  t.match(text, /isomax_ood_score_count\{model="fashion-mnist-isomaxplus-md"\} 3/)
  t.match(text, /isomax_models_loaded 6/)
  t.match(text, /isomax_model_provider\{model="fashion-mnist-isomaxplus-md",provider="cpu"\} 1/)

  const promtool = spawnSync('promtool', ['--version'])
  t.equal(promtool.error, undefined, 'promtool is installed (Debian package prometheus; .ci/run installs it)')
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  t.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`)
})

t.test('readiness is 503 "models are still loading" until the engine has workers', async (t) => {
  const { app: loading } = await buildOver(t, { runner: { slots: 0 } })
  const res = await loading.inject('/health/ready')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { status: 'not-ready', reason: 'models are still loading' })
  t.equal((await loading.inject('/health/live')).statusCode, 200, 'liveness does not wait for models')
})
