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

/**
 * Draws the chart into `host` (a figure's chart box) and returns the uPlot instance.
 * `host.dataset` gets the threshold's and the score's x position in CSS pixels from the
 * canvas's left edge, for the browser test to look for the lines there.
 * @param {HTMLElement} host
 * @param {{ scores: number[], threshold: number, score: number, kind: string, width: number }} o kind: the score's name, for the axis
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
    ctx.save()
    ctx.fillStyle = COLOURS.rejectRegion
    ctx.fillRect(bbox.left, bbox.top, Math.max(0, t - bbox.left), bbox.height)
    ctx.lineWidth = 2 * px
    ctx.strokeStyle = COLOURS.threshold
    ctx.setLineDash([6 * px, 4 * px])
    ctx.beginPath()
    ctx.moveTo(t, bbox.top)
    ctx.lineTo(t, bbox.top + bbox.height)
    ctx.stroke()
    ctx.setLineDash([])
    ctx.lineWidth = 3 * px
    ctx.strokeStyle = COLOURS.score
    ctx.beginPath()
    ctx.moveTo(s, bbox.top)
    ctx.lineTo(s, bbox.top + bbox.height)
    ctx.stroke()
    ctx.font = `${12 * px}px system-ui, sans-serif`
    ctx.fillStyle = COLOURS.threshold
    const right = t < bbox.left + bbox.width / 2
    ctx.textAlign = right ? 'left' : 'right'
    ctx.fillText('threshold', t + (right ? 5 : -5) * px, bbox.top + 14 * px)
    ctx.fillStyle = COLOURS.score
    const sRight = s < bbox.left + bbox.width / 2
    ctx.textAlign = sRight ? 'left' : 'right'
    ctx.fillText('this image', s + (sRight ? 6 : -6) * px, bbox.top + 30 * px)
    ctx.restore()
    host.dataset.thresholdX = String(t / px)
    host.dataset.scoreX = String(s / px)
  }

  /** @type {import('uplot').Options} */
  const options = {
    width: o.width,
    height: 190,
    legend: { show: false },
    cursor: { show: false },
    scales: {
      x: { time: false, range: [lo - pad, hi + pad] },
      y: { range: [0, top] }
    },
    axes: [
      // As many decimals as the tick spacing needs: −2.25 for the entropic score, −220 for Mahalanobis.
      { label: `${o.kind}; higher = more in-distribution`, values: (_u, vals, _axis, _space, incr) => vals.map((v) => v.toFixed(Math.max(0, Math.min(4, -Math.floor(Math.log10(incr))))).replace(/^-/, '−')) },
      { label: 'calibration images', size: 56, values: (_u, vals) => vals.map((v) => `${Math.round(v * 100)} %`) }
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
