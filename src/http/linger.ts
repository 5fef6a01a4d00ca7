// Lingering close, as nginx's lingering_close does. When the server answers before it has read
// the whole request body (413 from Content-Length, 503 from the body budget, a form refused
// halfway) it must close the connection: the rest of the body cannot be trusted to be read by
// anyone (a multipart parser that stopped consuming leaves the socket paused forever). Closed
// at once, the socket is destroyed with the client's bytes still arriving; the kernel resets
// the connection and most clients (Python's urllib, Node's fetch) report a broken pipe instead
// of our response. Instead: send the response, half-close, and keep reading and discarding
// what the client still sends — bounded in time and bytes — until it closes its side.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'

export interface LingerLimits {
  /** Longest time to keep reading after the response, ms. */
  ms: number
  /** Most bytes to read and discard after the response. */
  bytes: number
}

// nginx's lingering_time is 30 s; a client that has not finished sending within a few seconds
// of our answer is not reading it either. The byte bound keeps the discarding cheap.
export const DEFAULT_LINGER: LingerLimits = { ms: 5000, bytes: 64 * 1024 * 1024 }

const CHECK_EVERY_MS = 50
const lingering = new WeakSet<Socket>()

/**
 * Make the socket linger instead of being destroyed when Node closes it after this response
 * (the response must carry Connection: close). Node's HTTP server ends such a response with
 * socket.destroySoon(); this socket's own destroySoon half-closes, detaches whatever was
 * consuming the request body, and discards the rest of it as it arrives.
 */
export function lingerOnClose (req: IncomingMessage, limits: LingerLimits = DEFAULT_LINGER): void {
  const socket = req.socket
  if (lingering.has(socket)) return
  lingering.add(socket)
  socket.destroySoon = function lingeringDestroySoon (this: Socket): void {
    if (this.destroyed) return
    if (this.writable) this.end() // the response is flushed first; FIN follows it
    req.unpipe()
    req.removeAllListeners('data')
    req.resume() // flowing with no consumer: Node's parser reads on and the bytes are dropped
    const startedAt = Date.now()
    const startBytes = this.bytesRead
    const stop = (): void => {
      clearInterval(timer)
      if (!this.destroyed) this.destroy()
    }
    // Not unref'd: a shutdown waits for this socket, at most `limits.ms`.
    const timer = setInterval(() => {
      if (Date.now() - startedAt >= limits.ms || this.bytesRead - startBytes >= limits.bytes) stop()
    }, CHECK_EVERY_MS)
    this.once('end', stop) // the client has read our answer and closed
    this.once('close', () => clearInterval(timer))
  }
}
