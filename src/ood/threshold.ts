// Threshold and conformal p-value from calibration scores (in-distribution held-out data). The
// threshold δ is the (1 − TPR) quantile of the scores (TPR 0.95 → 5th percentile): reject when
// score < δ. With n calibration scores the conformal p-value of a new score s is
// (1 + #{cal ≤ s}) / (n + 1), which is ≤ α with probability ≤ α for in-distribution inputs.

/**
 * The fewest calibration scores that give a threshold of their own at `tpr`: with fewer, k =
 * ⌊(1 − tpr)(n + 1)⌋ is 0 and the threshold would be the smallest score, whatever the TPR.
 */
export function minCalibrationSize (tpr: number): number {
  return Math.ceil(1 / (1 - tpr)) - 1
}

/**
 * How many of `scores` are NaN or infinite, in one line ("3 of 1000 scores are not finite
 * (NaN ×3; the first is number 12)"), or null when all are finite.
 */
export function nonFiniteScores (scores: ArrayLike<number>): string | null {
  const counts = new Map<string, number>()
  let first = -1
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] as number
    if (Number.isFinite(s)) continue
    if (first < 0) first = i
    counts.set(String(s), (counts.get(String(s)) ?? 0) + 1)
  }
  if (first < 0) return null
  const total = [...counts.values()].reduce((a, b) => a + b, 0)
  return `${total} of ${scores.length} scores are not finite (${[...counts].map(([v, n]) => `${v} ×${n}`).join(', ')}; the first is number ${first + 1})`
}

/**
 * k-th smallest score, k = ⌊(1 − tpr)(n + 1)⌋ clamped to [1, n]: accept when score ≥ δ.
 * Refuses non-finite scores: sorted, NaN would sit anywhere and make the threshold NaN.
 */
export function thresholdAtTpr (scores: ArrayLike<number>, tpr: number): number {
  if (scores.length === 0) throw new RangeError('thresholdAtTpr needs at least one score')
  if (!(tpr > 0 && tpr < 1)) throw new RangeError(`tpr must be in (0, 1), got ${tpr}`)
  const nonFinite = nonFiniteScores(scores)
  if (nonFinite !== null) throw new RangeError(`${nonFinite}: the model's output is NaN or infinite for those inputs, so no threshold can be calibrated from them; fix the model (or drop those inputs)`)
  const sorted = Float64Array.from(scores).sort()
  const k = Math.min(sorted.length, Math.max(1, Math.floor((1 - tpr) * (sorted.length + 1))))
  return sorted[k - 1] as number
}

/** Number of sorted values ≤ x (binary search). */
export function countAtMost (sorted: ArrayLike<number>, x: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((sorted[mid] as number) <= x) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * Conformal p-value of a new score against n sorted calibration scores:
 * (1 + #{cal ≤ s}) / (n + 1). Small = unusually low score for in-distribution data;
 * P(p ≤ α) ≤ α for an exchangeable in-distribution input.
 */
export function conformalPValue (sortedCalibration: ArrayLike<number>, s: number): number {
  return (1 + countAtMost(sortedCalibration, s)) / (sortedCalibration.length + 1)
}
