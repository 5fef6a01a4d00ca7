// npm run calibrate -- --model NAME --data PATH [--tpr 0.95] [--per-class] [--risk-data PATH]
//
// Scores in-distribution data through the serving path and writes the model's threshold and
// calibration record into the manifest (its OOD block), and — when the data is labelled — the
// temperature that calibrates its probabilities (its "probabilities" block), atomically. With
// --risk-data (labelled, disjoint from --data), also the confidence threshold of the
// "uncertain" reject, chosen with a finite-sample risk bound (its "selective" block).
import path from 'node:path'
import { loadConfig } from '../../config.js'
import { resolveDataset } from '../datasets/resolve.js'
import { quantileSummary } from '../evaluation/quantiles.js'
import { argmax } from '../../ood/scores.js'
import { classThresholds, ece, fitTemperature, nll } from '../evaluation/calibration-metrics.js'
import { minCalibrationSize, thresholdAtTpr } from '../../ood/threshold.js'
import { SCORE_KINDS, type OodSpec, type ProbabilitiesSpec, type SelectiveSpec } from '../../registry/manifest-schema.js'
import { confidenceGrid, controlSelectiveRisk, selectiveSamplesOf, sequenceStart } from '../evaluation/selective-risk.js'
import { loadManifest } from '../../registry/load-manifest.js'
import { updateCalibration } from './update-manifest.js'
import { parse, parseScore, parseTpr, requireModel, requireOption, requireScoreFits, UsageError } from './args.js'
import { runCli } from './main.js'
import { runDataset, scoresOf, startEngine, warnSkipped, warnUnmatched } from './run-dataset.js'
import { PACKAGE_VERSION } from '../../version.js'

const USAGE = `usage: npm run calibrate -- --model NAME --data PATH [options]

Scores held-out in-distribution images through the serving path and writes the model's
threshold and calibration record (its "ood" block) into the manifest, atomically.

  --model NAME       the model to calibrate
  --data PATH        an image folder (flat, or one subfolder per class), an IDX image file,
                     or a built-in set (fashion-mnist:val, fashion-mnist:test)
  --score KIND       the decision score (${SCORE_KINDS.join(', ')}); required
                     the first time, then defaults to the manifest's
  --tpr T            target true-positive rate, 0 < T < 1 (default 0.95)
  --per-class        also one threshold per predicted class (Mondrian), so every class's
                     false-reject rate is about 1 − T, not only the average
  --no-temperature   do not fit the probabilities' temperature (fitted whenever the data
                     is labelled: IDX with labels, class folders, the built-in sets)
  --labels FILE      IDX labels, for an IDX --data
  --indices FILE     a JSON array of image indices to use, for an IDX --data
  --risk-data PATH   labelled in-distribution images DISJOINT from --data (same forms;
                     built-in: fashion-mnist:val-risk beside --data fashion-mnist:val-fit):
                     also choose the confidence threshold of the "uncertain" reject, so
                     that the error rate among images accepted by both rules is at most
                     --target-risk with probability ≥ 1 − --delta (Learn-then-Test). Without
                     it, a model's earlier confidence threshold is removed: it was chosen
                     for the old OOD threshold and temperature
  --risk-labels FILE, --risk-indices FILE   as --labels and --indices, for --risk-data
  --target-risk A    the error rate to bound among accepted images (default 0.02)
  --delta D          the chance the bound may fail over the calibration draw (default 0.1)
  --manifest FILE    the manifest to read and rewrite (default: $MODELS_MANIFEST, else
                     models/manifest.json)
  --dry-run          compute and print; leave the manifest unchanged
  -h, --help         print this help

docs/calibration.md explains the scores, the threshold and the data.`

export interface CalibrationResult {
  ood: OodSpec
  probabilities: ProbabilitiesSpec | undefined
  /** The confidence threshold's block, with --risk-data. */
  selective?: SelectiveSpec | undefined
  skipped: number
}

const METHOD = 'Learn-then-Test, fixed-sequence: from the most confident threshold of a fixed grid (1 − 10^−x, x = 12 … 0.005 by 0.005) down, starting where the fit data accepts ≥ max(⌈ln δ / ln(1 − α)⌉, 10 %) of its images; exact binomial p-value P(Bin(n, α) ≤ errors) among the images accepted by both rules; the last threshold before the first p-value > δ'

function parseRate (text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback
  const v = Number(text)
  if (text.trim() === '' || !(v > 0 && v < 1)) throw new UsageError(`${flag} must be a number between 0 and 1 (exclusive), like 0.02; got "${text}"`)
  return v
}

/** `manifestLine`: the report's last line, for a caller that writes the result itself (models add). */
export async function calibrate (argv: string[], env: NodeJS.ProcessEnv = process.env, output: { manifestLine?: string } = {}): Promise<CalibrationResult> {
  const args = parse(argv, {
    model: { type: 'string' },
    data: { type: 'string' },
    tpr: { type: 'string' },
    labels: { type: 'string' },
    indices: { type: 'string' },
    score: { type: 'string' },
    manifest: { type: 'string' },
    'dry-run': { type: 'boolean' },
    'per-class': { type: 'boolean' },
    'no-temperature': { type: 'boolean' },
    quantiles: { type: 'string' },
    'risk-data': { type: 'string' },
    'risk-labels': { type: 'string' },
    'risk-indices': { type: 'string' },
    'target-risk': { type: 'string' },
    delta: { type: 'string' }
  }, USAGE)
  const modelName = requireOption(args.model, 'model', USAGE)
  const dataSpec = requireOption(args.data, 'data', USAGE)
  const tpr = parseTpr(args.tpr)
  const scoreOverride = args.score !== undefined ? parseScore(args.score) : undefined
  const config = loadConfig(env)
  const manifestFile = args.manifest ?? config.MODELS_MANIFEST
  const manifest = await loadManifest(manifestFile, { uncalibrated: true })
  const model = requireModel(manifest, modelName)
  const kind = scoreOverride ?? model.ood?.score
  if (kind === undefined) throw new UsageError(`model "${model.name}" has no OOD block yet: choose its decision score with --score (${SCORE_KINDS.join(', ')})`)
  requireScoreFits(kind, model, '--score')
  const targetRisk = parseRate(args['target-risk'], '--target-risk', 0.02)
  const delta = parseRate(args.delta, '--delta', 0.1)
  if (args['risk-data'] === undefined && (args['target-risk'] !== undefined || args.delta !== undefined || args['risk-labels'] !== undefined || args['risk-indices'] !== undefined)) {
    throw new UsageError('--target-risk, --delta, --risk-labels and --risk-indices go with --risk-data PATH (labelled images disjoint from --data)')
  }
  const riskSpec = args['risk-data']
  if (riskSpec !== undefined && riskSpec === dataSpec && args['risk-indices'] === args.indices) throw new UsageError('--risk-data must be disjoint from --data: the confidence threshold must be chosen on images that fitted nothing else (e.g. --data fashion-mnist:val-fit --risk-data fashion-mnist:val-risk)')
  const dataset = await resolveDataset(dataSpec, { labels: args.labels, indices: args.indices })
  const riskSet = riskSpec !== undefined ? await resolveDataset(riskSpec, { labels: args['risk-labels'], indices: args['risk-indices'] }) : undefined

  const engine = await startEngine({ ...manifest, models: new Map([[model.name, model]]) }, config)
  let run
  let riskRun
  try {
    run = await runDataset(engine, [model], dataset, `calibrate ${model.name}`, config)
    if (riskSet !== undefined) riskRun = await runDataset(engine, [model], riskSet, `risk ${model.name}`, config)
  } finally {
    await engine.close(new Error('calibration finished'))
  }
  warnSkipped(run, dataSpec)
  warnUnmatched(run, dataSpec)
  const out = run.outputs.get(model.name)!
  const { logits, labels } = out
  const n = logits.length
  if (n === 0) throw new UsageError(`${dataSpec}: none of the ${dataset.size} images could be read; the manifest is unchanged`)
  const minimum = minCalibrationSize(tpr)
  if (n < minimum) throw new UsageError(`${dataSpec}: ${n} images are too few for TPR ${tpr} (need at least ${minimum}); the manifest is unchanged`)
  const scores = scoresOf(out, kind)
  const threshold = thresholdAtTpr(scores, tpr)
  const achieved = scores.filter((s) => s >= threshold).length / n
  const quantiles = args.quantiles !== undefined ? Number(args.quantiles) : 1000
  const date = new Date().toISOString().slice(0, 10)
  const perClass = args['per-class'] === true ? mondrian(scores, logits, model.labels.length, tpr, threshold, quantiles) : undefined
  const ood: OodSpec = {
    score: kind,
    threshold,
    ...(perClass !== undefined ? { classThresholds: perClass.thresholds } : {}),
    calibration: {
      targetTpr: tpr,
      achievedTpr: achieved,
      n,
      data: dataset.description,
      dataSha256: run.sha256,
      date,
      tool: 'isomax-serve calibrate',
      toolVersion: PACKAGE_VERSION,
      scores: quantileSummary(scores, quantiles),
      ...(perClass !== undefined ? { classScores: perClass.scores, classN: perClass.counts } : {})
    }
  }
  const probabilities = args['no-temperature'] === true ? undefined : temperature(logits, labels, dataset.description, date)
  let selective: SelectiveSpec | undefined
  if (riskRun !== undefined && riskSpec !== undefined) {
    warnSkipped(riskRun, riskSpec)
    warnUnmatched(riskRun, riskSpec)
    if (riskRun.sha256 === run.sha256) throw new UsageError(`${riskSpec} holds the same images as ${dataSpec}: the confidence threshold must be chosen on data disjoint from what fitted the OOD threshold and the temperature; the manifest is unchanged`)
    const t = (probabilities ?? model.probabilities)?.temperature ?? 1
    const riskOut = riskRun.outputs.get(model.name)!
    const fit = selectiveSamplesOf(logits, labels, scores, ood, t)
    const cal = selectiveSamplesOf(riskOut.logits, riskOut.labels, scoresOf(riskOut, kind), ood, t)
    if (fit.length < 20) throw new UsageError(`${dataSpec}: ${fit.length} labelled images; the confidence threshold's sequence starts where this data accepts 10 % of its images, so --data must be labelled; the manifest is unchanged`)
    if (cal.length < 20) throw new UsageError(`${riskSpec}: ${cal.length} labelled images; the confidence threshold needs labelled data (right or wrong is what it bounds); the manifest is unchanged`)
    const grid = confidenceGrid()
    const r = controlSelectiveRisk(cal, grid, targetRisk, delta, sequenceStart(grid, fit, targetRisk, delta))
    if (r.threshold === null) {
      throw new UsageError(`${riskSpec}: no confidence threshold keeps the error rate among accepted images at ${targetRisk} with probability ≥ ${1 - delta} on ${cal.length} labelled images ` +
        '(the first test of the sequence failed): use more --risk-data, a larger --target-risk or a larger --delta; the manifest is unchanged')
    }
    selective = {
      targetRisk,
      delta,
      threshold: r.threshold,
      calibration: {
        method: METHOD,
        data: riskSet!.description,
        dataSha256: riskRun.sha256,
        n: r.n,
        accepted: r.accepted,
        errors: r.errors,
        coverage: r.coverage,
        risk: r.risk,
        bound: r.bound,
        uncertainRate: r.uncertainRate,
        fitData: dataset.description,
        fitDataSha256: run.sha256,
        date,
        tool: 'isomax-serve calibrate',
        toolVersion: PACKAGE_VERSION
      }
    }
  }
  if (args['dry-run'] !== true) await updateCalibration(manifest.file, model.name, ood, probabilities, { sha256: model.sha256 }, selective ?? null)
  process.stdout.write([
    `model            ${model.name} ${model.version}`,
    `data             ${dataset.description}`,
    `images           ${n} scored${run.skipped.count > 0 ? `, ${run.skipped.count} skipped (unreadable)` : ''} in ${run.seconds.toFixed(1)} s`,
    `score            ${kind}`,
    `threshold        ${threshold}  (the ⌊${(1 - tpr).toFixed(4)}·(n+1)⌋-th smallest score; reject when score < threshold)`,
    `target TPR       ${tpr}`,
    `achieved TPR     ${achieved.toFixed(4)} on the calibration data`,
    ...(perClass !== undefined ? [`per class        thresholds ${perClass.thresholds.map((v) => v.toPrecision(4)).join(' ')} (images per predicted class: ${perClass.counts.join(' ')})`] : []),
    probabilities !== undefined
      ? `temperature      ${probabilities.temperature.toPrecision(4)}: NLL ${probabilities.nll.before.toFixed(4)} → ${probabilities.nll.after.toFixed(4)}, ECE (15 bins) ${probabilities.ece.before.toFixed(4)} → ${probabilities.ece.after.toFixed(4)} on ${probabilities.n} labelled images`
      : `temperature      not fitted (${args['no-temperature'] === true ? '--no-temperature' : 'the data has too few labels'}); probabilities stay softmax(logits)${model.probabilities !== undefined ? ' — the manifest keeps its temperature' : ''}`,
    ...(selective !== undefined
      ? [
          `risk data        ${selective.calibration.data}`,
          `confidence       threshold ${selective.threshold.toPrecision(6)} (uncertain when confidence < threshold): target risk ${targetRisk} at δ ${delta}`,
          `                 on ${selective.calibration.n} labelled images: coverage ${(100 * selective.calibration.coverage).toFixed(2)} % (both rules), risk ${(100 * selective.calibration.risk).toFixed(2)} % (${selective.calibration.errors} of ${selective.calibration.accepted}), ${(100 * (1 - delta)).toFixed(0)} % upper bound ${(100 * selective.calibration.bound).toFixed(2)} %`
        ]
      : model.selective !== undefined ? ['confidence       no --risk-data: the earlier confidence threshold is removed (it was chosen for the old OOD threshold and temperature); the model has no "uncertain" reject until calibrated with --risk-data'] : []),
    output.manifestLine ?? (args['dry-run'] === true ? 'manifest         unchanged (--dry-run)' : `manifest         ${manifest.file}: the calibration of "${model.name}" rewritten`),
    ''
  ].join('\n'))
  return { ood, probabilities, selective, skipped: run.skipped.count }
}

/** Per predicted class: thresholds and calibration-score summaries (Mondrian calibration). */
function mondrian (scores: number[], logits: Float32Array[], classes: number, tpr: number, global: number, quantiles: number): { thresholds: number[], scores: number[][], counts: number[] } {
  const { thresholds, counts, byClass } = classThresholds(scores, logits.map((l) => argmax(l)), classes, tpr, global)
  // A class too small for its own threshold keeps the global one, and so the global p-values
  // too: an empty list here means "use the global sample".
  return { thresholds, counts, scores: byClass.map((s) => s.length >= minCalibrationSize(tpr) ? quantileSummary(s, quantiles) : []) }
}

/**
 * The temperature of softmax(logits / T), fitted on the labelled images (NLL), with NLL and
 * ECE before and after; undefined when fewer than half the images have a label.
 */
function temperature (logits: Float32Array[], labels: number[], data: string, date: string): ProbabilitiesSpec | undefined {
  const known = labels.map((l, i) => ({ l, i })).filter(({ l }) => l >= 0)
  if (known.length < logits.length / 2 || known.length < 20) return undefined
  const rows = known.map(({ i }) => logits[i]!)
  const y = known.map(({ l }) => l)
  const t = fitTemperature(rows, y)
  return { temperature: t, n: rows.length, data, date, nll: { before: nll(rows, y, 1), after: nll(rows, y, t) }, ece: { before: ece(rows, y, 1), after: ece(rows, y, t) } }
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  await runCli('calibrate', async () => { await calibrate(process.argv.slice(2)) })
}
