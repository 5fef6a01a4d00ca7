// The evaluation of the one reject: coverage and realized risk among accepted labelled images,
// shares of each OOD set by reason, the risk–coverage curve and its operating point.
import t from 'tap'
import { confidenceCurve, reasonShares, selectiveReport, type Verdict } from '../../../src/tools/evaluation/selective-report.js'

const v = (reasons: string[], confidence: number, correct: boolean | null): Verdict => ({ reasons, confidence, oodReject: reasons.includes('ood'), correct })

t.test('reasonShares counts each reason, both and alone', async (t) => {
  const s = reasonShares([v(['ood'], 0.9, null), v(['ood', 'uncertain'], 0.5, null), v(['uncertain'], 0.6, null), v([], 0.99, null)])
  t.same(s, { n: 4, rejected: 0.75, ood: 0.5, uncertain: 0.5, both: 0.25, oodOnly: 0.25, uncertainOnly: 0.25 })
})

t.test('selectiveReport: coverage over labelled images, risk among the accepted, the margin at the target', async (t) => {
  const id = [
    ...Array.from({ length: 90 }, (_, i) => v([], 0.99, i >= 2)), // 2 errors among 90 accepted
    ...Array.from({ length: 6 }, () => v(['uncertain'], 0.6, false)),
    ...Array.from({ length: 4 }, () => v(['ood'], 0.95, true)),
    v([], 0.99, null) // unlabelled: not in coverage or risk
  ]
  const selective = { targetRisk: 0.02, delta: 0.1, threshold: 0.8 } as never
  const r = selectiveReport(selective, id, [{ set: 'digits', verdicts: [v(['ood'], 0.9, null), v(['ood', 'uncertain'], 0.4, null)] }])
  t.equal(r.id.labelled, 100)
  t.equal(r.id.accepted, 90)
  t.equal(r.id.errors, 2)
  t.equal(r.id.coverage, 0.9)
  t.ok(Math.abs(r.id.risk - 2 / 90) < 1e-12)
  t.ok(Math.abs(r.id.margin! - 1.645 * Math.sqrt(0.02 * 0.98 / 90)) < 1e-12)
  t.equal(r.id.withinMargin, true)
  t.same(r.ood, [{ set: 'digits', n: 2, rejected: 1, ood: 1, uncertain: 0.5, both: 0.5, oodOnly: 0.5, uncertainOnly: 0 }])
  t.same(r.operatingPoint, { coverage: 0.9, risk: 2 / 90 })
  t.equal(selectiveReport(undefined, id, []).id.withinMargin, null, 'no target, no verdict on the margin')
})

t.test('confidenceCurve: most confident first among OOD-accepted images; coverage over all labelled', async (t) => {
  const curve = confidenceCurve([v([], 0.99, true), v([], 0.9, false), v(['ood'], 0.999, true), v(['uncertain'], 0.5, true)], 10)
  t.same(curve, [{ coverage: 0.25, risk: 0 }, { coverage: 0.5, risk: 0.5 }, { coverage: 0.75, risk: 1 / 3 }])
})
