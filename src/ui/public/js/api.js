// The service's JSON API, as the page calls it: same origin, paths relative to the page, so
// the page also works behind a proxy that mounts the service under a prefix.

/**
 * @typedef {{ label: string, classIndex: number, probability: number }} TopK
 * @typedef {{ score: number, kind: string, threshold: number, reject: boolean, pValue?: number, minDistance?: number }} Ood
 * @typedef {{ model: string, version: string, label: string, classIndex: number, topK: TopK[], reject?: boolean, rejectReasons?: Array<'ood' | 'uncertain'>, ood: Ood, confidence?: { value: number, threshold?: number }, input?: string, batchSize: number, timings: Record<string, number> }} ClassifyResult
 * @typedef {{ name: string, version: string, default: boolean, head: string, labels: string[], input: { channels: number, height: number, width: number, colour: string, fit: string }, ood: { score: string, threshold: number, targetTpr: number, achievedTpr: number, calibrationN: number, calibrationDate: string }, selective?: { targetRisk: number, delta: number, threshold: number, calibrationN: number, coverage: number, risk: number, bound: number, method: string, calibrationDate: string } }} ModelInfo
 * @typedef {{ temperature: number, n: number, ece: { before: number, after: number } }} Probabilities
 * @typedef {ModelInfo & { ood: ModelInfo['ood'] & { classThresholds?: number[], calibration: { scores?: number[], classScores?: number[][], classN?: number[] } }, probabilities?: Probabilities }} ModelDetail
 * @typedef {{ status: number, code: string, message: string, retryAfter: string | null }} ApiError
 */

/** An error answer of the API, or of a proxy in front of it, in the catalogue's shape. */
export class ApiFailure extends Error {
  /** @param {ApiError} e */
  constructor (e) {
    super(e.message)
    this.name = 'ApiFailure'
    this.status = e.status
    this.code = e.code
    this.retryAfter = e.retryAfter
  }
}

/**
 * The JSON body of a response, or an ApiFailure with the catalogue's code and message
 * (`{ error: { code, message } }`; anything else, e.g. a proxy's HTML page, keeps its status).
 * @param {Response} res
 * @returns {Promise<unknown>}
 */
async function json (res) {
  const text = await res.text()
  /** @type {any} */
  let body = null
  try { body = JSON.parse(text) } catch { body = null }
  if (res.ok && body !== null) return body
  const error = body?.error
  throw new ApiFailure({
    status: res.status,
    code: typeof error?.code === 'string' ? error.code : `HTTP_${res.status}`,
    message: typeof error?.message === 'string' ? error.message : (res.statusText || `HTTP ${res.status}`),
    retryAfter: res.headers.get('retry-after')
  })
}

/** @returns {Promise<{ default: string, models: ModelInfo[] }>} */
export async function listModels () {
  return /** @type {any} */ (await json(await fetch('models')))
}

/**
 * @param {string} name
 * @returns {Promise<ModelDetail>}
 */
export async function modelDetail (name) {
  return /** @type {any} */ (await json(await fetch(`models/${encodeURIComponent(name)}`)))
}

/**
 * One image, as a one-part multipart form: the service sniffs the bytes, so a GIF or a PDF
 * gets the catalogue's own 415 whatever type the browser guessed for the file.
 * @param {string} model
 * @param {Blob} image
 * @param {string} filename
 * @param {number} topK
 * @returns {Promise<ClassifyResult>}
 */
export async function classify (model, image, filename, topK) {
  const form = new FormData()
  form.append('image', image, filename)
  const url = `models/${encodeURIComponent(model)}/classify?topK=${topK}&include=input`
  const results = /** @type {ClassifyResult[]} */ (await json(await fetch(url, { method: 'POST', body: form })))
  return /** @type {ClassifyResult} */ (results[0])
}

/** @returns {Promise<boolean>} whether the API docs are served (API_DOCS_ENABLED) */
export async function docsAvailable () {
  try {
    return (await fetch('docs/json', { method: 'HEAD' })).ok
  } catch {
    return false
  }
}
