// A gRPC client of the service's own definitions (src/protocols/oip-grpc/proto), each RPC as a
// promise of { response } or { error }, for tests and scripts.
import { credentials, loadPackageDefinition, Metadata, type Client, type ServiceError } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { LOADER_OPTIONS } from '../../src/protocols/oip-grpc/definitions.js'

type Ctor = new (address: string, creds: ReturnType<typeof credentials.createInsecure>, options?: object) => Client
const pkg = loadPackageDefinition(loadSync(['grpc_service.proto', 'health.proto'], LOADER_OPTIONS)) as unknown as {
  inference: { GRPCInferenceService: Ctor }
  grpc: { health: { v1: { Health: Ctor } } }
}

export interface Outcome<T = any> {
  response?: T
  error?: ServiceError
}

export interface GrpcClients {
  /** Call a unary RPC of inference.GRPCInferenceService. */
  call: <T = any>(rpc: string, request: object, metadata?: Record<string, string>) => Promise<Outcome<T>>
  /** grpc.health.v1.Health/Check. */
  check: (service?: string) => Promise<Outcome<{ status: string }>>
  inference: Client
  health: Client
  close: () => void
}

function promised (client: Client, rpc: string, request: object, metadata: Record<string, string>): Promise<Outcome> {
  const md = new Metadata()
  for (const [k, v] of Object.entries(metadata)) md.set(k, v)
  return new Promise((resolve) => {
    (client as unknown as Record<string, (r: object, m: Metadata, cb: (e: ServiceError | null, r: unknown) => void) => void>)[rpc]!(request, md, (error, response) => {
      resolve(error !== null ? { error } : { response })
    })
  })
}

export function grpcClients (address: string, options: object = {}): GrpcClients {
  const inference = new pkg.inference.GRPCInferenceService(address, credentials.createInsecure(), { 'grpc.max_send_message_length': -1, ...options })
  const health = new pkg.grpc.health.v1.Health(address, credentials.createInsecure())
  return {
    call: async (rpc, request, metadata = {}) => await promised(inference, rpc, request, metadata),
    check: async (service = '') => await promised(health, 'Check', { service }, {}),
    inference,
    health,
    close: () => { inference.close(); health.close() }
  }
}
