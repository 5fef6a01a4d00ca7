// End to end over a real socket: 500 real Fashion-MNIST test images and 500 MNIST digits as
// PNG uploads. Accuracy must match the model card; digits must be rejected far more often.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { build } from './helpers/build.js'
import { MANIFEST, fashionTest, mnistDigits, png } from './helpers/data.js'

const N = 500
const app = await build(t, { INFERENCE_WORKERS: '2' })
const base = await app.listen({ port: 0, host: '127.0.0.1' })
const model = app.engine.manifest.defaultModel
const card = readFileSync(path.join(path.dirname(MANIFEST), model, 'README.md'), 'utf8')

async function classify (data: Buffer): Promise<{ classIndex: number, ood: { reject: boolean } }> {
  const res = await fetch(`${base}/classify`, { method: 'POST', body: data, headers: { 'content-type': 'image/png' } })
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`)
  return await res.json() as { classIndex: number, ood: { reject: boolean } }
}

/** Run with a little concurrency, as real clients would. */
async function classifyAll (images: Buffer[]): Promise<Array<{ classIndex: number, ood: { reject: boolean } }>> {
  const out = new Array(images.length)
  let next = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < images.length) { const i = next++; out[i] = await classify(images[i]!) }
  }))
  return out
}

const fashion = await fashionTest(N)
const fashionResults = await classifyAll(await Promise.all(fashion.map(async (f) => await png(f.pixels))))
const mnistResults = await classifyAll(await Promise.all(mnistDigits(N).map(async (p) => await png(p))))

t.test(`accuracy on the first ${N} Fashion-MNIST test images matches the model card`, async (t) => {
  const correct = fashionResults.filter((r, i) => r.classIndex === fashion[i]!.label).length
  const accuracy = 100 * correct / N
  const m = /first 500 test images \| 500 \| ([\d.]+) %/.exec(card)
  t.ok(m, 'the model card reports accuracy on the first 500 test images')
  const expected = Number(m![1])
  t.comment(`service accuracy ${accuracy.toFixed(2)} %, model card ${expected} % on the same ${N} images`)
  t.ok(Math.abs(accuracy - expected) <= 1, `|${accuracy} − ${expected}| ≤ 1 point`)
})

t.test('MNIST digits are rejected at a clearly higher rate than Fashion-MNIST images', async (t) => {
  const fashionRate = fashionResults.filter((r) => r.ood.reject).length / N
  const mnistRate = mnistResults.filter((r) => r.ood.reject).length / N
  t.comment(`reject rate: Fashion-MNIST ${(100 * fashionRate).toFixed(1)} %, MNIST ${(100 * mnistRate).toFixed(1)} %`)
  console.log(`# reject rate (${model}): Fashion-MNIST test ${(100 * fashionRate).toFixed(1)} %, MNIST ${(100 * mnistRate).toFixed(1)} %`)
  t.ok(fashionRate < 0.1, 'about 5 % of in-distribution images are rejected (TPR 0.95)')
  t.ok(mnistRate >= fashionRate + 0.25, 'digits are rejected far more often')
})
