// Choosing the confidence threshold of the "uncertain" reject with a finite-sample guarantee:
// Learn-then-Test (Angelopoulos, Bates, Candès, Jordan & Lei 2021) with fixed-sequence testing.
//
// An image is accepted when the OOD rule accepts it AND its confidence (the temperature-scaled
// top softmax probability) is ≥ λ. The selective risk R(λ) is the error rate among accepted
// in-distribution images. For each λ of a fixed grid, from the most confident down, we test
// H(λ): R(λ) > α with the exact binomial p-value P(Bin(n(λ), α) ≤ k(λ)) — n accepted images,
// k of them wrong — and stop at the first λ whose p-value is above δ. Fixed-sequence testing
// controls the family-wise error at δ, so with probability ≥ 1 − δ over the draw of the
// calibration data (exchangeable with future in-distribution inputs) the chosen threshold has
// R ≤ α. The grid and its start must not depend on the calibration data itself: the start is
// chosen on other data (calibrate: the half of the validation split that fitted the OOD
// threshold and the temperature). Pure functions.
import { thresholdFor } from '../../ood/decision.js'
import { argmax, softmax, type Logits } from '../../ood/scores.js'
import type { OodSpec } from '../../registry/manifest-schema.js'

/** One labelled in-distribution image: its confidence, the OOD rule's verdict, right or wrong. */
export interface SelectiveSample {
  confidence: number
  /** The OOD rule accepts it (score ≥ its threshold). */
  oodAccepted: boolean
  error: boolean
}

/**
 * The labelled images of a data set as the service would judge them: confidence =
 * softmax(logits / T)[argmax] (decide()'s confidence.value), OOD verdict by the predicted
 * class's threshold. Images without a label (−1) are left out.
 */
export function selectiveSamplesOf (logits: Logits[], labels: number[], scores: number[], ood: Pick<OodSpec, 'threshold' | 'classThresholds'>, temperature = 1): SelectiveSample[] {
  const out: SelectiveSample[] = []
  logits.forEach((l, i) => {
    const y = labels[i]!
    if (y < 0) return
    const k = argmax(l)
    out.push({ confidence: softmax(l, temperature)[k] as number, oodAccepted: !(scores[i]! < thresholdFor(ood, k)), error: k !== y })
  })
  return out
}

/** log(n choose i) by summing logs: exact enough, and n is at most the calibration size. */
function logBinomialPmf (i: number, n: number, p: number, logChoose: number): number {
  return logChoose + i * Math.log(p) + (n - i) * Math.log1p(-p)
}

/** P(Bin(n, p) ≤ k), computed in log space so that large n does not underflow. */
export function binomialLowerTail (k: number, n: number, p: number): number {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(k)) throw new RangeError(`binomialLowerTail needs whole k and n ≥ 0, got k=${k}, n=${n}`)
  if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be in [0, 1], got ${p}`)
  if (k < 0) return 0
  if (k >= n) return 1
  if (p === 0) return 1
  if (p === 1) return 0
  let logChoose = 0
  let max = -Infinity
  const terms: number[] = []
  for (let i = 0; i <= k; i++) {
    if (i > 0) logChoose += Math.log(n - i + 1) - Math.log(i)
    const t = logBinomialPmf(i, n, p, logChoose)
    terms.push(t)
    if (t > max) max = t
  }
  let sum = 0
  for (const t of terms) sum += Math.exp(t - max)
  return Math.min(1, Math.exp(max + Math.log(sum)))
}

/**
 * Clopper–Pearson upper confidence bound on a rate from k errors among n: the largest r with
 * P(Bin(n, r) ≤ k) ≥ δ (bisection; 1 when n = 0). The true rate is below it with probability
 * ≥ 1 − δ.
 */
export function binomialUpperBound (k: number, n: number, delta: number): number {
  if (n === 0 || k >= n) return 1
  let lo = k / n
  let hi = 1
  for (let it = 0; it < 60; it++) {
    const mid = (lo + hi) / 2
    if (binomialLowerTail(k, n, mid) >= delta) lo = mid
    else hi = mid
  }
  return lo
}

/**
 * The fixed grid of candidate thresholds, most confident first: λ = 1 − 10^(−x) for x from 12
 * down to 0.005 in steps of 0.005 (2,400 values, 200 per decade of 1 − λ). Confidences of a
 * trained classifier crowd towards 1, so the grid is dense there; it never depends on data.
 */
export function confidenceGrid (): number[] {
  const grid: number[] = []
  for (let j = 2400; j >= 1; j--) grid.push(1 - 10 ** (-j * 0.005))
  return grid
}

/** Images accepted by both rules at λ and the errors among them, for each λ of `grid` (descending), in one sweep. */
export function countsAlong (samples: SelectiveSample[], grid: number[]): Array<{ accepted: number, errors: number }> {
  const ood = samples.filter((s) => s.oodAccepted).sort((a, b) => b.confidence - a.confidence)
  const out: Array<{ accepted: number, errors: number }> = []
  let i = 0
  let errors = 0
  for (const lambda of grid) {
    while (i < ood.length && ood[i]!.confidence >= lambda) {
      if (ood[i]!.error) errors++
      i++
    }
    out.push({ accepted: i, errors })
  }
  return out
}

/**
 * The fewest accepted images with which a zero-error sample can reject H: (1 − α)^m ≤ δ.
 * Above that many, a test can pass; below, it never does.
 */
export function minAcceptedForTest (alpha: number, delta: number): number {
  return Math.ceil(Math.log(delta) / Math.log(1 - alpha))
}

/**
 * Where the fixed sequence starts: the most confident λ of `grid` at which `fit` — data
 * disjoint from the calibration data — has at least max(minAcceptedForTest, startShare · |fit|)
 * images accepted by both rules. Above it a test would meet too few images and, failing, stop
 * the sequence before it began. Returns an index into `grid`.
 */
export function sequenceStart (grid: number[], fit: SelectiveSample[], alpha: number, delta: number, startShare = 0.1): number {
  const need = Math.max(minAcceptedForTest(alpha, delta), startShare * fit.length)
  const counts = countsAlong(fit, grid)
  const i = counts.findIndex((c) => c.accepted >= need)
  return i < 0 ? grid.length - 1 : i
}

export interface RiskControl {
  /** The chosen confidence threshold (uncertain when confidence < it); null when no λ passed. */
  threshold: number | null
  /** Grid values tested, the last one the failure that stopped the sequence (if any). */
  tested: number
  /** At the chosen threshold, on the calibration data: */
  n: number
  accepted: number
  errors: number
  /** accepted / n: the share of calibration images accepted by both rules. */
  coverage: number
  /** errors / accepted. */
  risk: number
  /** Clopper–Pearson upper bound on the selective risk at 1 − δ (≤ α when a threshold was chosen). */
  bound: number
  /** The p-value of the chosen λ's test. */
  pValue: number
  /** Share of calibration images with confidence < threshold, whatever the OOD rule said. */
  uncertainRate: number
}

/**
 * Learn-then-Test over `grid` (descending), from `start`: the smallest λ before the first
 * test that fails. P(R(threshold) > alpha) ≤ delta over the draw of `samples`, provided the grid
 * and start were chosen without them.
 */
export function controlSelectiveRisk (samples: SelectiveSample[], grid: number[], alpha: number, delta: number, start = 0): RiskControl {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`the target risk must be in (0, 1), got ${alpha}`)
  if (!(delta > 0 && delta < 1)) throw new RangeError(`δ must be in (0, 1), got ${delta}`)
  if (samples.length === 0) throw new RangeError('controlSelectiveRisk needs calibration samples')
  const path = grid.slice(start)
  const counts = countsAlong(samples, path)
  let chosen = -1
  let p = 1
  let tested = 0
  for (let j = 0; j < path.length; j++) {
    tested++
    const { accepted, errors } = counts[j]!
    const pj = accepted === 0 ? 1 : binomialLowerTail(errors, accepted, alpha)
    if (pj > delta) break
    chosen = j
    p = pj
  }
  const n = samples.length
  if (chosen < 0) return { threshold: null, tested, n, accepted: 0, errors: 0, coverage: 0, risk: 0, bound: 1, pValue: 1, uncertainRate: 1 }
  const threshold = path[chosen]!
  const { accepted, errors } = counts[chosen]!
  return {
    threshold,
    tested,
    n,
    accepted,
    errors,
    coverage: accepted / n,
    risk: accepted === 0 ? 0 : errors / accepted,
    bound: binomialUpperBound(errors, accepted, delta),
    pValue: p,
    uncertainRate: samples.filter((s) => s.confidence < threshold).length / n
  }
}

/** Coverage and realized risk of the served rule (OOD accept and confidence ≥ threshold) on labelled data. */
export function selectiveOutcome (samples: SelectiveSample[], threshold: number): { n: number, accepted: number, errors: number, coverage: number, risk: number } {
  const acc = samples.filter((s) => s.oodAccepted && s.confidence >= threshold)
  const errors = acc.filter((s) => s.error).length
  return { n: samples.length, accepted: acc.length, errors, coverage: samples.length === 0 ? 0 : acc.length / samples.length, risk: acc.length === 0 ? 0 : errors / acc.length }
}

/**
 * How far a realized risk on m accepted test images may sit above the target by sampling
 * alone: the one-sided 1 − γ binomial quantile margin, ≈ z_{1−γ} · sqrt(α(1 − α)/m). A
 * test-split figure ≤ α + margin is consistent with the bound.
 */
export function samplingMargin (alpha: number, m: number, z = 1.645): number {
  return m === 0 ? 1 : z * Math.sqrt(alpha * (1 - alpha) / m)
}
