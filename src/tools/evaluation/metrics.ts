// OOD detection metrics. In-distribution (ID) is the positive class; higher score = more ID.
// Definitions follow the seed paper's tables (and training/ood_metrics.py):
//   AUROC           P(score_ID > score_OOD) + ½ P(tie)
//   AUPR-In         average precision with ID as positive and the score as is
//   AUPR-Out        average precision with OOD as positive and the score negated
//   TNR at 95 % TPR threshold δ = the ⌊0.05(n+1)⌋-th smallest ID score; TNR = P(OOD < δ)
//   detection acc.  max over δ of ½ (TPR + TNR)
import { thresholdAtTpr } from '../../ood/threshold.js'

export function auroc (id: ArrayLike<number>, ood: ArrayLike<number>): number {
  if (id.length === 0 || ood.length === 0) throw new RangeError('auroc needs ID and OOD scores')
  const all = [...Array.from(id, (s) => ({ s, pos: true })), ...Array.from(ood, (s) => ({ s, pos: false }))]
  all.sort((a, b) => a.s - b.s)
  // Mann–Whitney U with average ranks for ties.
  let rankSumPos = 0
  for (let i = 0; i < all.length;) {
    let j = i
    while (j + 1 < all.length && all[j + 1]!.s === all[i]!.s) j++
    const avgRank = (i + j) / 2 + 1
    for (let k = i; k <= j; k++) if (all[k]!.pos) rankSumPos += avgRank
    i = j + 1
  }
  const n1 = id.length
  const n0 = ood.length
  return (rankSumPos - n1 * (n1 + 1) / 2) / (n1 * n0)
}

/** Average precision of `pos` against `neg`, higher score = predicted positive; ties form one step. */
export function averagePrecision (pos: ArrayLike<number>, neg: ArrayLike<number>): number {
  if (pos.length === 0) throw new RangeError('averagePrecision needs positives')
  const all = [...Array.from(pos, (s) => ({ s, pos: true })), ...Array.from(neg, (s) => ({ s, pos: false }))]
  all.sort((a, b) => b.s - a.s)
  let tp = 0
  let fp = 0
  let prevRecall = 0
  let ap = 0
  for (let i = 0; i < all.length;) {
    let j = i
    while (j < all.length && all[j]!.s === all[i]!.s) { if (all[j]!.pos) tp++; else fp++; j++ }
    const recall = tp / pos.length
    ap += (recall - prevRecall) * (tp / (tp + fp))
    prevRecall = recall
    i = j
  }
  return ap
}

export const auprIn = (id: ArrayLike<number>, ood: ArrayLike<number>): number => averagePrecision(id, ood)
export const auprOut = (id: ArrayLike<number>, ood: ArrayLike<number>): number =>
  averagePrecision(Array.from(ood, (s) => -s), Array.from(id, (s) => -s))

export function tnrAtTpr (id: ArrayLike<number>, ood: ArrayLike<number>, tpr = 0.95): number {
  const delta = thresholdAtTpr(id, tpr)
  return rejectRate(ood, delta)
}

/** Fraction of scores below the threshold (what the service rejects). */
export function rejectRate (scores: ArrayLike<number>, threshold: number): number {
  let n = 0
  for (let i = 0; i < scores.length; i++) if ((scores[i] as number) < threshold) n++
  return n / scores.length
}

/** max over thresholds of ½ (TPR + TNR), accepting score ≥ δ. */
export function detectionAccuracy (id: ArrayLike<number>, ood: ArrayLike<number>): number {
  const all = [...Array.from(id, (s) => ({ s, pos: true })), ...Array.from(ood, (s) => ({ s, pos: false }))]
  all.sort((a, b) => a.s - b.s)
  // δ just above the first k sorted scores: rejects those k. Start with δ = −∞ (reject none).
  let idBelow = 0
  let oodBelow = 0
  let best = 0.5 * (1 + 0)
  for (let i = 0; i < all.length;) {
    let j = i
    while (j < all.length && all[j]!.s === all[i]!.s) { if (all[j]!.pos) idBelow++; else oodBelow++; j++ }
    const tprNow = 1 - idBelow / id.length
    const tnrNow = oodBelow / ood.length
    best = Math.max(best, 0.5 * (tprNow + tnrNow))
    i = j
  }
  return best
}

export interface OodMetrics {
  auroc: number
  auprIn: number
  auprOut: number
  tnrAt95Tpr: number
  detectionAccuracy: number
}

export function oodMetrics (id: ArrayLike<number>, ood: ArrayLike<number>): OodMetrics {
  return {
    auroc: auroc(id, ood),
    auprIn: auprIn(id, ood),
    auprOut: auprOut(id, ood),
    tnrAt95Tpr: tnrAtTpr(id, ood, 0.95),
    detectionAccuracy: detectionAccuracy(id, ood)
  }
}

/**
 * The ROC curve, thinned to about `points` points for a figure: (false-positive rate, true-
 * positive rate) as the threshold sweeps from above every score to below every score, where
 * accepting (score ≥ δ) an ID image is a true positive and accepting an OOD one a false one.
 */
export function rocCurve (id: ArrayLike<number>, ood: ArrayLike<number>, points = 200): Array<{ fpr: number, tpr: number }> {
  const all = [...Array.from(id, (s) => ({ s, pos: true })), ...Array.from(ood, (s) => ({ s, pos: false }))]
  all.sort((a, b) => b.s - a.s)
  const curve = [{ fpr: 0, tpr: 0 }]
  let tp = 0
  let fp = 0
  const step = Math.max(1, Math.floor(all.length / points))
  for (let i = 0, next = step; i < all.length;) {
    let j = i
    while (j < all.length && all[j]!.s === all[i]!.s) { if (all[j]!.pos) tp++; else fp++; j++ }
    i = j
    if (i >= next || i === all.length) {
      curve.push({ fpr: fp / ood.length, tpr: tp / id.length })
      next = i + step
    }
  }
  return curve
}

/** Share of `values` in each of `bins` equal-width bins over [lo, hi] (values outside are clamped). */
export function histogram (values: ArrayLike<number>, lo: number, hi: number, bins: number): Array<{ x0: number, x1: number, share: number }> {
  const width = (hi - lo) / bins
  const counts = new Float64Array(bins)
  for (let i = 0; i < values.length; i++) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor(((values[i] as number) - lo) / width)))
    counts[b] = (counts[b] as number) + 1
  }
  return Array.from(counts, (c, b) => ({ x0: lo + b * width, x1: lo + (b + 1) * width, share: c / values.length }))
}
