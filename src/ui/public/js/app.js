// The try-it page: choose a model, send images (files, drops or the bundled samples) one per
// request, and show each result as a card. Everything it calls is the public API.
import { classify, docsAvailable, listModels, modelDetail } from './api.js'
import { el } from './dom.js'
import { count, headName, num, percent, scoreName } from './format.js'
import { pendingCard, showError, showResult } from './result-card.js'

const TOP_K = 3
// At most this many images in flight at once: a folder dropped on the page must not be a burst
// that fills the service's queue for everyone else.
const CONCURRENCY = 4

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id))
const modelSelect = /** @type {HTMLSelectElement} */ ($('model'))
const fileInput = /** @type {HTMLInputElement} */ ($('files'))
const drop = $('drop')
const results = $('results')
const status = $('status')

/** @type {Map<string, Promise<import('./api.js').ModelDetail>>} */
const details = new Map()
/** @param {string} name */
const detailOf = (name) => {
  let d = details.get(name)
  if (d === undefined) {
    d = modelDetail(name)
    d.catch(() => details.delete(name))
    details.set(name, d)
  }
  return d
}

/** @type {Array<() => Promise<void>>} */
const queue = []
let running = 0
function pump () {
  while (running < CONCURRENCY && queue.length > 0) {
    const job = /** @type {() => Promise<void>} */ (queue.shift())
    running++
    void job().finally(() => { running--; pump(); if (running === 0 && queue.length === 0) status.textContent = 'Done.' })
  }
}

/**
 * @param {Blob} image
 * @param {string} name
 */
function submit (image, name) {
  const model = modelSelect.value
  const card = pendingCard(name, image, model)
  results.prepend(card)
  queue.push(async () => {
    try {
      const [result, detail] = await Promise.all([classify(model, image, name, TOP_K), detailOf(model)])
      showResult(card, result, detail)
    } catch (err) {
      showError(card, /** @type {Error} */ (err))
    }
  })
  status.textContent = `Classifying ${name} with ${model}…`
  pump()
}

/** @param {FileList | File[]} files */
function submitFiles (files) {
  for (const f of Array.from(files)) submit(f, f.name)
}

/** @param {import('./api.js').ModelDetail} m */
function describe (m) {
  const score = scoreName(m.ood.score)
  const rule = m.ood.classThresholds !== undefined
    ? `a threshold per predicted class, each set to accept ${percent(m.ood.targetTpr, 0)} of the ${count(m.ood.calibrationN)} in-distribution calibration images predicted as that class`
    : `threshold ${num(m.ood.threshold)}, which accepted ${percent(m.ood.achievedTpr)} of ${count(m.ood.calibrationN)} in-distribution calibration images (target ${percent(m.ood.targetTpr, 0)})`
  return `${headName(m.head)} head · decides by the ${score} (${m.ood.score}) · ${rule} · ` +
    `input ${m.input.width} × ${m.input.height} ${m.input.colour} · labels: ${m.labels.join(', ')}`
}

async function start () {
  const { models, default: fallback } = await listModels()
  for (const m of models) modelSelect.append(el('option', { value: m.name }, m.default ? `${m.name} (default)` : m.name))
  modelSelect.value = fallback
  const info = $('model-info')
  const show = () => {
    const name = modelSelect.value
    info.textContent = ''
    detailOf(name).then((m) => { if (modelSelect.value === name) info.textContent = describe(m) }, () => {})
  }
  modelSelect.addEventListener('change', show)
  show()

  fileInput.addEventListener('change', () => {
    if (fileInput.files !== null) submitFiles(fileInput.files)
    fileInput.value = ''
  })
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over') })
  drop.addEventListener('dragleave', () => drop.classList.remove('over'))
  drop.addEventListener('drop', (e) => {
    e.preventDefault()
    drop.classList.remove('over')
    if (e.dataTransfer !== null) submitFiles(e.dataTransfer.files)
  })
  for (const button of document.querySelectorAll('button[data-sample]')) {
    button.addEventListener('click', async () => {
      const url = /** @type {string} */ (button.getAttribute('data-sample'))
      const res = await fetch(url)
      submit(await res.blob(), url.split('/').pop() ?? url)
    })
  }
  $('clear').addEventListener('click', () => { results.replaceChildren(); status.textContent = '' })
  if (await docsAvailable()) $('docs-link').hidden = false
  document.body.dataset.ready = 'true'
}

start().catch((err) => {
  status.textContent = `The page could not start: ${err.message}`
  status.classList.add('failed')
})
