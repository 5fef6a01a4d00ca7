// The try-it page's p-value sentence (src/ui/public/js/p-value.js): its fraction, percentage and
// the API's conformal p-value (1 + k) / (m + 1) are one number, and a sample of quantiles is
// called one, never counted as the images it summarises.
import t from 'tap'
import { conformalPValue } from '../../src/ood/threshold.js'

// The page's modules are plain JavaScript, typed by JSDoc for tsconfig.ui.json only.
const PAGE_MODULE: string = '../../src/ui/public/js/p-value.js'
const { pValuePercent, pValueShare } = await import(PAGE_MODULE) as {
  pValuePercent: (p: number) => string
  pValueShare: (o: { below: number, m: number, n: number, images: string }) => string
}

t.test('a class\'s own sample (every image): this image counted with the 7 below it', async (t) => {
  const sample = Array.from({ length: 527 }, (_, i) => i)
  const p = conformalPValue(sample, 6.5)
  t.equal(p, 8 / 528)
  t.equal(pValueShare({ below: 7, m: 527, n: 527, images: '527 calibration images predicted “Sandal”' }),
    '8 of 528 (1.5 %): this image and 7 of the 527 calibration images predicted “Sandal” score this low or lower')
  t.equal(pValuePercent(p), '1.5 %', 'p = 0.015, as a percentage')
})

t.test('1,000 quantiles of 5,000 images: counted as quantiles', async (t) => {
  t.equal(pValueShare({ below: 1, m: 1000, n: 5000, images: '5,000 in-distribution calibration images' }),
    '2 of 1,001 (0.20 %): this image and 1 of the 1,000 quantiles summarising the 5,000 in-distribution calibration images score this low or lower')
  t.equal(pValuePercent(2 / 1001), '0.20 %', 'p = 0.0020 shown as 0.0020, the percentage to the same two digits')
})

t.test('below every calibration score: the smallest p-value the sample can give', async (t) => {
  t.equal(pValueShare({ below: 0, m: 529, n: 529, images: '529 calibration images predicted “T-shirt/top”' }),
    '1 of 530 (0.19 %): this image scores lower than all 529 calibration images predicted “T-shirt/top”')
  t.equal(pValueShare({ below: 0, m: 1000, n: 5000, images: '5,000 in-distribution calibration images' }),
    '1 of 1,001 (0.10 %): this image scores lower than all 1,000 quantiles summarising the 5,000 in-distribution calibration images')
})
