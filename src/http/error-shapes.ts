// The one place that picks a protocol by URL: its name in the request metrics, and its error
// shape for the errors that come before there is a route and so a protocol's context: Node's
// HTTP parser (400, 408, 431), the router (400, 414) and `Expect` (417). Each protocol adds its
// prefix when it registers (src/protocols/*/index.ts); everything else is REST and answers in
// the default shape. Errors that reach a route or a protocol's not-found handler are encoded
// there, never here.
import type { ErrorEncoder } from './error-handler.js'

export class ErrorShapes {
  private readonly prefixes: Array<{ prefix: string, encoder: ErrorEncoder, protocol: string }> = []

  /** `fallback`, `fallbackProtocol`: the shape and name of every URL under no protocol's prefix (REST). */
  constructor (private readonly fallback: ErrorEncoder, private readonly fallbackProtocol = 'rest') {}

  /** A protocol served under `prefix`: its error shape, and its name (the metrics' `protocol` label). */
  add (prefix: string, encoder: ErrorEncoder, protocol: string): void {
    this.prefixes.push({ prefix, encoder, protocol })
  }

  /** The encoder of the protocol whose prefix `url` is under (/v2, /v2/…, /v2?…). */
  for (url: string): ErrorEncoder {
    return this.under(url)?.encoder ?? this.fallback
  }

  /** The name of that protocol: what the request metrics label a request to `url` with. */
  protocolFor (url: string): string {
    return this.under(url)?.protocol ?? this.fallbackProtocol
  }

  private under (url: string): { encoder: ErrorEncoder, protocol: string } | undefined {
    return this.prefixes.find(({ prefix }) => url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`))
  }
}
