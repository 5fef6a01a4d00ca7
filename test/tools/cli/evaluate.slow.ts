// evaluate through the serving path reproduces the training side's model card: same images,
// same scores, so AUROC on Fashion-MNIST → MNIST must agree within 0.01 (else: train/serve skew)
// for the default model's decision score (computed in its graph) and the logit scores.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { evaluate } from '../../../src/tools/cli/evaluate.js'
import { MANIFEST, REPO } from '../../helpers/data.js'

const env = { EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '2', LOG_LEVEL: 'silent' }
const manifest = JSON.parse(readFileSync(MANIFEST, 'utf8'))
const model = manifest.default as string
const card = readFileSync(path.join(path.dirname(MANIFEST), model, 'README.md'), 'utf8')

const entry = manifest.models.find((m: { name: string }) => m.name === model)
const chosen = /\*\*Chosen: `([a-z0-9-]+)`\*\*/.exec(card)?.[1]

/**
 * The model card's AUROC on MNIST for a score, from its table of every candidate
 * ("| candidate | mnist | ..." rows mds, entropic, and the chosen graph score's detector).
 */
function cardAuroc (kind: string): number {
  const lines = card.split('\n')
  const start = lines.findIndex((l) => l.startsWith('| candidate | mnist |'))
  const header = lines[start]!.split('|').map((s) => s.trim())
  const rowName = kind === entry.ood.score && chosen !== undefined ? chosen : kind
  const row = lines.slice(start).find((l) => l.startsWith(`| ${rowName} |`))!.split('|').map((s) => s.trim())
  return Number(row[header.indexOf('mnist')])
}

t.test('default model: evaluate agrees with the model card on Fashion-MNIST → MNIST', async (t) => {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'isomax-eval-')), 'report')
  const stdout = process.stdout.write.bind(process.stdout)
  const stderr = process.stderr.write.bind(process.stderr)
  process.stdout.write = (() => true) as typeof process.stdout.write
  process.stderr.write = (() => true) as typeof process.stderr.write
  let report
  try {
    report = await evaluate(['--model', model, '--model', `${model}:mds`, '--model', `${model}:entropic`, '--id', 'fashion-mnist:test', '--ood', 'MNIST=mnist', '--out', out, '--figures', `${out}-figures`], env)
  } finally {
    process.stdout.write = stdout
    process.stderr.write = stderr
  }
  t.equal(report.positiveClass, 'in-distribution')
  t.equal(report.inDistribution.n, 10000)
  t.ok(report.accuracy[model]! > 0.9)
  for (const kind of [entry.ood.score, 'mds', 'entropic']) {
    const served = report.results.MNIST![`${model}/${kind}`]!.auroc
    const trained = cardAuroc(kind)
    t.comment(`${kind}: AUROC served ${served.toFixed(4)}, model card ${trained}`)
    t.ok(Math.abs(served - trained) <= 0.01, `${kind} AUROC |${served.toFixed(4)} − ${trained}| ≤ 0.01`)
  }
  const md = readFileSync(`${out}.md`, 'utf8')
  t.match(md, /\*\*positive class\*\*/)
  t.match(md, /\| MNIST \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/)
  t.same(JSON.parse(readFileSync(`${out}.json`, 'utf8')).columns.map((c: { score: string }) => c.score), [entry.ood.score, 'mds', 'entropic'])

  // The ID analysis at the manifest threshold agrees with the reject rate it reports.
  const a = report.idAnalysis[model]!
  const s = a.selective!
  t.equal(s.accepted.n + s.rejected.n, 10000)
  t.equal(s.rejected.n / 10000, report.idRejectRate[model])
  t.ok(s.accepted.accuracy! > report.accuracy[model]! && s.rejected.accuracy! < report.accuracy[model]!, `rejecting helps: ${s.accepted.accuracy} accepted, ${s.rejected.accuracy} rejected`)
  t.ok(s.riskCoverage.aurc > 0 && s.riskCoverage.aurc < 1 - report.accuracy[model]!, 'AURC below the error rate at full coverage')
  t.equal(s.riskCoverage.curve.at(-1)!.coverage, 1)
  const p = a.perClassReject
  t.equal(p.n.reduce((x, y) => x + y, 0), 10000)
  // The rates as served: by the per-class thresholds when the manifest has them.
  const served = p.perClass ?? p.global
  t.ok(Math.abs(served.reduce((x, r, c) => x + r * p.n[c]!, 0) / 10000 - report.idRejectRate[model]!) < 1e-9, 'per-class reject rates add up to the served one')
  t.ok(a.ece!.atT1 >= 0 && a.ece!.atT1 <= 1)
  if (entry.probabilities !== undefined) t.ok(a.ece!.atTemperature! < 0.02, 'the manifest temperature gives ECE < 0.02')

  // --figures: real SVGs, linked from the Markdown report.
  const expected = report.columns.flatMap((c) => [`roc-${model}-${c.score}.svg`, ...(c.isManifestScore ? [`histograms-${model}.svg`] : [])])
  t.same(report.figures.map((f) => path.basename(f.file)), [...expected, 'risk-coverage.svg', `selective-${model}.svg`])
  for (const f of report.figures) {
    const svg = readFileSync(path.resolve(path.dirname(out), f.file), 'utf8')
    t.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/, `${f.file} is an SVG`)
    t.match(md, `](${f.file})`, `${f.file} is linked from the report`)
  }
  // The one reject as served: the test-split figures the docs report, and both reasons on MNIST.
  const sel = report.selective[model]!
  t.equal(sel.targetRisk, entry.selective.targetRisk)
  t.equal(sel.id.labelled, 10000)
  t.equal(sel.id.accepted, 8437, 'coverage 84.37 % (docs/selective-risk.md)')
  t.equal(sel.id.errors, 159, 'realized risk 159 / 8437 = 1.88 %')
  t.equal(sel.id.withinMargin, true)
  const mnist = sel.ood.find((o) => o.set === 'MNIST')!
  t.ok(mnist.rejected >= mnist.ood && mnist.both > 0 && mnist.uncertainOnly > 0, `MNIST rejected ${mnist.rejected}: ood ${mnist.ood}, uncertain ${mnist.uncertain}`)
  t.match(md, /## The one reject \(ood or uncertain\)/)
  t.match(readFileSync(path.resolve(path.dirname(out), report.figures.at(-1)!.file), 'utf8'), /operating point: coverage 84\.4 %, risk 1\.88 %/)
  const roc = readFileSync(path.resolve(path.dirname(out), report.figures[0]!.file), 'utf8')
  t.match(roc, `MNIST (AUROC ${(100 * report.results.MNIST![`${model}/${entry.ood.score}`]!.auroc).toFixed(1)} %)`, 'the ROC legend carries the AUROC')
})

t.test('bad input: unknown model, no OOD set, unknown set', async (t) => {
  await t.rejects(evaluate(['--model', 'nope', '--id', 'fashion-mnist:test', '--ood', 'mnist'], env), { message: /model "nope" is not in/ })
  await t.rejects(evaluate(['--model', model, '--id', 'fashion-mnist:test'], env), { message: /at least one --ood/ })
  await t.rejects(evaluate(['--model', model, '--id', 'fashion-mnist:test', '--ood', 'X=/nowhere'], env), { message: /\/nowhere: no such file or directory, and not a built-in set/ })
  await t.rejects(evaluate(['--model', `${model}:softest`, '--id', 'fashion-mnist:test', '--ood', 'mnist'], env), { message: /unknown score "softest"/ })
})

t.test('class folders that match no label: a warning names each, and the report says the accuracy is on a subset', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-eval-folders-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const fashion = path.join(REPO, 'test', 'fixtures', 'fashion')
  // "trouser" is the label "Trouser" (case ignored), "5" is class 5 (Sandal), "Coats" is no label.
  const folders: Record<string, string[]> = {
    trouser: ['test-00002-trouser.png', 'test-00003-trouser.png', 'test-00005-trouser.png', 'test-00015-trouser.png'],
    5: ['test-00008-sandal.png', 'test-00011-sandal.png'],
    Coats: ['test-00006-coat.png', 'test-00010-coat.png', 'test-00014-coat.png']
  }
  for (const [folder, files] of Object.entries(folders)) {
    mkdirSync(path.join(dir, 'id', folder), { recursive: true })
    for (const f of files) copyFileSync(path.join(fashion, f), path.join(dir, 'id', folder, f))
  }
  const out: string[] = []
  const err: string[] = []
  const stdout = process.stdout.write.bind(process.stdout)
  const stderr = process.stderr.write.bind(process.stderr)
  process.stdout.write = ((c: string) => { out.push(String(c)); return true }) as typeof process.stdout.write
  process.stderr.write = ((c: string) => { err.push(String(c)); return true }) as typeof process.stderr.write
  let report
  try {
    report = await evaluate(['--model', model, '--id', path.join(dir, 'id'), '--ood', `digit=${path.join(REPO, 'test', 'fixtures', 'ood')}`, '--out', path.join(dir, 'report')], env)
  } finally {
    process.stdout.write = stdout
    process.stderr.write = stderr
  }
  t.equal(report.inDistribution.n, 9)
  t.same(report.labelled[model], { n: 6, unmatchedFolders: { Coats: 3 } })
  t.match(err.join(''), new RegExp(`warning: .*/id: 1 class folder matches no label of "${model}", so 3 of 9 images count as unlabelled \\(left out of accuracy and every per-class figure\\): Coats/ \\(3\\)\\. A folder matches a label by name, ignoring case and punctuation, or by class number; the labels are T-shirt/top, Trouser,`))
  t.match(out.join(''), new RegExp(`^  ${model}: accuracy [\\d.]+ % on 6 of 9 images \\(3 in 1 class folder matching no label: Coats/\\), ID reject rate`, 'm'))
  t.match(readFileSync(path.join(dir, 'report.md'), 'utf8'), /% on 6 of 9 images \(3 in 1 class folder matching no label: Coats\/\) \|/)
  t.same(JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')).labelled[model], { n: 6, unmatchedFolders: { Coats: 3 } })
})

t.test('--url: over HTTP the report holds the server\'s verdicts, the same as in process', async (t) => {
  const { build } = await import('../../helpers/build.js')
  const { mnistDigits, png } = await import('../../helpers/data.js')
  const { writeFileSync } = await import('node:fs')
  const app = await build(t)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-eval-url-'))
  const indices = path.join(dir, 'indices.json')
  writeFileSync(indices, JSON.stringify(Array.from({ length: 300 }, (_, i) => i)))
  mkdirSync(path.join(dir, 'digits'))
  await Promise.all(mnistDigits(40).map(async (p, i) => { writeFileSync(path.join(dir, 'digits', `${i}.png`), await png(p)) }))
  const fashion = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist'
  const args = ['--model', model, '--id', path.join(fashion, 't10k-images-idx3-ubyte.gz'), '--labels', path.join(fashion, 't10k-labels-idx1-ubyte.gz'), '--indices', indices, '--ood', `digits=${path.join(dir, 'digits')}`]
  const quiet = async <T>(fn: () => Promise<T>): Promise<T> => {
    const [o, e] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)]
    process.stdout.write = (() => true) as typeof process.stdout.write
    process.stderr.write = (() => true) as typeof process.stderr.write
    try { return await fn() } finally { process.stdout.write = o; process.stderr.write = e }
  }
  const overHttp = await quiet(async () => await evaluate([...args, '--url', url, '--out', path.join(dir, 'http')], env))
  const inProcess = await quiet(async () => await evaluate([...args, '--out', path.join(dir, 'local')], env))
  t.equal(overHttp.servedBy, url)
  t.same(overHttp.selective, inProcess.selective, 'the same verdicts, coverage, risk and reasons')
  t.equal(overHttp.selective[model]!.id.labelled, 300)
  t.equal(overHttp.results.digits![`${model}/${entry.ood.score as string}`]!.auroc, inProcess.results.digits![`${model}/${entry.ood.score as string}`]!.auroc, 'and the same scores')
  // A server that serves other thresholds than the manifest says: refused before any image is sent.
  const { copyModels, editManifest } = await import('../../helpers/manifest-copy.js')
  const otherFile = copyModels()
  editManifest(otherFile, (m) => { m.models.find((e: { name: string }) => e.name === model).selective.threshold = 0.5 })
  await t.rejects(evaluate([...args, '--url', url, '--manifest', otherFile, '--out', path.join(dir, 'x')], env), /the manifest says 1\.0\.0, [^,]+, 0\.5/)
  rmSync(dir, { recursive: true, force: true })
})
