// grpc.health.v1.Health, what Kubernetes' gRPC probes (and grpc_health_probe) call. The server
// ("") and the inference service are SERVING exactly when readiness is 200 (every model warm,
// not draining), NOT_SERVING otherwise; any other service name is NOT_FOUND, as the protocol
// says. Watch sends the status at once and again on each change; its streams end when the
// server closes, so they never hold a drain open.
import { status as Status, type handleServerStreamingCall, type handleUnaryCall, type ServerWritableStream } from '@grpc/grpc-js'
import type { FastifyInstance } from 'fastify'
import { ShuttingDownError } from '../../errors.js'
import { grpcError } from './status.js'

export const SERVED = ['', 'inference.GRPCInferenceService']

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN'
interface CheckRequest { service?: string }
interface CheckResponse { status: ServingStatus }

/** How often Watch looks at readiness (it has no event to wait on). */
const WATCH_INTERVAL_MS = 500

export interface HealthService {
  handlers: { Check: handleUnaryCall<CheckRequest, CheckResponse>, Watch: handleServerStreamingCall<CheckRequest, CheckResponse> }
  /** End every Watch stream (the server is closing). */
  close: () => void
}

export function healthService (app: FastifyInstance): HealthService {
  const current = (): ServingStatus => app.lifecycle.notReadyReason() === null && !app.lifecycle.closing ? 'SERVING' : 'NOT_SERVING'
  const watchers = new Set<ServerWritableStream<CheckRequest, CheckResponse>>()
  return {
    handlers: {
      Check: (call, callback) => {
        if (!SERVED.includes(call.request.service ?? '')) {
          callback({ code: Status.NOT_FOUND, details: `unknown service "${String(call.request.service).slice(0, 200)}": this server serves "" and "inference.GRPCInferenceService"` })
          return
        }
        callback(null, { status: current() })
      },
      Watch: (call) => {
        if (app.lifecycle.closing) {
          call.emit('error', grpcError(new ShuttingDownError()).error)
          return
        }
        const known = SERVED.includes(call.request.service ?? '')
        let last: ServingStatus | undefined
        const send = (): void => {
          const now = known ? current() : 'SERVICE_UNKNOWN'
          if (now !== last) { last = now; call.write({ status: now }) }
        }
        send()
        const timer = setInterval(send, WATCH_INTERVAL_MS)
        watchers.add(call)
        call.on('cancelled', () => { clearInterval(timer); watchers.delete(call) })
        call.on('finish', () => { clearInterval(timer); watchers.delete(call) })
        call.on('close', () => { clearInterval(timer); watchers.delete(call) })
      }
    },
    close: () => {
      for (const call of watchers) {
        call.write({ status: 'NOT_SERVING' })
        call.end()
      }
      watchers.clear()
    }
  }
}
