// MAX_QUEUE_SIZE counts images (or FP32 samples), not requests: each image of a request takes
// its own place in the model's queue. One request of 4 images against MAX_QUEUE_SIZE=2, on an
// idle server, is refused, and the 503 says what the bound counts.
import t from 'tap'
import { buildOver } from '../helpers/build.js'
import { fixturePng } from '../helpers/images.js'

const { app, engine } = await buildOver(t, { env: { MAX_QUEUE_SIZE: '2' } })
const NAME = engine.manifest.defaultModel

t.test('one request of 4 images past MAX_QUEUE_SIZE=2: 503 naming the unit and the variable', async (t) => {
  const images = [0, 1, 2, 3].map((i) => fixturePng(i).toString('base64'))
  const res = await app.inject({
    method: 'POST',
    url: `/v2/models/${NAME}/infer`,
    payload: { inputs: [{ name: 'image', shape: [4], datatype: 'BYTES', data: images }] },
    headers: { 'content-type': 'application/json' }
  })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.match(res.json(), { error: /images \(or samples\) queued or being decoded, MAX_QUEUE_SIZE=2 counts images, not requests/ })
  const two = await app.inject({
    method: 'POST',
    url: `/v2/models/${NAME}/infer`,
    payload: { inputs: [{ name: 'image', shape: [2], datatype: 'BYTES', data: images.slice(0, 2) }] },
    headers: { 'content-type': 'application/json' }
  })
  t.equal(two.statusCode, 200, 'two images fit')
})
