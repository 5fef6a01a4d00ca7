// Every response sent before its request body was read whole closes the connection and
// lingers (http/linger.ts), so the client reads the response (a 413, a 503, a 400 for a bad
// form) instead of a reset, and no half-read body is left holding a paused socket.
import fp from 'fastify-plugin'
import { DEFAULT_LINGER, lingerOnClose, type LingerLimits } from '../http/linger.js'

export default fp<{ limits?: LingerLimits }>(async function lingerPlugin (app, opts) {
  const limits = opts.limits ?? DEFAULT_LINGER
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.raw.complete) return payload
    void reply.header('connection', 'close')
    lingerOnClose(req.raw, limits)
    return payload
  })
}, { name: 'linger' })
