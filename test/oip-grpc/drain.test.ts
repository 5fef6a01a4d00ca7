// SIGTERM with gRPC calls: the real server process (src/server.ts). A call in flight when the
// signal comes is answered in full; a call made after it gets UNAVAILABLE (the handler's, with
// retry information, or the client's own once the port has stopped accepting); the process
// exits 0 well before SHUTDOWN_TIMEOUT_MS.
import { status as Status } from '@grpc/grpc-js'
import sharp from 'sharp'
import t from 'tap'
import { grpcClients } from '../helpers/grpc-client.js'
import { startServer, waitForLog } from '../helpers/server-process.js'

// Sixteen 36-megapixel PNGs of one grey: a few kB each on the wire, so the message is on the
// server at once, and tens of ms each to decode and resize, so the call is still in flight
// when the signal arrives.
const side = 6000
const big = await sharp(Buffer.alloc(side * side, 128), { raw: { width: side, height: side, channels: 1 } }).png({ compressionLevel: 9 }).toBuffer()
const images = Array.from({ length: 16 }, () => big)

t.test('SIGTERM: the call in flight finishes, a new one gets UNAVAILABLE, exit 0', async (t) => {
  // One decode at a time: at least ~1 s of work on an idle machine (75 ms per image).
  const server = await startServer({ DRAIN_DELAY_MS: '0', SHUTDOWN_TIMEOUT_MS: '20000', LOG_LEVEL: 'info', DECODE_CONCURRENCY: '1' })
  t.teardown(() => server.child.kill('SIGKILL'))
  t.ok(await waitForLog(server, /gRPC listening at 127\.0\.0\.1:\d+/), 'gRPC listens beside HTTP')
  const port = /gRPC listening at 127\.0\.0\.1:(\d+)/.exec(server.logs())![1]
  const client = grpcClients(`127.0.0.1:${port!}`)
  t.teardown(() => client.close())
  t.same((await client.call('ServerReady', {})).response, { ready: true })

  let answeredAt = 0
  const inFlight = client.call('ModelInfer', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [16, 1] }], raw_input_contents: [Buffer.concat(images.flatMap((img) => [Buffer.from(new Uint32Array([img.length]).buffer), img]))] })
    .then((r) => { answeredAt = Date.now(); return r })
  // The message is on the server (its decode has started) before the signal.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const signalled = Date.now()
  server.child.kill('SIGTERM')
  t.ok(await waitForLog(server, /draining: readiness now 503/), 'the server is draining')
  const late = await client.call('ServerLive', {})
  t.equal(late.error?.code, Status.UNAVAILABLE, `a call after SIGTERM: UNAVAILABLE (${late.error?.details ?? ''})`)

  const { response, error } = await inFlight
  t.equal(error, undefined, 'the call in flight is answered')
  t.same(response.outputs.find((o: any) => o.name === 'label').shape, [16], 'in full')
  t.ok(answeredAt > signalled, `it was still in flight at the signal (answered ${answeredAt - signalled} ms after)`)
  const { code } = await server.exited
  t.equal(code, 0, 'exit 0')
  t.ok(Date.now() - signalled < 20_000, 'before SHUTDOWN_TIMEOUT_MS')
  t.match(server.logs(), /closed: in-flight requests finished and sessions released/)
})

t.test('GRPC_PORT=off: no gRPC port, HTTP as before', async (t) => {
  const server = await startServer({ GRPC_PORT: 'off', LOG_LEVEL: 'info' })
  t.teardown(() => server.child.kill('SIGKILL'))
  t.equal((await fetch(`${server.url}/health/ready`)).status, 200)
  t.notMatch(server.logs(), /gRPC listening/)
  server.child.kill('SIGTERM')
  t.equal((await server.exited).code, 0)
})
