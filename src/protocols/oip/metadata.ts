// Server and model metadata of the Open Inference Protocol, the same over HTTP and gRPC.
import type { LoadedModel } from '../../registry/load-manifest.js'
import { PACKAGE_VERSION } from '../../version.js'
import { IMAGE_INPUT } from './inputs.js'
import { modelOutputs, type TensorMetadata } from './outputs.js'

export interface ServerMetadata {
  name: string
  version: string
  extensions: string[]
}

export interface ModelMetadata {
  name: string
  versions: string[]
  platform: string
  inputs: Array<{ name: string, datatype: string, shape: number[] }>
  outputs: TensorMetadata[]
}

/** `repository`: the model repository extension is served (ADMIN_TOKEN set). */
export function serverMetadata (repository: boolean): ServerMetadata {
  return {
    name: 'isomax-serve',
    version: PACKAGE_VERSION,
    extensions: ['binary_tensor_data', 'classification', 'model_configuration', 'statistics', ...(repository ? ['model_repository'] : [])]
  }
}

export function modelMetadata (model: LoadedModel): ModelMetadata {
  return {
    name: model.name,
    versions: [model.version],
    platform: 'onnx_onnxv1',
    // The one input a request requires, as OIP defines `inputs` (docs/api.md, "Metadata,
    // config and requests"): listing the FP32 alternative too makes clients that fill every
    // listed input (perf_analyzer --input-data random|zero) send both, which is refused.
    inputs: [{ name: IMAGE_INPUT, datatype: 'BYTES', shape: [-1, 1] }],
    outputs: modelOutputs(model)
  }
}
