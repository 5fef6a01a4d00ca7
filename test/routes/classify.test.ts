import sharp from 'sharp'
import t from 'tap'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { build, buildOver, simpleLogits } from '../helpers/build.js'
import { MANIFEST, fashionTest, mnistDigits, png } from '../helpers/data.js'
import { bombPng, fixturePng, golden } from '../helpers/images.js'
import { copyModels, editManifest } from '../helpers/manifest-copy.js'
import { multipart } from '../helpers/multipart.js'

const app = await build(t, { MAX_UPLOAD_BYTES: String(2 * 1024 * 1024) })
const manifest = await loadManifest(MANIFEST)
const LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']

const post = async (url: string, payload: Buffer | string | undefined, contentType?: string, headers: Record<string, string> = {}) =>
  await app.inject({ method: 'POST', url, payload, headers: { ...(contentType !== undefined ? { 'content-type': contentType } : {}), ...headers } })

t.test('a raw PNG gets the full result for the default model', async (t) => {
  const res = await post('/classify', fixturePng(0), 'image/png')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.model, 'fashion-mnist-isomaxplus-md')
  t.type(body.version, 'string')
  t.equal(body.label, LABELS[golden.images[0]!.label], 'the first test image is an ankle boot')
  t.equal(body.classIndex, golden.images[0]!.label)
  t.equal(body.topK.length, 3)
  t.equal(body.topK[0].label, body.label)
  t.ok(body.topK[0].probability >= body.topK[1].probability && body.topK[1].probability >= body.topK[2].probability)
  // The manifest's temperature: a confident prediction reads as one (softmax of the raw
  // negative distances gave ≈ 0.27 here).
  t.ok(body.topK[0].probability > 0.9, `top-1 probability ${body.topK[0].probability}`)
  t.type(body.ood.score, 'number')
  t.equal(body.ood.kind, manifest.models.get(body.model)!.ood.score, 'the decision score is the manifest\'s')
  const { ood } = manifest.models.get(body.model)!
  t.equal(body.ood.threshold, ood.classThresholds?.[body.classIndex] ?? ood.threshold, 'the predicted class\'s threshold with per-class calibration, else the global one')
  t.equal(body.ood.reject, body.ood.score < body.ood.threshold)
  t.ok(body.ood.pValue > 0 && body.ood.pValue <= 1)
  t.ok(body.ood.minDistance >= 0, 'distance head → minDistance present')
  for (const k of ['decode', 'queue', 'inference', 'total']) t.type(body.timings[k], 'number')
  t.ok(body.timings.total >= body.timings.decode)
  t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a request id is generated')
})

t.test('the same image as JPEG and WebP, and as a large RGB photo, gets the same label', async (t) => {
  const png = fixturePng(1)
  const expected = LABELS[golden.images[1]!.label]
  const jpeg = await sharp(png).jpeg({ quality: 95 }).toBuffer()
  const webp = await sharp(png).webp({ lossless: true }).toBuffer()
  const rgbLarge = await sharp(png).resize(280, 280, { kernel: 'nearest' }).toColourspace('srgb').png().toBuffer()
  for (const [type, data] of [['image/jpeg', jpeg], ['image/webp', webp], ['image/png', rgbLarge]] as const) {
    const res = await post('/classify', data, type)
    t.equal(res.statusCode, 200, type)
    t.equal(res.json().label, expected, `${type} ${data.length} bytes`)
  }
})

t.test('multipart with several images answers an array in order', async (t) => {
  const form = multipart([0, 1, 2].map((i) => ({ field: 'image', filename: `img${i}.png`, contentType: 'image/png', data: fixturePng(i) })))
  const res = await app.inject({ method: 'POST', url: '/classify?topK=2', ...form })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.ok(Array.isArray(body))
  t.same(body.map((r: { classIndex: number }) => r.classIndex), [0, 1, 2].map((i) => golden.images[i]!.label))
  t.ok(body.every((r: { topK: unknown[] }) => r.topK.length === 2))
})

t.test('a named model; echoed request id; topK', async (t) => {
  const res = await post('/models/fashion-mnist-softmax/classify?topK=10', fixturePng(2), 'image/png', { 'x-request-id': 'abc-123' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.model, 'fashion-mnist-softmax')
  t.equal(body.topK.length, 10)
  const sum = body.topK.reduce((s: number, e: { probability: number }) => s + e.probability, 0)
  t.ok(Math.abs(sum - 1) < 1e-6, 'all ten probabilities sum to 1')
  t.notOk('minDistance' in body.ood, 'a softmax head has no prototype distance')
  t.equal(res.headers['x-request-id'], 'abc-123')
})

const text = Buffer.from('this is definitely not an image\n')
const truncated = fixturePng(3).subarray(0, 60)
const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28"/></svg>')
const pdf = Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n')

const badInputs: Array<{ name: string, req: () => Promise<Awaited<ReturnType<typeof post>>>, status: number, code: string, message?: RegExp }> = [
  { name: 'no image at all', req: async () => await post('/classify', undefined), status: 400, code: 'ISOMAX_NO_IMAGE' },
  { name: 'empty body', req: async () => await post('/classify', Buffer.alloc(0), 'image/png'), status: 400, code: 'ISOMAX_EMPTY_BODY' },
  { name: 'text sent as image/png', req: async () => await post('/classify', text, 'image/png'), status: 400, code: 'ISOMAX_INVALID_IMAGE', message: /not a PNG, JPEG or WebP/ },
  { name: 'truncated PNG', req: async () => await post('/classify', truncated, 'image/png'), status: 400, code: 'ISOMAX_INVALID_IMAGE', message: /could not be decoded/ },
  { name: 'SVG content type', req: async () => await post('/classify', svg, 'image/svg+xml'), status: 415, code: 'ISOMAX_UNSUPPORTED_MEDIA_TYPE', message: /image\/svg\+xml is not accepted/ },
  { name: 'SVG bytes sent as image/png', req: async () => await post('/classify', svg, 'image/png'), status: 415, code: 'ISOMAX_UNSUPPORTED_IMAGE_TYPE', message: /SVG/ },
  { name: 'PDF content type', req: async () => await post('/classify', pdf, 'application/pdf'), status: 415, code: 'ISOMAX_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'PDF in a multipart form', req: async () => await app.inject({ method: 'POST', url: '/classify', ...multipart([{ field: 'image', filename: 'a.pdf', contentType: 'application/pdf', data: pdf }]) }), status: 415, code: 'ISOMAX_UNSUPPORTED_IMAGE_TYPE', message: /image 1 \(a\.pdf\) is PDF/ },
  { name: 'GIF', req: async () => await post('/classify', await sharp(fixturePng(0)).gif().toBuffer(), 'image/png'), status: 415, code: 'ISOMAX_UNSUPPORTED_IMAGE_TYPE', message: /GIF/ },
  { name: 'JSON', req: async () => await post('/classify', '{"image":"x"}', 'application/json'), status: 415, code: 'ISOMAX_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'text/plain', req: async () => await post('/classify', 'hello', 'text/plain'), status: 415, code: 'ISOMAX_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'body over MAX_UPLOAD_BYTES', req: async () => await post('/classify', Buffer.concat([fixturePng(0), Buffer.alloc(3 * 1024 * 1024)]), 'image/png'), status: 413, code: 'ISOMAX_PAYLOAD_TOO_LARGE' },
  { name: 'multipart file over MAX_UPLOAD_BYTES', req: async () => await app.inject({ method: 'POST', url: '/classify', ...multipart([{ field: 'image', filename: 'big.png', data: Buffer.alloc(3 * 1024 * 1024) }]) }), status: 413, code: 'ISOMAX_PAYLOAD_TOO_LARGE' },
  { name: 'unknown model', req: async () => await post('/models/nope/classify', fixturePng(0), 'image/png'), status: 404, code: 'ISOMAX_MODEL_NOT_FOUND', message: /"nope"/ },
  { name: 'topK=0', req: async () => await post('/classify?topK=0', fixturePng(0), 'image/png'), status: 400, code: 'ISOMAX_BAD_REQUEST', message: /topK/ },
  { name: 'topK=abc', req: async () => await post('/classify?topK=abc', fixturePng(0), 'image/png'), status: 400, code: 'ISOMAX_BAD_REQUEST', message: /topK/ },
  { name: 'topK=1.5', req: async () => await post('/classify?topK=1.5', fixturePng(0), 'image/png'), status: 400, code: 'ISOMAX_BAD_REQUEST', message: /topK/ },
  ...['1e1', '0x5', '3.0', '+3', '03', ' 3', '3 ', '1001'].map((v) => ({ name: `topK=${v} (not a plain whole number)`, req: async () => await post(`/classify?topK=${encodeURIComponent(v)}`, fixturePng(0), 'image/png'), status: 400, code: 'ISOMAX_BAD_REQUEST', message: /topK: / })),
  { name: 'topK given twice', req: async () => await post('/classify?topK=2&topK=3', fixturePng(0), 'image/png'), status: 400, code: 'ISOMAX_BAD_REQUEST', message: /topK/ },
  { name: 'topK above the class count', req: async () => await post('/classify?topK=11', fixturePng(0), 'image/png'), status: 400, code: 'ISOMAX_BAD_REQUEST', message: /topK: must be at most 10/ },
  { name: 'multipart without an image field', req: async () => await app.inject({ method: 'POST', url: '/classify', ...multipart([{ field: 'note', data: 'hi' }]) }), status: 400, code: 'ISOMAX_NO_IMAGE' },
  { name: 'multipart file under another field name', req: async () => await app.inject({ method: 'POST', url: '/classify', ...multipart([{ field: 'photo', filename: 'x.png', data: fixturePng(0) }]) }), status: 400, code: 'ISOMAX_BAD_REQUEST', message: /"photo"/ },
  { name: 'unknown route', req: async () => await app.inject({ method: 'GET', url: '/nope' }), status: 404, code: 'ISOMAX_NOT_FOUND' }
]

for (const bad of badInputs) {
  t.test(`bad input: ${bad.name} → ${bad.status} ${bad.code}`, async (t) => {
    const res = await bad.req()
    t.equal(res.statusCode, bad.status)
    t.match(res.headers['content-type'], /application\/json/)
    const body = res.json()
    t.equal(body.error.code, bad.code)
    t.type(body.error.message, 'string')
    if (bad.message !== undefined) t.match(body.error.message, bad.message)
  })
}

t.test('a decompression bomb (20000×20000 PNG) is refused from its header', async (t) => {
  const bomb = bombPng(20000, 20000)
  t.ok(bomb.length < 1024 * 1024, `the bomb is ${bomb.length} bytes on the wire`)
  const before = process.memoryUsage().rss
  const res = await post('/classify', bomb, 'image/png')
  const grew = process.memoryUsage().rss - before
  t.equal(res.statusCode, 413)
  t.equal(res.json().error.code, 'ISOMAX_PIXEL_LIMIT_EXCEEDED')
  t.match(res.json().error.message, /more than 40000000 pixels/)
  t.ok(grew < 200 * 1024 * 1024, `RSS grew ${(grew / 1048576).toFixed(1)} MiB, far below the 400 MB the pixels would need`)
})

t.test('after all of that the server still classifies', async (t) => {
  const res = await post('/classify', fixturePng(0), 'image/png')
  t.equal(res.statusCode, 200)
  t.equal(res.json().classIndex, golden.images[0]!.label)
})

t.test('include=logits adds the raw output row: what ONNX Runtime gives for the same tensor', async (t) => {
  const ort = (await import('onnxruntime-node')).default
  const { preprocess } = await import('../../src/preprocess/preprocess.js')
  const model = manifest.models.get(manifest.defaultModel)!
  const res = await post('/classify?include=logits', fixturePng(3), 'image/png')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.logits.length, 10)
  const session = await ort.InferenceSession.create(model.onnxPath)
  const { tensor } = await preprocess(fixturePng(3), model.input, { maxInputPixels: 40_000_000 })
  const out = await session.run({ [model.input.name]: new ort.Tensor('float32', tensor, [1, 1, 28, 28]) })
  t.same(body.logits, Array.from(out[model.output.name]!.data as Float32Array), 'bit for bit')
  t.equal(body.ood.minDistance, -Math.max(...body.logits), 'minDistance = −max(logits) for a distance head')
  await session.release()
  t.notOk('logits' in (await post('/classify', fixturePng(3), 'image/png')).json(), 'not there unless asked')
  const bad = await post('/classify?include=tensor', fixturePng(3), 'image/png')
  t.equal(bad.statusCode, 400)
  t.match(bad.json().error.message, /include: a comma-separated list of: logits/)
})

t.test('topK: default 3, or every class of a model with fewer; above the class count, one rule in both refusals', async (t) => {
  const file = copyModels()
  editManifest(file, (m) => {
    const e = m.models.find((x: { name: string }) => x.name === 'fashion-mnist-softmax')
    e.labels = ['top', 'bottom']
  })
  const { app: two } = await buildOver(t, {
    env: { MODELS_MANIFEST: file },
    logits: (model, tensor) => model === 'fashion-mnist-softmax' ? [(tensor[0] ?? 0) > 0 ? 1 : -1, 0] : simpleLogits(model, tensor)
  })
  const classify = async (url: string): Promise<any> => await two.inject({ method: 'POST', url, payload: fixturePng(0), headers: { 'content-type': 'image/png' } })
  const res = await classify('/models/fashion-mnist-softmax/classify')
  t.equal(res.statusCode, 200, `a 2-class model without topK: ${res.body}`)
  t.equal(res.json().topK.length, 2, 'both classes listed')
  t.equal((await classify('/classify')).json().topK.length, 3, 'a 10-class model: 3')
  const over = (await classify('/models/fashion-mnist-softmax/classify?topK=3')).json().error
  t.equal(over.code, 'ISOMAX_BAD_REQUEST')
  t.equal(over.message, 'invalid querystring: topK: must be at most 2, the number of classes of "fashion-mnist-softmax" (a whole number in decimal digits (like 3), from 1 to the number of classes of the model (1000 at most))')
  const huge = (await classify('/classify?topK=1001')).json().error
  t.match(huge.message, /topK: must be a whole number in decimal digits \(like 3\), from 1 to the number of classes of the model \(1000 at most\)/)
})

t.test('one verdict, two reasons: real images get none, "ood", "uncertain" and both, and the metrics count them by reason', async (t) => {
  // Fashion-MNIST test images 0 (a confident boot), 4 (a shirt the model is unsure of, but
  // in distribution), 70 (confident, but far from the training features) and 32 (both), and
  // an MNIST digit: what the default model and its calibration give them.
  const test = await fashionTest(71)
  const digit = (await png(mnistDigits(1)[0]!))
  const cases: Array<[string, Buffer, string[]]> = [
    ['test image 0', await png(test[0]!.pixels), []],
    ['test image 4', await png(test[4]!.pixels), ['uncertain']],
    ['test image 70', await png(test[70]!.pixels), ['ood']],
    ['test image 32', await png(test[32]!.pixels), ['ood', 'uncertain']],
    ['an MNIST digit', digit, ['ood']]
  ]
  const model = manifest.models.get(manifest.defaultModel)!
  t.ok(model.selective !== undefined, 'the default model has a confidence threshold')
  const before = (await app.inject('/metrics')).body
  const count = (text: string, reason: string): number => Number(new RegExp(`isomax_rejections_total\\{model="${model.name}",reason="${reason}"\\} (\\d+)`).exec(text)?.[1] ?? NaN)
  for (const [what, image, reasons] of cases) {
    const body = (await post('/classify', image, 'image/png')).json()
    t.same(body.rejectReasons, reasons, `${what}: ${reasons.join(' and ') || 'no reason'}`)
    t.equal(body.reject, reasons.length > 0, `${what}: reject`)
    t.equal(body.ood.reject, reasons.includes('ood'), `${what}: the ood block agrees`)
    t.equal(body.confidence.value, body.topK[0].probability, `${what}: confidence is the top probability`)
    t.equal(body.confidence.threshold, model.selective!.threshold)
    t.equal(body.confidence.value < body.confidence.threshold, reasons.includes('uncertain'))
  }
  const after = (await app.inject('/metrics')).body
  t.equal(count(after, 'ood') - count(before, 'ood'), 3, 'three images rejected as ood')
  t.equal(count(after, 'uncertain') - count(before, 'uncertain'), 2, 'two as uncertain')
  t.match(after, /\nisomax_calibrated_uncertain_rate\{model="fashion-mnist-isomaxplus-md"\} 0\.\d+\n/)
})

t.test('a model without a confidence threshold never says "uncertain"', async (t) => {
  const file = copyModels()
  editManifest(file, (m) => { for (const e of m.models) delete e.selective })
  const plain = await build(t, { MODELS_MANIFEST: file })
  const test = await fashionTest(5)
  const body = (await plain.inject({ method: 'POST', url: '/classify', payload: await png(test[4]!.pixels), headers: { 'content-type': 'image/png' } })).json()
  t.same(body.rejectReasons, [], 'the unsure shirt has no reason here')
  t.equal(body.reject, false)
  t.same(Object.keys(body.confidence), ['value'], 'no threshold reported')
  t.notMatch((await plain.inject('/metrics')).body, /isomax_calibrated_uncertain_rate\{/)
})
