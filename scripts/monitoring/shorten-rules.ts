// The alerting rules on a shorter clock, for the end-to-end test: every range, `for` and group
// interval divided by the same factor, nothing else touched — the same expressions, the same
// thresholds, the same statistical rule, only minutes become seconds.

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 }

function shorten (amount: string, unit: string, factor: number): string {
  const seconds = Number(amount) * (UNIT_SECONDS[unit] ?? NaN)
  if (!Number.isFinite(seconds)) throw new Error(`unknown duration ${amount}${unit}`)
  return `${Math.max(1, Math.round(seconds / factor))}s`
}

/** The rules file's text with every duration (ranges `[10m]`, `for: 5m`, `interval: 30s`) divided by `factor`. */
export function shortenRules (text: string, factor: number): string {
  return text
    .replace(/\[(\d+)([smh])\]/g, (_, n: string, u: string) => `[${shorten(n, u, factor)}]`)
    .replace(/^(\s*(?:for|interval): )(\d+)([smh])\s*$/gm, (_, head: string, n: string, u: string) => `${head}${shorten(n, u, factor)}`)
}

/** The text with every duration replaced by a placeholder: equal for a rule file and its shortened copy. */
export function withoutDurations (text: string): string {
  return text.replace(/\[\d+[smh]\]/g, '[D]').replace(/^(\s*(?:for|interval): )\d+[smh]\s*$/gm, '$1D')
}
