// The bench is not a test; this is a smoke of it: short levels, JSON out, every section there,
// and a non-zero exit when the service cannot run.
import { spawn } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { parseBenchArgs } from '../../../src/tools/bench/args.js'
import { UsageError } from '../../../src/tools/cli/args.js'
import { percentiles } from '../../../src/tools/bench/load.js'
import { REPO } from '../../helpers/data.js'

const MAIN = path.join(REPO, 'src', 'tools', 'bench', 'main.ts')

async function bench (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [...process.execArgv, MAIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { code, stdout, stderr }
}

t.test('arguments', async (t) => {
  const a = parseBenchArgs(['--duration', '2', '--concurrency', '1,32', '--json', '--workers', '2', '--env', 'MAX_QUEUE_DELAY_MS=0'])
  t.match(a, { duration: 2, concurrency: [1, 32], json: true, workers: 2, format: 'png', overloadQueue: 8, soak: 0, serverEnv: { MAX_QUEUE_DELAY_MS: '0' } })
  t.equal(parseBenchArgs(['--url', 'http://x:1/']).url, 'http://x:1')
  t.throws(() => parseBenchArgs(['--concurrency', '0']), UsageError)
  t.throws(() => parseBenchArgs(['--format', 'gif']), UsageError)
  t.throws(() => parseBenchArgs(['--nope']))
})

t.test('percentiles are exact order statistics', async (t) => {
  const p = percentiles(Array.from({ length: 100 }, (_, i) => 100 - i))
  t.same(p, { p50: 50, p95: 95, p99: 99, max: 100 })
  t.ok(Number.isNaN(percentiles([]).p50))
})

t.test('smoke: a short run prints every section as JSON', async (t) => {
  const { code, stdout, stderr } = await bench(['--duration', '1', '--concurrency', '1,4', '--overload-queue', '2', '--json'])
  t.equal(code, 0, stderr.slice(-2000))
  const report = JSON.parse(stdout)
  t.same(report.levels.map((l: { concurrency: number }) => l.concurrency), [1, 4, 128])
  for (const l of report.levels.slice(0, 2)) {
    t.ok(l.ok > 0, `c=${l.concurrency}: ${l.ok} answers`)
    t.equal(l.errors, 0, `c=${l.concurrency}: no errors`)
    t.ok(l.rssAfter > 0 && l.meanBatchSize >= 1)
  }
  t.equal(report.overload.readyAfter, 200, 'ready after the overload')
  t.equal(report.overload.classifyAfter, 200)
  t.ok(report.ceilings.bestInference > 0 && report.ceilings.bestBare > 0)
  t.equal(report.ratios.length, 2)
  t.equal(report.preprocessing.length, 5)
  for (const p of report.preprocessing) t.ok(p.identical, `${p.format}: the service's tensors equal the straightforward pipeline's`)
})

t.test('a service that dies makes the bench exit non-zero', async (t) => {
  // The service refuses this configuration and exits 78 at start.
  const { code, stderr } = await bench(['--duration', '1', '--concurrency', '1', '--env', 'MAX_BATCH_SIZE=0', '--http-only'])
  t.equal(code, 1)
  t.match(stderr, /bench: failed: .*exited/)
})

t.test('usage errors exit 2', async (t) => {
  const { code, stderr } = await bench(['--concurrency', 'x'])
  t.equal(code, 2)
  t.match(stderr, /--concurrency/)
})

t.test('--compare-models: every model at batch 1 and the maximum batch, in turns, as JSON', async (t) => {
  const r = await bench(['--compare-models', 'fashion-mnist-isomaxplus,fashion-mnist-isomaxplus-md', '--rounds', '2', '--duration', '1', '--workers', '1', '--json'])
  t.equal(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { costs: Array<{ model: string, batchSize: number, rounds: number[], median: number, relativeTime: number, cpuRounds: number[], cpuMedian: number, cpuSpeedup: number }> }
  t.same(out.costs.map((c) => [c.model, c.batchSize]), [
    ['fashion-mnist-isomaxplus', 1], ['fashion-mnist-isomaxplus-md', 1],
    ['fashion-mnist-isomaxplus', 32], ['fashion-mnist-isomaxplus-md', 32]
  ])
  for (const c of out.costs) {
    t.equal(c.rounds.length, 2)
    t.ok(c.median > 0)
    t.equal(c.cpuRounds.length, 2)
    t.ok(c.cpuMedian > 0, 'images per CPU-second')
  }
  t.equal(out.costs[0]!.relativeTime, 1, 'the first model is the reference')
  t.equal(out.costs[0]!.cpuSpeedup, 1, 'and of the CPU speed-up')
  const unknown = await bench(['--compare-models', 'fashion-mnist-isomaxplus,nope'])
  t.equal(unknown.code, 2, 'a usage error')
  t.match(unknown.stderr, /--compare-models: no model "nope"/)
})
