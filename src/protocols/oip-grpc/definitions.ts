// The gRPC services, from the vendored .proto files (proto/README.md: sources, commits,
// licences), loaded at start with @grpc/proto-loader: no generated code to keep in step.
// The files are read from src/protocols/oip-grpc/proto whether this module runs from src/
// (tests) or dist/src/ (npm start; the Docker image copies the folder to the same place).
import path from 'node:path'
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js'
import { loadSync, type Options } from '@grpc/proto-loader'
import { packageRoot } from '../../package-root.js'

export const PROTO_DIR = path.join(packageRoot(import.meta.dirname), 'src', 'protocols', 'oip-grpc', 'proto')

/**
 * How messages look in handlers: field names as in the .proto (model_name, raw_input_contents),
 * 64-bit integers as numbers (shapes, counts and nanoseconds all fit in 2^53), enums as their
 * names, the InferParameter oneof named in `parameter_choice`, absent fields absent.
 */
export const LOADER_OPTIONS: Options = { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true, includeDirs: [PROTO_DIR] }

export interface Definitions {
  /** inference.GRPCInferenceService (grpc_service.proto: the protocol's RPCs and Triton's). */
  inference: ServiceDefinition
  /** grpc.health.v1.Health. */
  health: ServiceDefinition
}

/** Set on a request whose bytes are not a valid message (rpc.ts answers INVALID_ARGUMENT). */
export const MALFORMED = Symbol('malformed request')

/** The size of a request message on the wire (rpc.ts charges it to the body budget). */
export const WIRE_BYTES = Symbol('wire bytes')

/**
 * grpc-js answers a message that fails to decode with INTERNAL, which says "our fault": a
 * truncated or corrupt message is the client's, so its decoding error is handed to the handler
 * instead, which answers INVALID_ARGUMENT naming it.
 */
function tolerant (service: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(Object.entries(service).map(([name, method]) => [name, {
    ...method,
    requestDeserialize: (bytes: Buffer) => {
      try {
        const message = method.requestDeserialize(bytes) as Record<symbol, unknown>
        message[WIRE_BYTES] = bytes.length
        return message
      } catch (err) {
        return { [MALFORMED]: (err as Error).message }
      }
    }
  }])) as ServiceDefinition
}

let loaded: Definitions | undefined

/** The service definitions, parsed once per process. */
export function definitions (): Definitions {
  if (loaded === undefined) {
    const pkg = loadPackageDefinition(loadSync(['grpc_service.proto', 'health.proto'], LOADER_OPTIONS)) as unknown as {
      inference: { GRPCInferenceService: { service: ServiceDefinition } }
      grpc: { health: { v1: { Health: { service: ServiceDefinition } } } }
    }
    loaded = { inference: tolerant(pkg.inference.GRPCInferenceService.service), health: tolerant(pkg.grpc.health.v1.Health.service) }
  }
  return loaded
}
