// Messages between the main thread and inference workers. Tensors travel as transferred
// ArrayBuffers (no copy); everything else is small. Sessions are keyed by a session key
// (session-key.ts), not by model name: a reload that keeps a model's ONNX file and shapes keeps
// its session, and two generations of one model can be loaded side by side during a swap.
export type Provider = 'cpu' | 'cuda'
export type ProviderRequest = Provider | 'auto'

export interface WorkerModelSpec {
  /** The session key: what identifies this session in every message. */
  key: string
  /** The model's name, for messages. */
  name: string
  onnxPath: string
  /** The manifest's sha256 of the file: a worker creates a session only from bytes that have it. */
  sha256: string
  inputName: string
  outputName: string
  /** [channels, height, width] of one sample. */
  sampleShape: [number, number, number]
  /** Batch sizes to run once when loaded, so the first real requests pay no warm-up cost. */
  warmupBatchSizes: number[]
  /** Where the largest of them came from (model-specs.ts maxBatchSizeSource), for the graph check's message. */
  maxBatchSizeFrom?: string
  /** Graph outputs holding one score per image (output.scores), returned with the logits. */
  scoreOutputs: string[]
  /** How many labels the manifest lists: the output width the graph must have. */
  labels: number
  /** "<manifest file>: models[i] (model "name")", the prefix of a field-naming message. */
  where: string
}

export interface WorkerInit {
  models: WorkerModelSpec[]
  provider: ProviderRequest
  intraOpThreads: number
}

export type ToWorker =
  | { type: 'run', id: number, key: string, batch: number, data: ArrayBuffer }
  | { type: 'load', id: number, models: WorkerModelSpec[] }
  | { type: 'unload', keys: string[] }
  | { type: 'close' }

/** Why loading failed: the manifest disagrees with the graph, CUDA is unusable, or ORT failed. */
export interface LoadFailure {
  message: string
  provider: ProviderRequest
  providerFailed: boolean
  manifest: boolean
}

export type FromWorker =
  | { type: 'ready', providers: Record<string, Provider>, warnings: string[] }
  | ({ type: 'init-error' } & LoadFailure)
  | { type: 'loaded', id: number, providers: Record<string, Provider>, warnings: string[] }
  | ({ type: 'load-error', id: number } & LoadFailure)
  | { type: 'result', id: number, logits: ArrayBuffer, classes: number, scores?: ArrayBuffer, inferenceMs: number }
  | { type: 'run-error', id: number, message: string }
  | { type: 'closed' }
