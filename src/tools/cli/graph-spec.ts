// What `npm run models -- add` reads off the ONNX graph, and where the graph cannot say
// (a symbolic dimension, several inputs), what it needs from a flag. A flag that contradicts
// a fixed dimension of the graph is refused here, with both numbers, rather than later by the
// graph check in more general words.
import type { GraphValue } from '../../registry/graph-check.js'
import { UsageError } from './args.js'

const quoted = (names: readonly string[]): string => names.map((n) => `"${n}"`).join(', ')
const fmt = (shape: ReadonlyArray<number | string>): string => `[${shape.map((d) => typeof d === 'string' ? `"${d}"` : String(d)).join(', ')}]`

/** The one input or output the service uses: the flag, or the graph's only one. */
export function pickValue (values: readonly GraphValue[], flag: string | undefined, kind: 'input' | 'output', file: string): GraphValue {
  const names = values.map((v) => v.name)
  if (flag !== undefined) {
    const found = values.find((v) => v.name === flag)
    if (found === undefined) throw new UsageError(`--${kind} ${flag}: ${file} has no ${kind} of that name; its ${kind}s are ${quoted(names)}`)
    return found
  }
  if (values.length !== 1) throw new UsageError(`${file} has ${values.length} ${kind}s (${quoted(names)}): name the one to use with --${kind}`)
  return values[0]!
}

export interface SampleShape {
  channels: 1 | 3
  height: number
  width: number
  /** Which of the three came from the graph (the rest from flags). */
  fromGraph: Array<'channels' | 'height' | 'width'>
}

/** Channels, height and width: fixed in the graph, else from --channels/--height/--width. */
export function sampleShape (input: GraphValue, flags: Record<'channels' | 'height' | 'width', string | undefined>, file: string): SampleShape {
  const shape = input.shape ?? []
  if (shape.length !== 4) {
    throw new UsageError(`${file}: input "${input.name}" has shape ${fmt(shape)}; the service feeds NCHW images, [batch, channels, height, width] (rank 4)`)
  }
  const fromGraph: SampleShape['fromGraph'] = []
  const dims = (['channels', 'height', 'width'] as const).map((field, k) => {
    const d = shape[k + 1]
    const flag = flags[field]
    const given = flag === undefined ? undefined : Number(flag)
    if (given !== undefined && !(Number.isInteger(given) && given >= 1 && given <= 4096)) {
      throw new UsageError(`--${field} ${flag}: expected an integer from 1 to 4096`)
    }
    if (typeof d === 'number' && d >= 0) {
      if (given !== undefined && given !== d) throw new UsageError(`--${field} ${given}: the graph's input "${input.name}" is ${fmt(shape)}, ${field} ${d}`)
      fromGraph.push(field)
      return d
    }
    if (given === undefined) {
      throw new UsageError(`${file}: the ${field} of input "${input.name}" is symbolic (${fmt(shape)}): give --${field}`)
    }
    return given
  }) as [number, number, number]
  const [channels, height, width] = dims
  if (channels !== 1 && channels !== 3) throw new UsageError(`${file}: input "${input.name}" has ${channels} channels; the service feeds 1 (grey) or 3 (rgb)`)
  return { channels, height, width, fromGraph }
}

/**
 * --mean / --std (or the metadata file's values, `source` names which): one value for every
 * channel, or one per channel, separated by commas or spaces.
 */
export function perChannel (text: string, flag: 'mean' | 'std', channels: number, source = `--${flag}`): number[] {
  const parts = text.trim().split(/\s*,\s*|\s+/)
  const values = parts.map((s) => s === '' ? NaN : Number(s))
  if (values.some((v) => !Number.isFinite(v) || (flag === 'std' && v <= 0))) {
    throw new UsageError(`${source} ${text}: expected ${flag === 'std' ? 'positive ' : ''}numbers separated by commas or spaces`)
  }
  if (values.length === 1) return new Array<number>(channels).fill(values[0]!)
  if (values.length !== channels) {
    throw new UsageError(`${source} ${text}: ${values.length} values for ${channels} channel${channels === 1 ? '' : 's'}; give 1${channels > 1 ? ` or ${channels}` : ''}`)
  }
  return values
}

/** The output must be [batch, classes]; a fixed class count must equal the label count. */
export function checkOutputWidth (output: GraphValue, labels: number, file: string): void {
  const shape = output.shape
  if (shape === undefined || shape.length === 0) return
  if (shape.length !== 2) throw new UsageError(`${file}: output "${output.name}" has shape ${fmt(shape)}; the service reads [batch, classes]`)
  const classes = shape[1]
  if (typeof classes === 'number' && classes >= 0 && classes !== labels) {
    throw new UsageError(`--labels: ${labels} labels, but ${file}'s output "${output.name}" has ${classes} classes (shape ${fmt(shape)})`)
  }
}
