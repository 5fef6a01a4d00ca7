// SIGHUP on the real process (issue 19, defect 4): one that arrives while the models load no
// longer kills it (it reloads once serving), and a burst coalesces into a few reloads instead
// of one full manifest load per signal.
import t from 'tap'
import { spawnServer, waitForLog } from '../helpers/server-process.js'

const SERVING = /"msg":"reload: generation \d+ serving after \d+ ms"/g

t.test('a SIGHUP while the models load: the process lives, serves, then reloads once', async (t) => {
  const proc = spawnServer({ LOG_LEVEL: 'info' })
  t.teardown(() => proc.child.kill('SIGKILL'))
  // "manifest loaded" comes before the sessions are created and warmed: seconds of start-up.
  t.ok(await waitForLog(proc, /"msg":"manifest loaded"/, 60_000), 'loading')
  proc.child.kill('SIGHUP')
  t.ok(await waitForLog(proc, /Server listening/, 60_000), `listening, not killed by SIGHUP (exit ${String(proc.child.exitCode)} ${String(proc.child.signalCode)})`)
  t.ok(await waitForLog(proc, SERVING, 60_000), 'and the signal was honoured: one reload')
  t.equal(proc.child.exitCode, null)
})

t.test('200 SIGHUPs in a second: reloads run one at a time, the process serves on', async (t) => {
  const proc = spawnServer({ LOG_LEVEL: 'info' })
  t.teardown(() => proc.child.kill('SIGKILL'))
  t.ok(await waitForLog(proc, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/, 60_000))
  const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(proc.logs())![1]!
  const started = Date.now()
  for (let i = 0; i < 200; i++) {
    proc.child.kill('SIGHUP')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  // Quiet: no new reload line for 2 s.
  let seen = -1
  for (let i = 0; i < 60; i++) {
    const now = (proc.logs().match(SERVING) ?? []).length
    if (now === seen) break
    seen = now
    await new Promise((resolve) => setTimeout(resolve, 2000))
  }
  const span = Date.now() - started
  // One running at a time: their durations add up to no more than the time they took in all.
  // (Each signal used to start its own manifest load at once: 200 overlapping loads.)
  const lines = proc.logs().split('\n').filter((l) => /reload: generation \d+ serving/.test(l))
  const busy = lines.reduce((sum, l) => sum + (JSON.parse(l) as { durationMs: number }).durationMs, 0)
  t.ok(lines.length >= 1 && lines.length <= 200, `${lines.length} reloads for 200 signals`)
  t.ok(busy <= span, `${busy} ms reloading within ${span} ms: never two at once`)
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec((await import('node:fs')).readFileSync(`/proc/${proc.child.pid!}/status`, 'utf8'))![1]) / 1024
  t.ok(rss < 1024, `RSS ${rss.toFixed(0)} MiB, under the shipped 1 GiB limit`)
  t.equal((await fetch(`${url}/health/ready`)).status, 200)
  t.equal(proc.child.exitCode, null)
})
