// The evaluation's pictures, as vega-lite specifications rendered to SVG in Node (no hand-drawn
// paths): ROC curves, in- against out-of-distribution score histograms with the threshold,
// and risk–coverage curves. The data comes in already reduced (thinned curves, binned
// histograms), so an SVG stays small whatever the number of images.
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'

async function svg (spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' })
  return await view.toSVG()
}

/** One ROC curve per OOD set, for one model and score. */
export async function rocFigure (title: string, curves: Array<{ set: string, auroc: number, points: Array<{ fpr: number, tpr: number }> }>): Promise<string> {
  const values = curves.flatMap((c) => c.points.map((p) => ({ ...p, set: `${c.set} (AUROC ${(100 * c.auroc).toFixed(1)} %)` })))
  return await svg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle: 'ID images accepted (true-positive rate) against OOD images accepted (false-positive rate)' },
    width: 360,
    height: 360,
    layer: [
      {
        data: { values },
        mark: { type: 'line', strokeWidth: 2, interpolate: 'step-after' },
        encoding: {
          x: { field: 'fpr', type: 'quantitative', title: 'OOD images accepted', axis: { format: '%' }, scale: { domain: [0, 1] } },
          y: { field: 'tpr', type: 'quantitative', title: 'ID images accepted', axis: { format: '%' }, scale: { domain: [0, 1] } },
          color: { field: 'set', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2, labelLimit: 300 } },
          order: { field: 'fpr' }
        }
      },
      {
        data: { values: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
        mark: { type: 'line', color: 'lightgray', strokeDash: [4, 4] },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } }
      }
    ]
  })
}

export interface HistogramPanel {
  set: string
  id: Array<{ x0: number, x1: number, share: number }>
  ood: Array<{ x0: number, x1: number, share: number }>
}

/** Per OOD set, the ID and OOD score histograms overlaid, with the manifest threshold. */
export async function histogramFigure (title: string, score: string, threshold: number, panels: HistogramPanel[]): Promise<string> {
  const bins = panels[0]?.id ?? []
  const domain = [bins[0]?.x0 ?? 0, bins[bins.length - 1]?.x1 ?? 1]
  const values = panels.flatMap((p) => [
    ...p.id.map((b) => ({ ...b, panel: p.set, series: 'in-distribution' })),
    ...p.ood.map((b) => ({ ...b, panel: p.set, series: 'out-of-distribution' }))
  ])
  return await svg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle: `${score} score; the service rejects left of the line (threshold ${threshold.toPrecision(4)})` },
    data: { values },
    facet: { row: { field: 'panel', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left', labelLimit: 220 } } },
    spec: {
      width: 520,
      height: 90,
      layer: [
        {
          mark: { type: 'rect', opacity: 0.55 },
          encoding: {
            x: { field: 'x0', type: 'quantitative', title: `${score} score (higher = more in-distribution)`, scale: { domain, zero: false, nice: false } },
            x2: { field: 'x1' },
            y: { field: 'share', type: 'quantitative', title: 'share', axis: { format: '%', tickCount: 3 } },
            color: { field: 'series', type: 'nominal', title: null, scale: { range: ['#4c78a8', '#e45756'] }, legend: { orient: 'bottom' } }
          }
        },
        { mark: { type: 'rule', color: 'black', strokeWidth: 1.5 }, encoding: { x: { datum: threshold } } }
      ]
    },
    resolve: { scale: { y: 'independent' } }
  })
}

/** Selective classification: error rate among the accepted against the share accepted. */
export async function riskCoverageFigure (title: string, curves: Array<{ model: string, aurc: number, points: Array<{ coverage: number, risk: number }> }>): Promise<string> {
  const values = curves.flatMap((c) => c.points.map((p) => ({ ...p, model: `${c.model} (AURC ${(100 * c.aurc).toFixed(2)} %)` })))
  return await svg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle: 'accept the highest-scoring images first; risk = error rate among the accepted' },
    width: 420,
    height: 280,
    data: { values },
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: { field: 'coverage', type: 'quantitative', title: 'coverage (share of ID images accepted)', axis: { format: '%' }, scale: { domain: [0, 1] } },
      y: { field: 'risk', type: 'quantitative', title: 'risk (error rate among the accepted)', axis: { format: '%' } },
      color: { field: 'model', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 1, labelLimit: 400 } }
    }
  })
}

/**
 * The one reject's risk–coverage: the confidence threshold varied among the images the OOD rule
 * accepts, with the target (a horizontal line) and the served operating point.
 */
export async function selectiveFigure (title: string, curve: Array<{ coverage: number, risk: number }>, point: { coverage: number, risk: number }, target: number | null): Promise<string> {
  const op = `operating point: coverage ${(100 * point.coverage).toFixed(1)} %, risk ${(100 * point.risk).toFixed(2)} %`
  return await svg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle: 'OOD rule fixed, confidence threshold varied; risk = error rate among the accepted labelled images' },
    width: 420,
    height: 280,
    layer: [
      {
        data: { values: curve },
        mark: { type: 'line', strokeWidth: 2, color: '#4c78a8' },
        encoding: {
          x: { field: 'coverage', type: 'quantitative', title: 'coverage (share of ID images accepted by both rules)', axis: { format: '%' }, scale: { domain: [0, 1] } },
          y: { field: 'risk', type: 'quantitative', title: 'risk (error rate among the accepted)', axis: { format: '%' } }
        }
      },
      ...(target !== null
        ? [{
            data: { values: [{ y: target, what: `target ${(100 * target).toFixed(1)} %` }] },
            mark: { type: 'rule' as const, strokeDash: [4, 4], color: 'gray' },
            encoding: { y: { field: 'y', type: 'quantitative' as const } }
          }]
        : []),
      {
        data: { values: [{ ...point, what: op }] },
        mark: { type: 'point', filled: true, size: 90, color: '#e45756' },
        encoding: {
          x: { field: 'coverage', type: 'quantitative' },
          y: { field: 'risk', type: 'quantitative' },
          shape: { field: 'what', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 400 } }
        }
      }
    ]
  })
}
