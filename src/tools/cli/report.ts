// Evaluation report: the seed paper's table layout (rows = OOD sets, columns = model/score),
// as plain text for the terminal, Markdown and JSON.
import type { OodMetrics } from '../evaluation/metrics.js'

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
  columns: Column[]
  oodSets: Array<{ label: string, spec: string, description: string, n: number, skipped: number }>
  /** results[oodLabel][columnKey] */
  results: Record<string, Record<string, OodMetrics & { rejectRateAtThreshold: number | null }>>
  idRejectRate: Record<string, number | null>
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
    ...Object.keys(r.accuracy).map((m) => `| ${m} | ${r.accuracy[m] === null ? 'no labels' : `${pct(r.accuracy[m])} %`} | ${pct(r.idRejectRate[m])} % |`),
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
  return parts.join('\n')
}

export function textReport (r: Report): string {
  const cols = r.columns.map(columnKey)
  const width = Math.max(12, ...cols.map((c) => c.length)) + 2
  const first = Math.max(10, ...r.oodSets.map((s) => s.label.length)) + 2
  const lines = [
    `ID (positive class): ${r.inDistribution.description}, n = ${r.inDistribution.n}`,
    ...Object.keys(r.accuracy).map((m) => `  ${m}: accuracy ${r.accuracy[m] === null ? 'n/a (no labels)' : `${pct(r.accuracy[m])} %`}, ID reject rate ${pct(r.idRejectRate[m])} %`)
  ]
  for (const metric of METRICS) {
    lines.push('', metric.title, ''.padEnd(first) + cols.map((c) => c.padStart(width)).join(''))
    for (const set of r.oodSets) {
      lines.push(set.label.padEnd(first) + cols.map((c) => pct(r.results[set.label]?.[c]?.[metric.key] as number | null).padStart(width)).join(''))
    }
  }
  return lines.join('\n') + '\n'
}
