import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { BUILTIN_OOD_SETS, builtinDataset, drawShapes, prng, valHalves } from '../../../src/tools/datasets/builtin.js'
import { loadIndices } from '../../../src/tools/datasets/idx-dataset.js'
import { imageFolder } from '../../../src/tools/datasets/image-folder.js'
import type { Dataset, Sample } from '../../../src/tools/datasets/types.js'
import { png, REPO } from '../../helpers/data.js'

async function first (d: Dataset, n: number): Promise<Sample[]> {
  const out: Sample[] = []
  for await (const s of d.samples()) { out.push(s); if (out.length === n) break }
  return out
}
const pixels = (s: Sample): Uint8Array => (s.image as { pixels: Uint8Array }).pixels

t.test('every built-in OOD set resolves, is 28×28 greyscale and deterministic', async (t) => {
  for (const name of BUILTIN_OOD_SETS) {
    const a = await first((await builtinDataset(name))!, 3)
    const b = await first((await builtinDataset(name))!, 3)
    t.equal(a.length, 3, name)
    t.same(a.map(pixels), b.map(pixels), `${name} is the same every time`)
    t.ok(a.every((s) => pixels(s).length === 784 && !(s.image instanceof Uint8Array)), `${name}: raw 28×28`)
  }
  t.equal((await builtinDataset('mnist'))!.size, 10000)
  t.equal((await builtinDataset('fashion-mnist:val'))!.size, 5000)
})

t.test('fashion-mnist:val-fit and :val-risk: two disjoint halves of the validation split, the same every time', async (t) => {
  const indices = await loadIndices(path.join(REPO, 'training', 'splits', 'fashion-mnist-val-seed0.json'))
  const { fit, risk } = valHalves(indices)
  t.equal(fit.length, 2500)
  t.equal(risk.length, 2500)
  t.equal(new Set([...fit, ...risk]).size, 5000, 'disjoint, and together the whole split')
  t.same(valHalves(indices), { fit, risk }, 'seeded')
  t.equal((await builtinDataset('fashion-mnist:val-fit'))!.size, 2500)
  const [head] = await first((await builtinDataset('fashion-mnist:val-risk'))!, 1)
  t.ok(head!.name.endsWith(`#${risk[0]!}`), `the risk half reads its own images (${head!.name})`)
})

t.test('the constructed sets are what they say', async (t) => {
  const test = await first((await builtinDataset('fashion-mnist:test'))!, 1)
  const inv = await first((await builtinDataset('inverted-fashion-mnist'))!, 1)
  const shuf = await first((await builtinDataset('pixel-shuffled-fashion-mnist'))!, 1)
  t.same([...pixels(inv[0]!)], [...pixels(test[0]!)].map((v) => 255 - v), 'inverted = 255 − p')
  t.same([...pixels(shuf[0]!)].sort((x, y) => x - y), [...pixels(test[0]!)].sort((x, y) => x - y), 'shuffled keeps the histogram')
  t.notSame([...pixels(shuf[0]!)], [...pixels(test[0]!)], 'but not the layout')
  const shape = drawShapes(prng(1))
  t.ok(shape.some((v) => v > 100) && shape.some((v) => v === 0), 'shapes: bright figures on black')
  t.equal(test[0]!.labelIndex, 9)
})

t.test('image folders: class subfolders become labels; an empty folder is an error', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-folder-'))
  for (const cls of ['Trouser', 't-shirt-top']) {
    mkdirSync(path.join(dir, cls))
    writeFileSync(path.join(dir, cls, 'a.png'), await png(new Uint8Array(784)))
  }
  const d = await imageFolder(dir)
  t.equal(d.size, 2)
  t.same((await first(d, 2)).map((s) => s.labelName), ['Trouser', 't-shirt-top'])
  await t.rejects(imageFolder(mkdtempSync(path.join(os.tmpdir(), 'isomax-none-'))), { message: /no image files found/ })
})
