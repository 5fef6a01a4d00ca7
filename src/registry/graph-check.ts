// The manifest against the ONNX graph it points to. A manifest that does not match its model
// (3 labels for a 4-class output, a wrong tensor name, 32×32 inputs for a 28×28 graph, a fixed
// batch axis) used to pass readiness and then fail every request with a 500. This is checked
// when the session is created, before warm-up, and a mismatch refuses the model, naming the
// manifest field, what the manifest says and what the graph has. Pure: no ONNX Runtime here.

/** What ONNX Runtime reports for one graph input or output (session.inputMetadata). */
export interface GraphValue {
  name: string
  isTensor: boolean
  type?: string
  /** Numbers are fixed sizes; strings are symbolic (dynamic) dimensions. */
  shape?: ReadonlyArray<number | string>
}

export interface GraphInfo {
  inputs: readonly GraphValue[]
  outputs: readonly GraphValue[]
}

/** The parts of a manifest entry the graph must agree with. */
export interface GraphExpectation {
  inputName: string
  outputName: string
  /** [channels, height, width] */
  sampleShape: readonly [number, number, number]
  labels: number
  /** Outputs that must hold one float32 score per image (output.scores). */
  scoreOutputs?: readonly string[]
  /** The largest batch the service will run (manifest batching, or MAX_BATCH_SIZE below it). */
  maxBatchSize: number
  /** Where that number came from, for the message (default: the manifest's batching.maxBatchSize). */
  maxBatchSizeFrom?: string
}

const fmt = (shape: ReadonlyArray<number | string> | undefined): string =>
  shape === undefined ? '(unknown)' : `[${shape.map((d) => typeof d === 'string' ? `"${d}"` : String(d)).join(', ')}]`

const isFixed = (d: number | string | undefined): d is number => typeof d === 'number' && d >= 0

/**
 * Every way the graph disagrees with the manifest entry, one line each, as
 * "<field>: the manifest says X; the graph has Y" (field relative to the entry, e.g.
 * "input.height"). Empty when they agree.
 */
export function graphMismatches (graph: GraphInfo, want: GraphExpectation): string[] {
  const problems: string[] = []
  const inputs = graph.inputs.map((v) => v.name)
  const outputs = graph.outputs.map((v) => v.name)
  const input = graph.inputs.find((v) => v.name === want.inputName)
  const output = graph.outputs.find((v) => v.name === want.outputName)

  if (input === undefined) {
    problems.push(`input.name: the manifest says "${want.inputName}"; the graph's inputs are ${inputs.map((n) => `"${n}"`).join(', ')}`)
  } else {
    const others = inputs.filter((n) => n !== want.inputName)
    if (others.length > 0) problems.push(`input.name: the graph has other inputs too (${others.map((n) => `"${n}"`).join(', ')}); the service feeds only "${want.inputName}"`)
    if (!input.isTensor || (input.type !== undefined && input.type !== 'float32')) {
      problems.push(`input.name: "${want.inputName}" must be a float32 tensor; the graph has ${input.isTensor ? input.type ?? '?' : 'a non-tensor'}`)
    }
    const shape = input.shape
    if (shape !== undefined && shape.length > 0) {
      if (shape.length !== 4) {
        problems.push(`input.layout: the manifest says NCHW (rank 4); the graph's input has rank ${shape.length}, shape ${fmt(shape)}`)
      } else {
        const batch = shape[0]
        if (isFixed(batch) && !(batch === 1 && want.maxBatchSize === 1)) {
          const from = want.maxBatchSizeFrom ?? 'the manifest\'s batching.maxBatchSize'
          problems.push(`batching.maxBatchSize: batches of up to ${want.maxBatchSize}, from ${from}; the graph's batch axis is fixed at ${batch} (export with a dynamic batch axis${batch === 1 ? ', or set batching.maxBatchSize to 1: models add --max-batch-size 1' : ''})`)
        }
        const fields = ['channels', 'height', 'width'] as const
        fields.forEach((field, k) => {
          const d = shape[k + 1]
          if (isFixed(d) && d !== want.sampleShape[k]) problems.push(`input.${field}: the manifest says ${want.sampleShape[k]}; the graph's input is ${fmt(shape)}`)
        })
      }
    }
  }

  if (output === undefined) {
    problems.push(`output.name: the manifest says "${want.outputName}"; the graph's outputs are ${outputs.map((n) => `"${n}"`).join(', ')}`)
  } else {
    if (!output.isTensor || (output.type !== undefined && output.type !== 'float32')) {
      problems.push(`output.name: "${want.outputName}" must be a float32 tensor; the graph has ${output.isTensor ? output.type ?? '?' : 'a non-tensor'}`)
    }
    const shape = output.shape
    if (shape !== undefined && shape.length > 0) {
      if (shape.length !== 2) {
        problems.push(`output.name: "${want.outputName}" must be [batch, classes]; the graph's is ${fmt(shape)}`)
      } else if (isFixed(shape[1]) && shape[1] !== want.labels) {
        problems.push(`labels: the manifest lists ${want.labels} labels; the graph's output "${want.outputName}" has ${shape[1]} classes, shape ${fmt(shape)}`)
      }
    }
  }
  for (const name of want.scoreOutputs ?? []) {
    const v = graph.outputs.find((o) => o.name === name)
    if (v === undefined) {
      problems.push(`output.scores: the manifest names an output "${name}"; the graph's outputs are ${outputs.map((n) => `"${n}"`).join(', ')}`)
      continue
    }
    if (!v.isTensor || (v.type !== undefined && v.type !== 'float32')) problems.push(`output.scores: "${name}" must be a float32 tensor; the graph has ${v.isTensor ? v.type ?? '?' : 'a non-tensor'}`)
    const shape = v.shape
    if (shape !== undefined && shape.length > 0 && !(shape.length === 1 || (shape.length === 2 && (shape[1] === 1 || !isFixed(shape[1]))))) {
      problems.push(`output.scores: "${name}" must hold one score per image, [batch] or [batch, 1]; the graph's is ${fmt(shape)}`)
    }
  }
  return problems
}
