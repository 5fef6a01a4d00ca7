// How an INT8 variant compares with the float model it was made from, on the same images through
// the serving path: accuracy, OOD AUROC per set, and how many served decisions (class, accept or
// reject) differ. Pure: the outputs of both models in, figures out.
import { thresholdFor } from '../../ood/decision.js'
import { argmax } from '../../ood/scores.js'
import type { CalibratedEntry } from '../../registry/manifest-schema.js'
import { auroc } from '../evaluation/metrics.js'

export interface Outputs {
  logits: Float32Array[]
  scores: number[]
  labels: number[]
}

type Ood = Pick<CalibratedEntry['ood'], 'threshold' | 'classThresholds'>

export interface Agreement {
  n: number
  /** Images whose predicted class differs. */
  classFlips: number
  /** Images accepted by one model and rejected by the other, each at its own (served) threshold. */
  decisionFlips: number
  /** The same, with the INT8 model judged by the float model's threshold(s). */
  decisionFlipsAtFloatThreshold: number
}

export interface SetComparison {
  label: string
  float: { auroc: number, rejectRate: number }
  int8: { auroc: number, rejectRate: number }
  agreement: Agreement
}

export interface QualityReport {
  id: { label: string, n: number, accuracy: { float: number | null, int8: number | null }, rejectRate: { float: number, int8: number }, agreement: Agreement, perClassReject: { labels: string[], float: number[], int8: number[] } }
  ood: SetComparison[]
}

const rejected = (ood: Ood, logits: Float32Array, score: number): boolean => score < thresholdFor(ood, argmax(logits))

export function agreement (float: Outputs, int8: Outputs, floatOod: Ood, int8Ood: Ood): Agreement {
  let classFlips = 0
  let decisionFlips = 0
  let atFloat = 0
  float.logits.forEach((l, i) => {
    const q = int8.logits[i]!
    if (argmax(l) !== argmax(q)) classFlips++
    const f = rejected(floatOod, l, float.scores[i]!)
    if (f !== rejected(int8Ood, q, int8.scores[i]!)) decisionFlips++
    if (f !== rejected(floatOod, q, int8.scores[i]!)) atFloat++
  })
  return { n: float.logits.length, classFlips, decisionFlips, decisionFlipsAtFloatThreshold: atFloat }
}

export function accuracy (out: Outputs): number | null {
  const known = out.labels.flatMap((l, i) => l >= 0 ? [i] : [])
  return known.length === 0 ? null : known.filter((i) => argmax(out.logits[i]!) === out.labels[i]).length / known.length
}

export function rejectRate (out: Outputs, ood: Ood): number {
  return out.logits.filter((l, i) => rejected(ood, l, out.scores[i]!)).length / Math.max(1, out.logits.length)
}

/** Reject rate of the labelled images of each true class: the false rejects a user of that class sees. */
export function perClassReject (out: Outputs, ood: Ood, classes: number): number[] {
  return Array.from({ length: classes }, (_, c) => {
    const mine = out.labels.flatMap((l, i) => l === c ? [i] : [])
    return mine.length === 0 ? 0 : mine.filter((i) => rejected(ood, out.logits[i]!, out.scores[i]!)).length / mine.length
  })
}

export function compareQuality (labels: string[], id: { label: string, float: Outputs, int8: Outputs }, oodSets: Array<{ label: string, float: Outputs, int8: Outputs }>,
  floatOod: Ood, int8Ood: Ood): QualityReport {
  return {
    id: {
      label: id.label,
      n: id.float.logits.length,
      accuracy: { float: accuracy(id.float), int8: accuracy(id.int8) },
      rejectRate: { float: rejectRate(id.float, floatOod), int8: rejectRate(id.int8, int8Ood) },
      agreement: agreement(id.float, id.int8, floatOod, int8Ood),
      perClassReject: { labels, float: perClassReject(id.float, floatOod, labels.length), int8: perClassReject(id.int8, int8Ood, labels.length) }
    },
    ood: oodSets.map((o) => ({
      label: o.label,
      float: { auroc: auroc(id.float.scores, o.float.scores), rejectRate: rejectRate(o.float, floatOod) },
      int8: { auroc: auroc(id.int8.scores, o.int8.scores), rejectRate: rejectRate(o.int8, int8Ood) },
      agreement: agreement(o.float, o.int8, floatOod, int8Ood)
    }))
  }
}

const pct = (v: number | null): string => v === null ? '–' : `${(100 * v).toFixed(2)} %`

export function qualityText (q: QualityReport): string {
  const flips = (a: Agreement): string => `${a.classFlips} class, ${a.decisionFlips} accept/reject (${a.decisionFlipsAtFloatThreshold} at the float threshold) of ${a.n}`
  const lines = [
    `quality          ${q.id.label} (${q.id.n} images): accuracy float ${pct(q.id.accuracy.float)}, int8 ${pct(q.id.accuracy.int8)}; reject rate ${pct(q.id.rejectRate.float)} → ${pct(q.id.rejectRate.int8)}`,
    `                 decisions that differ: ${flips(q.id.agreement)}`
  ]
  if (q.id.accuracy.float !== null) {
    lines.push(`                 reject rate by true class (float → int8): ${q.id.perClassReject.labels.map((l, c) => `${l} ${pct(q.id.perClassReject.float[c]!)} → ${pct(q.id.perClassReject.int8[c]!)}`).join(', ')}`)
  }
  for (const o of q.ood) {
    lines.push(`ood ${o.label}: AUROC float ${o.float.auroc.toFixed(5)}, int8 ${o.int8.auroc.toFixed(5)} (Δ ${(o.int8.auroc - o.float.auroc).toFixed(5)}); rejected ${pct(o.float.rejectRate)} → ${pct(o.int8.rejectRate)}; decisions that differ: ${flips(o.agreement)}`)
  }
  return lines.join('\n')
}
