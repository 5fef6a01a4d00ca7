// One image's card: what was sent, what the model saw, the label and top-k, and the OOD verdict
// against the calibration distribution. A rejected image is marked by colour, an icon and
// words together, never colour alone.
import { dl, el } from './dom.js'
import { count, headName, num, pValue, percent, scoreName, size } from './format.js'
import { drawHistogram } from './histogram.js'
import { pValueShare } from './p-value.js'

/**
 * @typedef {import('./api.js').ClassifyResult} ClassifyResult
 * @typedef {import('./api.js').ModelDetail} ModelDetail
 * @typedef {import('./api.js').ApiFailure} ApiFailure
 */

/**
 * An empty card for an image being classified; filled by showResult or showError.
 * @param {string} name
 * @param {Blob} image
 * @param {string} model
 */
export function pendingCard (name, image, model) {
  const original = el('img', { class: 'original', src: URL.createObjectURL(image), alt: `The image sent: ${name}` })
  original.addEventListener('error', () => original.replaceWith(el('p', { class: 'no-preview' }, 'The browser cannot show this file.')), { once: true })
  return el('article', { class: 'card pending', 'data-file': name, 'data-model': model, 'aria-busy': 'true' },
    el('header', {}, el('h2', {}, name), el('p', { class: 'verdict' }, 'Classifying…')),
    el('div', { class: 'body' },
      el('div', { class: 'images' },
        el('figure', {}, original, el('figcaption', {}, `Sent: ${size(image.size)}`)))))
}

/**
 * The calibration sample the service compared this image with, chosen as decide()
 * (src/ood/decision.ts) chooses it: under per-class (Mondrian) calibration, the scores of the
 * calibration images predicted as the image's class, unless that class had too few to keep a
 * sample of its own; otherwise the model's global sample. `n` is how many calibration images
 * the sample stands for (`scores` may be quantiles of them); `images` names them, counted.
 * @param {ModelDetail} model
 * @param {number} classIndex
 * @returns {{ scores: number[], n: number, which: string, images: string, sample: string, perClassThreshold: boolean }}
 */
export function calibrationFor (model, classIndex) {
  const { calibration, classThresholds, calibrationN } = model.ood
  const label = model.labels[classIndex]
  const perClassThreshold = classThresholds?.[classIndex] !== undefined
  const own = calibration.classScores?.[classIndex]
  if (own !== undefined && own.length > 0) {
    const n = calibration.classN?.[classIndex] ?? own.length
    const images = `${count(n)} calibration images predicted “${label}”`
    return { scores: own, n, which: `the ${images}`, images, sample: `class:${classIndex}`, perClassThreshold }
  }
  const scores = calibration.scores ?? []
  const images = `${count(calibrationN)} in-distribution calibration images`
  return { scores, n: calibrationN, which: `all ${images}`, images, sample: 'global', perClassThreshold }
}

/**
 * What the probabilities are, and why they do not decide trust.
 * @param {ModelDetail} model
 * @param {boolean} reject
 * @param {number} top the largest probability
 */
function probabilityNote (model, reject, top) {
  const p = model.probabilities
  const what = p !== undefined
    ? `Probabilities: softmax(logits / ${num(p.temperature)}), a temperature fitted on ${count(p.n)} held-out images (calibration error ${percent(p.ece.before)} → ${percent(p.ece.after)}).`
    : 'Probabilities: softmax of the logits, uncalibrated.'
  const why = reject && top >= 0.5
    ? ' A high probability here only ranks the classes this model knows; the OOD score says the image is like none of them.'
    : ''
  return what + why
}

/**
 * The confidence against its threshold, and what the threshold promises.
 * @param {ClassifyResult} r
 * @param {ModelDetail} model
 */
function confidenceLine (r, model) {
  const c = r.confidence
  if (c === undefined) return ''
  if (c.threshold === undefined || model.selective === undefined) {
    return el('p', { class: 'confidence' }, `Confidence ${percent(c.value, 2)}: this model has no confidence threshold, so it never rejects a label as uncertain.`)
  }
  const s = model.selective
  return el('p', { class: 'confidence' },
    `Confidence ${percent(c.value, 2)} — threshold ${percent(c.threshold, 2)}: ${c.value < c.threshold ? 'below it, so rejected as uncertain' : 'at or above it'}. ` +
    `Calibrated so that at most ${percent(s.targetRisk, 0)} of accepted in-distribution labels are wrong (with probability ${percent(1 - s.delta, 0)}, over ${count(s.calibrationN)} held-out images).`)
}

/**
 * @param {HTMLElement} card
 * @param {ClassifyResult} r
 * @param {ModelDetail} model
 */
export function showResult (card, r, model) {
  // One verdict over both reasons (an older server without them: the OOD decision alone).
  const reasons = r.rejectReasons ?? (r.ood.reject ? ['ood'] : [])
  const reject = r.reject ?? r.ood.reject
  const ood = reasons.includes('ood')
  const uncertain = reasons.includes('uncertain')
  card.className = `card ${reject ? 'rejected' : 'accepted'}`
  card.dataset.verdict = reject ? 'reject' : 'accept'
  card.dataset.reasons = reasons.join(' ')
  card.removeAttribute('aria-busy')
  const verdict = /** @type {HTMLElement} */ (card.querySelector('.verdict'))
  const accepted = r.confidence?.threshold !== undefined ? 'Accepted: in distribution, confident' : 'Accepted: in distribution'
  const headline = ood && uncertain
    ? 'Rejected: out of distribution and uncertain'
    : ood
      ? 'Rejected: out of distribution'
      : uncertain ? 'Rejected: uncertain' : accepted
  const why = [
    ood ? `this image does not look like ${model.name}'s training data` : '',
    uncertain ? `the model is not confident enough in its label (${percent(r.confidence?.value ?? 0, 2)}, below its threshold ${percent(r.confidence?.threshold ?? 0, 2)})` : ''
  ].filter((w) => w !== '').join('; and ')
  verdict.replaceChildren(
    el('span', { class: 'icon', 'aria-hidden': 'true' }, reject ? '✕' : '✓'),
    el('strong', {}, headline),
    el('span', { class: 'why' }, reject
      ? ` — ${why}. Do not trust the label.`
      : r.confidence?.threshold !== undefined
        ? ' — in distribution, and confident enough for the calibrated error rate.'
        : ' — its score is within the calibrated range of the training data.'))

  const images = /** @type {HTMLElement} */ (card.querySelector('.images'))
  if (r.input !== undefined) {
    const { width, height, colour } = model.input
    const scale = Math.max(1, Math.floor(112 / Math.max(width, height)))
    images.append(el('figure', {},
      el('img', { class: 'model-input', src: r.input, width: String(width * scale), height: String(height * scale), alt: `What the model sees: the image made ${width} × ${height} ${colour}` }),
      el('figcaption', {}, `What the model sees: ${width} × ${height} ${colour}`)))
  }

  const best = /** @type {import('./api.js').TopK} */ (r.topK[0])
  const prediction = el('section', { class: 'prediction', 'aria-label': 'Prediction' },
    el('p', { class: 'label-line' }, 'Label: ', el('span', { class: 'label' }, r.label),
      reject ? el('span', { class: 'untrusted' }, ' (not trusted)') : ''),
    el('ol', { class: 'topk', 'aria-label': `Top ${r.topK.length} probabilities` }, ...r.topK.map((k) =>
      el('li', {},
        el('span', { class: 'name' }, k.label),
        el('meter', { min: '0', max: '1', value: String(k.probability), 'aria-label': k.label }),
        el('span', { class: 'value' }, percent(k.probability))))),
    confidenceLine(r, model),
    el('p', { class: 'note' }, probabilityNote(model, ood, best.probability)))

  const cal = calibrationFor(model, r.classIndex)
  const score = scoreName(r.ood.kind)
  const below = cal.scores.filter((s) => s <= r.ood.score).length
  const thresholdOf = cal.perClassThreshold ? `the threshold of class “${r.label}”` : 'the threshold'
  const chartBox = el('div', { class: 'chart' })
  const histogram = el('figure', {
    class: 'histogram',
    role: 'img',
    'data-calibration': cal.sample,
    'aria-label': `Histogram of the ${score}s of ${cal.which}, with ${thresholdOf} at ${num(r.ood.threshold)} and this image's score at ${num(r.ood.score)}, ${reject ? 'below' : 'above'} it.`
  }, chartBox, el('p', { class: 'axis-title' }, `${score}: higher = more in-distribution →`), el('figcaption', {},
    `This image's ${score} among ${cal.which}`,
    cal.sample === 'global' ? '' : ' (per-class calibration: its own sample and threshold)',
    cal.scores.length < cal.n ? `, drawn from ${count(cal.scores.length)} quantiles` : '',
    '. ',
    el('span', { class: 'key key-threshold' }, `dashed: ${thresholdOf}`), ', ',
    el('span', { class: 'key key-score' }, 'solid: this image'), ', ',
    el('span', { class: 'key key-region' }, 'shaded: reject region'), '.'))

  const oodRows = /** @type {Array<[string, string]>} */ ([
    [`OOD score (${score})`, num(r.ood.score)],
    [cal.perClassThreshold ? `Threshold (class “${r.label}”)` : 'Threshold', `${num(r.ood.threshold)} — reject below`]
  ])
  if (r.ood.pValue !== undefined) {
    oodRows.push(['p-value', `${pValue(r.ood.pValue)} — ${pValueShare({ below, m: cal.scores.length, n: cal.n, images: cal.images })}`])
  }
  oodRows.push(['Minimum distance', r.ood.minDistance !== undefined
    ? `${num(r.ood.minDistance)} to the nearest class prototype`
    : `n/a: a ${headName(model.head)} head has no class prototypes`])

  const body = /** @type {HTMLElement} */ (card.querySelector('.body'))
  body.append(prediction, el('section', { class: 'ood', 'aria-label': 'Out-of-distribution decision' }, histogram, dl('numbers', oodRows)))
  if (cal.scores.length > 0) {
    // As wide as its column, whatever the screen (a phone's is about 320 px): never wider.
    drawHistogram(chartBox, { scores: cal.scores, threshold: r.ood.threshold, score: r.ood.score, width: Math.max(160, Math.min(560, chartBox.clientWidth || 480)) })
  } else {
    chartBox.append(el('p', {}, 'This model\'s manifest holds no calibration scores to draw.'))
  }
}

/**
 * What went wrong, in the catalogue's words, with what to do about it.
 * @param {HTMLElement} card
 * @param {ApiFailure | Error} err
 */
export function showError (card, err) {
  card.className = 'card failed'
  card.dataset.verdict = 'error'
  card.removeAttribute('aria-busy')
  const failure = /** @type {Partial<ApiFailure>} */ (err)
  const status = failure.status
  let title = 'Not classified'
  let hint = ''
  if (status === 415) title = 'Not classified: unsupported file type'
  else if (status === 413) title = 'Not classified: file too large'
  else if (status === 503) {
    title = 'Not classified: the service is busy'
    hint = `Try again${failure.retryAfter ? ` in ${failure.retryAfter} s` : ' shortly'}.`
  } else if (status === undefined) title = 'Not classified: the service could not be reached'
  const verdict = /** @type {HTMLElement} */ (card.querySelector('.verdict'))
  verdict.replaceChildren(el('span', { class: 'icon', 'aria-hidden': 'true' }, '!'), el('strong', {}, title))
  const body = /** @type {HTMLElement} */ (card.querySelector('.body'))
  body.append(el('div', { class: 'error', role: 'alert' },
    el('p', { class: 'message' }, err.message),
    status !== undefined ? el('p', { class: 'code' }, `HTTP ${status} · ${failure.code}`) : '',
    hint !== '' ? el('p', { class: 'hint' }, hint) : ''))
}
