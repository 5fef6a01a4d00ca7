// Raw HTTP over a TCP socket, for requests no HTTP client would send (malformed framing, bad
// headers, slow senders): what the server's parser and router answer, byte for byte.
import net from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  /** The connection was reset instead of closed after the response. */
  reset: boolean
}

export function parseRawResponse (text: string, reset = false): RawResponse {
  const end = text.indexOf('\r\n\r\n')
  const head = end >= 0 ? text.slice(0, end) : text
  const [statusLine, ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const l of lines) {
    const i = l.indexOf(':')
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
  }
  let body = end >= 0 ? text.slice(end + 4) : ''
  const length = headers['content-length']
  if (length !== undefined) body = body.slice(0, Number(length))
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body, reset }
}

/** A whole response is in: headers, and as many body bytes as Content-Length says. */
function complete (text: string): boolean {
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return false
  const m = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))
  return m !== null && Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(m[1])
}

/**
 * Send `parts` (written one after another, `gapMs` apart) and collect the response: until it
 * is complete (then the client hangs up), the server closes the connection, or `timeoutMs`.
 */
export async function rawRequest (port: number, parts: Array<string | Buffer>, opts: { gapMs?: number, timeoutMs?: number, localAddress?: string } = {}): Promise<RawResponse> {
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let reset = false
    // localAddress (127.0.0.2, ...): another client, as the per-client body budget sees it.
    const socket = net.connect({ port, host: '127.0.0.1', ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) }, () => {
      const write = (i: number): void => {
        if (i >= parts.length || socket.destroyed) return
        const p = parts[i]!
        socket.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p)
        if (opts.gapMs !== undefined) setTimeout(() => write(i + 1), opts.gapMs)
        else write(i + 1)
      }
      write(0)
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete answer within ${opts.timeoutMs ?? 5000} ms: ${Buffer.concat(chunks).toString('latin1').slice(0, 300)}`))
    }, opts.timeoutMs ?? 5000)
    socket.on('data', (d: Buffer) => {
      chunks.push(d)
      if (complete(Buffer.concat(chunks).toString('latin1'))) socket.destroy()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'ECONNRESET' || err.code === 'EPIPE') reset = true })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(parseRawResponse(Buffer.concat(chunks).toString('latin1'), reset))
    })
  })
}
