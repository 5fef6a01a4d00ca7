// Prometheus metrics. One Registry per app instance: prom-client's global registry would make
// the second app built in a process (tests, the bench) throw on duplicate names.
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { LoadedModel } from '../registry/load-manifest.js'

export interface ServiceMetrics {
  registry: Registry
  httpDuration: Histogram<'route' | 'method' | 'status_code' | 'protocol'>
  inferenceDuration: Histogram<'model'>
  queueWait: Histogram<'model'>
  batchSize: Histogram<'model'>
  queueDepth: Gauge<'model'>
  predictions: Counter<'model' | 'outcome'>
  rejections: Counter<'model' | 'reason'>
  rejectedImages: Counter<'model'>
  calibratedUncertainRate: Gauge<'model'>
  oodScore: Histogram<'model'>
  oodPValue: Histogram<'model'>
  modelsLoaded: Gauge
  modelProvider: Gauge<'model' | 'provider'>
  reloads: Counter<'outcome'>
  calibratedRejectRate: Gauge<'model'>
  oodThreshold: Gauge<'model'>
  ready: Gauge
  manifestGeneration: Gauge
  manifestInfo: Gauge<'sha256'>
  inferenceWorkers: Gauge
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServiceMetrics
  }
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * Score buckets at the quantiles of each model's calibration scores (plus its threshold), so a
 * shift of live traffic against calibration — drift — shows as mass moving between buckets.
 */
export function oodScoreBuckets (models: Iterable<LoadedModel>): number[] {
  const levels = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
  const edges = new Set<number>()
  for (const m of models) {
    edges.add(m.ood.threshold)
    const s = m.ood.calibration.scores
    if (s === undefined || s.length === 0) continue
    for (const q of levels) edges.add(s[Math.min(s.length - 1, Math.floor(q * s.length))] as number)
  }
  const sorted = [...edges].filter(Number.isFinite).sort((a, b) => a - b)
  return sorted.length > 0 ? sorted : [0]
}

export const REJECT_REASONS = ['ood', 'uncertain'] as const

/** Count one classified image: its queue wait, OOD outcome, reject reasons, score and p-value (every protocol). */
export function observeClassified (metrics: ServiceMetrics, model: string, queueMs: number, ood: { reject: boolean, score: number, pValue?: number | undefined }, reasons: readonly string[] = []): void {
  metrics.queueWait.observe({ model }, queueMs / 1000)
  metrics.predictions.inc({ model, outcome: ood.reject ? 'rejected' : 'accepted' })
  for (const reason of reasons) metrics.rejections.inc({ model, reason })
  if (reasons.length > 0) metrics.rejectedImages.inc({ model })
  // decide() refuses a non-finite score; prom-client throws on one, after the counter above.
  if (Number.isFinite(ood.score)) metrics.oodScore.observe({ model }, ood.score)
  if (ood.pValue !== undefined && Number.isFinite(ood.pValue)) metrics.oodPValue.observe({ model }, ood.pValue)
}

export interface MetricsOptions {
  models: LoadedModel[]
  /** The protocol an HTTP request spoke, by its URL (the protocols' prefixes: ErrorShapes.protocolFor). */
  protocolOf: (url: string) => string
}

export default fp<MetricsOptions>(async function metricsPlugin (app, opts) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // prom-client exports these gauges with a counter's `_total` suffix, which promtool's lint
  // rejects; the same numbers stay available, by type, as nodejs_active_{handles,requests,resources}.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name)
  }
  const metrics: ServiceMetrics = {
    registry,
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Request duration by protocol (rest, oip-http, oip-grpc), route template (gRPC: /package.Service/Method), method and status code (gRPC: the HTTP status of the same error in the catalogue)',
      labelNames: ['route', 'method', 'status_code', 'protocol'],
      buckets: LATENCY_BUCKETS,
      registers: [registry]
    }),
    inferenceDuration: new Histogram({
      name: 'isomax_inference_duration_seconds',
      help: 'ONNX Runtime time per batch, by model',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers: [registry]
    }),
    queueWait: new Histogram({
      name: 'isomax_queue_wait_seconds',
      help: 'Time a request waited in its model\'s batch queue',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers: [registry]
    }),
    batchSize: new Histogram({
      name: 'isomax_batch_size',
      help: 'Images per inference batch, by model',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry]
    }),
    queueDepth: new Gauge({
      name: 'isomax_queue_depth',
      help: 'Requests waiting in each model\'s batch queue',
      labelNames: ['model'],
      registers: [registry]
    }),
    predictions: new Counter({
      name: 'isomax_predictions_total',
      help: 'Classified images by model and OOD outcome (accepted or rejected)',
      labelNames: ['model', 'outcome'],
      registers: [registry]
    }),
    rejections: new Counter({
      name: 'isomax_rejections_total',
      help: 'Images whose label was rejected, by model and reason: ood (unlike the training data) or uncertain (confidence below its calibrated threshold); an image with both reasons counts under each',
      labelNames: ['model', 'reason'],
      registers: [registry]
    }),
    rejectedImages: new Counter({
      name: 'isomax_rejected_images_total',
      help: 'Images whose label was rejected for any reason (reject = true), by model',
      labelNames: ['model'],
      registers: [registry]
    }),
    calibratedUncertainRate: new Gauge({
      name: 'isomax_calibrated_uncertain_rate',
      help: 'Share of each model\'s confidence-calibration images below its confidence threshold: what in-distribution traffic should show as "uncertain"; absent for a model without a confidence threshold',
      labelNames: ['model'],
      registers: [registry]
    }),
    oodScore: new Histogram({
      name: 'isomax_ood_score',
      help: 'Decision score of each classified image; bucket edges are calibration quantiles (drift signal)',
      labelNames: ['model'],
      buckets: oodScoreBuckets(opts.models),
      registers: [registry]
    }),
    oodPValue: new Histogram({
      name: 'isomax_ood_p_value',
      help: 'Conformal p-value of each classified image; uniform on in-distribution traffic',
      labelNames: ['model'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9],
      registers: [registry]
    }),
    modelsLoaded: new Gauge({
      name: 'isomax_models_loaded',
      help: 'Models loaded and warmed up',
      registers: [registry]
    }),
    modelProvider: new Gauge({
      name: 'isomax_model_provider',
      help: 'Execution provider each model runs on (1 = this one)',
      labelNames: ['model', 'provider'],
      registers: [registry]
    }),
    calibratedRejectRate: new Gauge({
      name: 'isomax_calibrated_reject_rate',
      help: 'Reject rate each model showed on its calibration data (1 - achieved TPR): what in-distribution traffic should look like; the drift alerts compare live traffic with it',
      labelNames: ['model'],
      registers: [registry]
    }),
    oodThreshold: new Gauge({
      name: 'isomax_ood_threshold',
      help: 'Decision threshold of each model: reject when the OOD score is below it',
      labelNames: ['model'],
      registers: [registry]
    }),
    ready: new Gauge({
      name: 'isomax_ready',
      help: '1 when every model is loaded and the server is not draining (GET /health/ready answers 200), else 0',
      registers: [registry],
      collect () {
        this.set(app.hasDecorator('lifecycle') && app.lifecycle.notReadyReason() === null ? 1 : 0)
      }
    }),
    reloads: new Counter({
      name: 'isomax_model_reloads_total',
      help: 'Changes of the served models (reload, repository load/unload) by outcome: success; failure (the file or a model could not be loaded, nothing changed); refused (the caller\'s mistake: an unknown model, the default model; nothing changed)',
      labelNames: ['outcome'],
      registers: [registry]
    }),
    manifestGeneration: new Gauge({
      name: 'isomax_manifest_generation',
      help: 'Generation of the served model set: 1 at start, one more at each successful change',
      registers: [registry]
    }),
    manifestInfo: new Gauge({
      name: 'isomax_manifest_info',
      help: 'sha256 of the manifest file the served models came from (value 1)',
      labelNames: ['sha256'],
      registers: [registry]
    }),
    inferenceWorkers: new Gauge({
      name: 'isomax_inference_workers',
      help: 'Inference worker threads running',
      registers: [registry]
    })
  }
  for (const m of opts.models) {
    metrics.queueDepth.set({ model: m.name }, 0)
    for (const outcome of ['accepted', 'rejected']) metrics.predictions.inc({ model: m.name, outcome }, 0)
    metrics.rejectedImages.inc({ model: m.name }, 0)
    for (const reason of REJECT_REASONS) if (reason !== 'uncertain' || m.selective !== undefined) metrics.rejections.inc({ model: m.name, reason }, 0)
  }
  for (const outcome of ['success', 'failure', 'refused']) metrics.reloads.inc({ outcome }, 0)
  app.decorate('metrics', metrics)
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    metrics.httpDuration.observe({
      route,
      method: req.method,
      status_code: String(reply.statusCode),
      protocol: opts.protocolOf(req.url)
    }, reply.elapsedTime / 1000)
  })
}, { name: 'metrics' })
