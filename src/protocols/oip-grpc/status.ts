// Errors of the catalogue (src/errors.ts) as gRPC statuses: the same error, whichever protocol,
// with the HTTP status mapped the way Triton and KServe map theirs (404 NOT_FOUND, 400
// INVALID_ARGUMENT, 503 UNAVAILABLE, 413 RESOURCE_EXHAUSTED, ...), and the catalogue's message.
// Overload and draining carry retry information twice: a `retry-after` trailer, as HTTP's
// header, and google.rpc.RetryInfo in `grpc-status-details-bin`, which gRPC's richer clients
// read. Anything not from the catalogue is INTERNAL with a fixed message (logged by the caller).
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js'
import protobuf from 'protobufjs'
import { InternalError } from '../../errors.js'

/** The catalogue's HTTP status → gRPC status code. */
const BY_HTTP_STATUS: Record<number, Status> = {
  400: Status.INVALID_ARGUMENT,
  401: Status.UNAUTHENTICATED,
  404: Status.NOT_FOUND,
  408: Status.DEADLINE_EXCEEDED,
  409: Status.FAILED_PRECONDITION,
  413: Status.RESOURCE_EXHAUSTED,
  414: Status.INVALID_ARGUMENT,
  415: Status.INVALID_ARGUMENT,
  422: Status.FAILED_PRECONDITION,
  503: Status.UNAVAILABLE
}

/** Catalogue codes whose HTTP status says less than their meaning. */
const BY_CODE: Record<string, Status> = {
  // The model's output for this input is not finite: the input's fault, not a state to fix.
  ISOMAX_NON_FINITE_OUTPUT: Status.INVALID_ARGUMENT,
  // Triton answers an unloaded model's inference with UNAVAILABLE too.
  ISOMAX_MODEL_NOT_READY: Status.UNAVAILABLE
}

/** Seconds a client should wait before retrying an overloaded or draining replica. */
export const RETRY_AFTER_SECONDS = 1

// google.rpc.Status and RetryInfo, the well-known messages of grpc-status-details-bin.
const rpc = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
            Duration: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } }
          }
        },
        rpc: {
          nested: {
            Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 }, details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 } } },
            RetryInfo: { fields: { retry_delay: { type: 'google.protobuf.Duration', id: 1 } } }
          }
        }
      }
    }
  }
})
const RpcStatus = rpc.lookupType('google.rpc.Status')
const RetryInfo = rpc.lookupType('google.rpc.RetryInfo')

function retryDetails (code: Status, message: string): Buffer {
  const retry = RetryInfo.encode(RetryInfo.fromObject({ retry_delay: { seconds: RETRY_AFTER_SECONDS } })).finish()
  const details = [{ type_url: 'type.googleapis.com/google.rpc.RetryInfo', value: retry }]
  return Buffer.from(RpcStatus.encode(RpcStatus.fromObject({ code, message, details })).finish())
}

export interface MappedError {
  /** The gRPC status sent. */
  error: Partial<ServiceError> & { code: Status, details: string, metadata: Metadata }
  /** The catalogue's HTTP status: what the request metrics record, as for HTTP requests. */
  httpStatus: number
  catalogueCode: string
}

/** Any error → the gRPC status of its catalogue entry. */
export function grpcError (err: unknown): MappedError {
  const e = err as { code?: unknown, statusCode?: unknown, message?: unknown }
  const fromCatalogue = typeof e.code === 'string' && e.code.startsWith('ISOMAX_') && typeof e.statusCode === 'number'
  const mapped = fromCatalogue ? e as { code: string, statusCode: number, message: string } : new InternalError()
  const httpStatus = mapped.statusCode ?? 500
  const code = BY_CODE[mapped.code] ?? BY_HTTP_STATUS[httpStatus] ?? Status.INTERNAL
  const metadata = new Metadata()
  metadata.set('isomax-error-code', mapped.code)
  if (code === Status.UNAVAILABLE) {
    metadata.set('retry-after', String(RETRY_AFTER_SECONDS))
    metadata.set('grpc-status-details-bin', retryDetails(code, mapped.message))
  }
  return { error: { code, details: mapped.message, metadata }, httpStatus, catalogueCode: mapped.code }
}
