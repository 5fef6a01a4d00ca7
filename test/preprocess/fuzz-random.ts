// A seeded generator for the differential fuzz test: the same seed gives the same cases on
// every machine, so a failure in CI can be replayed locally.

export interface Rng {
  /** Uniform in [0, 1). */
  next: () => number
  /** Integer in [0, n). */
  int: (n: number) => number
  pick: <T>(items: readonly T[]) => T
  /** n random bytes. */
  bytes: (n: number) => Buffer
}

/** mulberry32: small, fast, and good enough to pick mutations. */
export function rng (seed: number): Rng {
  let s = seed >>> 0
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number): number => Math.floor(next() * n)
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => items[int(items.length)] as T,
    bytes: (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)))
  }
}

/** One named way to damage an image: the new bytes and what was done. */
export type Mutation = (buf: Buffer, r: Rng) => [Buffer, string]

/** One mutation, or (a quarter of the time) two or three, drawn from `table` and applied in turn. */
export function applyMutations (buf: Buffer, r: Rng, table: Record<string, Mutation>): { buf: Buffer, steps: string[] } {
  const names = Object.keys(table)
  const steps: string[] = []
  const n = 1 + (r.int(4) === 0 ? 1 + r.int(2) : 0)
  for (let i = 0; i < n; i++) {
    const name = r.pick(names)
    const [next, detail] = table[name]!(buf, r)
    buf = next
    steps.push(`${name} (${detail})`)
  }
  return { buf, steps }
}
