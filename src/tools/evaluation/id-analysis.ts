// What the in-distribution set says about a model beyond detection, at its manifest threshold(s):
// are its probabilities honest (ECE before and after its temperature), does rejecting help
// the accepted images (selective classification), and is the false-reject rate even across
// the predicted classes (global against Mondrian thresholds). Pure: logits, labels, scores in.
import { thresholdFor } from '../../ood/decision.js'
import { argmax, type Logits } from '../../ood/scores.js'
import type { CalibratedEntry } from '../../registry/manifest-schema.js'
import { ece, riskCoverage, type RiskCoverage } from './calibration-metrics.js'

export interface IdAnalysis {
  /** null when the ID set has no labels. */
  ece: { bins: 15, atT1: number, temperature: number | null, atTemperature: number | null } | null
  selective: {
    accepted: { n: number, accuracy: number | null }
    rejected: { n: number, accuracy: number | null }
    riskCoverage: RiskCoverage
  } | null
  /** Reject rate of the images predicted as each class. */
  perClassReject: {
    labels: string[]
    n: number[]
    global: number[]
    /** With the manifest's per-class thresholds; null when it has none. */
    perClass: number[] | null
  }
}

/**
 * The share of images the service rejects: score < the predicted class's threshold when the
 * manifest has per-class thresholds, else < the global one.
 */
export function rejectRateAsServed (ood: Pick<CalibratedEntry['ood'], 'threshold' | 'classThresholds'>, logits: Logits[], scores: number[]): number {
  return scores.filter((s, i) => s < thresholdFor(ood, argmax(logits[i]!))).length / scores.length
}

export function analyseId (model: Pick<CalibratedEntry, 'labels' | 'ood' | 'probabilities'>, logits: Logits[], labels: number[], scores: number[]): IdAnalysis {
  const predicted = logits.map((l) => argmax(l))
  const known = labels.flatMap((l, i) => l >= 0 ? [i] : [])
  const labelled = known.length > 0
  const rows = known.map((i) => logits[i]!)
  const y = known.map((i) => labels[i]!)
  const t = model.probabilities?.temperature ?? null

  // As served: by the predicted class's threshold when the manifest has per-class ones.
  const rejects = (i: number): boolean => scores[i]! < thresholdFor(model.ood, predicted[i]!)
  const accepted = known.filter((i) => !rejects(i))
  const rejected = known.filter((i) => rejects(i))
  const accuracy = (ids: number[]): number | null => ids.length === 0 ? null : ids.filter((i) => predicted[i] === labels[i]).length / ids.length

  const classes = model.labels.length
  const rates = (threshold: (c: number) => number): number[] => Array.from({ length: classes }, (_, c) => {
    const mine = scores.filter((_, i) => predicted[i] === c)
    return mine.length === 0 ? 0 : mine.filter((s) => s < threshold(c)).length / mine.length
  })
  return {
    ece: labelled ? { bins: 15, atT1: ece(rows, y, 1), temperature: t, atTemperature: t === null ? null : ece(rows, y, t) } : null,
    selective: labelled
      ? {
          accepted: { n: accepted.length, accuracy: accuracy(accepted) },
          rejected: { n: rejected.length, accuracy: accuracy(rejected) },
          riskCoverage: riskCoverage(known.map((i) => scores[i]!), known.map((i) => predicted[i] === labels[i]))
        }
      : null,
    perClassReject: {
      labels: model.labels,
      n: Array.from({ length: classes }, (_, c) => predicted.filter((p) => p === c).length),
      global: rates(() => model.ood.threshold),
      perClass: model.ood.classThresholds === undefined ? null : rates((c) => thresholdFor(model.ood, c))
    }
  }
}
