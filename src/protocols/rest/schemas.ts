// Zod schemas of every request and response: they validate, serialise, type the handlers and
// generate openapi/openapi.json, so the document cannot drift from the routes.
import { z } from 'zod'
import { SCORE_KINDS } from '../../registry/manifest-schema.js'
import { CLASSIFY_EXAMPLE } from './classify-example.js'

export const ErrorSchema = z.object({
  error: z.object({
    code: z.string().describe('Stable machine-readable code, e.g. ISOMAX_INVALID_IMAGE'),
    message: z.string().describe('What was wrong, for a human')
  })
}).meta({ id: 'Error' })

// Strict: a whole number in decimal digits. Number() would also take "1e1", "0x5" and "3.0",
// which a user who typed them almost certainly did not mean as 10, 5 and 3.
/** The Open Inference Protocol's error body, which /v2 routes answer (Triton's clients read it). */
/** What topK may be, in every message that refuses one. */
export const TOPK_RULE = 'must be a whole number in decimal digits (like 3), from 1 to the number of classes of the model (1000 at most)'

export const ClassifyQuerySchema = z.object({
  // No default here: the default depends on the model (routes/classify.ts topKFor).
  topK: z.string()
    .regex(/^(1000|[1-9][0-9]{0,2})$/, TOPK_RULE)
    .transform(Number)
    .pipe(z.number().int().min(1).max(1000))
    .optional()
    .describe('How many classes to list in topK: a whole number in decimal digits, from 1 to the number of classes of the model (1000 at most). Default 3, or every class of a model with fewer'),
  include: z.string()
    .regex(/^(logits|input)(,(logits|input))*$/, 'a comma-separated list of: logits, input')
    .transform((v) => [...new Set(v.split(','))])
    .default([])
    .describe('Extra fields to add to each result, comma-separated: `logits` = the model\'s raw output row (negative distances for a distance head); `input` = the image as the model saw it, a PNG data URL')
}).strict()

export const ModelParamsSchema = z.object({
  // 200 = MAX_PARAM_LENGTH in app.ts: the router refuses longer ones (414) before this runs.
  name: z.string().min(1).max(200).describe('Model name, as listed by GET /models')
})

export const TopKSchema = z.object({
  label: z.string(),
  classIndex: z.number().int(),
  probability: z.number().describe('softmax(logits / T), T the temperature calibrate fitted (1 without one)')
}).meta({ id: 'TopKEntry', example: CLASSIFY_EXAMPLE.topK[0] })

export const OodSchema = z.object({
  score: z.number().describe('The decision score; higher = more in-distribution'),
  kind: z.enum(SCORE_KINDS).describe('Which score decides: mds = −minimum distance, entropic = Σ p log p, msp, maxlogit, energy, mahalanobis = −Mahalanobis distance of the features to the nearest class (the default model)'),
  threshold: z.number().describe('Calibrated on in-distribution data; reject when score < threshold. With per-class (Mondrian) calibration, the predicted class\'s threshold'),
  reject: z.boolean().describe('true = the input looks out-of-distribution: do not trust the label'),
  pValue: z.number().optional().describe('Conformal p-value of the score against the calibration scores; small = unusual'),
  minDistance: z.number().optional().describe('Distance to the nearest class prototype (distance-head models only)')
}).meta({ id: 'OodResult', example: CLASSIFY_EXAMPLE.ood })

export const ConfidenceSchema = z.object({
  value: z.number().describe('The predicted class\'s probability, softmax(logits / T)[classIndex] (= topK[0].probability)'),
  threshold: z.number().optional().describe('Calibrated so that, among in-distribution images accepted by both rules, the error rate is at most the model\'s target risk with probability ≥ 1 − δ; the label is rejected as "uncertain" when value < threshold. Absent when the model has no confidence calibration (then it never rejects as uncertain)')
}).meta({ id: 'Confidence', example: CLASSIFY_EXAMPLE.confidence })

export const TimingsSchema = z.object({
  decode: z.number().describe('ms spent decoding and preprocessing the image'),
  queue: z.number().describe('ms waiting in the batch queue'),
  inference: z.number().describe('ms of ONNX Runtime for the batch this image ran in'),
  total: z.number().describe('ms from request received to response ready')
}).meta({ id: 'Timings' })

export const ClassifyResultSchema = z.object({
  model: z.string(),
  version: z.string(),
  label: z.string(),
  classIndex: z.number().int(),
  topK: z.array(TopKSchema),
  reject: z.boolean().describe('Do not trust this label: true when any reason in rejectReasons fired'),
  rejectReasons: z.array(z.enum(['ood', 'uncertain'])).describe('Why the label is rejected, "ood" first: "ood" = the image is unlike the training data (ood.reject); "uncertain" = in distribution as far as the OOD score can tell, but the confidence is below its threshold (likely a wrong label). Empty when accepted'),
  ood: OodSchema,
  confidence: ConfidenceSchema,
  logits: z.array(z.number()).optional().describe('The model\'s raw output row, in class order (with ?include=logits): what ONNX Runtime returned, for parity checks'),
  input: z.string().optional().describe('The image as the model saw it (with ?include=input): a `data:image/png;base64,` URL of the pixels after decoding, orientation, flattening, colour conversion and resize, read back from the input tensor (each tensor value is (pixel / 255 − mean) / std)'),
  batchSize: z.number().int().describe('How many images shared the inference batch'),
  timings: TimingsSchema
}).meta({ id: 'ClassifyResult', example: CLASSIFY_EXAMPLE })

export const ClassifyResponseSchema = z.union([
  ClassifyResultSchema,
  z.array(ClassifyResultSchema).describe('multipart/form-data: one result per `image` part, in order')
])

export const LiveSchema = z.object({ status: z.literal('live') })

export const ReadySchema = z.object({
  status: z.enum(['ready', 'not-ready']),
  reason: z.string().optional(),
  models: z.array(z.object({ name: z.string(), provider: z.enum(['cpu', 'cuda']).optional() }))
}).meta({ id: 'Readiness' })

export const ModelInfoSchema = z.object({
  name: z.string(),
  version: z.string(),
  default: z.boolean(),
  head: z.enum(['isomaxplus', 'isomax', 'softmax']),
  labels: z.array(z.string()),
  input: z.object({
    name: z.string(),
    layout: z.string(),
    channels: z.number().int(),
    height: z.number().int(),
    width: z.number().int(),
    mean: z.array(z.number()),
    std: z.array(z.number()),
    fit: z.string(),
    colour: z.string()
  }),
  ood: z.object({
    score: z.enum(SCORE_KINDS),
    threshold: z.number(),
    targetTpr: z.number(),
    achievedTpr: z.number(),
    calibrationN: z.number().int(),
    calibrationDate: z.string()
  }),
  selective: z.object({
    targetRisk: z.number().describe('The error rate among accepted in-distribution images that the confidence threshold is calibrated to stay under'),
    delta: z.number().describe('The probability, over the draw of the calibration data, that it does not'),
    threshold: z.number().describe('Reject as "uncertain" when confidence < threshold'),
    calibrationN: z.number().int().describe('Labelled images the threshold was chosen on (disjoint from those that fitted the OOD threshold and the temperature)'),
    coverage: z.number().describe('Share of those images accepted by both rules'),
    risk: z.number().describe('Error rate among them'),
    bound: z.number().describe('Upper confidence bound (1 − δ) on the risk at the threshold'),
    method: z.string(),
    calibrationDate: z.string()
  }).optional().describe('The confidence calibration behind the "uncertain" reject; absent: the model never rejects as uncertain'),
  batching: z.object({ maxBatchSize: z.number().int(), maxQueueDelayMs: z.number() }),
  provider: z.enum(['cpu', 'cuda'])
}).meta({ id: 'ModelInfo' })

// The calibration sample a model's p-values and threshold come from: what a client needs to
// draw where a score falls among in-distribution scores.
export const ModelDetailSchema = ModelInfoSchema.extend({
  ood: ModelInfoSchema.shape.ood.extend({
    classThresholds: z.array(z.number()).optional().describe('Per predicted class (Mondrian calibration), used instead of `threshold` for an image predicted as that class'),
    calibration: z.object({
      scores: z.array(z.number()).optional().describe('Sorted sample (quantiles) of the in-distribution calibration scores: what `ood.pValue` is computed against'),
      classScores: z.array(z.array(z.number())).optional().describe('The same per predicted class (Mondrian calibration), in label order: an image predicted as class i gets its p-value from `classScores[i]`; an empty list means the class uses `scores`'),
      classN: z.array(z.number().int()).optional().describe('Per predicted class: how many calibration images the model predicted as that class')
    })
  }),
  probabilities: z.object({
    temperature: z.number().describe('topK probabilities are softmax(logits / temperature)'),
    n: z.number().int().describe('Labelled held-out images the temperature was fitted on'),
    ece: z.object({ before: z.number(), after: z.number() }).describe('Expected calibration error on those images without and with the temperature')
  }).optional().describe('The fitted temperature behind the topK probabilities; absent: softmax(logits) as exported')
}).meta({ id: 'ModelDetail' })

export const ModelsResponseSchema = z.object({
  default: z.string(),
  models: z.array(ModelInfoSchema)
})
