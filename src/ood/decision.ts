// From one row of logits to what the API answers: prediction, top-k, the OOD decision, the
// confidence against its calibrated threshold, and the one verdict over both (reject + reasons).
// Pure: no I/O, no Fastify; the route adds timings.
import { NonFiniteOutputError } from '../errors.js'
import type { CalibratedEntry } from '../registry/manifest-schema.js'
import { argmax, maxOf, score, softmax, type GraphScores, type Logits } from './scores.js'
import { conformalPValue } from './threshold.js'

export interface TopKEntry {
  label: string
  classIndex: number
  probability: number
}

export interface OodResult {
  score: number
  kind: CalibratedEntry['ood']['score']
  threshold: number
  reject: boolean
  pValue?: number
  minDistance?: number
}

/** Why a label is not to be trusted: unlike the training data, or likely wrong. */
export type RejectReason = 'ood' | 'uncertain'

export interface ConfidenceResult {
  /** The temperature-scaled top softmax probability: topK[0].probability. */
  value: number
  /** Below it the label is rejected as uncertain; absent when the model has no selective block. */
  threshold?: number
}

export interface Decision {
  label: string
  classIndex: number
  topK: TopKEntry[]
  /** Do not trust this label: some reason in rejectReasons fired. */
  reject: boolean
  rejectReasons: RejectReason[]
  ood: OodResult
  confidence: ConfidenceResult
}

/** The one decision: which reasons fire for an image, in a fixed order ("ood" first). */
export function rejectReasons (oodReject: boolean, confidence: ConfidenceResult): RejectReason[] {
  const reasons: RejectReason[] = []
  if (oodReject) reasons.push('ood')
  if (confidence.threshold !== undefined && confidence.value < confidence.threshold) reasons.push('uncertain')
  return reasons
}

/**
 * The threshold an image predicted as `classIndex` is judged by: its class's under Mondrian
 * calibration, else the global one.
 */
export function thresholdFor (ood: Pick<CalibratedEntry['ood'], 'threshold' | 'classThresholds'>, classIndex: number): number {
  return ood.classThresholds?.[classIndex] ?? ood.threshold
}

/** What makes a model's output unusable — "logit 3 is NaN" — or null when every number is finite. */
export function nonFiniteOutput (logits: Logits, score: number): string | null {
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i])) return `logit ${i} is ${logits[i] as number}`
  }
  return Number.isFinite(score) ? null : `the score is ${score}`
}

/**
 * `graph`: the scores the model's graph computed for this image (output.scores), if any.
 * A non-finite logit or score is never a decision: NaN < threshold is false, so it would
 * read as accepted. It is an ISOMAX_NON_FINITE_OUTPUT error naming `what`.
 */
export function decide (model: Pick<CalibratedEntry, 'labels' | 'ood' | 'output' | 'probabilities' | 'selective'>, logits: Logits, k: number, graph?: GraphScores, what = 'the input'): Decision {
  const problem = nonFiniteOutput(logits, score(model.ood.score, logits, graph))
  if (problem !== null) throw new NonFiniteOutputError(`the model's output for ${what} is not finite (${problem}): it cannot be scored or judged in or out of distribution`)
  const probabilities = softmax(logits, model.probabilities?.temperature ?? 1)
  const order = Array.from(probabilities.keys()).sort((a, b) => (probabilities[b] as number) - (probabilities[a] as number))
  const classIndex = argmax(logits)
  const s = score(model.ood.score, logits, graph)
  // Mondrian calibration, when calibrate made it: the predicted class's own threshold and
  // calibration scores (a class with too few calibration images has the global ones).
  const threshold = thresholdFor(model.ood, classIndex)
  const ood: OodResult = {
    score: s,
    kind: model.ood.score,
    threshold,
    reject: s < threshold
  }
  const own = model.ood.calibration.classScores?.[classIndex]
  const calibration = own !== undefined && own.length > 0 ? own : model.ood.calibration.scores
  if (calibration !== undefined && calibration.length > 0) ood.pValue = conformalPValue(calibration, s)
  // Distance heads output −d: the nearest prototype is at distance −max(logits).
  if (model.output.holds === 'negative-distances') ood.minDistance = -maxOf(logits)
  // The predicted class's probability (= topK[0].probability), the number calibrate thresholded.
  const confidence: ConfidenceResult = { value: probabilities[classIndex] as number }
  if (model.selective !== undefined) confidence.threshold = model.selective.threshold
  const reasons = rejectReasons(ood.reject, confidence)
  return {
    label: model.labels[classIndex] as string,
    classIndex,
    topK: order.slice(0, Math.min(k, order.length)).map((i) => ({
      label: model.labels[i] as string,
      classIndex: i,
      probability: probabilities[i] as number
    })),
    reject: reasons.length > 0,
    rejectReasons: reasons,
    ood,
    confidence
  }
}
