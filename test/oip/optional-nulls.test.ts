// `null` for the infer request's optional fields, read as absent: the generated
// open-inference-openapi client sends every unset optional field as null (`"outputs": null`),
// which was a 400. Over the real models, compared with the same request without them.
import t from 'tap'
import { build } from '../helpers/build.js'
import { MANIFEST } from '../helpers/data.js'
import { fixturePng } from '../helpers/images.js'
import { loadManifest } from '../../src/registry/load-manifest.js'

const app = await build(t)
const NAME = (await loadManifest(MANIFEST)).defaultModel
const data = [fixturePng(0).toString('base64')]

async function infer (request: object): Promise<{ status: number, json: any }> {
  const res = await app.inject({ method: 'POST', url: `/v2/models/${NAME}/infer`, payload: request, headers: { 'content-type': 'application/json' } })
  return { status: res.statusCode, json: res.json() }
}

const bare = await infer({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data }] })

t.test('id, parameters, outputs and an input\'s parameters may be null', async (t) => {
  t.equal(bare.status, 200)
  const res = await infer({ id: null, parameters: null, inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', parameters: null, data }], outputs: null })
  t.equal(res.status, 200, JSON.stringify(res.json).slice(0, 200))
  t.same(res.json, bare.json, 'the same answer as without them: every output, no id')
  t.notOk('id' in res.json)
})

t.test('a requested output\'s parameters may be null', async (t) => {
  const res = await infer({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data }], outputs: [{ name: 'label', parameters: null }] })
  t.equal(res.status, 200)
  t.same(res.json.outputs.map((o: any) => o.name), ['label'])
})

t.test('null where a value is required is still a 400 naming the field', async (t) => {
  const res = await infer({ inputs: null })
  t.equal(res.status, 400)
  t.match(res.json, { error: /inputs/ })
  t.equal((await infer({ inputs: [{ name: null, shape: [1], datatype: 'BYTES', data }] })).status, 400)
})
