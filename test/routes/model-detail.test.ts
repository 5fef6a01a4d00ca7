// GET /models/{name}: an entry of GET /models plus the calibration sample its threshold and
// p-values come from — what the try-it page draws a score against.
import t from 'tap'
import { loadManifest } from '../../src/registry/load-manifest.js'
import { conformalPValue } from '../../src/ood/threshold.js'
import { buildOver } from '../helpers/build.js'
import { MANIFEST } from '../helpers/data.js'
import { fixturePng } from '../helpers/images.js'
import { copyModels, editManifest } from '../helpers/manifest-copy.js'

const manifest = await loadManifest(MANIFEST)

t.test('every model: its GET /models entry, its thresholds, its sorted calibration scores and its temperature', async (t) => {
  const { app } = await buildOver(t)
  const list = (await app.inject('/models')).json() as { models: Array<Record<string, any>> }
  t.ok(list.models.some((e) => manifest.models.get(e.name as string)!.ood.classThresholds !== undefined), 'a shipped model is calibrated per class')
  for (const entry of list.models) {
    const res = await app.inject(`/models/${encodeURIComponent(entry.name as string)}`)
    t.equal(res.statusCode, 200)
    const { probabilities, ...body } = res.json()
    const m = manifest.models.get(entry.name as string)!
    const { calibration, classThresholds, ...ood } = body.ood
    t.same({ ...body, ood }, entry, `${entry.name as string}: the same fields as in GET /models`)
    const { scores, classScores, classN } = m.ood.calibration
    t.same(calibration, JSON.parse(JSON.stringify({ scores, classScores, classN })), 'the manifest\'s calibration samples')
    t.same(classThresholds, m.ood.classThresholds, 'the manifest\'s per-class thresholds, if any')
    t.same(probabilities, { temperature: m.probabilities!.temperature, n: m.probabilities!.n, ece: m.probabilities!.ece }, 'the fitted temperature')
    const sorted = (a: number[]): boolean => a.every((s, i) => i === 0 || a[i - 1]! <= s)
    t.ok(sorted(calibration.scores) && (calibration.classScores ?? []).every(sorted), 'sorted')
  }
})

t.test('an unknown model is a 404 from the catalogue', async (t) => {
  const { app } = await buildOver(t)
  const res = await app.inject('/models/no-such-model')
  t.equal(res.statusCode, 404)
  t.same(res.json(), { error: { code: 'ISOMAX_MODEL_NOT_FOUND', message: 'Model "no-such-model" is not served here; GET /models lists the models' } })
})

t.test('per-class calibration: the class thresholds and scores, which the p-value of /classify uses', async (t) => {
  const file = copyModels()
  const scores = manifest.models.get('fashion-mnist-isomaxplus')!.ood.calibration.scores!
  // Class 0 has its own sample (the upper half) and threshold; class 1 falls back to the global ones.
  const classScores = Array.from({ length: 10 }, (_, i) => i === 0 ? scores.slice(500) : [])
  const classThresholds = Array.from({ length: 10 }, (_, i) => i === 0 ? scores[550]! : scores[50]!)
  editManifest(file, (m) => {
    const entry = m.models.find((x: { name: string }) => x.name === 'fashion-mnist-isomaxplus')
    entry.ood.classThresholds = classThresholds
    entry.ood.calibration.classScores = classScores
    delete entry.ood.calibration.scores
  })
  // Logits that make class 0 win, whatever the image.
  const { app } = await buildOver(t, { env: { MODELS_MANIFEST: file }, logits: () => [-0.1, -1, -1, -1, -1, -1, -1, -1, -1, -1] })
  const body = (await app.inject('/models/fashion-mnist-isomaxplus')).json()
  t.same(body.ood.classThresholds, classThresholds)
  t.same(body.ood.calibration, { classScores })
  const result = (await app.inject({ method: 'POST', url: '/models/fashion-mnist-isomaxplus/classify', payload: fixturePng(0), headers: { 'content-type': 'image/png' } })).json()
  t.equal(result.classIndex, 0)
  t.equal(result.ood.threshold, body.ood.classThresholds[0], 'the threshold of the predicted class')
  t.equal(result.ood.pValue, conformalPValue(body.ood.calibration.classScores[0], result.ood.score), 'the p-value against that class\'s sample')
})

t.test('a model without a fitted temperature: no probabilities block', async (t) => {
  const file = copyModels()
  editManifest(file, (m) => { delete m.models.find((x: { name: string }) => x.name === 'fashion-mnist-softmax').probabilities })
  const { app } = await buildOver(t, { env: { MODELS_MANIFEST: file } })
  const body = (await app.inject('/models/fashion-mnist-softmax')).json()
  t.equal(body.probabilities, undefined)
  t.equal(body.ood.classThresholds, undefined, 'nor per-class thresholds')
  t.ok(body.ood.calibration.scores.length > 0, 'the global sample')
})
