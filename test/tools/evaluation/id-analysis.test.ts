// analyseId and rejectRateAsServed on a small hand-checked case: three classes, six images.
import t from 'tap'
import { analyseId, rejectRateAsServed } from '../../../src/tools/evaluation/id-analysis.js'

// Predicted classes 0, 0, 1, 1, 2, 2 (argmax); labels make images 1 and 4 wrong.
const logits = [[3, 0, 0], [2, 1, 0], [0, 3, 0], [0, 2, 1], [0, 0, 3], [1, 0, 2]]
const labels = [0, 1, 1, 1, 2, 2]
const scores = [0.9, 0.1, 0.8, 0.7, 0.2, 0.6]
const ood = { score: 'mds' as const, threshold: 0.5, calibration: { targetTpr: 0.95, achievedTpr: 0.95, n: 6, data: 'x', dataSha256: 'x', date: 'x', tool: 't' } }
const model = { labels: ['a', 'b', 'c'], ood }

t.test('selective classification and per-class rejects at the global threshold', async (t) => {
  const a = analyseId(model, logits, labels, scores)
  // Rejected: images 1 (wrong) and 4 (right) → accepted 4 all right, rejected 1 of 2 right.
  t.same(a.selective!.accepted, { n: 4, accuracy: 1 })
  t.same(a.selective!.rejected, { n: 2, accuracy: 0.5 })
  // Highest scores first: 0.9 ✓ 0.8 ✓ 0.7 ✓ 0.6 ✓ 0.2 ✓ 0.1 ✗ → risks 0,0,0,0,0,1/6.
  t.equal(a.selective!.riskCoverage.aurc, (1 / 6) / 6)
  t.same(a.perClassReject, { labels: ['a', 'b', 'c'], n: [2, 2, 2], global: [0.5, 0, 0.5], perClass: null })
  t.equal(a.ece!.temperature, null)
  t.equal(a.ece!.atTemperature, null)
})

t.test('per-class thresholds: the predicted class decides, as the service does', async (t) => {
  const perClass = { ...ood, classThresholds: [0.05, 0.75, 0.1] }
  t.equal(rejectRateAsServed(ood, logits, scores), 2 / 6)
  // Class 0: 0.9, 0.1 ≥ 0.05 → none; class 1: 0.8 ok, 0.7 < 0.75 → one; class 2: none.
  t.equal(rejectRateAsServed(perClass, logits, scores), 1 / 6)
  const a = analyseId({ ...model, ood: perClass }, logits, labels, scores)
  t.same(a.perClassReject.perClass, [0, 0.5, 0])
  // Selective classification as served: only image 3 (right) is rejected.
  t.same(a.selective!.rejected, { n: 1, accuracy: 1 })
})

t.test('no labels: detection-side figures only', async (t) => {
  const a = analyseId(model, logits, labels.map(() => -1), scores)
  t.equal(a.ece, null)
  t.equal(a.selective, null)
  t.same(a.perClassReject.global, [0.5, 0, 0.5])
})
