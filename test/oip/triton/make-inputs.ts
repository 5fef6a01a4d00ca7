// Inputs for the tritonclient test, written to the folder given as argument: 8 real images
// (4 PNG fixtures, 4 JPEGs of other fixtures) and, for 2 of them, the tensors the service's own
// preprocess() makes (raw little-endian float32), so the test can send both kinds of input.
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import sharp from 'sharp'
import { preprocess } from '../../../src/preprocess/preprocess.js'
import { loadManifest } from '../../../src/registry/load-manifest.js'
import { MANIFEST } from '../../helpers/data.js'
import { fixturePng } from '../../helpers/images.js'

const out = process.argv[2]
if (out === undefined) throw new Error('usage: make-inputs.ts DIR')
mkdirSync(out, { recursive: true })
const manifest = await loadManifest(MANIFEST)
const model = manifest.models.get(manifest.defaultModel)!
const files: string[] = []
for (let i = 0; i < 4; i++) {
  writeFileSync(path.join(out, `image-${i}.png`), fixturePng(i))
  files.push(`image-${i}.png`)
}
for (let i = 4; i < 8; i++) {
  writeFileSync(path.join(out, `image-${i}.jpg`), await sharp(fixturePng(i)).jpeg({ quality: 90 + i }).toBuffer())
  files.push(`image-${i}.jpg`)
}
for (let i = 0; i < 2; i++) {
  const { tensor } = await preprocess(fixturePng(i), model.input, { maxInputPixels: 40_000_000 })
  writeFileSync(path.join(out, `tensor-${i}.f32`), Buffer.from(tensor.buffer))
}
writeFileSync(path.join(out, 'inputs.json'), JSON.stringify({ model: model.name, version: model.version, images: files, tensorName: model.input.name, shape: [model.input.channels, model.input.height, model.input.width], labels: model.labels }, null, 2))
