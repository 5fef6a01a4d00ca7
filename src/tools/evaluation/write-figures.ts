// evaluate --figures DIR: which figures a report gets and where they go. One ROC figure per
// model and score, one histogram figure per model (its manifest score and threshold), one
// risk–coverage figure for all models with labelled ID data.
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { columnKey, type Report } from '../cli/report.js'
import { histogramFigure, riskCoverageFigure, rocFigure, selectiveFigure } from './figures.js'
import { histogram, rocCurve } from './metrics.js'

export interface Figure { title: string, file: string }

const BINS = 60

export async function writeFigures (dir: string, report: Report, idScores: Map<string, number[]>, oodScores: Map<string, Map<string, number[]>>): Promise<Figure[]> {
  mkdirSync(dir, { recursive: true })
  const figures: Figure[] = []
  const write = (name: string, title: string, text: string): void => {
    const file = path.join(dir, name)
    writeFileSync(file, text)
    figures.push({ title, file })
  }
  for (const c of report.columns) {
    const key = columnKey(c)
    const id = idScores.get(key)!
    const curves = report.oodSets.map((s) => ({ set: s.label, auroc: report.results[s.label]![key]!.auroc, points: rocCurve(id, oodScores.get(s.label)!.get(key)!) }))
    write(`roc-${c.model}-${c.score}.svg`, `ROC, ${key}`, await rocFigure(`${key}: ROC against each OOD set`, curves))
    if (!c.isManifestScore) continue
    // One x range for every panel, from the 0.1 % to the 99.9 % point of all the scores drawn:
    // a few extreme scores would otherwise squeeze everything into one bin.
    const all = [id, ...report.oodSets.map((s) => oodScores.get(s.label)!.get(key)!)].flat().sort((a, b) => a - b)
    const lo = Math.min(all[Math.floor(0.001 * (all.length - 1))]!, c.threshold)
    const hi = Math.max(all[Math.ceil(0.999 * (all.length - 1))]!, c.threshold)
    const panels = report.oodSets.map((s) => ({ set: s.label, id: histogram(id, lo, hi, BINS), ood: histogram(oodScores.get(s.label)!.get(key)!, lo, hi, BINS) }))
    write(`histograms-${c.model}.svg`, `score histograms, ${c.model}`, await histogramFigure(`${c.model}: ID against OOD scores`, c.score, c.threshold, panels))
  }
  const selective = Object.entries(report.idAnalysis).flatMap(([model, a]) => a.selective === null ? [] : [{ model, aurc: a.selective.riskCoverage.aurc, points: a.selective.riskCoverage.curve }])
  if (selective.length > 0) write('risk-coverage.svg', 'risk–coverage', await riskCoverageFigure('Selective classification on the ID set', selective))
  for (const [model, s] of Object.entries(report.selective ?? {})) {
    if (s.operatingPoint === null || s.curve.length === 0) continue
    write(`selective-${model}.svg`, `the one reject, ${model}`, await selectiveFigure(`${model}: risk–coverage of the one reject`, s.curve, s.operatingPoint, s.targetRisk))
  }
  return figures
}
