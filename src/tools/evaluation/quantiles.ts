// A compact, sorted summary of calibration scores for the manifest: m evenly spaced quantiles
// (numpy's default linear interpolation), or every score when there are no more than m.

export function quantileSummary (scores: ArrayLike<number>, m = 1000): number[] {
  const sorted = Float64Array.from(scores).sort()
  const n = sorted.length
  const round = (v: number): number => Number(v.toPrecision(7))
  if (n <= m) return Array.from(sorted, round)
  return Array.from({ length: m }, (_, i) => {
    const pos = ((i + 0.5) / m) * (n - 1)
    const lo = Math.floor(pos)
    const hi = Math.min(n - 1, lo + 1)
    return round(sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!))
  })
}
