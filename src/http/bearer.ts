// Bearer-token check for the admin routes, in constant time: both sides are hashed to 32 bytes
// first, so neither the comparison's time nor a length mismatch says anything about the token.
import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** Whether an Authorization header carries `Bearer <token>`. */
export function bearerMatches (header: string | undefined, token: string): boolean {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? '')
  const given = m?.[1] ?? ''
  // Always compare, even with nothing given, so a missing header takes as long as a wrong one.
  return timingSafeEqual(digest(given), digest(token)) && given !== ''
}
