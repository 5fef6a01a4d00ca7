// One unary RPC as a plain async function, and its wrapping as a grpc-js handler: every call
// refused with UNAVAILABLE once the server is closing, its message charged to the same body
// budget as HTTP bodies (MAX_INFLIGHT_BYTES, per client MAX_INFLIGHT_BYTES_PER_CLIENT) until it
// is answered, errors mapped from the catalogue (status.ts), logged like HTTP's, and timed into
// the request metrics with protocol="oip-grpc".
import type { handleUnaryCall, Metadata, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js'
import type { FastifyInstance } from 'fastify'
import { BadRequestError, OverloadedError, ShuttingDownError } from '../../errors.js'
import { MALFORMED, WIRE_BYTES } from './definitions.js'
import { grpcError } from './status.js'

export type Rpc = (request: any, metadata: Metadata) => Promise<object>

export const PROTOCOL = 'oip-grpc'

/** The client's address without its port ("ipv4:1.2.3.4:5678", "[::1]:5678" → the address), as HTTP's req.ip. */
export function clientOf (peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, '')
  const m = /^\[(.*)\]:\d+$/.exec(bare) ?? /^(.*):\d+$/.exec(bare)
  return m?.[1] ?? bare
}

/** grpc-js's handler for `rpc`, named `path` (/package.Service/Method) in logs and metrics. */
export function unary (app: FastifyInstance, path: string, rpc: Rpc): handleUnaryCall<unknown, object> {
  return (call: ServerUnaryCall<unknown, object>, callback: sendUnaryData<object>): void => {
    const started = performance.now()
    const finish = (httpStatus: number): void => {
      app.metrics.httpDuration.observe({ route: path, method: 'POST', status_code: String(httpStatus), protocol: PROTOCOL }, (performance.now() - started) / 1000)
    }
    const run = async (): Promise<object> => {
      if (app.lifecycle.closing) throw new ShuttingDownError()
      const request = call.request as Record<symbol, unknown>
      if (request[MALFORMED] !== undefined) throw new BadRequestError(`the request is not a valid message of ${path}: ${String(request[MALFORMED])}`)
      const bytes = Number(request[WIRE_BYTES] ?? 0)
      const client = clientOf(call.getPeer())
      const refused = app.bodyBudget.take(client, bytes)
      if (refused !== null) {
        throw new OverloadedError(refused === 'total'
          ? `request messages and bodies held exceed ${app.bodyBudget.capacity} bytes (MAX_INFLIGHT_BYTES); retry shortly`
          : `request messages and bodies held for this client exceed ${app.bodyBudget.perClient} bytes (MAX_INFLIGHT_BYTES_PER_CLIENT); retry shortly`)
      }
      try {
        return await rpc(call.request, call.metadata)
      } finally {
        app.bodyBudget.give(client, bytes)
      }
    }
    run().then((response) => {
      finish(200)
      callback(null, response)
    }, (err: unknown) => {
      const mapped = grpcError(err)
      const log = { code: mapped.catalogueCode, status: mapped.httpStatus, grpcStatus: mapped.error.code, rpc: path }
      if (mapped.httpStatus === 503) app.log.warn(log, mapped.error.details)
      else if (mapped.httpStatus >= 500) app.log.error({ ...log, err }, mapped.error.details)
      else app.log.info(log, mapped.error.details)
      finish(mapped.httpStatus)
      callback(mapped.error)
    })
  }
}
