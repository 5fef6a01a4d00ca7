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
