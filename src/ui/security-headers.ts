// Headers for the pages people open in a browser (the try-it page, the API docs), set on every
// response of the plugin context they are added to — the API's JSON routes are not touched.
import type { FastifyInstance } from 'fastify'

export function securityHeaders (app: FastifyInstance, csp: string): void {
  app.addHook('onSend', async (_req, reply, payload) => {
    void reply.header('content-security-policy', csp)
    void reply.header('x-content-type-options', 'nosniff')
    void reply.header('referrer-policy', 'no-referrer')
    return payload
  })
}
