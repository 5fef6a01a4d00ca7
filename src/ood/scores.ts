// OOD scores from one row of logits, or from a post-hoc detector's own graph output. Higher =
// more in-distribution for every kind, so the reject rule is always `score < threshold`.
// Mirrors training/scores.py.
import { isGraphScore, scoreOutputsOf, type GraphScoreKind, type ScoreKind } from '../registry/manifest-schema.js'

type LogitScoreKind = Exclude<ScoreKind, GraphScoreKind>

export type Logits = ArrayLike<number>

export function maxOf (logits: Logits): number {
  let m = -Infinity
  for (let i = 0; i < logits.length; i++) if ((logits[i] as number) > m) m = logits[i] as number
  return m
}

export function argmax (logits: Logits): number {
  let best = 0
  for (let i = 1; i < logits.length; i++) if ((logits[i] as number) > (logits[best] as number)) best = i
  return best
}

/** log Σ exp(logits), stable. */
export function logSumExp (logits: Logits): number {
  const m = maxOf(logits)
  let sum = 0
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] as number) - m)
  return m + Math.log(sum)
}

/** softmax(logits / temperature): a temperature fitted on held-out data calibrates the probabilities. */
export function softmax (logits: Logits, temperature = 1): Float64Array {
  const scaled = temperature === 1 ? logits : Array.from(logits, (l) => l / temperature)
  const lse = logSumExp(scaled)
  const p = new Float64Array(scaled.length)
  for (let i = 0; i < scaled.length; i++) p[i] = Math.exp((scaled[i] as number) - lse)
  return p
}

/** Minimum distance score: max logit = −min distance for a distance head. */
export function mds (logits: Logits): number {
  return maxOf(logits)
}

/** Σ p log p over softmax(logits) (negative entropy): 0 for one-hot, −log C for uniform. */
export function entropic (logits: Logits): number {
  const lse = logSumExp(logits)
  let s = 0
  for (let i = 0; i < logits.length; i++) {
    const logp = (logits[i] as number) - lse
    s += Math.exp(logp) * logp
  }
  return s
}

export function msp (logits: Logits): number {
  return Math.exp(maxOf(logits) - logSumExp(logits))
}

export function maxlogit (logits: Logits): number {
  return maxOf(logits)
}

export function energy (logits: Logits): number {
  return logSumExp(logits)
}

const LOGIT_SCORES: Record<LogitScoreKind, (logits: Logits) => number> = { mds, entropic, msp, maxlogit, energy }

/** Scores a graph computed itself (a post-hoc detector's output), by kind, for one image. */
export type GraphScores = Partial<Record<GraphScoreKind, number>>

/** One image's row of graph scores (in scoreOutputsOf order) by kind; undefined without any. */
export function graphScoresOf (output: Parameters<typeof scoreOutputsOf>[0], row: ArrayLike<number> | undefined): GraphScores | undefined {
  if (row === undefined) return undefined
  const out: GraphScores = {}
  scoreOutputsOf(output).forEach(({ kind }, i) => { out[kind] = row[i] as number })
  return out
}

/** The score of one image: computed from its logits, or read from the graph's own output. */
export function score (kind: ScoreKind, logits: Logits, graph?: GraphScores): number {
  if (!isGraphScore(kind)) return LOGIT_SCORES[kind](logits)
  const s = graph?.[kind]
  if (s === undefined) throw new Error(`score "${kind}" comes from the model's graph, and this model has no such output`)
  return s
}
