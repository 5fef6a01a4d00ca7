// How well probabilities and rejections behave, beyond detection: the temperature that makes
// softmax probabilities honest, their expected calibration error, Mondrian (per-class)
// thresholds, and selective classification (risk against coverage). Pure functions.
import { argmax, logSumExp, softmax, type Logits } from '../../ood/scores.js'
import { minCalibrationSize, thresholdAtTpr } from '../../ood/threshold.js'

/** Mean negative log-likelihood of the true labels under softmax(logits / t). */
export function nll (rows: Logits[], labels: number[], t: number): number {
  let sum = 0
  rows.forEach((r, i) => {
    const scaled = Array.from(r, (l) => l / t)
    sum += logSumExp(scaled) - (scaled[labels[i]!] as number)
  })
  return sum / rows.length
}

/**
 * The temperature minimising NLL: golden-section search over log t in [1e-3, 1e3]. NLL is
 * convex in 1/t, hence unimodal in log t, so the search finds the minimum.
 */
export function fitTemperature (rows: Logits[], labels: number[]): number {
  if (rows.length === 0) throw new RangeError('fitTemperature needs labelled rows')
  const f = (logT: number): number => nll(rows, labels, Math.exp(logT))
  const g = (Math.sqrt(5) - 1) / 2
  let a = Math.log(1e-3)
  let b = Math.log(1e3)
  let c = b - g * (b - a)
  let d = a + g * (b - a)
  let fc = f(c)
  let fd = f(d)
  while (b - a > 1e-6) {
    if (fc < fd) { b = d; d = c; fd = fc; c = b - g * (b - a); fc = f(c) } else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = f(d) }
  }
  return Math.exp((a + b) / 2)
}

/** Expected calibration error of the top-1 probability, `bins` equal-width bins (15, as usual). */
export function ece (rows: Logits[], labels: number[], t = 1, bins = 15): number {
  const conf = new Float64Array(bins)
  const acc = new Float64Array(bins)
  const count = new Float64Array(bins)
  rows.forEach((r, i) => {
    const p = softmax(r, t)
    const k = argmax(p)
    const top = p[k] as number
    const b = Math.min(bins - 1, Math.floor(top * bins))
    conf[b] = (conf[b] as number) + top
    acc[b] = (acc[b] as number) + (k === labels[i] ? 1 : 0)
    count[b] = (count[b] as number) + 1
  })
  let e = 0
  for (let b = 0; b < bins; b++) if (count[b]! > 0) e += Math.abs(acc[b]! - conf[b]!) / rows.length
  return e
}

/**
 * Mondrian thresholds: per predicted class, the (1 − TPR) quantile of the scores of the
 * calibration images predicted as that class, so each class's false-reject rate is about 1 −
 * TPR. A class with fewer images than the quantile needs keeps the global threshold.
 */
export function classThresholds (scores: number[], predicted: number[], classes: number, tpr: number, global: number): { thresholds: number[], counts: number[], byClass: number[][] } {
  const minimum = minCalibrationSize(tpr)
  const byClass = Array.from({ length: classes }, () => [] as number[])
  scores.forEach((s, i) => byClass[predicted[i]!]?.push(s))
  return {
    thresholds: byClass.map((s) => s.length >= minimum ? thresholdAtTpr(s, tpr) : global),
    counts: byClass.map((s) => s.length),
    byClass
  }
}

export interface RiskCoverage {
  /** Points (coverage, risk) from accepting only the highest score to accepting all. */
  curve: Array<{ coverage: number, risk: number }>
  /** Area under the risk–coverage curve (lower is better). */
  aurc: number
}

/**
 * Selective classification: accept the images with the highest scores first; risk = the error
 * rate among the accepted. `points` thins the curve for reports; AURC uses every step.
 */
export function riskCoverage (scores: number[], correct: boolean[], points = 101): RiskCoverage {
  const order = scores.map((s, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number))
  const n = order.length
  let errors = 0
  let area = 0
  const risks = new Float64Array(n)
  order.forEach((i, k) => {
    if (!correct[i]) errors++
    risks[k] = errors / (k + 1)
    area += risks[k]!
  })
  const curve = Array.from({ length: points }, (_, j) => {
    const k = Math.max(1, Math.round((j / (points - 1)) * n))
    return { coverage: k / n, risk: risks[k - 1] as number }
  })
  return { curve, aurc: area / n }
}
