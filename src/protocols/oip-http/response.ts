// An Open Inference Protocol inference response over HTTP: the output tensors
// (protocols/oip/outputs.ts) as JSON `data`, or as binary data after the JSON
// (binary_data / binary_data_output, Triton's binary tensor data extension).
import type { LoadedModel } from '../../registry/load-manifest.js'
import { encodeTensor, outputTensors, responseParameters, type Classified, type RequestedOutput } from '../oip/outputs.js'

export interface OipResponse {
  /** The JSON part. */
  json: Record<string, unknown>
  /** Binary output data, in output order; empty when every output is in JSON. */
  binary: Buffer[]
}

export function inferResponse (model: LoadedModel, rows: Classified[], requested: RequestedOutput[] | undefined, params: { id?: string | undefined, binaryOutput?: unknown }): OipResponse {
  const outputs: Array<Record<string, unknown>> = []
  const binary: Buffer[] = []
  for (const tensor of outputTensors(model, rows, requested, params.binaryOutput === true)) {
    if (tensor.binary) {
      const data = encodeTensor(tensor)
      binary.push(data)
      outputs.push({ name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, parameters: { binary_data_size: data.length } })
    } else {
      outputs.push({ name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, data: tensor.values })
    }
  }
  const json: Record<string, unknown> = {
    model_name: model.name,
    model_version: model.version,
    ...(params.id !== undefined ? { id: params.id } : {}),
    parameters: responseParameters(model),
    outputs
  }
  return { json, binary }
}
