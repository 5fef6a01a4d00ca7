// A budget of request-body bytes held in memory at once, shared by all requests and, within it,
// a share per client. It is charged with bytes as they arrive, not with the length a request
// announces: 13 connections that announced 128 MiB and sent one byte a second used to hold the
// whole budget and turn every other upload away (issue 20). Bytes that arrived stay charged
// until their response is done; a request whose next bytes do not fit is refused (503).

/** Why bytes were refused: the whole budget, or the client's share of it. */
export type Refusal = 'total' | 'client'

export class ByteBudget {
  private used = 0
  private readonly byClient = new Map<string, number>()

  constructor (readonly capacity: number, readonly perClient: number = capacity) {}

  get inUse (): number {
    return this.used
  }

  inUseBy (client: string): number {
    return this.byClient.get(client) ?? 0
  }

  /** Whether `bytes` more would fit now, for `client`: null, or which limit they pass. */
  refusal (client: string, bytes: number): Refusal | null {
    if (this.used + bytes > this.capacity) return 'total'
    if (this.inUseBy(client) + bytes > this.perClient) return 'client'
    return null
  }

  /** Charge `bytes` to `client` if they fit; the refusal (nothing charged) otherwise. */
  take (client: string, bytes: number): Refusal | null {
    const refused = this.refusal(client, bytes)
    if (refused !== null) return refused
    this.used += bytes
    this.byClient.set(client, this.inUseBy(client) + bytes)
    return null
  }

  give (client: string, bytes: number): void {
    this.used = Math.max(0, this.used - bytes)
    const left = this.inUseBy(client) - bytes
    if (left > 0) this.byClient.set(client, left)
    else this.byClient.delete(client)
  }
}
