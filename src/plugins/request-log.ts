// One log line per request with its id, route, status and time, except for health and metrics
// probes, which a load balancer and Prometheus call every few seconds.
import fp from 'fastify-plugin'

const QUIET = new Set(['/health/live', '/health/ready', '/metrics'])

export default fp(async function requestLogPlugin (app) {
  app.addHook('onSend', async (req, reply) => {
    void reply.header('x-request-id', req.id)
  })
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    if (QUIET.has(route)) return
    req.log.info({
      method: req.method,
      route,
      url: req.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100
    }, 'request completed')
  })
}, { name: 'request-log' })
