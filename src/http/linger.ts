// Lingering close, as nginx's lingering_close does. When the server answers before it has read
// the request body (413 from Content-Length, 503 while shutting down) and closes the connection,
// Node destroys the socket with the client's bytes still arriving; the kernel then resets the
// connection and most clients (Python's urllib, Node's fetch) report a broken pipe instead of
// our response. Instead: send the response, half-close, and keep reading and discarding what
// the client still sends — bounded in time and bytes — until it closes its side.
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
 * Make the socket linger instead of being destroyed when Node closes it after this response.
 * Node's HTTP server ends a `Connection: close` response with socket.destroySoon(); this
 * socket's own destroySoon half-closes and keeps reading (Node's parser discards the body).
 */
export function lingerOnClose (socket: Socket, limits: LingerLimits = DEFAULT_LINGER): void {
  if (lingering.has(socket)) return
  lingering.add(socket)
  socket.destroySoon = function lingeringDestroySoon (this: Socket): void {
    if (this.destroyed) return
    if (this.writable) this.end() // the response is flushed first; FIN follows it
    const startedAt = Date.now()
    const startBytes = this.bytesRead
    const stop = (): void => {
      clearInterval(timer)
      if (!this.destroyed) this.destroy()
    }
    const timer = setInterval(() => {
      if (Date.now() - startedAt >= limits.ms || this.bytesRead - startBytes >= limits.bytes) stop()
    }, CHECK_EVERY_MS)
    timer.unref()
    this.once('end', stop) // the client has read our answer and closed
    this.once('close', () => clearInterval(timer))
  }
}
