// What the one reject does on held-out data, as served: on the labelled in-distribution set the
// coverage (share accepted by both rules) and the realized risk (error rate among them) against
// the model's target, with the sampling margin a finite test set allows; on each OOD set the
// share rejected and by which reason. Pure: the served verdicts in, figures out.
import type { SelectiveSpec } from '../../registry/manifest-schema.js'
import { samplingMargin } from './selective-risk.js'

/** One image as the service judged it. `correct`: null when the image has no label. */
export interface Verdict {
  reasons: readonly string[]
  confidence: number
  oodReject: boolean
  correct: boolean | null
}

export interface ReasonShares {
  n: number
  /** Rejected for any reason. */
  rejected: number
  /** With the reason "ood" (alone or not), "uncertain" (alone or not), both, and one alone. */
  ood: number
  uncertain: number
  both: number
  oodOnly: number
  uncertainOnly: number
}

export interface SelectiveReport {
  targetRisk: number | null
  delta: number | null
  threshold: number | null
  id: ReasonShares & {
    labelled: number
    accepted: number
    errors: number
    coverage: number
    risk: number
    /** One-sided 95 % binomial margin of the realized risk at the target (samplingMargin). */
    margin: number | null
    /** risk ≤ target + margin (null without a target). */
    withinMargin: boolean | null
  }
  ood: Array<{ set: string } & ReasonShares>
  /** Among OOD-accepted labelled ID images, varying the confidence threshold: coverage (of all labelled) against risk. */
  curve: Array<{ coverage: number, risk: number }>
  /** The operating point on the curve: the served threshold. */
  operatingPoint: { coverage: number, risk: number } | null
}

export function reasonShares (verdicts: Verdict[]): ReasonShares {
  const n = verdicts.length
  const has = (v: Verdict, r: string): boolean => v.reasons.includes(r)
  const count = (f: (v: Verdict) => boolean): number => verdicts.filter(f).length
  const share = (k: number): number => n === 0 ? 0 : k / n
  return {
    n,
    rejected: share(count((v) => v.reasons.length > 0)),
    ood: share(count((v) => has(v, 'ood'))),
    uncertain: share(count((v) => has(v, 'uncertain'))),
    both: share(count((v) => has(v, 'ood') && has(v, 'uncertain'))),
    oodOnly: share(count((v) => has(v, 'ood') && !has(v, 'uncertain'))),
    uncertainOnly: share(count((v) => has(v, 'uncertain') && !has(v, 'ood')))
  }
}

/** Risk–coverage of the confidence threshold among OOD-accepted labelled images, thinned to ≤ `points`. */
export function confidenceCurve (labelled: Verdict[], points = 200): Array<{ coverage: number, risk: number }> {
  const n = labelled.length
  const kept = labelled.filter((v) => !v.oodReject).sort((a, b) => b.confidence - a.confidence)
  const curve: Array<{ coverage: number, risk: number }> = []
  const step = Math.max(1, Math.floor(kept.length / points))
  let errors = 0
  kept.forEach((v, i) => {
    if (v.correct === false) errors++
    if ((i + 1) % step === 0 || i === kept.length - 1) curve.push({ coverage: (i + 1) / n, risk: errors / (i + 1) })
  })
  return curve
}

export function selectiveReport (selective: SelectiveSpec | undefined, id: Verdict[], ood: Array<{ set: string, verdicts: Verdict[] }>): SelectiveReport {
  const labelled = id.filter((v) => v.correct !== null)
  const accepted = labelled.filter((v) => v.reasons.length === 0)
  const errors = accepted.filter((v) => v.correct === false).length
  const risk = accepted.length === 0 ? 0 : errors / accepted.length
  const target = selective?.targetRisk ?? null
  const margin = target === null ? null : samplingMargin(target, accepted.length)
  return {
    targetRisk: target,
    delta: selective?.delta ?? null,
    threshold: selective?.threshold ?? null,
    id: {
      ...reasonShares(id),
      labelled: labelled.length,
      accepted: accepted.length,
      errors,
      coverage: labelled.length === 0 ? 0 : accepted.length / labelled.length,
      risk,
      margin,
      withinMargin: target === null || margin === null ? null : risk <= target + margin
    },
    ood: ood.map((o) => ({ set: o.set, ...reasonShares(o.verdicts) })),
    curve: confidenceCurve(labelled),
    operatingPoint: labelled.length === 0 ? null : { coverage: accepted.length / labelled.length, risk }
  }
}
