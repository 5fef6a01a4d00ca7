// Drain behind a load balancer: a keep-alive connection whose request is still in flight when
// the drain delay ends must not hold the exit. Its response is sent, the connection is closed
// once idle, and the process exits 0 long before SHUTDOWN_TIMEOUT_MS. (A load balancer keeps
// such a connection in its pool; before the fix in server.ts the process waited for it until
// the timeout and exited 1. npm run test:deploy found it.)
import http from 'node:http'
import t from 'tap'
import { fixturePng } from '../helpers/images.js'
import { startServer } from '../helpers/server-process.js'

t.test('a request in flight when the drain ends: answered, then the process exits 0 at once', async (t) => {
  const drainMs = 800
  const server = await startServer({ DRAIN_DELAY_MS: String(drainMs), SHUTDOWN_TIMEOUT_MS: '20000', LOG_LEVEL: 'info' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const { port } = new URL(server.url)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const body = fixturePng(0)

  // The request's body arrives in two halves, the second after the drain delay: the connection
  // is busy (not idle) when app.close() starts, then answers and stays open for reuse.
  let firstHalfSent!: () => void
  const sent = new Promise<void>((resolve) => { firstHalfSent = resolve })
  const response = new Promise<{ status: number, connection: string | undefined }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/classify', method: 'POST', agent, headers: { 'content-type': 'image/png', 'content-length': body.length } }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }))
    })
    req.on('error', reject)
    req.write(body.subarray(0, 100), () => firstHalfSent())
    setTimeout(() => req.end(body.subarray(100)), drainMs + 700)
  })
  await sent
  const signalled = Date.now()
  server.child.kill('SIGTERM')

  const res = await response
  t.equal(res.status, 200, 'the in-flight request is answered')
  const { code } = await server.exited
  const tookMs = Date.now() - signalled
  t.equal(code, 0, 'exit 0, not killed by the shutdown timeout')
  t.ok(tookMs < 6000, `exited ${tookMs} ms after SIGTERM, with the idle keep-alive connection still open on the client side`)
  t.match(server.logs(), /closed: in-flight requests finished and sessions released/)
})
