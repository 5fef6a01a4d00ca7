// The manifest contract: one owner per field. The training side (training/publish.py) writes a
// model's entry without an OOD block; only `npm run calibrate` writes the OOD block; the service
// reads it and serves calibrated models only. models/manifest.schema.json is generated from
// these schemas (npm run manifest-schema) for the Python side to validate against.
import { z } from 'zod'

/** Scores computed from a model's logits. */
export const LOGIT_SCORE_KINDS = ['mds', 'entropic', 'msp', 'maxlogit', 'energy'] as const
/**
 * Scores a post-hoc detector computes inside the ONNX graph, read from an output of their own
 * (output.scores): mahalanobis = −(the smallest Mahalanobis distance of the image's features to
 * a class mean), a class-conditional Gaussian with tied covariance fitted on training features.
 */
export const GRAPH_SCORE_KINDS = ['mahalanobis'] as const
export const SCORE_KINDS = [...LOGIT_SCORE_KINDS, ...GRAPH_SCORE_KINDS] as const
export type ScoreKind = typeof SCORE_KINDS[number]
export type GraphScoreKind = typeof GRAPH_SCORE_KINDS[number]

/** Whether a score is read from the model's graph (output.scores) rather than its logits. */
export function isGraphScore (kind: ScoreKind): kind is GraphScoreKind {
  return (GRAPH_SCORE_KINDS as readonly ScoreKind[]).includes(kind)
}

const finite = z.number().refine(Number.isFinite, 'expected a finite number')

export const InputSpecSchema = z.object({
  name: z.string().min(1),
  layout: z.literal('NCHW'),
  channels: z.union([z.literal(1), z.literal(3)]),
  height: z.number().int().min(1).max(4096),
  width: z.number().int().min(1).max(4096),
  mean: z.array(finite).min(1),
  std: z.array(finite.refine((v) => v > 0, 'std must be > 0')).min(1),
  // How a differently-shaped image is brought to height × width (sharp's resize `fit`).
  fit: z.enum(['fill', 'contain', 'cover', 'inside', 'outside']).default('fill'),
  colour: z.enum(['grey', 'rgb'])
}).strict().refine((s) => s.mean.length === s.channels && s.std.length === s.channels, {
  message: 'mean and std need one value per channel',
  path: ['mean']
})

export const CalibrationSchema = z.object({
  targetTpr: z.number().gt(0).lt(1),
  achievedTpr: z.number().min(0).max(1),
  n: z.number().int().min(1),
  data: z.string().min(1),
  dataSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  date: z.string().min(1),
  tool: z.string().min(1),
  toolVersion: z.string().optional(),
  // A compact, sorted sample (quantiles) of calibration scores, for conformal p-values.
  scores: z.array(finite).optional(),
  // Per predicted class (Mondrian): the same, from the images predicted as that class.
  classScores: z.array(z.array(finite)).optional(),
  classN: z.array(z.number().int().min(0)).optional()
}).strict()

export const OodSchema = z.object({
  score: z.enum(SCORE_KINDS),
  // The global threshold: reject when score < threshold.
  threshold: finite,
  // Mondrian (class-conditional) thresholds, one per class, applied by the predicted class
  // instead of the global one, so every class's false-reject rate is about 1 − target TPR.
  classThresholds: z.array(finite).optional(),
  calibration: CalibrationSchema
}).strict()

// Written by calibrate with the OOD block: the temperature that makes softmax(logits / T)
// honest probabilities (fitted on labelled held-out data by minimising NLL). The decision
// score never uses it.
export const ProbabilitiesSchema = z.object({
  temperature: finite.refine((v) => v > 0, 'temperature must be > 0'),
  n: z.number().int().min(1),
  data: z.string().min(1),
  date: z.string().min(1),
  nll: z.object({ before: finite, after: finite }).strict(),
  ece: z.object({ before: finite, after: finite }).strict()
}).strict()

// Written by calibrate with --risk-data: the "uncertain" reject. An image whose confidence (the
// temperature-scaled top softmax probability) is below `threshold` is rejected as uncertain.
// The threshold was chosen so that the error rate among in-distribution images accepted by
// both rules (OOD and confidence) is ≤ targetRisk with probability ≥ 1 − delta over the draw of
// the calibration data, which is disjoint from the data that fitted the OOD threshold and
// the temperature. Absent: the model has no "uncertain" reason.
export const SelectiveSchema = z.object({
  targetRisk: z.number().gt(0).lt(1),
  delta: z.number().gt(0).lt(1),
  threshold: z.number().gt(0).max(1),
  calibration: z.object({
    method: z.string().min(1),
    data: z.string().min(1),
    dataSha256: z.string().regex(/^[0-9a-f]{64}$/),
    // Labelled images scored, accepted by both rules, and wrong among those, at the threshold.
    n: z.number().int().min(1),
    accepted: z.number().int().min(0),
    errors: z.number().int().min(0),
    // accepted / n and errors / accepted on the calibration data.
    coverage: z.number().min(0).max(1),
    risk: z.number().min(0).max(1),
    // The 1 − delta Clopper–Pearson upper bound on the risk at the threshold (≤ targetRisk).
    bound: z.number().min(0).max(1),
    // Share of the calibration images with confidence below the threshold, whatever the OOD
    // rule said: what in-distribution traffic should show (the drift alert's baseline).
    uncertainRate: z.number().min(0).max(1),
    // What fitted the OOD threshold and the temperature (must be disjoint from `data`).
    fitData: z.string().min(1),
    fitDataSha256: z.string().regex(/^[0-9a-f]{64}$/),
    date: z.string().min(1),
    tool: z.string().min(1),
    toolVersion: z.string().optional()
  }).strict()
}).strict()

export const ModelEntrySchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" and "-"'),
  version: z.string().min(1),
  path: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits'),
  head: z.enum(['isomaxplus', 'isomax', 'softmax']),
  input: InputSpecSchema,
  output: z.object({
    name: z.string().min(1),
    holds: z.enum(['negative-distances', 'logits']),
    // Graph outputs holding one score per image ([batch] or [batch, 1]), by score kind.
    scores: z.partialRecord(z.enum(GRAPH_SCORE_KINDS), z.string().min(1)).optional()
  }).strict(),
  labels: z.array(z.string().min(1)).min(2),
  // Absent until `npm run calibrate` has run: the service refuses to serve such a model.
  ood: OodSchema.optional(),
  // Absent: probabilities are softmax(logits) as the graph gives them.
  probabilities: ProbabilitiesSchema.optional(),
  // Absent: no confidence threshold, so no image is ever rejected as "uncertain".
  selective: SelectiveSchema.optional(),
  batching: z.object({
    maxBatchSize: z.number().int().min(1).max(4096),
    maxQueueDelayMs: z.number().min(0).max(10_000)
  }).strict()
}).strict()

export const ManifestSchema = z.object({
  default: z.string().min(1),
  models: z.array(ModelEntrySchema).min(1)
}).strict()

/**
 * A model's graph score outputs in one fixed order (GRAPH_SCORE_KINDS'): the order the
 * workers return them in, one row per image.
 */
export function scoreOutputsOf (output: { scores?: Partial<Record<GraphScoreKind, string>> | undefined }): Array<{ kind: GraphScoreKind, name: string }> {
  return GRAPH_SCORE_KINDS.flatMap((kind) => {
    const name = output.scores?.[kind]
    return name === undefined ? [] : [{ kind, name }]
  })
}

export type InputSpec = z.infer<typeof InputSpecSchema>
export type ModelEntry = z.infer<typeof ModelEntrySchema>
/** An entry whose OOD block calibrate has written: what the service serves. */
export type CalibratedEntry = ModelEntry & { ood: OodSpec }
export type Manifest = z.infer<typeof ManifestSchema>
export type OodSpec = z.infer<typeof OodSchema>
export type ProbabilitiesSpec = z.infer<typeof ProbabilitiesSchema>
export type SelectiveSpec = z.infer<typeof SelectiveSchema>
