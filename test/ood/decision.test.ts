// decide(): what one row of logits becomes. The temperature changes the probabilities and
// nothing else; Mondrian thresholds and p-values go by the predicted class, and a class that
// calibrate left without its own falls back to the global ones.
import t from 'tap'
import { decide } from '../../src/ood/decision.js'
import { softmax } from '../../src/ood/scores.js'

const labels = ['a', 'b', 'c']
const base = {
  labels,
  output: { name: 'logits', holds: 'negative-distances' as const },
  ood: {
    score: 'mds' as const,
    threshold: -2,
    calibration: { targetTpr: 0.95, achievedTpr: 0.95, n: 100, data: 'x', dataSha256: 'x', date: '2026-11-28', tool: 't', scores: [-3, -2, -1, 0] }
  }
}

t.test('the temperature scales the top-k probabilities; label, score and reject do not move', async (t) => {
  const logits = [-1.0, -1.4, -2.5]
  const plain = decide(base, logits, 3)
  const tempered = decide({ ...base, probabilities: { temperature: 0.1, n: 10, data: 'x', date: 'x', nll: { before: 1, after: 0.5 }, ece: { before: 0.5, after: 0.01 } } }, logits, 3)
  t.equal(plain.topK[0]!.probability, softmax(logits)[0])
  t.equal(tempered.topK[0]!.probability, softmax(logits.map((l) => l / 0.1))[0])
  t.ok(tempered.topK[0]!.probability > 0.98 && plain.topK[0]!.probability < 0.55, `${plain.topK[0]!.probability} → ${tempered.topK[0]!.probability}`)
  t.same(tempered.topK.map((e) => e.label), plain.topK.map((e) => e.label))
  t.same({ ...tempered.ood }, { ...plain.ood })
  t.equal(plain.ood.minDistance, 1)
})

t.test('Mondrian: the predicted class\'s own threshold and calibration sample', async (t) => {
  const model = {
    ...base,
    ood: {
      ...base.ood,
      classThresholds: [-2, -0.5, -2],
      calibration: { ...base.ood.calibration, classScores: [[-3, -2.5], [-0.9, -0.8, -0.1], []] }
    }
  }
  // Predicted "b" at distance 0.7: passes the global threshold (−2), fails b's own (−0.5).
  const b = decide(model, [-3, -0.7, -4], 1)
  t.equal(b.label, 'b')
  t.equal(b.ood.threshold, -0.5)
  t.equal(b.ood.reject, true)
  t.equal(decide(base, [-3, -0.7, -4], 1).ood.reject, false, 'the global threshold alone accepts it')
  // Its p-value comes from b's sample: 2 of 3 scores ≤ −0.7 → (1 + 2) / (3 + 1).
  t.equal(b.ood.pValue, 0.75)
  // Predicted "c", whose sample is empty: the global sample (2 of 4 ≤ −1.5) → 3/5.
  const c = decide(model, [-4, -3, -1.5], 1)
  t.equal(c.label, 'c')
  t.equal(c.ood.threshold, -2)
  t.equal(c.ood.pValue, 0.6)
})

t.test('one verdict over two reasons: ood, uncertain, both or none; no selective block, no "uncertain"', async (t) => {
  const selective = {
    targetRisk: 0.02,
    delta: 0.1,
    threshold: 0.9,
    calibration: {
      method: 'm',
      data: 'd',
      dataSha256: 'a'.repeat(64),
      n: 10,
      accepted: 8,
      errors: 0,
      coverage: 0.8,
      risk: 0,
      bound: 0.2,
      uncertainRate: 0.1,
      fitData: 'f',
      fitDataSha256: 'b'.repeat(64),
      date: '2026-12-06',
      tool: 't'
    }
  }
  const model = { ...base, selective }
  // Confident and near a prototype: accepted by both.
  const sure = decide(model, [-0.5, -8, -9], 3)
  t.same(sure.rejectReasons, [])
  t.equal(sure.reject, false)
  t.equal(sure.confidence.value, sure.topK[0]!.probability)
  t.equal(sure.confidence.threshold, 0.9)
  // Two classes equally near, both near: in distribution, but a coin toss: uncertain only.
  const torn = decide(model, [-0.5, -0.5, -9], 3)
  t.same(torn.rejectReasons, ['uncertain'])
  t.equal(torn.reject, true)
  t.equal(torn.ood.reject, false, 'the ood block is unchanged by the new reason')
  // Far from every prototype, one clearly nearest: ood only.
  t.same(decide(model, [-3, -10, -11], 3).rejectReasons, ['ood'])
  // Far and torn: both, "ood" first.
  const both = decide(model, [-3, -3, -11], 3)
  t.same(both.rejectReasons, ['ood', 'uncertain'])
  t.equal(both.reject, true)
  // The threshold is strict below: confidence exactly at it is accepted.
  const at = decide({ ...model, selective: { ...selective, threshold: torn.confidence.value } }, [-0.5, -0.5, -9], 3)
  t.same(at.rejectReasons, [])
  // Without the block: the same torn image has no reason, and no threshold is reported.
  const plain = decide(base, [-0.5, -0.5, -9], 3)
  t.same(plain.rejectReasons, [])
  t.equal(plain.reject, false)
  t.same(plain.confidence, { value: plain.topK[0]!.probability })
  t.same(decide(base, [-3, -3, -11], 3).rejectReasons, ['ood'])
})
