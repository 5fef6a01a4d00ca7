// Every response that closes the connection before the request body was read lingers
// (http/linger.ts), so the client reads the response (a 413, a 503) instead of a reset.
import fp from 'fastify-plugin'
import { DEFAULT_LINGER, lingerOnClose, type LingerLimits } from '../http/linger.js'

export default fp<{ limits?: LingerLimits }>(async function lingerPlugin (app, opts) {
  const limits = opts.limits ?? DEFAULT_LINGER
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.raw.complete) return payload
    const connection = reply.getHeader('connection')
    if (typeof connection === 'string' && connection.toLowerCase() === 'close') lingerOnClose(req.raw.socket, limits)
    return payload
  })
}, { name: 'linger' })
