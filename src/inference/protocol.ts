// Messages between the main thread and inference workers. Tensors travel as transferred
// ArrayBuffers (no copy); everything else is small.
export type Provider = 'cpu' | 'cuda'
export type ProviderRequest = Provider | 'auto'

export interface WorkerModelSpec {
  name: string
  onnxPath: string
  inputName: string
  outputName: string
  /** [channels, height, width] of one sample. */
  sampleShape: [number, number, number]
  /** Batch sizes to run once at start, so the first real requests pay no warm-up cost. */
  warmupBatchSizes: number[]
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
  | { type: 'run', id: number, model: string, batch: number, data: ArrayBuffer }
  | { type: 'close' }

export type FromWorker =
  | { type: 'ready', providers: Record<string, Provider>, warnings: string[] }
  | { type: 'init-error', message: string, provider: ProviderRequest, providerFailed: boolean, manifest?: boolean }
  | { type: 'result', id: number, logits: ArrayBuffer, classes: number, inferenceMs: number }
  | { type: 'run-error', id: number, message: string }
  | { type: 'closed' }
