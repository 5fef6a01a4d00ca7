// Evaluation report: the seed paper's table layout (rows = OOD sets, columns = model/score),
// as plain text for the terminal, Markdown and JSON.
import type { IdAnalysis } from '../evaluation/id-analysis.js'
import type { OodMetrics } from '../evaluation/metrics.js'
import type { SelectiveReport } from '../evaluation/selective-report.js'

export interface Column {
  model: string
  version: string
  score: string
  /** The manifest's decision score for this model (reject rate applies only then). */
  isManifestScore: boolean
  threshold: number
}

export interface Report {
  generatedAt: string
  command: string
  positiveClass: string
  inDistribution: { spec: string, description: string, n: number, skipped: number }
  accuracy: Record<string, number | null>
  /** Per model: the ID images the accuracy is computed on, and the class folders that match none of its labels (→ image count). */
  labelled: Record<string, { n: number, unmatchedFolders: Record<string, number> }>
  columns: Column[]
  oodSets: Array<{ label: string, spec: string, description: string, n: number, skipped: number }>
  /** results[oodLabel][columnKey] */
  results: Record<string, Record<string, OodMetrics & { rejectRateAtThreshold: number | null }>>
  idRejectRate: Record<string, number | null>
  /** Per model, at its manifest score and threshold, on the ID set. */
  idAnalysis: Record<string, IdAnalysis>
  /** Per model: the one reject (OOD and uncertain) as served — coverage, realized risk, OOD sets rejected by reason. */
  selective: Record<string, SelectiveReport>
  /** With --url: the server whose answers these are. */
  servedBy?: string
  /** With --figures: the SVGs, relative to the report. */
  figures: Array<{ title: string, file: string }>
}

export const columnKey = (c: Pick<Column, 'model' | 'score'>): string => `${c.model}/${c.score}`

const METRICS: Array<{ key: keyof OodMetrics | 'rejectRateAtThreshold', title: string }> = [
  { key: 'tnrAt95Tpr', title: 'TNR at 95 % TPR (%)' },
  { key: 'auroc', title: 'AUROC (%)' },
  { key: 'detectionAccuracy', title: 'Detection accuracy (%)' },
  { key: 'auprIn', title: 'AUPR-In (%)' },
  { key: 'auprOut', title: 'AUPR-Out (%)' },
  { key: 'rejectRateAtThreshold', title: 'Reject rate at the manifest threshold (%)' }
]

const pct = (v: number | null | undefined): string => v === null || v === undefined ? '—' : (100 * v).toFixed(1)

export function markdownReport (r: Report): string {
  const cols = r.columns.map(columnKey)
  const header = `| OOD set | ${cols.join(' | ')} |`
  const sep = `|---|${cols.map(() => '---:').join('|')}|`
  const parts = [
    '# OOD detection report',
    '',
    `In-distribution (**positive class**): ${r.inDistribution.description} — ${r.inDistribution.n} images` +
      (r.inDistribution.skipped > 0 ? ` (${r.inDistribution.skipped} unreadable, skipped)` : '') + '.',
    'Higher score = more in-distribution; the service rejects when score < threshold.',
    '',
    '```sh',
    r.command,
    '```',
    '',
    '| model | classification accuracy on the ID set | ID reject rate at the manifest threshold |',
    '|---|---:|---:|',
    ...Object.keys(r.accuracy).map((m) => `| ${m} | ${r.accuracy[m] === null ? 'no labels' : `${pct(r.accuracy[m])} %`}${onWhat(r, m)} | ${pct(r.idRejectRate[m])} % |`),
    ''
  ]
  for (const metric of METRICS) {
    parts.push(`### ${metric.title}`, '', header, sep)
    for (const set of r.oodSets) {
      parts.push(`| ${set.label} | ${cols.map((c) => pct(r.results[set.label]?.[c]?.[metric.key] as number | null)).join(' | ')} |`)
    }
    parts.push('')
  }
  parts.push('OOD sets:', '', ...r.oodSets.map((s) => `- **${s.label}** (${s.spec}): ${s.description}, ${s.n} images`), '')
  parts.push(...idSections(r), ...selectiveSections(r))
  if (r.figures.length > 0) parts.push('## Figures', '', ...r.figures.map((f) => `- [${f.title}](${f.file})`), '')
  return parts.join('\n')
}

const num = (v: number | null | undefined, digits = 4): string => v === null || v === undefined ? '—' : v.toFixed(digits)

/** The in-distribution analysis: probabilities, selective classification, per-class rejects. */
function idSections (r: Report): string[] {
  const models = Object.keys(r.idAnalysis)
  if (models.length === 0) return []
  const parts = [
    '## Probabilities: expected calibration error (15 bins) on the ID set',
    '',
    '| model | ECE of softmax(logits) | temperature (manifest) | ECE of softmax(logits / T) |',
    '|---|---:|---:|---:|',
    ...models.map((m) => {
      const e = r.idAnalysis[m]!.ece
      return `| ${m} | ${num(e?.atT1)} | ${e?.temperature == null ? 'none' : e.temperature.toPrecision(4)} | ${num(e?.atTemperature)} |`
    }),
    '',
    '## Selective classification at the manifest threshold',
    '',
    '| model | accepted | accuracy of the accepted | rejected | accuracy of the rejected | AURC (%) |',
    '|---|---:|---:|---:|---:|---:|',
    ...models.map((m) => {
      const s = r.idAnalysis[m]!.selective
      return s === null
        ? `| ${m} | no labels | | | | |`
        : `| ${m} | ${s.accepted.n} | ${pct(s.accepted.accuracy)} % | ${s.rejected.n} | ${pct(s.rejected.accuracy)} % | ${(100 * s.riskCoverage.aurc).toFixed(2)} |`
    }),
    '',
    'AURC: the area under the risk–coverage curve (error rate among the accepted against the share',
    'accepted, highest scores first); lower is better.',
    ''
  ]
  for (const m of models) {
    const p = r.idAnalysis[m]!.perClassReject
    parts.push(`### ${m}: reject rate (%) of the ID images predicted as each class`, '',
      `| | ${p.labels.join(' | ')} |`,
      `|---|${p.n.map(() => '---:').join('|')}|`,
      `| images | ${p.n.join(' | ')} |`,
      `| global threshold | ${p.global.map((v) => pct(v)).join(' | ')} |`,
      ...(p.perClass !== null ? [`| per-class thresholds | ${p.perClass.map((v) => pct(v)).join(' | ')} |`] : []),
      '')
  }
  return parts
}

const pct2 = (v: number | null | undefined): string => v === null || v === undefined ? '—' : (100 * v).toFixed(2)

/** The one reject as served: coverage and realized risk against the target; OOD sets by reason. */
function selectiveSections (r: Report): string[] {
  const models = Object.keys(r.selective ?? {})
  if (models.length === 0) return []
  const parts = [
    `## The one reject (ood or uncertain)${r.servedBy !== undefined ? `, as served by ${r.servedBy}` : ''}`,
    '',
    'Accepted = neither reason fired. Risk = error rate among the accepted labelled ID images; the',
    'margin is the one-sided 95 % binomial sampling margin of that figure at the target',
    '(1.645 · √(target · (1 − target) / accepted)): a realized risk ≤ target + margin is what the bound',
    'predicts for a test set of this size.',
    '',
    '| model | target risk (δ) | confidence threshold | coverage (%) | realized risk (%) | margin (pt) | ≤ target + margin | ID rejected: ood / uncertain / both (%) |',
    '|---|---:|---:|---:|---:|---:|:---:|---:|',
    ...models.map((m) => {
      const s = r.selective[m]!
      return `| ${m} | ${s.targetRisk === null ? 'none' : `${pct2(s.targetRisk)} % (${s.delta ?? ''})`} | ${s.threshold === null ? 'none' : s.threshold.toPrecision(4)} | ${pct2(s.id.coverage)} | ${pct2(s.id.risk)} (${s.id.errors} of ${s.id.accepted}) | ${pct2(s.id.margin)} | ${s.id.withinMargin === null ? '—' : s.id.withinMargin ? 'yes' : 'NO'} | ${pct2(s.id.ood)} / ${pct2(s.id.uncertain)} / ${pct2(s.id.both)} |`
    }),
    ''
  ]
  for (const m of models) {
    const s = r.selective[m]!
    parts.push(`### ${m}: OOD sets rejected, and by which reason (%)`, '',
      '| OOD set | rejected | ood | uncertain | both | ood alone | uncertain alone |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...s.ood.map((o) => `| ${o.set} | ${pct2(o.rejected)} | ${pct2(o.ood)} | ${pct2(o.uncertain)} | ${pct2(o.both)} | ${pct2(o.oodOnly)} | ${pct2(o.uncertainOnly)} |`),
      '')
  }
  return parts
}

/** When the accuracy is on a subset: on how many images, and which class folders matched no label. */
function onWhat (r: Report, m: string): string {
  const l = r.labelled[m]
  if (l === undefined || l.n === r.inDistribution.n) return ''
  const folders = Object.entries(l.unmatchedFolders)
  const images = folders.reduce((sum, [, n]) => sum + n, 0)
  return ` on ${l.n} of ${r.inDistribution.n} images` + (folders.length > 0 ? ` (${images} in ${folders.length} class folder${folders.length === 1 ? '' : 's'} matching no label: ${folders.map(([f]) => `${f}/`).join(', ')})` : '')
}

export function textReport (r: Report): string {
  const cols = r.columns.map(columnKey)
  const width = Math.max(12, ...cols.map((c) => c.length)) + 2
  const first = Math.max(10, ...r.oodSets.map((s) => s.label.length)) + 2
  const lines = [
    `ID (positive class): ${r.inDistribution.description}, n = ${r.inDistribution.n}`,
    ...Object.keys(r.accuracy).map((m) => `  ${m}: accuracy ${r.accuracy[m] === null ? 'n/a (no labels)' : `${pct(r.accuracy[m])} %`}${onWhat(r, m)}, ID reject rate ${pct(r.idRejectRate[m])} %`)
  ]
  for (const metric of METRICS) {
    lines.push('', metric.title, ''.padEnd(first) + cols.map((c) => c.padStart(width)).join(''))
    for (const set of r.oodSets) {
      lines.push(set.label.padEnd(first) + cols.map((c) => pct(r.results[set.label]?.[c]?.[metric.key] as number | null).padStart(width)).join(''))
    }
  }
  for (const [m, s] of Object.entries(r.selective ?? {})) {
    lines.push('', `${m}: the one reject${r.servedBy !== undefined ? ` (served by ${r.servedBy})` : ''}`,
      `  coverage ${pct2(s.id.coverage)} %, realized risk ${pct2(s.id.risk)} % (${s.id.errors} of ${s.id.accepted})` +
        (s.targetRisk !== null ? ` — target ${pct2(s.targetRisk)} % at δ ${s.delta ?? ''}, sampling margin ${pct2(s.id.margin)} pt: ${s.id.withinMargin === true ? 'within' : 'OUTSIDE'}` : ' — no confidence threshold'),
      ...s.ood.map((o) => `  ${o.set}: rejected ${pct2(o.rejected)} % (ood ${pct2(o.ood)}, uncertain ${pct2(o.uncertain)}, both ${pct2(o.both)})`))
  }
  for (const [m, a] of Object.entries(r.idAnalysis)) {
    const e = a.ece
    const s = a.selective
    lines.push('', `${m} on the ID set:`,
      `  ECE (15 bins) ${num(e?.atT1)} at T = 1` + (e?.temperature != null ? `, ${num(e.atTemperature)} at the manifest's T = ${e.temperature.toPrecision(4)}` : ''),
      s === null ? '  selective classification: no labels' : `  accepted ${s.accepted.n} at ${pct(s.accepted.accuracy)} % accuracy, rejected ${s.rejected.n} at ${pct(s.rejected.accuracy)} %, AURC ${(100 * s.riskCoverage.aurc).toFixed(2)} %`,
      `  reject rate by predicted class, global threshold: ${a.perClassReject.global.map((v) => pct(v)).join(' ')}`,
      ...(a.perClassReject.perClass !== null ? [`  reject rate by predicted class, per-class thresholds: ${a.perClassReject.perClass.map((v) => pct(v)).join(' ')}`] : []))
  }
  return lines.join('\n') + '\n'
}
