// evaluate through the serving path reproduces the training side's model card: same images,
// same scores, so AUROC on Fashion-MNIST → MNIST must agree within 0.01 (else: train/serve skew).
import { mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { evaluate } from '../../../src/tools/cli/evaluate.js'
import { MANIFEST } from '../../helpers/data.js'

const env = { EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '2', LOG_LEVEL: 'silent' }
const manifest = JSON.parse(readFileSync(MANIFEST, 'utf8'))
const model = manifest.default as string
const card = readFileSync(path.join(path.dirname(MANIFEST), model, 'README.md'), 'utf8')

/** The model card's "| MNIST | mds AUROC | mds TNR | entropic AUROC | ..." row, by score. */
function cardAuroc (kind: string): number {
  const header = card.split('\n').find((l) => l.startsWith('| OOD set |'))!.split('|').map((s) => s.trim())
  const row = card.split('\n').find((l) => l.startsWith('| MNIST |'))!.split('|').map((s) => s.trim())
  return Number(row[header.indexOf(`${kind} AUROC`)])
}

t.test('default model: evaluate agrees with the model card on Fashion-MNIST → MNIST', async (t) => {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'isomax-eval-')), 'report')
  const stdout = process.stdout.write.bind(process.stdout)
  const stderr = process.stderr.write.bind(process.stderr)
  process.stdout.write = (() => true) as typeof process.stdout.write
  process.stderr.write = (() => true) as typeof process.stderr.write
  let report
  try {
    report = await evaluate(['--model', `${model}:mds`, '--model', `${model}:entropic`, '--id', 'fashion-mnist:test', '--ood', 'MNIST=mnist', '--out', out], env)
  } finally {
    process.stdout.write = stdout
    process.stderr.write = stderr
  }
  t.equal(report.positiveClass, 'in-distribution')
  t.equal(report.inDistribution.n, 10000)
  t.ok(report.accuracy[model]! > 0.9)
  for (const kind of ['mds', 'entropic']) {
    const served = report.results.MNIST![`${model}/${kind}`]!.auroc
    const trained = cardAuroc(kind)
    t.comment(`${kind}: AUROC served ${served.toFixed(4)}, model card ${trained}`)
    t.ok(Math.abs(served - trained) <= 0.01, `${kind} AUROC |${served.toFixed(4)} − ${trained}| ≤ 0.01`)
  }
  const md = readFileSync(`${out}.md`, 'utf8')
  t.match(md, /\*\*positive class\*\*/)
  t.match(md, /\| MNIST \| [\d.]+ \| [\d.]+ \|/)
  t.same(JSON.parse(readFileSync(`${out}.json`, 'utf8')).columns.map((c: { score: string }) => c.score), ['mds', 'entropic'])
})

t.test('bad input: unknown model, no OOD set, unknown set', async (t) => {
  await t.rejects(evaluate(['--model', 'nope', '--id', 'fashion-mnist:test', '--ood', 'mnist'], env), { message: /model "nope" is not in/ })
  await t.rejects(evaluate(['--model', model, '--id', 'fashion-mnist:test'], env), { message: /at least one --ood/ })
  await t.rejects(evaluate(['--model', model, '--id', 'fashion-mnist:test', '--ood', 'X=/nowhere'], env), { message: /\/nowhere: no such file or directory, and not a built-in set/ })
  await t.rejects(evaluate(['--model', `${model}:softest`, '--id', 'fashion-mnist:test', '--ood', 'mnist'], env), { message: /unknown score "softest"/ })
})
