// A user's ONNX file as ONNX Runtime sees it, for `npm run models -- add`: the graph's inputs
// and outputs (the same metadata the service's graph check reads when it loads a model), and
// one trial run on zeros. The trial run is what catches a class axis the graph leaves
// symbolic: the exporter's shape inference can get it wrong, and only a real output says how
// many classes there are.
import ort from 'onnxruntime-node'
import type { GraphInfo } from '../../registry/graph-check.js'
import { UsageError } from './args.js'

export interface OnnxGraph extends GraphInfo {
  /** Run the graph once on a zero batch; the output's dimensions. */
  trialRun: (inputName: string, outputName: string, shape: readonly [number, number, number, number]) => Promise<readonly number[]>
  close: () => Promise<void>
}

// ORT's native logger would print its own lines for a file it cannot parse; the exception
// carries the same reason, reported once in our message.
ort.env.logLevel = 'fatal'

export async function openOnnx (file: string, what = file): Promise<OnnxGraph> {
  let session: ort.InferenceSession
  try {
    session = await ort.InferenceSession.create(file, { logSeverityLevel: 3, graphOptimizationLevel: 'basic' })
  } catch (err) {
    const reason = ((err as Error).message.split('\n')[0] ?? '').replace(/^.*failed:\s*/, '')
    throw new UsageError(`${what}: not an ONNX model ONNX Runtime can load (${reason})`)
  }
  return {
    inputs: session.inputMetadata,
    outputs: session.outputMetadata,
    async trialRun (inputName, outputName, shape) {
      const input = new ort.Tensor('float32', new Float32Array(shape[0] * shape[1] * shape[2] * shape[3]), [...shape])
      try {
        const out = (await session.run({ [inputName]: input }))[outputName]
        if (out === undefined) throw new Error(`no output named "${outputName}"`)
        return out.dims
      } catch (err) {
        throw new UsageError(`${what}: a trial run on a zero batch of shape [${shape.join(', ')}] failed: ${(err as Error).message.split('\n')[0]}`)
      } finally {
        input.dispose()
      }
    },
    async close () { await session.release() }
  }
}
