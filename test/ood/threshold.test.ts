import t from 'tap'
import { conformalPValue, countAtMost, thresholdAtTpr } from '../../src/ood/threshold.js'

t.test('threshold is the ⌊(1 − TPR)(n + 1)⌋-th smallest score', async (t) => {
  const scores = Array.from({ length: 100 }, (_, i) => 100 - i) // 1..100, shuffled order
  t.equal(thresholdAtTpr(scores, 0.95), 5) // k = ⌊0.05 · 101⌋ = 5
  t.equal(thresholdAtTpr(scores, 0.9), 10) // k = ⌊0.1 · 101⌋ = 10
  t.equal(thresholdAtTpr([3, 1, 2], 0.95), 1, 'k clamps to 1 for tiny n')
  const accepted = scores.filter((s) => s >= thresholdAtTpr(scores, 0.95)).length / scores.length
  t.ok(accepted >= 0.95, `achieved TPR ${accepted} ≥ 0.95`)
})

t.test('threshold rejects bad arguments', async (t) => {
  t.throws(() => thresholdAtTpr([], 0.95), RangeError)
  t.throws(() => thresholdAtTpr([1], 1), RangeError)
})

t.test('conformal p-value (1 + #{cal ≤ s}) / (n + 1)', async (t) => {
  const cal = [1, 2, 3, 4]
  t.equal(countAtMost(cal, 2.5), 2)
  t.equal(countAtMost(cal, 2), 2, 'ties count')
  t.equal(conformalPValue(cal, 0), 1 / 5)
  t.equal(conformalPValue(cal, 2), 3 / 5)
  t.equal(conformalPValue(cal, 99), 1)
})

t.test('p-values of exchangeable scores are (super-)uniform', async (t) => {
  // Deterministic pseudo-random scores: P(p ≤ α) ≤ α (+ sampling slack).
  let x = 12345
  const rand = (): number => { x = (x * 1103515245 + 12345) % 2147483648; return x / 2147483648 }
  const cal = Array.from({ length: 999 }, rand).sort((a, b) => a - b)
  const fresh = Array.from({ length: 5000 }, rand)
  for (const alpha of [0.05, 0.1, 0.5]) {
    const rate = fresh.filter((s) => conformalPValue(cal, s) <= alpha).length / fresh.length
    t.ok(rate <= alpha + 0.02, `P(p ≤ ${alpha}) = ${rate.toFixed(3)}`)
  }
})

// Issue 20, defect 3: calibrate on a model whose output is NaN for some inputs wrote a NaN
// threshold (or printed a thousand-line manifest error); it is refused in one line.
t.test('non-finite calibration scores are refused in one line, counted by kind', async (t) => {
  const scores = [...Array.from({ length: 997 }, (_, i) => i), NaN, Infinity, NaN]
  const err = t.throws(() => thresholdAtTpr(scores, 0.95)) as Error
  t.type(err, RangeError)
  t.match(err.message, /^3 of 1000 scores are not finite \(NaN ×2, Infinity ×1; the first is number 998\): the model's output is NaN or infinite/)
  t.notMatch(err.message, /\n/, 'one line')
  t.equal(thresholdAtTpr(scores.slice(0, 997), 0.95), 48, 'the finite ones alone calibrate')
})
