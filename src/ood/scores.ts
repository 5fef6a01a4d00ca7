// OOD scores from one row of logits. Higher = more in-distribution for every kind, so the
// reject rule is always `score < threshold`. Mirrors training/scores.py.
import type { ScoreKind } from '../registry/manifest-schema.js'

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

export function softmax (logits: Logits): Float64Array {
  const lse = logSumExp(logits)
  const p = new Float64Array(logits.length)
  for (let i = 0; i < logits.length; i++) p[i] = Math.exp((logits[i] as number) - lse)
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

const SCORES: Record<ScoreKind, (logits: Logits) => number> = { mds, entropic, msp, maxlogit, energy }

export function score (kind: ScoreKind, logits: Logits): number {
  return SCORES[kind](logits)
}
