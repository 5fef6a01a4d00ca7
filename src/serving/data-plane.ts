// The data plane (KServe's word for it): the one path a prediction takes, whatever protocol
// brought the request — admission, preprocessing, batching, inference, scores, decision,
// observation. Protocols (src/protocols/*) are codecs over it: they turn a request into
// samples and predictions into a response, and decide nothing about OOD themselves.
//
// A request is served entirely by the generation of models current when it starts (its entry,
// threshold, version and session), whatever reload happens meanwhile: serve() holds that
// generation until the protocol's function is done.
import type { Engine } from '../inference/engine.js'
import { decide, type Decision, type OodResult, type RejectReason } from '../ood/decision.js'
import { graphScoresOf } from '../ood/scores.js'
import { preprocess, type PreprocessLimits } from '../preprocess/preprocess.js'
import type { LoadedModel } from '../registry/load-manifest.js'
import { requestTimes, type PredictionTimes } from './model-stats.js'
import { servedModel } from './served-model.js'

/** What a protocol hands over: encoded images, or preprocessed tensors ([count, C, H, W], row-major). */
export type Samples =
  | { kind: 'images', images: Array<{ data: Buffer, what: string }> }
  | { kind: 'tensors', data: Float32Array, count: number }

export interface Prediction {
  logits: Float32Array
  decision: Decision
  /** The tensor the model saw (preprocessed image, or the sample as sent). */
  input: Float32Array
  batchSize: number
  /** Milliseconds: decoding and preprocessing, waiting in the batch queue, the batch's inference. */
  timings: { decode: number, queue: number, inference: number }
}

export interface PredictOptions {
  /** How many classes the decision ranks (top-k). */
  topK: number
}

export interface ServedModel {
  model: LoadedModel
  /** Predict every sample, in order; one failure fails the call. */
  predict: (samples: Samples, options: PredictOptions) => Promise<Prediction[]>
}

/** Who watches predictions: the metrics and the statistics extension (plugins/data-plane.ts). */
export interface PredictionObserver {
  /** Each sample (image) predicted. */
  onPrediction: (model: string, prediction: { ood: OodResult, rejectReasons: readonly RejectReason[], times: PredictionTimes }) => void
  /** Each request (one predict() call) whose samples were all predicted: its count and times. */
  onRequest: (model: string, request: { samples: number, times: PredictionTimes }) => void
  /** A request that failed once admitted (bad image, overload, deadline, a non-finite output). */
  onFailure: (model: string, totalMs: number) => void
}

export interface DataPlaneOptions {
  limits: PreprocessLimits
  /** The longest a sample may wait in the queue or for decoding memory. */
  requestTimeoutMs: number
}

export class DataPlane {
  constructor (private readonly engine: Engine, private readonly options: DataPlaneOptions, private readonly observer: PredictionObserver) {}

  /**
   * Serve one request: `name` (the default model when undefined; at `version` when given) on
   * the generation current now, or a 404. `fn` decodes the request against the model, predicts
   * and encodes the answer; the generation is held until it returns.
   */
  async serve<T> (name: string | undefined, version: string | undefined, fn: (served: ServedModel) => Promise<T>): Promise<T> {
    return await this.engine.use(async (generation) => {
      const model = servedModel(generation, name ?? generation.manifest.defaultModel, version)
      const batcher = generation.batcher(model.name)
      const { limits, requestTimeoutMs } = this.options
      const sampleSize = model.input.channels * model.input.height * model.input.width

      const one = async (sample: { data: Buffer, what: string } | Float32Array, what: string, topK: number, times: PredictionTimes[]): Promise<Prediction> => {
        const started = performance.now()
        let decodeMs = 0
        let input: Float32Array
        const run = sample instanceof Float32Array
          ? await batcher.submit((input = sample), requestTimeoutMs)
          // Admission first: an overloaded model answers 503 before any image is decoded.
          : await batcher.prepareAndSubmit(async () => {
            const t0 = performance.now()
            input = (await preprocess(sample.data, model.input, limits, sample.what)).tensor
            decodeMs = performance.now() - t0
            return input
          }, requestTimeoutMs)
        const t1 = performance.now()
        const decision = decide(model, run.logits, topK, graphScoresOf(model.output, run.scores), what)
        const now = performance.now()
        const sampleTimes = { totalMs: now - started, queueMs: run.queueMs, inputMs: decodeMs, inferMs: run.inferenceMs, outputMs: now - t1 }
        times.push(sampleTimes)
        this.observer.onPrediction(model.name, { ood: decision.ood, rejectReasons: decision.rejectReasons, times: sampleTimes })
        return { logits: run.logits, decision, input: input!, batchSize: run.batchSize, timings: { decode: decodeMs, queue: run.queueMs, inference: run.inferenceMs } }
      }

      // Statistics per request, as Triton counts them (success, fail and each stage once per
      // request; inference_count per sample), whatever number of samples it carries.
      const predict = async (samples: Samples, { topK }: PredictOptions): Promise<Prediction[]> => {
        const started = performance.now()
        const times: PredictionTimes[] = []
        try {
          const predictions = samples.kind === 'images'
            ? await Promise.all(samples.images.map(async (img) => await one(img, img.what, topK, times)))
            : await Promise.all(Array.from({ length: samples.count }, async (_, i) =>
              await one(samples.data.subarray(i * sampleSize, (i + 1) * sampleSize), `sample ${i}`, topK, times)))
          this.observer.onRequest(model.name, { samples: predictions.length, times: requestTimes(performance.now() - started, times) })
          return predictions
        } catch (err) {
          this.observer.onFailure(model.name, performance.now() - started)
          throw err
        }
      }
      return await fn({ model, predict })
    })
  }
}
