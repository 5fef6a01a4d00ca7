// Where an image's OOD score falls among the model's in-distribution calibration scores: a
// histogram of the calibration sample (uPlot, bars), the reject region left of the threshold,
// the threshold as a dashed line and this image's score as a solid one.

// uPlot's browser build (vendor/uplot/uPlot.iife.min.js, a classic script) defines a global.
/** @type {typeof import('uplot')} */
const UPlot = /** @type {any} */ (globalThis).uPlot

export const COLOURS = {
  bars: '#5b7fa8',
  rejectRegion: 'rgba(176, 0, 32, 0.10)',
  threshold: '#b00020',
  score: '#111111'
}

/**
 * Equal-width bins over the calibration sample's range.
 * @param {number[]} scores sorted ascending
 * @param {number} count
 * @returns {{ centres: number[], shares: number[], width: number }} shares: fraction of the sample per bin
 */
export function bins (scores, count = 30) {
  const lo = /** @type {number} */ (scores[0])
  const hi = /** @type {number} */ (scores[scores.length - 1])
  const width = hi > lo ? (hi - lo) / count : 1
  const counts = new Array(count).fill(0)
  for (const s of scores) counts[Math.min(count - 1, Math.floor((s - lo) / width))]++
  return {
    centres: counts.map((_, i) => lo + (i + 0.5) * width),
    shares: counts.map((c) => c / scores.length),
    width
  }
}

// The labels of the two lines sit in two rows above the plot, never on the bars: "this image"
// in the top row, where only its own line reaches, and "threshold" in the row below, each
// written on the side away from the other line (when it fits there), so neither text crosses a
// line. In CSS pixels.
const ROW = 16
const LABELS_TOP = 2 * ROW + 4
const GAP = 5

/**
 * Where a label goes: on the side of its line away from `other` when it fits inside
 * [left, right], otherwise on the side that fits (clamped, for a canvas narrower than the text).
 * @param {number} x the line's position
 * @param {number} other the other line's position
 * @param {number} w the text's width
 * @param {number} left
 * @param {number} right
 * @returns {number} the text's left edge
 */
export function labelLeft (x, other, w, left, right) {
  const onRight = x + GAP
  const onLeft = x - GAP - w
  const fitsRight = onRight + w <= right
  const fitsLeft = onLeft >= left
  const preferRight = other <= x
  if (preferRight ? fitsRight : !fitsLeft) return fitsRight ? onRight : Math.max(left, right - w)
  return fitsLeft ? onLeft : left
}

/**
 * Draws the chart into `host` (a figure's chart box) and returns the uPlot instance.
 * `host.dataset` gets, in CSS pixels from the canvas's top left corner, the threshold's and the
 * score's x position, the plot area's top, and the boxes of the two line labels (JSON), for
 * the browser test to look for the lines there and check the labels stay clear of them.
 * The x axis's title is not drawn here: the page writes it as text under the chart, where it
 * wraps on a narrow screen instead of being cut off.
 * @param {HTMLElement} host
 * @param {{ scores: number[], threshold: number, score: number, width: number }} o
 */
export function drawHistogram (host, o) {
  const { centres, shares, width } = bins(o.scores)
  const lo = Math.min(/** @type {number} */ (o.scores[0]), o.threshold, o.score)
  const hi = Math.max(/** @type {number} */ (o.scores[o.scores.length - 1]), o.threshold, o.score)
  const pad = (hi - lo) * 0.04 + width
  const top = Math.max(...shares) * 1.15

  /** @param {import('uplot')} u */
  const overlay = (u) => {
    const { ctx, bbox } = u
    const px = UPlot.pxRatio
    const xOf = (/** @type {number} */ v) => Math.round(u.valToPos(v, 'x', true))
    const t = xOf(o.threshold)
    const s = xOf(o.score)
    const bottom = bbox.top + bbox.height
    // Row 1 (score label) from y = 0, row 2 (threshold label) below it, the plot below both.
    const row1 = bbox.top - LABELS_TOP * px
    const row2 = row1 + ROW * px
    ctx.save()
    ctx.fillStyle = COLOURS.rejectRegion
    ctx.fillRect(bbox.left, bbox.top, Math.max(0, t - bbox.left), bbox.height)
    ctx.lineWidth = 2 * px
    ctx.strokeStyle = COLOURS.threshold
    ctx.setLineDash([6 * px, 4 * px])
    ctx.beginPath()
    ctx.moveTo(t, row2)
    ctx.lineTo(t, bottom)
    ctx.stroke()
    ctx.setLineDash([])
    ctx.lineWidth = 3 * px
    ctx.strokeStyle = COLOURS.score
    ctx.beginPath()
    ctx.moveTo(s, row1)
    ctx.lineTo(s, bottom)
    ctx.stroke()
    ctx.font = `${12 * px}px system-ui, sans-serif`
    ctx.textAlign = 'left'
    ctx.textBaseline = 'middle'
    const canvasRight = ctx.canvas.width
    /** @type {Record<string, { left: number, right: number, top: number, bottom: number }>} */
    const boxes = {}
    for (const [name, text, x, other, y, colour] of /** @type {const} */ ([
      ['threshold', 'threshold', t, s, row2, COLOURS.threshold],
      ['score', 'this image', s, t, row1, COLOURS.score]
    ])) {
      const w = ctx.measureText(text).width
      const left = labelLeft(x, other, w, 0, canvasRight)
      ctx.fillStyle = colour
      ctx.fillText(text, left, y + (ROW * px) / 2)
      boxes[name] = { left: left / px, right: (left + w) / px, top: y / px, bottom: (y + ROW * px) / px }
    }
    ctx.restore()
    host.dataset.thresholdX = String(t / px)
    host.dataset.scoreX = String(s / px)
    host.dataset.plotTop = String(bbox.top / px)
    host.dataset.labels = JSON.stringify(boxes)
  }

  /** @type {import('uplot').Options} */
  const options = {
    width: o.width,
    height: 190 + LABELS_TOP,
    // Room above the plot for the two label rows.
    padding: [LABELS_TOP, null, null, null],
    legend: { show: false },
    cursor: { show: false },
    scales: {
      x: { time: false, range: [lo - pad, hi + pad] },
      y: { range: [0, top] }
    },
    axes: [
      // As many decimals as the tick spacing needs: −2.25 for the entropic score, −220 for Mahalanobis.
      { size: 34, values: (_u, vals, _axis, _space, incr) => vals.map((v) => v.toFixed(Math.max(0, Math.min(4, -Math.floor(Math.log10(incr))))).replace(/^-/, '−')) },
      { label: 'calibration images', size: 50, values: (_u, vals) => vals.map((v) => `${Math.round(v * 100)} %`) }
    ],
    series: [
      {},
      {
        label: 'calibration scores',
        fill: COLOURS.bars,
        stroke: COLOURS.bars,
        points: { show: false },
        paths: UPlot.paths.bars?.({ size: [1, Infinity], align: 0 })
      }
    ],
    hooks: { draw: [overlay] }
  }
  return new UPlot(options, [centres, shares], host)
}
