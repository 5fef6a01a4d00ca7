// The p-value row in words. The API's conformal p-value is (1 + k) / (m + 1): k of the m
// calibration scores the service holds are at or below this image's score, and the image
// itself is the 1. Counting it the same way, the sentence's fraction, its percentage and the
// p-value are one number. A sample of m quantiles (calibrate keeps at most 1,000) stands for
// n > m images: the sentence says the count is of quantiles, not of images.
import { count } from './format.js'

/**
 * @param {number} p a fraction, 0 … 1, as a percentage with as many digits as pValue() shows
 * @returns {string}
 */
export function pValuePercent (p) {
  return `${p < 0.01 ? (p * 100).toPrecision(2) : (p * 100).toFixed(1)} %`
}

/**
 * @param {{ below: number, m: number, n: number, images: string }} o below: sample scores ≤ the
 *   image's; m: the sample's size; n: how many calibration images it stands for; images: those
 *   images, counted, without an article (`527 calibration images predicted “Sandal”`)
 * @returns {string} e.g. `8 of 528 (1.5 %): this image and 7 of the 527 calibration images
 *   predicted “Sandal” score this low or lower`
 */
export function pValueShare ({ below, m, n, images }) {
  const of = `${count(below + 1)} of ${count(m + 1)} (${pValuePercent((below + 1) / (m + 1))})`
  const sample = m < n ? `${count(m)} quantiles summarising the ${images}` : images
  return below === 0
    ? `${of}: this image scores lower than all ${sample}`
    : `${of}: this image and ${count(below)} of the ${sample} score this low or lower`
}
