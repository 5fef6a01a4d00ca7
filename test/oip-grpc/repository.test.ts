// Triton's repository RPCs over gRPC (RepositoryIndex, RepositoryModelLoad/Unload): with
// ADMIN_TOKEN only, behind `authorization: Bearer <ADMIN_TOKEN>` metadata, over the same model
// repository as /v2/repository, with the same refusals as status codes; and the protocol's
// vendored grpc_predict_v2.proto: every message it defines is served with the same fields.
import { status as Status } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import protobuf from 'protobufjs'
import path from 'node:path'
import t from 'tap'
import { PROTO_DIR } from '../../src/protocols/oip-grpc/definitions.js'
import { buildOver } from '../helpers/build.js'
import { grpcClients } from '../helpers/grpc-client.js'
import { copyModels } from '../helpers/manifest-copy.js'

const TOKEN = 'a-test-admin-token-of-some-length'
const auth = { authorization: `Bearer ${TOKEN}` }

t.test('repository RPCs: bearer metadata, index, unload, load, refusals', async (t) => {
  const { app } = await buildOver(t, { env: { MODELS_MANIFEST: copyModels(), ADMIN_TOKEN: TOKEN, GRPC_PORT: '0', HOST: '127.0.0.1' } })
  const client = grpcClients(`127.0.0.1:${(await app.grpc.listen())!}`)
  t.teardown(() => client.close())
  const listed = (await app.inject('/models')).json() as { default: string, models: Array<{ name: string }> }
  const other = listed.models.map((m) => m.name).find((n) => n !== listed.default)!

  t.equal((await client.call('RepositoryIndex', {})).error?.code, Status.UNAUTHENTICATED, 'no token')
  const wrong = await client.call('RepositoryIndex', {}, { authorization: 'Bearer not-the-token-at-all' })
  t.equal(wrong.error?.code, Status.UNAUTHENTICATED, 'a wrong token')
  t.match(wrong.error?.details, /needs "Authorization: Bearer <ADMIN_TOKEN>"/)
  const index = (await client.call('RepositoryIndex', {}, auth)).response
  t.same(index.models, (await app.inject({ method: 'POST', url: '/v2/repository/index', headers: auth })).json(), 'the same index as /v2/repository/index')
  t.same((await client.call('ServerMetadata', {})).response.extensions.includes('model_repository'), true)

  t.same((await client.call('RepositoryModelUnload', { model_name: other }, auth)).response, {})
  t.same((await client.call('ModelReady', { name: other })).response, { ready: false }, 'unloaded: known, not ready')
  const infer = await client.call('ModelInfer', { model_name: other, inputs: [] })
  t.equal(infer.error?.code, Status.UNAVAILABLE, 'inference on an unloaded model: UNAVAILABLE, as Triton')
  t.same((await client.call('RepositoryIndex', { ready: true }, auth)).response.models.map((m: any) => m.name).includes(other), false)
  t.same((await client.call('RepositoryModelLoad', { model_name: other }, auth)).response, {})
  t.same((await client.call('ModelReady', { name: other })).response, { ready: true })

  const def = await client.call('RepositoryModelUnload', { model_name: listed.default }, auth)
  t.equal(def.error?.code, Status.FAILED_PRECONDITION, 'the default model: 409 → FAILED_PRECONDITION')
  t.match(def.error?.details, /is the default model/)
  t.equal((await client.call('RepositoryModelLoad', { model_name: 'nope' }, auth)).error?.code, Status.NOT_FOUND)
})

t.test('every message of the protocol\'s grpc_predict_v2.proto is served with the same fields', async (t) => {
  t.ok(loadSync('grpc_predict_v2.proto', { includeDirs: [PROTO_DIR] }), 'the vendored protocol file parses')
  const protocol = protobuf.loadSync(path.join(PROTO_DIR, 'grpc_predict_v2.proto'))
  const served = new protobuf.Root()
  served.resolvePath = (_origin, target) => path.join(PROTO_DIR, target)
  served.loadSync('grpc_service.proto')
  const inference = protocol.lookup('inference') as protobuf.Namespace
  const walk = (ns: protobuf.NamespaceBase): protobuf.Type[] => ns.nestedArray.flatMap((n) => n instanceof protobuf.Type ? [n, ...walk(n)] : n instanceof protobuf.Namespace ? walk(n) : [])
  const types = walk(inference)
  t.equal(types.length, 18, 'the protocol\'s 18 messages (nested ones included)')
  for (const type of types) {
    const mine = served.lookupType(type.fullName)
    for (const field of type.fieldsArray) {
      // The protocol's ModelMetadataResponse.properties (6) is not in Triton's message: isomax-serve has none to send.
      if (type.fullName === '.inference.ModelMetadataResponse' && field.name === 'properties') continue
      const same = mine.fields[field.name]
      t.ok(same !== undefined && same.id === field.id && same.type === field.type && same.repeated === field.repeated && (same as unknown as { keyType?: string }).keyType === (field as unknown as { keyType?: string }).keyType, `${type.fullName}.${field.name} = ${field.id}`)
    }
  }
  const service = served.lookupService('inference.GRPCInferenceService')
  for (const method of (protocol.lookupService('inference.GRPCInferenceService')).methodsArray) {
    t.equal(service.methods[method.name]?.requestType, method.requestType, `rpc ${method.name}`)
  }
})
