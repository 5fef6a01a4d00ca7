// A served model's configuration in the shape of Triton's model configuration extension
// (GET /v2/models/{name}/config): what perf_analyzer, Model Analyzer and tritonclient's
// get_model_config read before anything else. It states what the service really accepts:
// max_batch_size is the most samples one request may carry (MAX_FILES); the input is the one
// the model metadata lists, "image", required; and dynamic_batching is the engine's batching of
// concurrent requests. The preprocessed FP32 alternative is named in parameters.request_inputs,
// not listed: perf_analyzer (2.50) refuses a config input the metadata lacks, and fills every
// listed input, optional or not, for --input-data random|zero, so two listed inputs make it send
// both, which is refused (docs/api.md, "Metadata, config and requests").
import type { LoadedModel } from '../../registry/load-manifest.js'
import { IMAGE_INPUT } from './inputs.js'
import type { TensorMetadata } from './outputs.js'

export interface ConfigContext {
  /** Most samples (images or tensors) in one request: MAX_FILES. */
  maxRequestSamples: number
  /** The engine's batching of this model, as in effect (manifest, capped by MAX_BATCH_SIZE). */
  batching: { maxBatchSize: number, maxQueueDelayMs: number }
  workers: number
  provider: 'cpu' | 'cuda'
}

const TRITON_TYPE: Record<string, string> = { FP32: 'TYPE_FP32', INT64: 'TYPE_INT64', BOOL: 'TYPE_BOOL', BYTES: 'TYPE_STRING' }

/** Per-sample dims (the batch dimension left out, as Triton does when max_batch_size > 0). */
function perSample (shape: number[]): { dims: number[], reshape?: { shape: number[] } } {
  const dims = shape.slice(1)
  // One value per sample: Triton writes dims [1] with a reshape to a scalar.
  return dims.length === 0 ? { dims: [1], reshape: { shape: [] } } : { dims }
}

export function tritonModelConfig (model: LoadedModel, outputs: TensorMetadata[], ctx: ConfigContext): object {
  const { input } = model
  return {
    name: model.name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: ctx.maxRequestSamples,
    input: [
      { name: IMAGE_INPUT, data_type: 'TYPE_STRING', format: 'FORMAT_NONE', ...perSample([-1]), optional: false, is_shape_tensor: false, allow_ragged_batch: false }
    ],
    output: outputs.map((o) => ({ name: o.name, data_type: TRITON_TYPE[o.datatype], ...perSample(o.shape), label_filename: '', is_shape_tensor: false })),
    dynamic_batching: {
      preferred_batch_size: [ctx.batching.maxBatchSize],
      max_queue_delay_microseconds: Math.round(ctx.batching.maxQueueDelayMs * 1000),
      preserve_ordering: false
    },
    instance_group: [{ name: model.name, kind: ctx.provider === 'cuda' ? 'KIND_GPU' : 'KIND_CPU', count: ctx.workers }],
    parameters: {
      // Strings, as Triton's parameters are: what a client may want to know beyond Triton's fields.
      request_inputs: { string_value: `exactly one of "${IMAGE_INPUT}" (BYTES [N]: encoded PNG/JPEG/WebP) or "${input.name}" (FP32 [N, ${input.channels}, ${input.height}, ${input.width}], preprocessed)` },
      ood_score_kind: { string_value: model.ood.score },
      ood_calibration: { string_value: model.ood.classThresholds !== undefined ? 'per-class' : 'global' }
    }
  }
}
