// npm run evaluate -- --model NAME[:SCORE] [--model ...] --id PATH --ood LABEL=PATH [--ood ...]
//
// OOD detection metrics for one or more models, computed through the serving path, printed
// and written as JSON and Markdown.
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { loadConfig } from '../../config.js'
import { BUILTIN_OOD_SETS } from '../datasets/builtin.js'
import { resolveDataset } from '../datasets/resolve.js'
import { analyseId, rejectRateAsServed } from '../evaluation/id-analysis.js'
import { oodMetrics } from '../evaluation/metrics.js'
import { writeFigures } from '../evaluation/write-figures.js'
import { argmax } from '../../ood/scores.js'
import { SCORE_KINDS, type ScoreKind } from '../../registry/manifest-schema.js'
import { loadManifest, type LoadedModel } from '../../registry/load-manifest.js'
import { parse, parseScore, requireModel, requireOption, requireScoreFits, synopsis, UsageError } from './args.js'
import { runCli } from './main.js'
import { columnKey, markdownReport, textReport, type Column, type Report } from './report.js'
import { runDataset, scoresOf, startEngine, warnSkipped, warnUnmatched, type DatasetRun, type ModelOutputs } from './run-dataset.js'
import { runDatasetHttp } from './run-http.js'
import { selectiveReport, type Verdict } from '../evaluation/selective-report.js'
import { decide } from '../../ood/decision.js'
import type { Dataset } from '../datasets/types.js'

const USAGE = `usage: npm run evaluate -- --model NAME[:SCORE] [--model ...] --id PATH --ood LABEL=PATH [--ood ...] [options]

OOD detection metrics (AUROC, AUPR, TNR at 95 % TPR, detection accuracy, reject rate) with
the in-distribution set as the positive class, through the serving path; printed, and
written as PREFIX.json and PREFIX.md. Every model in the manifest must be calibrated.

  --model NAME[:SCORE]  a model, and the score to evaluate it with (default: the manifest's);
                        repeatable
  --score KIND          the score for every --model without one:
                        ${SCORE_KINDS.join(', ')}
  --id PATH             the in-distribution set: an image folder (flat, or one subfolder per
                        class), an IDX image file, or a built-in set
  --labels FILE         IDX labels for --id (for the accuracy)
  --indices FILE        a JSON array of image indices of --id to use
  --ood LABEL=PATH      an OOD set (folder, IDX file or built-in set); repeatable; a bare
                        PATH is its own label
  --builtin-ood         add every built-in OOD set: ${BUILTIN_OOD_SETS.slice(0, 3).join(', ')},
                        ${BUILTIN_OOD_SETS.slice(3).join(', ')}
  --out PREFIX          where the report goes (default reports/evaluation)
  --figures DIR         also draw SVG figures there: ROC curves per model and score, ID
                        against OOD score histograms with the threshold, risk–coverage
  --url URL             send the images to a running server (POST /models/NAME/classify,
                        multipart, 16 a request) instead of running the models in this
                        process: the verdicts are the server's. Its models must be the
                        manifest's (same version and thresholds)
  --manifest FILE       the manifest to read (default: $MODELS_MANIFEST, else
                        models/manifest.json)
  -h, --help            print this help

docs/calibration.md defines every metric.`

export async function evaluate (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<Report> {
  const args = parse(argv, {
    model: { type: 'string', multiple: true },
    id: { type: 'string' },
    labels: { type: 'string' },
    indices: { type: 'string' },
    ood: { type: 'string', multiple: true },
    'builtin-ood': { type: 'boolean' },
    score: { type: 'string' },
    manifest: { type: 'string' },
    out: { type: 'string' },
    figures: { type: 'string' },
    url: { type: 'string' }
  }, USAGE)
  const modelArgs = requireOption(args.model, 'model', USAGE)
  const idSpec = requireOption(args.id, 'id', USAGE)
  const oodArgs = [...(args.ood ?? []), ...(args['builtin-ood'] === true ? BUILTIN_OOD_SETS : [])]
  if (oodArgs.length === 0) throw new UsageError(`give at least one --ood LABEL=PATH (or --builtin-ood)\n${synopsis(USAGE)}`)
  const override = args.score !== undefined ? parseScore(args.score) : undefined

  const config = loadConfig(env)
  const manifest = await loadManifest(args.manifest ?? config.MODELS_MANIFEST)
  const columns: Column[] = []
  const models: LoadedModel[] = []
  for (const arg of modelArgs) {
    const [name, kindText] = arg.split(':') as [string, string | undefined]
    const model = requireModel(manifest, name)
    const kind = kindText !== undefined ? parseScore(kindText) : override ?? model.ood.score
    requireScoreFits(kind, model, arg)
    if (!models.includes(model)) models.push(model)
    columns.push({ model: name, version: model.version, score: kind, isManifestScore: kind === model.ood.score, threshold: model.ood.threshold })
  }
  const oodSpecs = oodArgs.map((a) => {
    const eq = a.indexOf('=')
    return eq > 0 ? { label: a.slice(0, eq), spec: a.slice(eq + 1) } : { label: a, spec: a }
  })
  // Resolve every data set before the engine starts: bad paths fail fast.
  const idSet = await resolveDataset(idSpec, { labels: args.labels, indices: args.indices })
  const oodSets = await Promise.all(oodSpecs.map(async (o) => ({ ...o, dataset: await resolveDataset(o.spec) })))

  const url = args.url
  if (url !== undefined) await checkServer(url, models)
  const engine = url === undefined ? await startEngine({ ...manifest, models: new Map(models.map((m) => [m.name, m])) }, config) : undefined
  const runSet = async (dataset: Dataset, label: string): Promise<DatasetRun> => engine !== undefined
    ? await runDataset(engine, models, dataset, label, config)
    : await runDatasetHttp({ url: url! }, models, dataset, label)
  try {
    const idRun = await runSet(idSet, 'ID  ' + idSpec)
    warnSkipped(idRun, idSpec)
    warnUnmatched(idRun, idSpec)
    if (idRun.outputs.get(models[0]!.name)!.logits.length === 0) throw new UsageError(`${idSpec}: none of its images could be read`)
    const columnScores = (run: typeof idRun, c: Column): number[] => scoresOf(run.outputs.get(c.model)!, c.score as ScoreKind)
    const idScores = new Map(columns.map((c) => [columnKey(c), columnScores(idRun, c)]))
    const report: Report = {
      generatedAt: new Date().toISOString(),
      command: `npm run evaluate -- ${argv.join(' ')}`,
      positiveClass: 'in-distribution',
      inDistribution: { spec: idSpec, description: idSet.description, n: idRun.outputs.get(models[0]!.name)!.logits.length, skipped: idRun.skipped.count },
      accuracy: {},
      labelled: {},
      columns,
      oodSets: [],
      results: {},
      idRejectRate: {},
      idAnalysis: {},
      selective: {},
      ...(url !== undefined ? { servedBy: url } : {}),
      figures: []
    }
    for (const m of models) {
      const out = idRun.outputs.get(m.name)!
      const known = out.labels.map((l, i) => ({ l, i })).filter(({ l }) => l >= 0)
      report.accuracy[m.name] = known.length === 0
        ? null
        : known.filter(({ l, i }) => argmax(out.logits[i]!) === l).length / known.length
      report.labelled[m.name] = { n: known.length, unmatchedFolders: out.unmatched }
      const own = columns.find((c) => c.model === m.name && c.isManifestScore)
      const manifestScores = own !== undefined ? idScores.get(columnKey(own))! : scoresOf(out, m.ood.score)
      report.idRejectRate[m.name] = rejectRateAsServed(m.ood, out.logits, manifestScores)
      report.idAnalysis[m.name] = analyseId(m, out.logits, out.labels, manifestScores)
    }
    const oodScores = new Map<string, Map<string, number[]>>()
    const oodVerdicts = new Map<string, Array<{ set: string, verdicts: Verdict[] }>>(models.map((m) => [m.name, []]))
    for (const o of oodSets) {
      const run = await runSet(o.dataset, 'OOD ' + o.label)
      for (const m of models) oodVerdicts.get(m.name)!.push({ set: o.label, verdicts: verdictsOf(run.outputs.get(m.name)!, m) })
      warnSkipped(run, o.label)
      const n = run.outputs.get(models[0]!.name)!.logits.length
      if (n === 0) throw new UsageError(`${o.spec}: none of its images could be read`)
      report.oodSets.push({ label: o.label, spec: o.spec, description: o.dataset.description, n, skipped: run.skipped.count })
      report.results[o.label] = {}
      oodScores.set(o.label, new Map())
      for (const c of columns) {
        const ood = columnScores(run, c)
        oodScores.get(o.label)!.set(columnKey(c), ood)
        report.results[o.label]![columnKey(c)] = {
          ...oodMetrics(idScores.get(columnKey(c))!, ood),
          rejectRateAtThreshold: c.isManifestScore ? rejectRateAsServed(manifest.models.get(c.model)!.ood, run.outputs.get(c.model)!.logits, ood) : null
        }
      }
    }
    for (const m of models) report.selective[m.name] = selectiveReport(m.selective, verdictsOf(idRun.outputs.get(m.name)!, m), oodVerdicts.get(m.name)!)
    const prefix = args.out ?? path.join('reports', 'evaluation')
    mkdirSync(path.dirname(path.resolve(prefix)), { recursive: true })
    if (args.figures !== undefined) {
      // Paths in the report are relative to the Markdown file, so its links work where it lies.
      const written = await writeFigures(args.figures, report, idScores, oodScores)
      report.figures = written.map((f) => ({ ...f, file: path.relative(path.dirname(path.resolve(prefix)), f.file) }))
    }
    writeFileSync(`${prefix}.json`, JSON.stringify(report, null, 2) + '\n')
    writeFileSync(`${prefix}.md`, markdownReport(report))
    process.stdout.write(textReport(report))
    process.stdout.write(`\nwrote ${prefix}.json and ${prefix}.md\n`)
    return report
  } finally {
    await engine?.close(new Error('evaluation finished'))
  }
}

/**
 * Each image's verdict: the server's (over HTTP), else decide()'s on its logits — the same
 * function the server runs — and whether its label was right.
 */
function verdictsOf (out: ModelOutputs, model: LoadedModel): Verdict[] {
  return out.logits.map((l, i) => {
    const y = out.labels[i]!
    const correct = y >= 0 ? argmax(l) === y : null
    const served = out.served?.[i]
    if (served !== undefined) return { ...served, correct }
    const d = decide(model, l, 1, out.graph[i])
    return { reasons: d.rejectReasons, confidence: d.confidence.value, oodReject: d.ood.reject, correct }
  })
}

/** The server at `url` must serve each model as the manifest describes it, or the figures would be labelled with the wrong calibration. */
async function checkServer (url: string, models: LoadedModel[]): Promise<void> {
  for (const m of models) {
    let res: Response
    try {
      res = await fetch(`${url.replace(/\/$/, '')}/models/${encodeURIComponent(m.name)}`)
    } catch (err) {
      throw new UsageError(`--url ${url}: ${(err as Error).message}`)
    }
    if (!res.ok) throw new UsageError(`--url ${url}: GET /models/${m.name} answered ${res.status}`)
    const info = await res.json() as { version: string, ood: { threshold: number }, selective?: { threshold: number } }
    if (info.version !== m.version || info.ood.threshold !== m.ood.threshold || info.selective?.threshold !== m.selective?.threshold) {
      throw new UsageError(`--url ${url}: it serves "${m.name}" ${info.version} with OOD threshold ${info.ood.threshold} and confidence threshold ${info.selective?.threshold ?? 'none'}; the manifest says ${m.version}, ${m.ood.threshold}, ${m.selective?.threshold ?? 'none'}: evaluate against the manifest the server runs (--manifest)`)
    }
  }
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  await runCli('evaluate', async () => { await evaluate(process.argv.slice(2)) })
}
