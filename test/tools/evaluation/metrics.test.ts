import t from 'tap'
import { auprIn, auprOut, auroc, averagePrecision, detectionAccuracy, histogram, oodMetrics, rejectRate, rocCurve, tnrAtTpr } from '../../../src/tools/evaluation/metrics.js'

const near = (a: number, b: number, tol = 1e-12): boolean => Math.abs(a - b) <= tol

t.test('perfect separation', async (t) => {
  const m = oodMetrics([3, 4, 5], [0, 1, 2])
  t.same(m, { auroc: 1, auprIn: 1, auprOut: 1, tnrAt95Tpr: 1, detectionAccuracy: 1 })
})

t.test('reversed scores', async (t) => {
  t.equal(auroc([0, 1, 2], [3, 4, 5]), 0)
  t.equal(detectionAccuracy([0, 1, 2], [3, 4, 5]), 0.5, 'the trivial threshold (accept all) gives ½')
  t.equal(tnrAtTpr([0, 1, 2], [3, 4, 5]), 0)
  // AP when every negative outranks every positive: positives found at ranks 4, 5, 6.
  t.ok(near(auprIn([0, 1, 2], [3, 4, 5]), (1 / 4 + 2 / 5 + 3 / 6) / 3))
})

t.test('all scores equal: AUROC ½, AUPR = prevalence', async (t) => {
  t.equal(auroc([1, 1, 1], [1, 1]), 0.5)
  t.equal(averagePrecision([7, 7], [7, 7, 7, 7, 7, 7]), 0.25)
  t.equal(auprOut([7, 7], [7, 7, 7, 7, 7, 7]), 0.75)
  t.equal(detectionAccuracy([1, 1], [1, 1]), 0.5)
})

t.test('ties between ID and OOD count half for AUROC', async (t) => {
  // pairs: (2>1) (2=2)→½ (3>1) (3>2) = 3.5 of 4
  t.equal(auroc([2, 3], [1, 2]), 3.5 / 4)
})

t.test('hand-computed AP with ties as one step', async (t) => {
  // sorted desc: 0.9(+) 0.8(−) 0.7(+,−) → steps: R=.5 P=1; R=.5 P=.5; R=1 P=2/4
  t.equal(averagePrecision([0.9, 0.7], [0.8, 0.7]), 0.5 * 1 + 0.5 * 0.5)
})

t.test('TNR at 95 % TPR and reject rate', async (t) => {
  const id = Array.from({ length: 100 }, (_, i) => i + 1) // δ = 5th smallest = 5
  t.equal(tnrAtTpr(id, [0, 4.9, 5, 50]), 0.5)
  t.equal(rejectRate([0, 4.9, 5, 50], 5), 0.5)
})

t.test('detection accuracy picks the best threshold', async (t) => {
  // accept ≥ 2: TPR 1 (2,3), TNR 2/3 (0,1 below; 2.5 above) → ½(1 + 2/3)
  t.ok(near(detectionAccuracy([2, 3], [0, 1, 2.5]), 0.5 * (1 + 2 / 3)))
})

t.test('rocCurve: from (0, 0) to (1, 1), monotone, and its area is the AUROC', async (t) => {
  const id = Array.from({ length: 500 }, (_, i) => Math.sin(i) + 1)
  const ood = Array.from({ length: 300 }, (_, i) => Math.cos(i))
  const curve = rocCurve(id, ood, 1000) // more points than steps: every step is kept
  t.same(curve[0], { fpr: 0, tpr: 0 })
  t.same(curve.at(-1), { fpr: 1, tpr: 1 })
  t.ok(curve.every((p, i) => i === 0 || (p.fpr >= curve[i - 1]!.fpr && p.tpr >= curve[i - 1]!.tpr)))
  // Trapezoids: ties move both rates in one step, which is the ½ of the Mann–Whitney AUROC.
  const area = curve.reduce((a, p, i) => i === 0 ? 0 : a + (p.fpr - curve[i - 1]!.fpr) * (p.tpr + curve[i - 1]!.tpr) / 2, 0)
  t.ok(Math.abs(area - auroc(id, ood)) < 1e-12, `area ${area} = AUROC ${auroc(id, ood)}`)
  t.ok(rocCurve(id, ood, 50).length <= 52, 'thinned to about the points asked for')
})

t.test('histogram: shares sum to 1; out-of-range values land in the end bins', async (t) => {
  const h = histogram([0, 0.1, 0.5, 0.99, 1, -5, 7], 0, 1, 4)
  t.same(h.map((b) => b.x0), [0, 0.25, 0.5, 0.75])
  t.same(h.map((b) => Math.round(b.share * 7)), [3, 0, 1, 3])
})
