// The try-it page and the API docs in a real browser: Debian's Chromium, driven by
// playwright-core, against the real service (shipped models, ONNX Runtime) on a free port.
// Without Chromium this test fails, saying how to install it (.ci/run does). Screenshots of an
// accepted and a rejected card go to .tap/screenshots/ (not committed).
import { mkdirSync, readFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import sharp from 'sharp'
import t, { type Test } from 'tap'
import type { Browser, ConsoleMessage, Locator, Page } from 'playwright-core'
import { findChromium, launchChromium, NO_CHROMIUM } from '../../scripts/browser.js'
import { conformalPValue } from '../../src/ood/threshold.js'
import { PUBLIC_DIR } from '../../src/ui/public-dir.js'
import { build } from '../helpers/build.js'
import { REPO } from '../helpers/data.js'
import { multipart } from '../helpers/multipart.js'

const SHOTS = path.join(REPO, '.tap', 'screenshots')
const MiB = 1024 * 1024
// Small limits, so an oversized file and an overload are cheap to cause for real: one request
// that declares 1 MiB takes the whole in-flight budget.
const ENV = { MAX_UPLOAD_BYTES: String(MiB), MAX_INFLIGHT_BYTES: String(MiB) }
const SAMPLES = ['fashion-ankle-boot.png', 'fashion-trouser.png', 'fashion-coat.png', 'fashion-sandal.png', 'mnist-7.png', 'mnist-3.png', 'photo-cat.jpg']

if (findChromium() === null) t.fail(NO_CHROMIUM)
else {
  t.test('in Chromium', async (t) => {
    const app = await build(t, ENV)
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const browser = await launchChromium()
    t.teardown(async () => await browser.close())
    mkdirSync(SHOTS, { recursive: true })
    await tryItPage(t, browser, base, app)
    await docsPage(t, browser, base)
  })
}

type App = Awaited<ReturnType<typeof build>>
type Tap = Test

/** A page that records console errors (CSP violations among them) and every URL requested. */
async function open (browser: Browser, url: string): Promise<{ page: Page, errors: string[], requested: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1240, height: 900 } })
  const errors: string[] = []
  const requested: string[] = []
  page.on('console', (m: ConsoleMessage) => { if (m.type() === 'error') errors.push(m.text()) })
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('request', (r) => requested.push(r.url()))
  await page.goto(url)
  return { page, errors, requested }
}

function onlyThisOrigin (t: Tap, base: string, requested: string[]): void {
  const elsewhere = requested.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith('data:') && !u.startsWith('blob:'))
  t.same(elsewhere, [], 'nothing is requested from another origin')
}

const card = (page: Page, file: string): Locator => page.locator(`article.card[data-file="${file}"]`)

/** Pixels of the histogram's canvas near a colour: in the threshold's column, and anywhere. */
async function canvasPixels (chart: Locator, x: number, rgb: [number, number, number], anywhere: [number, number, number]): Promise<{ column: number, anywhere: number }> {
  return await chart.locator('canvas').evaluate((canvas: any, { x, rgb, anywhere }) => {
    const { width, height } = canvas
    const data = canvas.getContext('2d').getImageData(0, 0, width, height).data
    const near = (i: number, c: number[]): boolean => Math.abs(data[i] - c[0]!) + Math.abs(data[i + 1] - c[1]!) + Math.abs(data[i + 2] - c[2]!) < 40 && data[i + 3] > 200
    const col = Math.round(x * width / canvas.clientWidth)
    let column = 0
    let all = 0
    for (let y = 0; y < height; y++) if ([col - 1, col, col + 1].some((cx) => near((y * width + cx) * 4, rgb))) column++
    for (let i = 0; i < data.length; i += 4) if (near(i, anywhere)) all++
    return { column, anywhere: all }
  }, { x, rgb, anywhere })
}

async function tryItPage (t: Tap, browser: Browser, base: string, app: App): Promise<void> {
  const { page, errors, requested } = await open(browser, `${base}/`)
  await page.waitForSelector('body[data-ready="true"]')

  await t.test('the models of GET /models, the default one chosen', async (t) => {
    const models = (await app.inject('/models')).json() as { default: string, models: Array<{ name: string }> }
    t.same(await page.locator('#model option').evaluateAll((os: any[]) => os.map((o) => o.value)), models.models.map((m) => m.name))
    t.equal(await page.locator('#model').inputValue(), models.default)
  })

  await t.test('every sample: the label and verdict POST /classify gives for the same file', async (t) => {
    const detail = (await app.inject(`/models/${await page.locator('#model').inputValue()}`)).json()
    t.ok(detail.ood.classThresholds, 'the default model is calibrated per class')
    for (const file of SAMPLES) {
      await page.click(`button[data-sample="samples/${file}"]`)
      const c = card(page, file)
      await c.locator('.histogram canvas').waitFor()
      const bytes = readFileSync(path.join(PUBLIC_DIR, 'samples', file))
      const api = (await app.inject({ method: 'POST', url: '/classify', payload: bytes, headers: { 'content-type': file.endsWith('.jpg') ? 'image/jpeg' : 'image/png' } })).json()
      t.equal(await c.locator('.label').textContent(), api.label, `${file}: label ${api.label}`)
      t.equal(await c.getAttribute('data-verdict'), api.reject ? 'reject' : 'accept', `${file}: ${api.reject ? 'rejected' : 'accepted'}`)
      t.equal(await c.getAttribute('data-reasons'), api.rejectReasons.join(' '), `${file}: reasons ${api.rejectReasons.join(', ') || 'none'}`)
      const words = api.rejectReasons.includes('ood')
        ? (api.rejectReasons.includes('uncertain') ? /Rejected: out of distribution and uncertain.*Do not trust the label/ : /Rejected: out of distribution.*Do not trust the label/)
        : api.reject ? /Rejected: uncertain.*not confident enough.*Do not trust the label/ : /Accepted: in distribution, confident/
      t.match(await c.locator('.verdict').textContent(), words, 'the verdict in words')
      t.match(await c.locator('.confidence').textContent(), new RegExp(`^Confidence ${(100 * api.confidence.value).toFixed(2)} % — threshold ${(100 * api.confidence.threshold).toFixed(2)} %`), 'the confidence against its threshold')
      const numbers = await c.locator('.numbers').textContent()
      for (const v of [api.ood.score, api.ood.threshold, api.ood.minDistance]) t.ok(numbers!.includes(v.toFixed(3).replace('-', '−')), `shows ${v}`)
      t.ok(numbers!.includes(api.ood.pValue < 0.01 ? api.ood.pValue.toPrecision(2) : api.ood.pValue.toFixed(3)), `shows the p-value ${api.ood.pValue}`)
      const sample = detail.ood.calibration.classScores[api.classIndex] as number[]
      pValueAgrees(t, numbers!, api.ood.pValue, sample, api.ood.score)
      t.match(numbers, /OOD score \(Mahalanobis score\)/, 'the score named as the model\'s ood.score')
      // The histogram is of the sample that decided: the predicted class's own (Mondrian), the
      // one whose conformal p-value is the response's, under the threshold of that class.
      const histogram = c.locator('.histogram')
      t.equal(await histogram.getAttribute('data-calibration'), `class:${api.classIndex as number}`, `${file}: the sample of class ${api.label as string}`)
      t.equal(api.ood.threshold, detail.ood.classThresholds[api.classIndex], 'the response\'s threshold is its class\'s')
      t.equal(conformalPValue(detail.ood.calibration.classScores[api.classIndex], api.ood.score), api.ood.pValue, 'the drawn sample gives the response\'s p-value')
      t.match(await histogram.locator('figcaption').textContent(), `among the ${detail.ood.calibration.classN[api.classIndex] as number} calibration images predicted “${api.label as string}”`, 'the caption says which sample')
      t.match(numbers, `Threshold (class “${api.label as string}”)`, 'the threshold says it is the class\'s')
      t.equal(await c.locator('.topk li').count(), 3, 'top 3 probabilities')
      t.equal(await c.locator('.topk li .value').first().textContent(), `${(api.topK[0].probability * 100).toFixed(1)} %`, 'the calibrated probability')
      t.match(await c.locator('.note').textContent(), `softmax(logits / ${detail.probabilities.temperature.toFixed(3) as string})`, 'says the probabilities are temperature-scaled')
      const input = c.locator('img.model-input')
      t.same(await input.evaluate((img: any) => [img.complete, img.naturalWidth, img.naturalHeight]), [true, 28, 28], 'the image as the model sees it, 28 × 28')
    }
    t.equal(await page.locator('article.card[data-verdict="accept"]').count(), 4, 'the four garments accepted')
    t.equal(await page.locator('article.card[data-verdict="reject"]').count(), 3, 'the digits and the photo rejected')
  })

  await t.test('a SoftMax model: global calibration, its score\'s name, no minimum distance', async (t) => {
    const model = 'fashion-mnist-softmax'
    await page.selectOption('#model', model)
    const info = page.locator('#model-info', { hasText: 'SoftMax head' })
    await info.waitFor()
    t.match(await info.textContent(), /^SoftMax head · decides by the max logit \(maxlogit\) · threshold −?[0-9.]+, which accepted/, 'the model described')
    await page.click('button[data-sample="samples/photo-cat.jpg"]')
    const c = page.locator(`article.card[data-file="photo-cat.jpg"][data-model="${model}"]`)
    await c.locator('.histogram canvas').waitFor()
    const bytes = readFileSync(path.join(PUBLIC_DIR, 'samples', 'photo-cat.jpg'))
    const api = (await app.inject({ method: 'POST', url: `/models/${model}/classify`, payload: bytes, headers: { 'content-type': 'image/jpeg' } })).json()
    t.equal(api.ood.minDistance, undefined, 'the API has no minimum distance for a SoftMax head')
    t.equal(await c.locator('.label').textContent(), api.label, `label ${api.label as string}`)
    t.equal(await c.getAttribute('data-verdict'), api.reject ? 'reject' : 'accept')
    t.equal(await c.locator('.histogram').getAttribute('data-calibration'), 'global', 'the global sample')
    t.match(await c.locator('.histogram figcaption').textContent(), /among all 2,500 in-distribution calibration images, drawn from 1,000 quantiles/)
    const numbers = await c.locator('.numbers').textContent()
    t.match(numbers, /OOD score \(max logit\)/)
    t.match(numbers, /Threshold−?[0-9.]+ — reject below/, 'one threshold for every class')
    t.match(numbers, /Minimum distancen\/a: a SoftMax head has no class prototypes/)
    // The global sample is 1,000 quantiles of 2,500 images: the count is of quantiles, and the
    // fraction, its percentage and the p-value are one number.
    const detail = (await app.inject(`/models/${model}`)).json()
    t.equal(detail.ood.calibration.scores.length, 1000)
    t.equal(detail.ood.calibrationN, 2500)
    pValueAgrees(t, numbers!, api.ood.pValue, detail.ood.calibration.scores, api.ood.score)
    t.match(numbers, /[0-9,]+ of 1,001 \([0-9.]+ %\): this image (and [0-9,]+ of the|scores lower than all) 1,000 quantiles summarising the 2,500 in-distribution calibration images/, 'the count is of the 1,000 quantiles that stand for the 2,500 images')
    await page.selectOption('#model', (await app.inject('/models')).json().default)
  })

  await t.test('the histogram draws bars, the threshold line and the score line', async (t) => {
    for (const file of ['fashion-ankle-boot.png', 'mnist-7.png']) {
      const chart = card(page, file).locator('.histogram .chart')
      const thresholdX = Number(await chart.getAttribute('data-threshold-x'))
      const scoreX = Number(await chart.getAttribute('data-score-x'))
      t.ok(thresholdX > 0 && scoreX > 0, `${file}: threshold at x=${thresholdX}, score at x=${scoreX}`)
      const threshold = await canvasPixels(chart, thresholdX, [176, 0, 32], [91, 127, 168])
      t.ok(threshold.column >= 40, `${file}: ${threshold.column} threshold-coloured pixels in the threshold's column`)
      t.ok(threshold.anywhere >= 500, `${file}: ${threshold.anywhere} bar-coloured pixels`)
      const score = await canvasPixels(chart, scoreX, [17, 17, 17], [17, 17, 17])
      t.ok(score.column >= 60, `${file}: ${score.column} score-coloured pixels in the score's column`)
      await labelsClear(t, chart, file)
      t.match(await card(page, file).locator('.histogram').getAttribute('aria-label'), /^Histogram of the Mahalanobis scores of the [0-9,]+ calibration images predicted “[^”]+”, with the threshold of class “[^”]+” at −?[0-9.]+ and this image's score at −?[0-9.]+, (above|below) it\.$/, 'described for screen readers')
    }
    const rejectedLeft = Number(await card(page, 'mnist-7.png').locator('.chart').getAttribute('data-score-x')) <
      Number(await card(page, 'mnist-7.png').locator('.chart').getAttribute('data-threshold-x'))
    t.ok(rejectedLeft, 'a rejected score is drawn left of the threshold')
    await card(page, 'fashion-ankle-boot.png').screenshot({ path: path.join(SHOTS, 'accepted.png') })
    await card(page, 'mnist-7.png').screenshot({ path: path.join(SHOTS, 'rejected.png') })
    t.comment(`screenshots: ${path.join(SHOTS, 'accepted.png')}, ${path.join(SHOTS, 'rejected.png')}`)
  })

  await t.test('a rejected image is unmistakable: colour, icon and words, with AA contrast', async (t) => {
    for (const [file, verdict, words, icon] of [['mnist-7.png', 'reject', 'Rejected: out of distribution and uncertain', '✕'], ['fashion-ankle-boot.png', 'accept', 'Accepted: in distribution, confident', '✓']] as const) {
      const header = card(page, file).locator('header')
      t.equal(await card(page, file).getAttribute('data-verdict'), verdict)
      t.equal(await header.locator('.verdict strong').textContent(), words, `${file}: in words`)
      t.equal(await header.locator('.verdict .icon').textContent(), icon, `${file}: an icon`)
      const [fg, bg] = await header.evaluate((h: any) => { const style = (globalThis as any).getComputedStyle(h); return [style.color, style.backgroundColor] })
      const ratio = contrast(fg as string, bg as string)
      t.ok(ratio >= 4.5, `${file}: ${fg as string} on ${bg as string}, contrast ${ratio.toFixed(1)}:1 (WCAG AA: 4.5)`)
    }
    const [rejected, accepted] = await Promise.all(['mnist-7.png', 'fashion-ankle-boot.png'].map(async (f) => await card(page, f).locator('header').evaluate((h: any) => (globalThis as any).getComputedStyle(h).backgroundColor)))
    t.not(rejected, accepted, 'and a colour of its own')
    t.match(await card(page, 'mnist-7.png').locator('.untrusted').textContent(), /not trusted/, 'the label is marked untrusted')
  })

  await t.test('the probability bars take the verdict\'s colour, with non-text contrast', async (t) => {
    // Pixels of the drawn bar: its filled start and its empty track (the top class of either
    // sample is over a third, the third is under a fifth).
    for (const [file, colour] of [['mnist-7.png', [176, 0, 32]], ['fashion-ankle-boot.png', [27, 94, 32]]] as const) {
      const meters = card(page, file).locator('.topk meter')
      const fill = await meterPixel(meters.first(), 0.1)
      const track = await meterPixel(meters.last(), 0.95)
      t.ok(fill.every((v, i) => Math.abs(v - colour[i]!) <= 12), `${file}: the top bar is rgb(${fill.join(', ')}), the ${file === 'mnist-7.png' ? 'rejected red' : 'accepted green'} rgb(${colour.join(', ')})`)
      const ratio = contrast(`rgb(${fill.join(',')})`, `rgb(${track.join(',')})`)
      t.ok(ratio >= 3, `${file}: bar on its track, contrast ${ratio.toFixed(1)}:1 (WCAG non-text: 3)`)
    }
  })

  await t.test('several images at once: chosen, and dropped', async (t) => {
    const files = ['fashion-trouser.png', 'mnist-3.png']
    await page.setInputFiles('#files', files.map((f) => ({ name: `chosen-${f}`, mimeType: 'image/png', buffer: readFileSync(path.join(PUBLIC_DIR, 'samples', f)) })))
    // A drop as a person makes it: a DataTransfer holding two files, dropped on the drop zone.
    await page.evaluate(async (files: string[]) => {
      const w = globalThis as any
      const dt = new w.DataTransfer()
      for (const f of files) dt.items.add(new File([await (await fetch(`samples/${f}`)).blob()], `dropped-${f}`, { type: 'image/png' }))
      w.document.getElementById('drop').dispatchEvent(new w.DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
    }, files)
    for (const how of ['chosen', 'dropped']) {
      for (const f of files) {
        const c = card(page, `${how}-${f}`)
        await c.locator('.histogram canvas').waitFor()
        const expected = await card(page, f).first().locator('.label').textContent()
        t.equal(await c.locator('.label').textContent(), expected, `${how} ${f}: the same label as the sample button's card`)
        t.equal(await c.getAttribute('data-verdict'), await card(page, f).first().getAttribute('data-verdict'), `${how} ${f}: the same verdict`)
      }
    }
  })

  await t.test('a GIF: 415 with the catalogue\'s message', async (t) => {
    const gif = await sharp(readFileSync(path.join(PUBLIC_DIR, 'samples', 'mnist-7.png'))).gif().toBuffer()
    await page.setInputFiles('#files', { name: 'digit.gif', mimeType: 'image/gif', buffer: gif })
    const c = card(page, 'digit.gif')
    await c.locator('.error').waitFor()
    const api = await app.inject({ method: 'POST', url: '/classify', ...multipart([{ field: 'image', filename: 'digit.gif', contentType: 'image/gif', data: gif }]) })
    t.equal(api.statusCode, 415)
    t.equal(await c.locator('.error .message').textContent(), api.json().error.message)
    t.match(await c.locator('.verdict').textContent(), /unsupported file type/)
    t.equal(await c.locator('.error .code').textContent(), `HTTP 415 · ${api.json().error.code as string}`)
  })

  await t.test('a file over the upload limit: 413 with the catalogue\'s message', async (t) => {
    const huge = Buffer.concat([readFileSync(path.join(PUBLIC_DIR, 'samples', 'photo-cat.jpg')), Buffer.alloc(2 * MiB)])
    await page.setInputFiles('#files', { name: 'huge.jpg', mimeType: 'image/jpeg', buffer: huge })
    const c = card(page, 'huge.jpg')
    await c.locator('.error').waitFor()
    t.match(await c.locator('.verdict').textContent(), /file too large/)
    t.match(await c.locator('.error .message').textContent(), new RegExp(`more than ${MiB} \\(MAX_REQUEST_BYTES\\)`))
    t.match(await c.locator('.error .code').textContent(), /^HTTP 413 · ISOMAX_PAYLOAD_TOO_LARGE$/)
  })

  await t.test('overloaded: 503 with the catalogue\'s message and when to retry', async (t) => {
    // A request that declares 1 MiB and sends all of it but one byte holds the whole in-flight
    // budget (charged on the bytes that arrived, issue 20): one byte is left, too few for any image.
    const port = Number(new URL(base).port)
    const held = net.connect(port, '127.0.0.1')
    t.teardown(() => { held.destroy() })
    await new Promise<void>((resolve) => held.once('connect', () => resolve()))
    held.write(`POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: ${MiB}\r\n\r\n`)
    held.write(Buffer.alloc(MiB - 1))
    await t.resolveMatch(waitUntil(async () => (await fetch(`${base}/classify`, { method: 'POST', body: 'xy', headers: { 'content-type': 'image/png' } })).status === 503), true, 'the budget is taken')
    await page.click('button[data-sample="samples/fashion-coat.png"]')
    const c = page.locator('article.card[data-file="fashion-coat.png"][data-verdict="error"]')
    await c.locator('.error').waitFor()
    t.match(await c.locator('.verdict').textContent(), /the service is busy/)
    t.match(await c.locator('.error .message').textContent(), /MAX_INFLIGHT_BYTES\); retry shortly/)
    t.equal(await c.locator('.error .hint').textContent(), 'Try again in 1 s.')
  })

  await t.test('at a phone\'s width (390 × 844 and 320 × 640): nothing overflows, nothing is cut off', async (t) => {
    for (const [width, height] of [[390, 844], [320, 640]] as const) {
      const phone = await browser.newPage({ viewport: { width, height } })
      phone.on('pageerror', (e) => errors.push(e.message))
      await phone.goto(`${base}/`)
      await phone.waitForSelector('body[data-ready="true"]')
      for (const file of ['mnist-7.png', 'fashion-sandal.png']) {
        await phone.click(`button[data-sample="samples/${file}"]`)
        await card(phone, file).locator('.histogram canvas').waitFor()
      }
      const page = await phone.evaluate(() => { const d = (globalThis as any).document.documentElement; return { scroll: d.scrollWidth, inner: (globalThis as any).innerWidth } })
      t.ok(page.scroll <= page.inner, `${width} px: the page scrolls ${page.scroll} px wide in a ${page.inner} px viewport`)
      for (const file of ['mnist-7.png', 'fashion-sandal.png']) {
        const c = card(phone, file)
        // A card clips what overflows it (overflow: hidden), so the page's width cannot show
        // it: every element of the card must lie inside the card, and the card in the viewport.
        const out = await c.evaluate((card: any) => {
          const box = card.getBoundingClientRect()
          const inner = (globalThis as any).innerWidth
          const outside = [...card.querySelectorAll('*')].filter((e: any) => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.left < box.left - 0.5 || r.right > box.right + 0.5) })
          return { card: [box.left, box.right, inner], outside: outside.map((e: any) => `${e.tagName.toLowerCase()}.${e.className}: ${e.getBoundingClientRect().width} px`) }
        })
        t.ok(out.card[0]! >= 0 && out.card[1]! <= out.card[2]!, `${width} px, ${file}: the card spans ${out.card[0]}…${out.card[1]}`)
        t.same(out.outside, [], `${width} px, ${file}: no element wider than its card`)
        // The x axis's title is text under the chart, which wraps; drawn in the canvas, it was
        // centred on a line wider than a phone's chart and cut off at both ends.
        const title = c.locator('.histogram .axis-title')
        if (await title.count() !== 1) t.fail(`${width} px, ${file}: no axis title under the chart`)
        else {
          t.match(await title.textContent(), /^Mahalanobis score: higher = more in-distribution/, `${width} px, ${file}: the axis has its title`)
          const clipped = await title.evaluate((e: any) => e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight)
          t.equal(clipped, false, `${width} px, ${file}: the axis title is not cut off`)
        }
        // The numbers table: each value under its name at full width, not in a column of a word a line.
        const widths = await c.locator('.numbers').evaluate((dl: any) => [dl.clientWidth, ...[...dl.querySelectorAll('dd')].map((d: any) => d.clientWidth)])
        const [dlWidth, ...dd] = widths as [number, ...number[]]
        t.ok(dd.every((w) => w >= dlWidth * 0.9), `${width} px, ${file}: values ${dd.join(', ')} px wide in a ${dlWidth} px table`)
        await labelsClear(t, c.locator('.histogram .chart'), `${width} px, ${file}`)
      }
      await card(phone, 'mnist-7.png').screenshot({ path: path.join(SHOTS, `phone-${width}-rejected.png`) })
      await phone.close()
    }
  })

  t.equal(await page.locator('#docs-link').isVisible(), true, 'the API docs are linked (API_DOCS_ENABLED)')
  const csp = errors.filter((e) => /Content Security Policy/i.test(e))
  t.same(csp, [], 'no Content-Security-Policy violation')
  t.same(errors.filter((e) => !/status of (413|415|503)/.test(e)), [], 'no console error but the failed uploads the tests caused')
  onlyThisOrigin(t, base, requested)
  await page.close()
}

/** WCAG 2 contrast ratio of two CSS rgb()/rgba() colours (opaque). */
function contrast (a: string, b: string): number {
  const luminance = (css: string): number => {
    const [r, g, b] = css.match(/[\d.]+/g)!.slice(0, 3).map((v) => {
      const c = Number(v) / 255
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
    }) as [number, number, number]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
  }
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number]
  return (hi + 0.05) / (lo + 0.05)
}

/**
 * The p-value row: "p — K of N (P %): …" where K / N is the API's conformal p-value
 * (1 + #{sample ≤ score}) / (sample size + 1), and P its percentage, as the page rounds it.
 */
function pValueAgrees (t: Tap, numbers: string, pValue: number, sample: number[], score: number): void {
  const m = /p-value(\S+) — ([0-9,]+) of ([0-9,]+) \(([0-9.]+) %\)/.exec(numbers)
  if (m === null) { t.fail(`no "K of N (P %)" in the p-value row: ${numbers}`); return }
  const [k, n] = [Number(m[2]!.replace(/,/g, '')), Number(m[3]!.replace(/,/g, ''))]
  t.equal(n, sample.length + 1, `p-value row: of ${n} = the ${sample.length} calibration scores and this image`)
  t.equal(k, 1 + sample.filter((s) => s <= score).length, `p-value row: ${k} = this image and the scores at or below it`)
  t.ok(Math.abs(k / n - pValue) < 1e-12, `p-value row: ${k} / ${n} is the API's pValue ${pValue}`)
  t.equal(m[4], pValue < 0.01 ? (pValue * 100).toPrecision(2) : (pValue * 100).toFixed(1), `p-value row: ${m[4]!} % is ${m[1]!} as a percentage`)
}

/**
 * The line labels of a histogram (boxes the page records, CSS pixels from the canvas's corner)
 * lie inside the canvas, above the plot (not on the bars), apart, and clear of the other line.
 */
async function labelsClear (t: Tap, chart: Locator, what: string): Promise<void> {
  const d = await chart.evaluate((host: any) => ({ ...host.dataset, canvasWidth: host.querySelector('canvas').clientWidth }))
  type Box = { left: number, right: number, top: number, bottom: number }
  const { threshold, score } = JSON.parse(d.labels ?? '{}') as { threshold?: Box, score?: Box }
  if (threshold === undefined || score === undefined) { t.fail(`${what}: the chart records no label boxes`); return }
  const [plotTop, thresholdX, scoreX] = [Number(d.plotTop), Number(d.thresholdX), Number(d.scoreX)]
  for (const [name, b] of [['threshold', threshold], ['this image', score]] as const) {
    t.ok(b.left >= 0 && b.right <= d.canvasWidth, `${what}: "${name}" spans x ${b.left.toFixed(0)}…${b.right.toFixed(0)} of ${d.canvasWidth as number}`)
    t.ok(b.bottom <= plotTop, `${what}: "${name}" sits above the plot (ends at y ${b.bottom}, the plot starts at ${plotTop})`)
  }
  const apart = threshold.right <= score.left || score.right <= threshold.left || threshold.bottom <= score.top || score.bottom <= threshold.top
  t.ok(apart, `${what}: the two labels do not overlap`)
  // The score line runs from the top row down, through the threshold's row; the threshold line
  // starts at its own row, below "this image".
  t.notOk(threshold.left < scoreX && scoreX < threshold.right, `${what}: "threshold" does not cross the score line at x ${scoreX}`)
  t.notOk(score.left < thresholdX && thresholdX < score.right && score.bottom > threshold.top, `${what}: "this image" does not cross the threshold line at x ${thresholdX}`)
}

/** The colour drawn at a fraction of a meter's width, halfway down (the element's screenshot). */
async function meterPixel (meter: Locator, at: number): Promise<[number, number, number]> {
  const { data, info } = await sharp(await meter.screenshot()).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  const x = Math.min(info.width - 1, Math.round(info.width * at))
  const i = (Math.floor(info.height / 2) * info.width + x) * info.channels
  return [data[i]!, data[i + 1]!, data[i + 2]!]
}

async function waitUntil (check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

async function docsPage (t: Tap, browser: Browser, base: string): Promise<void> {
  const { page, errors, requested } = await open(browser, `${base}/docs`)
  await t.test('/docs lists the classify operation and the v2 routes', async (t) => {
    const classify = page.locator('.opblock-post .opblock-summary-path[data-path="/classify"]')
    await classify.waitFor()
    t.equal(await classify.count(), 1, 'POST /classify')
    t.equal(await page.locator('.opblock-summary-path[data-path="/models/{name}"]').count(), 1, 'GET /models/{name}')
    t.equal(await page.locator('.opblock-post .opblock-summary-path[data-path="/v2/models/{name}/infer"]').count(), 1, 'POST /v2/models/{name}/infer')
    t.equal(await page.locator('.opblock-summary-path[data-path="/"]').count(), 0, 'the page itself is not an operation')
    const first = await page.locator('.opblock-summary-path').first().getAttribute('data-path')
    t.equal(first, '/classify', 'POST /classify is the first operation listed, not the last after /v2')
    t.equal(await page.locator('.opblock-tag').first().getAttribute('data-tag'), 'classify', 'in the first group')
    t.equal(await page.locator('button.authorize').count(), 0, 'no Authorize button: without ADMIN_TOKEN there is nothing to authorize')
  })
  await t.test('/docs: POST /classify\'s example answer is a real one of the default model', async (t) => {
    await page.locator('.opblock-post:has(.opblock-summary-path[data-path="/classify"]) .opblock-summary').first().click()
    const example = page.locator('.opblock-post.is-open .responses-table .response[data-code="200"] .example, .opblock-post.is-open .responses-table .response[data-code="200"] .microlight').first()
    await example.waitFor()
    const text = await example.textContent()
    t.match(text, /"classIndex": 9,/, 'classIndex 9 (Ankle boot), not 2⁵³ − 1')
    t.match(text, /"kind": "mahalanobis"/, 'the default model\'s score kind')
    t.notMatch(text, /9007199254740991/, 'no made-up integers')
    t.same(errors, [], 'no console error, no Content-Security-Policy violation')
    onlyThisOrigin(t, base, requested)
  })
  await page.screenshot({ path: path.join(SHOTS, 'docs.png') })
  await page.locator('.opblock.is-open .responses-wrapper').first().screenshot({ path: path.join(SHOTS, 'docs-classify-responses.png') })
  await page.close()
}
