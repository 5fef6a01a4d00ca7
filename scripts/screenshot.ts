// docs/img/try-it.png, the README's picture of the try-it page: the real service (the shipped
// models, ONNX Runtime on the CPU) on a free port, Debian's Chromium, three bundled samples
// clicked — a garment the model accepts, a digit and a photo it rejects. `npm run screenshot`.
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import sharp from 'sharp'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { Engine } from '../src/inference/engine.js'
import { engineOptions } from '../src/inference/engine-options.js'
import { loadManifest } from '../src/registry/load-manifest.js'
import { repoRoot } from '../src/tools/datasets/repo-root.js'
import { launchChromium } from './browser.js'

export const SCREENSHOT = path.join(repoRoot(), 'docs', 'img', 'try-it.png')
const SAMPLES = ['samples/fashion-ankle-boot.png', 'samples/mnist-7.png', 'samples/photo-cat.jpg']

const config = loadConfig({ EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', LOG_LEVEL: 'silent', MODELS_MANIFEST: path.join(repoRoot(), 'models', 'manifest.json') })
const engine = await Engine.start(await loadManifest(config.MODELS_MANIFEST), engineOptions(config), { warn: () => {}, error: () => {} })
const app = await buildApp({ config, engine, logger: false })
const browser = await launchChromium()
try {
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const page = await browser.newPage({ viewport: { width: 1240, height: 900 }, deviceScaleFactor: 1 })
  await page.goto(url)
  await page.waitForSelector('body[data-ready="true"]')
  // Oldest at the bottom: click in reverse so the cards read in SAMPLES order.
  for (const sample of [...SAMPLES].reverse()) {
    await page.click(`button[data-sample="${sample}"]`)
    await page.waitForSelector(`article.card[data-file="${path.basename(sample)}"][data-verdict]`)
  }
  await page.locator('.histogram canvas').nth(SAMPLES.length - 1).waitFor()
  mkdirSync(path.dirname(SCREENSHOT), { recursive: true })
  const shot = await page.screenshot({ fullPage: true })
  // A 256-colour palette (libimagequant) is lossless to the eye for a page of flat colours and
  // about a third of Chromium's truecolour PNG.
  const png = await sharp(shot).png({ palette: true, colours: 256, dither: 0, compressionLevel: 9, effort: 10 }).toBuffer()
  writeFileSync(SCREENSHOT, png)
  const { width, height } = await sharp(png).metadata()
  process.stdout.write(`wrote ${SCREENSHOT}: ${width} × ${height}, ${(png.length / 1024).toFixed(0)} KiB (Chromium's PNG: ${(shot.length / 1024).toFixed(0)} KiB)\n`)
} finally {
  await browser.close()
  await app.close()
}
