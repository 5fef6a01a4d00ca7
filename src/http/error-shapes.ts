// The one place that picks an error shape by URL, for the errors that come before there is a
// route and so a protocol's context: Node's HTTP parser (400, 408, 431), the router (400, 414)
// and `Expect` (417). Each protocol adds its prefix when it registers (src/protocols/*/index.ts);
// everything else answers in the default (REST) shape. Errors that reach a route or a
// protocol's not-found handler are encoded there, never here.
import type { ErrorEncoder } from './error-handler.js'

export class ErrorShapes {
  private readonly prefixes: Array<{ prefix: string, encoder: ErrorEncoder }> = []

  constructor (private readonly fallback: ErrorEncoder) {}

  add (prefix: string, encoder: ErrorEncoder): void {
    this.prefixes.push({ prefix, encoder })
  }

  /** The encoder of the protocol whose prefix `url` is under (/v2, /v2/…, /v2?…). */
  for (url: string): ErrorEncoder {
    for (const { prefix, encoder } of this.prefixes) {
      if (url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`)) return encoder
    }
    return this.fallback
  }
}
