// Temperature, ECE, Mondrian thresholds and risk–coverage on cases with known answers.
import t from 'tap'
import { classThresholds, ece, fitTemperature, nll, riskCoverage } from '../../../src/tools/evaluation/calibration-metrics.js'

/** Rows whose true class has logit `margin` over the others, sampled so that accuracy is `acc`. */
function rows (n: number, margin: number, acc: number): { rows: number[][], labels: number[] } {
  const out: number[][] = []
  const labels: number[] = []
  for (let i = 0; i < n; i++) {
    const r = [0, 0, 0]
    const right = i < acc * n
    r[right ? 0 : 1] = margin
    out.push(r)
    labels.push(0)
  }
  return { rows: out, labels }
}

t.test('fitTemperature finds the NLL minimum; a model overconfident by 10× gets t ≈ 10', async (t) => {
  // Correct 80 % of the time with a logit margin m: the calibrated top-1 probability is 0.8,
  // i.e. e^(m/t) / (e^(m/t) + 2) = 0.8 → m/t = ln 8.
  const { rows: r, labels } = rows(1000, 10 * Math.log(8), 0.8)
  const temp = fitTemperature(r, labels)
  t.ok(Math.abs(temp - 10) < 0.05, `t = ${temp}`)
  t.ok(nll(r, labels, temp) <= nll(r, labels, temp * 1.1) && nll(r, labels, temp) <= nll(r, labels, temp / 1.1))
  t.ok(ece(r, labels, temp) < 0.01, `ece after ${ece(r, labels, temp)}`)
  t.ok(ece(r, labels, 1) > 0.15, `ece before ${ece(r, labels, 1)}`)
})

t.test('ece: perfectly calibrated bins give 0; always-confident and half right gives 0.5', async (t) => {
  t.equal(ece([[100, 0], [100, 0]], [0, 1]), 0.5)
  t.equal(ece([[100, 0]], [0]), 0)
})

t.test('classThresholds: per predicted class; too few images keep the global threshold', async (t) => {
  const scores = [...Array.from({ length: 100 }, (_, i) => i), ...Array.from({ length: 5 }, (_, i) => 1000 + i)]
  const predicted = [...Array(100).fill(0), ...Array(5).fill(1)]
  const r = classThresholds(scores, predicted, 3, 0.95, -7)
  t.equal(r.thresholds[0], 4, 'the ⌊0.05 · 101⌋ = 5th smallest of 0..99')
  t.equal(r.thresholds[1], -7, '5 images < 19: global')
  t.equal(r.thresholds[2], -7, 'no images: global')
  t.same(r.counts, [100, 5, 0])
})

t.test('riskCoverage: accepting the most confident first; AURC of a perfect ranking', async (t) => {
  const scores = [4, 3, 2, 1]
  const perfect = riskCoverage(scores, [true, true, false, false], 5)
  t.same(perfect.curve.map((p) => p.risk), [0, 0, 0, 1 / 3, 0.5])
  t.equal(perfect.aurc, (0 + 0 + 1 / 3 + 0.5) / 4)
  const worst = riskCoverage(scores, [false, false, true, true], 5)
  t.ok(worst.aurc > perfect.aurc)
})
