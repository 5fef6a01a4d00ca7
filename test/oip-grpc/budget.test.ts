// gRPC messages are charged to the same body budget as HTTP bodies (MAX_INFLIGHT_BYTES) while
// their call runs: past it a call gets UNAVAILABLE with retry information, and the bytes are
// given back when the call is answered.
import { status as Status } from '@grpc/grpc-js'
import t from 'tap'
import { buildOver } from '../helpers/build.js'
import { grpcClients } from '../helpers/grpc-client.js'

t.test('a message over the in-flight budget: UNAVAILABLE; the budget is given back', async (t) => {
  const { app } = await buildOver(t, {
    env: { GRPC_PORT: '0', HOST: '127.0.0.1', MAX_UPLOAD_BYTES: '40000', MAX_REQUEST_BYTES: '60000', MAX_INFLIGHT_BYTES: '60000' },
    runner: { delayMs: 2000 }
  })
  const client = grpcClients(`127.0.0.1:${(await app.grpc.listen())!}`)
  t.teardown(() => client.close())
  const manifest = app.engine.manifest
  const model = manifest.models.get(manifest.defaultModel)!
  const shape = [16, model.input.channels, model.input.height, model.input.width]
  const request = { inputs: [{ name: model.input.name, datatype: 'FP32', shape }], raw_input_contents: [Buffer.alloc(shape.reduce((a, b) => a * b, 1) * 4)] }
  const first = client.call('ModelInfer', request)
  // Until the first message is on the server (its inference then takes 2 s).
  for (let i = 0; i < 100 && app.bodyBudget.inUse === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(app.bodyBudget.inUse > 50_000, `the first call's message is held (${app.bodyBudget.inUse} bytes)`)
  const second = await client.call('ModelInfer', request)
  t.equal(second.error?.code, Status.UNAVAILABLE)
  t.match(second.error?.details, /exceed 60000 bytes \(MAX_INFLIGHT_BYTES\); retry shortly/)
  t.equal(second.error?.metadata.get('retry-after')[0], '1')
  t.equal((await first).error, undefined, 'the first call is answered')
  t.equal(app.bodyBudget.inUse, 0, 'its bytes are given back')
  t.equal((await client.call('ModelInfer', request)).error, undefined, 'then another fits')
})

t.test('the client a message is charged to: the peer\'s address without its port, as HTTP\'s req.ip', async (t) => {
  const { clientOf } = await import('../../src/protocols/oip-grpc/rpc.js')
  t.equal(clientOf('ipv4:127.0.0.1:51234'), '127.0.0.1')
  t.equal(clientOf('127.0.0.1:51234'), '127.0.0.1')
  t.equal(clientOf('ipv6:[::1]:51234'), '::1')
  t.equal(clientOf('[2001:db8::7]:443'), '2001:db8::7')
  t.equal(clientOf('unix:/tmp/s'), 'unix:/tmp/s')
})
