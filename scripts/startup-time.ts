// npm run startup-time [-- RUNS] (builds first): time from process spawn to GET /health/ready
// = 200 for the default manifest, with the CPU Deployment's environment
// (deploy/k8s/deployment.yaml): the figure the startup probes in deploy/k8s/ and deploy/kserve/
// are sized from. Prints each run, then min / median / max and the load average.
import { spawn } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { freePort } from '../src/tools/bench/server.js'
import { REPO } from './nginx-conf.js'

const SERVER = path.join(REPO, 'dist', 'src', 'server.js')
const GIVE_UP_MS = 300_000

interface EnvVar { name: string, value?: string }
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function deploymentEnv (): Record<string, string> {
  const d = parse(readFileSync(path.join(REPO, 'deploy', 'k8s', 'deployment.yaml'), 'utf8')) as
    { spec: { template: { spec: { containers: Array<{ env: EnvVar[] }> } } } }
  return Object.fromEntries(d.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value ?? '']))
}

async function status (url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
    await res.arrayBuffer()
    return res.status
  } catch {
    return 0
  }
}

async function once (): Promise<{ liveMs: number, readyMs: number }> {
  const port = await freePort()
  const env = { ...process.env, ...deploymentEnv(), HOST: '127.0.0.1', PORT: String(port), GRPC_PORT: '0', LOG_LEVEL: 'warn', MODELS_MANIFEST: path.join(REPO, 'models', 'manifest.json') }
  const t0 = performance.now()
  const child = spawn(process.execPath, [SERVER], { env, stdio: ['ignore', 'ignore', 'inherit'] })
  const state = { exited: false }
  const gone = new Promise<void>((resolve) => child.once('exit', () => { state.exited = true; resolve() }))
  let liveMs = NaN
  try {
    while (performance.now() - t0 < GIVE_UP_MS) {
      if (state.exited) throw new Error('the server exited before it was ready')
      if (Number.isNaN(liveMs) && await status(`http://127.0.0.1:${port}/health/live`) === 200) liveMs = performance.now() - t0
      if (await status(`http://127.0.0.1:${port}/health/ready`) === 200) return { liveMs, readyMs: performance.now() - t0 }
      await sleep(20)
    }
    throw new Error(`not ready after ${GIVE_UP_MS} ms`)
  } finally {
    child.kill('SIGKILL')
    await gone
  }
}

const runs = Number(process.argv[2] ?? 5)
const ready: number[] = []
for (let i = 0; i < runs; i++) {
  const { liveMs, readyMs } = await once()
  ready.push(readyMs)
  console.log(`run ${i + 1}: live ${(liveMs / 1000).toFixed(2)} s, ready ${(readyMs / 1000).toFixed(2)} s`)
}
ready.sort((a, b) => a - b)
const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
console.log(`spawn to ready over ${runs} runs: min ${s(ready[0]!)}, median ${s(ready[Math.floor(ready.length / 2)]!)}, max ${s(ready[ready.length - 1]!)}`)
console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, ${os.cpus().length} CPUs`)
