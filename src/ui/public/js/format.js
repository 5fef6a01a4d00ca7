// Numbers as people read them: a real minus sign, a fixed number of decimals, percentages.

/**
 * @param {number} x
 * @param {number} [digits]
 */
export function num (x, digits = 3) {
  return x.toFixed(digits).replace(/^-/, '−')
}

/**
 * @param {number} p a fraction, 0 … 1
 * @param {number} [digits]
 */
export function percent (p, digits = 1) {
  return `${(p * 100).toFixed(digits)} %`
}

/** @param {number} p a p-value: three decimals, or two significant digits below 0.01 */
export function pValue (p) {
  return p < 0.01 ? p.toPrecision(2) : p.toFixed(3)
}

const HEADS = /** @type {Record<string, string>} */ ({ isomaxplus: 'IsoMax+', isomax: 'IsoMax', softmax: 'SoftMax' })

/** @param {string} head the manifest's head kind */
export function headName (head) {
  return HEADS[head] ?? head
}

const SCORES = /** @type {Record<string, string>} */ ({
  mds: 'minimum-distance score',
  entropic: 'entropic score',
  msp: 'max softmax probability',
  maxlogit: 'max logit',
  energy: 'energy score',
  mahalanobis: 'Mahalanobis score'
})

/** @param {string} kind the manifest's `ood.score` (the response's `ood.kind`) */
export function scoreName (kind) {
  return SCORES[kind] ?? kind
}

/** @param {number} n a count, with thousands separated */
export function count (n) {
  return n.toLocaleString('en-GB')
}

/** @param {number} bytes */
export function size (bytes) {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}
