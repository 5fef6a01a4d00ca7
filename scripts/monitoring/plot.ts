// The drift alert as people see it: the reject rate over time against the calibrated rate,
// with the phases of the run and when the alert fired and resolved, drawn with vega-lite and
// rendered to SVG in Node (no hand-drawn paths).
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'

export interface Timeline {
  /** Seconds since the start of the run, and the value of each series at that time. */
  points: Array<{ t: number, series: string, value: number }>
  /** Vertical rules: phase switches and alert transitions. */
  marks: Array<{ t: number, label: string }>
  calibratedRate: number
}

export async function driftFigure (tl: Timeline, title: string): Promise<string> {
  const end = Math.ceil(Math.max(...tl.points.map((p) => p.t), ...tl.marks.map((m) => m.t)))
  // Labels of marks close together go on alternate rows, so they never overprint.
  const marks = tl.marks.map((m, i) => ({ ...m, y: i % 2 === 0 ? 0.98 : 0.7 }))
  const x = { field: 't', type: 'quantitative' as const, title: 'seconds since the start', scale: { domain: [0, end], nice: false } }
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle: `dashed: the model's calibrated reject rate, ${(tl.calibratedRate * 100).toFixed(1)} %; grey: phase switches and alert transitions` },
    width: 640,
    height: 260,
    layer: [
      {
        data: { values: tl.points },
        mark: { type: 'line', strokeWidth: 2 },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'share of images', axis: { format: '%' }, scale: { domain: [0, 1] } },
          color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 400 } },
          strokeDash: { field: 'series', type: 'nominal' }
        }
      },
      {
        data: { values: [{ y: tl.calibratedRate }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: 'black' },
        encoding: { y: { field: 'y', type: 'quantitative' } }
      },
      {
        data: { values: marks },
        mark: { type: 'rule', color: 'gray' },
        encoding: { x }
      },
      {
        data: { values: marks },
        mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, fontSize: 11 },
        encoding: { x, y: { field: 'y', type: 'quantitative' }, text: { field: 'label' } }
      }
    ]
  }
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' })
  return await view.toSVG()
}
