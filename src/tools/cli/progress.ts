// Progress on stderr: a bar redrawn in place on a terminal, plain lines (every 10 %) otherwise,
// so logs of CI runs stay readable.
export interface Progress {
  tick: (n?: number) => void
  done: () => void
}

export function progress (label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = performance.now()
  const tty = stream.isTTY === true
  let done = 0
  let lastDraw = 0
  let lastDecile = -1
  let lastPrinted = -1
  const line = (): string => {
    const s = (performance.now() - started) / 1000
    const rate = done / Math.max(s, 1e-9)
    const eta = rate > 0 ? (total - done) / rate : 0
    return `${label} ${done}/${total} (${Math.floor(100 * done / Math.max(total, 1))} %) ${rate.toFixed(0)} img/s, ${s.toFixed(1)} s elapsed, ~${eta.toFixed(0)} s left`
  }
  const draw = (final = false): void => {
    if (tty) {
      const width = 24
      const filled = Math.round(width * done / Math.max(total, 1))
      stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line()}\u001b[K${final ? '\n' : ''}`)
    } else {
      const decile = Math.floor(10 * done / Math.max(total, 1))
      if ((decile !== lastDecile || final) && done !== lastPrinted) {
        stream.write(line() + '\n')
        lastDecile = decile
        lastPrinted = done
      }
    }
  }
  return {
    tick (n = 1) {
      done += n
      const now = performance.now()
      if (!tty || now - lastDraw > 100) { draw(); lastDraw = now }
    },
    done () { draw(true) }
  }
}
