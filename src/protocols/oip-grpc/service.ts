// inference.GRPCInferenceService over the data plane: the Open Inference Protocol's RPCs and
// Triton's extensions (ModelConfig, ModelStatistics, Repository*), each the gRPC face of a /v2
// route, built from the same shared parts (protocols/oip/) and the same served-model lookup.
// The repository RPCs exist only with ADMIN_TOKEN (without it grpc-js answers UNIMPLEMENTED, as
// HTTP answers 404) and need `authorization: Bearer <ADMIN_TOKEN>` metadata.
import type { Metadata } from '@grpc/grpc-js'
import type { FastifyInstance } from 'fastify'
import { ModelNotLoadedError, UnauthorizedError } from '../../errors.js'
import { bearerMatches } from '../../http/bearer.js'
import { servedModel } from '../../serving/served-model.js'
import { samplesOf, type InferLimits } from '../oip/inputs.js'
import { modelMetadata, serverMetadata } from '../oip/metadata.js'
import { tritonModelConfig } from '../oip/model-config.js'
import { modelOutputs, type Classified } from '../oip/outputs.js'
import { decodeInfer, encodeInfer, type ModelInferRequest } from './codec.js'
import type { Rpc } from './rpc.js'

export interface InferenceServiceOptions {
  infer: InferLimits
  /** ADMIN_TOKEN: the repository RPCs exist with it. */
  adminToken?: string | undefined
}

interface Named { name?: string, version?: string }

/** A name or version field: proto3 sends "" for unset. */
const given = (v: string | undefined): string | undefined => v === undefined || v === '' ? undefined : v

/** The handlers, by RPC name, each a function from request (and metadata) to response. */
export function inferenceService (app: FastifyInstance, opts: InferenceServiceOptions): Record<string, Rpc> {
  const { engine } = app
  const statistics = (name: string | undefined, version: string | undefined): object => {
    const models = name === undefined ? [...engine.manifest.models.values()] : [servedModel(engine, name, version)]
    return { model_stats: models.map((m) => app.modelStats.snapshot(m.name, m.version)) }
  }
  const rpcs: Record<string, Rpc> = {
    ServerLive: async () => ({ live: true }),
    ServerReady: async () => ({ ready: app.lifecycle.notReadyReason() === null }),
    ModelReady: async (req: Named) => {
      const name = req.name ?? ''
      // Known to the repository but not served: not ready, rather than unknown (as on HTTP).
      if (engine.model(name) === undefined && app.repository.knows(name)) return { ready: false }
      servedModel(engine, name, given(req.version))
      return { ready: app.lifecycle.notReadyReason() === null }
    },
    ServerMetadata: async () => serverMetadata(opts.adminToken !== undefined),
    ModelMetadata: async (req: Named) => modelMetadata(servedModel(engine, req.name ?? '', given(req.version))),
    ModelConfig: async (req: Named) => {
      const model = servedModel(engine, req.name ?? '', given(req.version))
      return {
        config: tritonModelConfig(model, modelOutputs(model), {
          maxRequestSamples: opts.infer.maxElements,
          batching: engine.batching(model.name)!,
          workers: engine.workerCount,
          provider: engine.providers[model.name] ?? 'cpu'
        })
      }
    },
    ModelStatistics: async (req: Named) => statistics(given(req.name), given(req.version)),
    ModelInfer: async (req: ModelInferRequest) => {
      const name = given(req.model_name)
      if (name !== undefined && engine.model(name) === undefined && app.repository.knows(name)) throw new ModelNotLoadedError(name, 'unloaded or not calibrated', name)
      return await app.dataPlane.serve(name, given(req.model_version), async ({ model, predict }) => {
        const decoded = decodeInfer(req, model, opts.infer)
        const rows: Classified[] = (await predict(samplesOf(decoded.input), { topK: 1 })).map((p) => ({ logits: p.logits, decision: p.decision }))
        return encodeInfer(model, rows, decoded, req.id ?? '')
      })
    }
  }
  const token = opts.adminToken
  if (token !== undefined) {
    const guard = (metadata: Metadata): void => {
      const header = metadata.get('authorization')[0]
      if (!bearerMatches(typeof header === 'string' ? header : undefined, token)) throw new UnauthorizedError()
    }
    rpcs.RepositoryIndex = async (req: { ready?: boolean }, metadata) => {
      guard(metadata)
      const entries = await app.repository.index()
      return { models: req.ready === true ? entries.filter((e) => e.state === 'READY') : entries }
    }
    rpcs.RepositoryModelLoad = async (req: { model_name?: string }, metadata) => {
      guard(metadata)
      await app.repository.load(req.model_name ?? '')
      return {}
    }
    rpcs.RepositoryModelUnload = async (req: { model_name?: string }, metadata) => {
      guard(metadata)
      await app.repository.unload(req.model_name ?? '')
      return {}
    }
  }
  return rpcs
}
